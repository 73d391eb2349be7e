//! `/api/v1/plugins`: what each loaded connector is and may do, and the files that were refused.
//! This is what a security team reads to audit connectors without running them.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use stella_runtime::record::EffectiveLimits;
use stella_runtime::{Compilation, ConnectorSource, IntegrationType, LoadFailure, LoadedConnector, Manifest};
use utoipa::ToSchema;

use super::AppState;
use super::extract::Reader;
use super::problem::{Problem, ProblemKind, ProblemResponses};

/// A loaded connector.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plugin {
    /// The provider id integrations name.
    pub provider: String,
    /// The integration types it serves.
    pub types: Vec<IntegrationType>,
    /// Its version.
    pub version: String,
    /// What it is.
    pub description: String,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// `built-in` (embedded in the service) or `file` (from the plugins directory).
    pub source: String,
    /// The file, for `file` connectors.
    pub path: Option<String>,
    /// The manifest embedded in the component (permissions and requested limits), as written.
    pub manifest: Manifest,
    /// The limits its invocations run under: the operator's ceilings lowered by the manifest.
    pub effective_limits: EffectiveLimits,
    /// The interfaces the component imports.
    pub imports: Vec<String>,
    /// How long this process took to compile it (or read it from its compile cache) when it
    /// loaded it.
    pub compilation: Compilation,
}

/// Every loaded connector, and the files that were refused.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginList {
    /// Loaded connectors, by provider id.
    pub items: Vec<Plugin>,
    /// Components that were refused at load time, and why.
    pub failures: Vec<LoadFailure>,
}

fn describe(state: &AppState, c: &LoadedConnector) -> Plugin {
    let manifest = c.manifest().clone();
    let (source, path) = match c.source() {
        ConnectorSource::BuiltIn => ("built-in", None),
        ConnectorSource::File(p) => ("file", Some(p.display().to_string())),
    };
    let limits = state.catalog.sandbox().config().limits.effective(&manifest.limits);
    Plugin {
        provider: c.provider().to_string(),
        types: manifest.connector.types.clone(),
        version: manifest.connector.version.clone(),
        description: manifest.connector.description.clone(),
        sha256: c.sha256().to_string(),
        size: c.size(),
        source: source.to_string(),
        path,
        effective_limits: EffectiveLimits::from(&limits),
        imports: c.imports().to_vec(),
        compilation: c.compilation(),
        manifest,
    }
}

/// List the loaded connectors and the load errors.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", operation_id = "listPlugins",
    security(("bearer" = ["integrations.read"])),
    responses(
        (status = 200, description = "Loaded connectors and refused files", body = PluginList),
        ProblemResponses,
    ))]
pub async fn list_plugins(Reader(_): Reader, State(state): State<AppState>) -> Response {
    let connectors = state.catalog.connectors();
    let items = connectors.iter().map(|c| describe(&state, c)).collect();
    axum::Json(PluginList { items, failures: connectors.failures().to_vec() }).into_response()
}

/// Get one loaded connector.
#[utoipa::path(get, path = "/api/v1/plugins/{provider}", tag = "plugins", operation_id = "getPlugin",
    params(("provider" = String, Path, description = "The provider id")),
    security(("bearer" = ["integrations.read"])),
    responses(
        (status = 200, description = "The connector", body = Plugin),
        ProblemResponses,
    ))]
pub async fn get_plugin(
    Reader(_): Reader,
    State(state): State<AppState>,
    Path(provider): Path<String>,
) -> Result<Response, Problem> {
    let connector = state
        .catalog
        .connectors()
        .get(&provider)
        .ok_or_else(|| Problem::new(ProblemKind::NotFound, "no connector with this provider id is loaded"))?;
    Ok(axum::Json(describe(&state, connector)).into_response())
}
