//! Bulk export and import of a tenant's integrations: the file an operator moves between
//! environments (staging to prod, one site to an air-gapped one).
//!
//! An export holds what a client sets of each integration (its [`IntegrationSpec`]: AuthRefs,
//! never secrets), in name order, without ids, status or health, which belong to one environment.
//! An import matches integrations by name: a new name is created (in `draft`, as `POST` creates),
//! a known one is updated when it differs, and left alone when it does not. Each item is decided
//! on its own, so one bad item does not stop the others. Every change goes through the catalog's
//! own create and update: validated, audited and evented as if sent one by one.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{FieldError, Integration, IntegrationSpec, now};
use crate::service::{Caller, Catalog, ServiceError, changed_fields};
use crate::store::{ListFilter, ListPosition};

/// The `format` of an export document.
pub const EXPORT_FORMAT: &str = "stellaops.integrations/v1";
/// Most items in one import.
pub const MAX_IMPORT_ITEMS: usize = 10_000;
/// Largest import body, in bytes.
pub const MAX_IMPORT_BYTES: usize = 16 << 20;
/// Page size when reading every integration of a tenant.
const PAGE: u32 = 500;

/// Every integration of a tenant, as a client sets it, in name order.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportDocument {
    /// `stellaops.integrations/v1`.
    pub format: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: OffsetDateTime,
    /// The integrations, ordered by name.
    pub integrations: Vec<IntegrationSpec>,
}

/// The body of an import: an export document. Items are read one by one, so that a bad item is
/// reported as that item's error.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportDocument {
    /// `stellaops.integrations/v1` when present.
    #[schema(pattern = r"^stellaops\.integrations/v1$")]
    pub format: Option<String>,
    /// When the export was made (not used).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub exported_at: Option<serde_json::Value>,
    /// The integrations to create or update, each an `IntegrationSpec` (at most 10,000).
    #[schema(value_type = Vec<IntegrationSpec>, max_items = 10000)]
    pub integrations: Vec<serde_json::Value>,
}

/// What an import did (or, in a dry run, would do) with one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportResult {
    /// A new integration, in `draft`.
    Created,
    /// An integration of that name, changed to match the item.
    Updated,
    /// An integration of that name that already matched.
    Unchanged,
    /// Not imported: see `errors` or `message`.
    Error,
}

/// One item of an import.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportItem {
    /// Its position in the file, from 0.
    pub index: usize,
    /// Its name, when it has one.
    pub name: Option<String>,
    /// What happened to it.
    pub result: ImportResult,
    /// The integration it created or matched (none for an error, or a creation in a dry run).
    pub integration_id: Option<Uuid>,
    /// The fields an update changed (or would change).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// Why it was refused, field by field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Why it was refused, when no one field is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The outcome of an import.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Whether nothing was changed (`?dryRun=true`).
    pub dry_run: bool,
    /// Items created.
    pub created: usize,
    /// Items updated.
    pub updated: usize,
    /// Items that already matched.
    pub unchanged: usize,
    /// Items refused.
    pub failed: usize,
    /// Every item, in file order.
    pub items: Vec<ImportItem>,
}

/// Every integration of the caller's tenant, in name order.
pub async fn all_integrations(catalog: &Catalog, caller: &Caller) -> Result<Vec<Integration>, ServiceError> {
    let mut all = Vec::new();
    let mut after: Option<ListPosition> = None;
    loop {
        let page = catalog.list(caller, &ListFilter::default(), after.as_ref(), PAGE).await?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(|i| ListPosition { name: i.name.clone(), id: i.integration_id });
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

/// The caller's export.
pub async fn export(catalog: &Catalog, caller: &Caller) -> Result<ExportDocument, ServiceError> {
    let integrations = all_integrations(catalog, caller).await?.iter().map(Integration::spec).collect();
    Ok(ExportDocument { format: EXPORT_FORMAT.into(), exported_at: now(), integrations })
}

/// Imports `items` (each meant to be an `IntegrationSpec`; an `Err` is an item that could not be
/// read, with why) into the caller's tenant, by name. With `dry_run`, decides every item the same
/// way and changes nothing. Fails as a whole only when the database does.
pub async fn import(
    catalog: &Catalog,
    caller: &Caller,
    items: Vec<Result<serde_json::Value, String>>,
    dry_run: bool,
) -> Result<ImportReport, ServiceError> {
    let mut existing: HashMap<String, Integration> =
        all_integrations(catalog, caller).await?.into_iter().map(|i| (i.name.clone(), i)).collect();
    let mut seen = HashSet::new();
    let mut report = ImportReport { dry_run, created: 0, updated: 0, unchanged: 0, failed: 0, items: vec![] };
    for (index, value) in items.into_iter().enumerate() {
        let name = value.as_ref().ok().and_then(|v| v.get("name")).and_then(|n| n.as_str()).map(str::to_string);
        let mut item = ImportItem {
            index,
            name: name.clone(),
            result: ImportResult::Error,
            integration_id: None,
            changed: vec![],
            errors: vec![],
            message: None,
        };
        let outcome = match value {
            Ok(value) => import_one(catalog, caller, value, dry_run, &mut existing, &mut seen).await,
            Err(unreadable) => {
                Err(ServiceError::Invalid(vec![FieldError { field: "body".into(), message: unreadable }]))
            }
        };
        match outcome {
            Ok((result, id, changed)) => {
                item.result = result;
                item.integration_id = id;
                item.changed = changed;
            }
            Err(ServiceError::Invalid(errors)) => item.errors = errors,
            Err(e @ (ServiceError::Unavailable(_) | ServiceError::Internal(_))) => return Err(e),
            Err(e) => item.message = Some(e.to_string()),
        }
        match item.result {
            ImportResult::Created => report.created += 1,
            ImportResult::Updated => report.updated += 1,
            ImportResult::Unchanged => report.unchanged += 1,
            ImportResult::Error => report.failed += 1,
        }
        report.items.push(item);
    }
    Ok(report)
}

/// Decides (and unless `dry_run`, applies) one item.
async fn import_one(
    catalog: &Catalog,
    caller: &Caller,
    value: serde_json::Value,
    dry_run: bool,
    existing: &mut HashMap<String, Integration>,
    seen: &mut HashSet<String>,
) -> Result<(ImportResult, Option<Uuid>, Vec<String>), ServiceError> {
    let spec: IntegrationSpec = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_string() } else { path };
        ServiceError::Invalid(vec![FieldError { field, message: e.into_inner().to_string() }])
    })?;
    if !seen.insert(spec.name.clone()) {
        return Err(ServiceError::Invalid(vec![FieldError {
            field: "name".into(),
            message: format!("`{}` is named by an earlier item of this import; only the first is imported", spec.name),
        }]));
    }
    catalog.validate(&spec)?;
    let Some(current) = existing.get(&spec.name) else {
        if dry_run {
            return Ok((ImportResult::Created, None, vec![]));
        }
        let row = catalog.create(caller, spec).await?;
        let id = row.integration_id;
        existing.insert(row.name.clone(), row);
        return Ok((ImportResult::Created, Some(id), vec![]));
    };
    let id = current.integration_id;
    let mut proposed = current.clone();
    proposed.set_spec(spec.clone());
    let changed: Vec<String> = changed_fields(current, &proposed).into_iter().map(str::to_string).collect();
    if changed.is_empty() {
        return Ok((ImportResult::Unchanged, Some(id), vec![]));
    }
    if !dry_run {
        // The version read at the start: a concurrent change is reported, not overwritten.
        catalog.update(caller, id, current.version, spec).await?;
    }
    Ok((ImportResult::Updated, Some(id), changed))
}
