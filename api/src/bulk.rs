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
use crate::identity::{Admin, Reader};
use crate::query::{IntegrationQuery, ListFilter, PageRequest};
use crate::service::{Catalog, IfMatch, ServiceError, changed_fields};

/// The `format` of an export document.
pub const EXPORT_FORMAT: &str = "stellaops.integrations/v1";
/// Most items in one import.
pub const MAX_IMPORT_ITEMS: usize = 10_000;
/// Largest import body, in bytes.
pub const MAX_IMPORT_BYTES: usize = 16 << 20;
/// Largest item of an import, in bytes of JSON (the default limit of a `POST` body).
pub const MAX_IMPORT_ITEM_BYTES: usize = 256 * 1024;
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

/// The body of an import: an export document. Items are kept as their JSON text and read one by
/// one, so that a bad item is that item's error; more than [`MAX_IMPORT_ITEMS`] are refused while
/// the body is read, before anything is built from them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportDocument<'a> {
    /// `stellaops.integrations/v1` when present.
    #[schema(pattern = r"^stellaops\.integrations/v1$")]
    pub format: Option<String>,
    /// When the export was made (not used).
    pub exported_at: Option<String>,
    /// The integrations to create or update (at most 10,000), each meant to be an
    /// `IntegrationSpec`: an item that is not one is reported as that item's error, so any JSON
    /// value is accepted here.
    #[schema(value_type = Vec<serde_json::Value>, max_items = 10000)]
    #[serde(borrow, deserialize_with = "at_most_max_items")]
    pub integrations: Vec<&'a serde_json::value::RawValue>,
}

/// A sequence of at most [`MAX_IMPORT_ITEMS`] JSON values, kept as text.
fn at_most_max_items<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<&'de serde_json::value::RawValue>, D::Error> {
    struct Items;
    impl<'de> serde::de::Visitor<'de> for Items {
        type Value = Vec<&'de serde_json::value::RawValue>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "an array of at most {MAX_IMPORT_ITEMS} integrations")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                if items.len() == MAX_IMPORT_ITEMS {
                    return Err(serde::de::Error::custom(format!(
                        "an import holds at most {MAX_IMPORT_ITEMS} integrations; split the file"
                    )));
                }
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_seq(Items)
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

/// Every integration of the caller's tenant, in name order, a page at a time.
async fn for_each_integration(
    catalog: &Catalog,
    reader: &Reader,
    mut each: impl FnMut(Integration),
) -> Result<(), ServiceError> {
    let mut query = IntegrationQuery { filter: ListFilter::default(), page: PageRequest::first(PAGE) };
    loop {
        let page = catalog.list(reader, &query).await?;
        query.page.after = page.next();
        page.items.into_iter().for_each(&mut each);
        if query.page.after.is_none() {
            return Ok(());
        }
    }
}

/// The caller's export, as the JSON text of an [`ExportDocument`] or, with `ndjson`, one
/// integration per line. Built a page of rows at a time: only the text is held whole.
pub async fn export(catalog: &Catalog, reader: &Reader, ndjson: bool) -> Result<String, ServiceError> {
    let mut out = String::new();
    if !ndjson {
        let at = now().format(&time::format_description::well_known::Rfc3339).expect("a time formats");
        out = format!("{{\"format\":\"{EXPORT_FORMAT}\",\"exportedAt\":\"{at}\",\"integrations\":[");
    }
    let mut first = true;
    for_each_integration(catalog, reader, |row| {
        if !ndjson && !first {
            out.push(',');
        }
        first = false;
        out.push_str(&serde_json::to_string(&row.into_spec()).expect("a spec serializes"));
        if ndjson {
            out.push('\n');
        }
    })
    .await?;
    if !ndjson {
        out.push_str("]}");
    }
    Ok(out)
}

/// Imports `items` (each the JSON text of an `IntegrationSpec`; an `Err` is an item that could not
/// be read, with why) into the caller's tenant, by name. With `dry_run`, decides every item the
/// same way and changes nothing. Each change is committed on its own: when the database fails
/// midway, the report says which items were imported and marks the rest as not imported, and
/// importing the file again finishes the work (what was imported is then `unchanged`).
pub async fn import(
    catalog: &Catalog,
    admin: &Admin,
    items: Vec<Result<&str, String>>,
    dry_run: bool,
) -> Result<ImportReport, ServiceError> {
    let mut existing = HashMap::new();
    for_each_integration(catalog, &admin.reader(), |i| {
        existing.insert(i.name.clone(), i);
    })
    .await?;
    let mut failure: Option<String> = None;
    let mut seen = HashSet::new();
    let mut report = ImportReport { dry_run, created: 0, updated: 0, unchanged: 0, failed: 0, items: vec![] };
    for (index, text) in items.into_iter().enumerate() {
        let mut item = ImportItem {
            index,
            name: text.as_deref().ok().and_then(item_name),
            result: ImportResult::Error,
            integration_id: None,
            changed: vec![],
            errors: vec![],
            message: None,
        };
        if let Some(why) = &failure {
            // The database failed on an earlier item: this one is not tried.
            item.message = Some(why.clone());
            report.failed += 1;
            report.items.push(item);
            continue;
        }
        let outcome = match text {
            Ok(text) => import_one(catalog, admin, text, dry_run, &mut existing, &mut seen).await,
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
            Err(
                e @ (ServiceError::Unavailable(_)
                | ServiceError::KeyInFlight
                | ServiceError::KeptChanging(_)
                | ServiceError::Internal(_)),
            ) => {
                // This item and the ones after it are not imported; the ones before it are.
                let why = failure.get_or_insert_with(|| {
                    tracing::warn!(error = %e, "an import stopped: the database failed");
                    "not imported: the database failed during the import; import the file again to finish".into()
                });
                item.message = Some(why.clone());
            }
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

/// The `name` of an item, for the report, when it has one.
fn item_name(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Named {
        name: String,
    }
    serde_json::from_str::<Named>(text).ok().map(|n| n.name)
}

/// Decides (and unless `dry_run`, applies) one item.
async fn import_one(
    catalog: &Catalog,
    admin: &Admin,
    text: &str,
    dry_run: bool,
    existing: &mut HashMap<String, Integration>,
    seen: &mut HashSet<String>,
) -> Result<(ImportResult, Option<Uuid>, Vec<String>), ServiceError> {
    if text.len() > MAX_IMPORT_ITEM_BYTES {
        return Err(ServiceError::Invalid(vec![FieldError {
            field: "body".into(),
            message: format!("an integration is at most {MAX_IMPORT_ITEM_BYTES} bytes of JSON"),
        }]));
    }
    // One integration per item: `{…}{…}` on one NDJSON line is not two.
    let spec: IntegrationSpec = crate::domain::read_json(text.as_bytes()).map_err(|e| {
        let message = if e.syntax { format!("the item is not valid JSON: {}", e.message) } else { e.message };
        ServiceError::Invalid(vec![FieldError { field: e.field, message }])
    })?;
    if !seen.insert(spec.name.clone()) {
        return Err(ServiceError::Invalid(vec![FieldError {
            field: "name".into(),
            message: format!("`{}` is named by an earlier item of this import; only the first is imported", spec.name),
        }]));
    }
    let valid = catalog.validate(spec.clone())?;
    let Some(current) = existing.get(&spec.name) else {
        if dry_run {
            return Ok((ImportResult::Created, None, vec![]));
        }
        let row = catalog.create(admin, spec).await?;
        let id = row.integration_id;
        existing.insert(row.name.clone(), row);
        return Ok((ImportResult::Created, Some(id), vec![]));
    };
    let id = current.integration_id;
    let mut proposed = current.clone();
    proposed.set_spec(valid);
    let changed: Vec<String> = changed_fields(current, &proposed).into_iter().map(str::to_string).collect();
    if changed.is_empty() {
        return Ok((ImportResult::Unchanged, Some(id), vec![]));
    }
    if !dry_run {
        // The version read at the start: a concurrent change is reported, not overwritten.
        catalog.update(admin, id, IfMatch::Version(current.version), spec).await?;
    }
    Ok((ImportResult::Updated, Some(id), changed))
}
