//! `/api/v1/plugins`: what each loaded connector is and may do, and the files that were refused
//! (what a security team reads to audit connectors without running them); and the plugin store:
//! submitting components, reviewing their versions (approve, reject, activate), the admission
//! policy and the platform's audit trail, all under the platform-wide `plugins.admin` scope.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use stella_runtime::record::EffectiveLimits;
use stella_runtime::{Compilation, ConnectorSource, IntegrationType, LoadFailure, LoadedConnector, Manifest};
use utoipa::ToSchema;

use super::AppState;
use super::extract::QueryOf;
use super::extract::{JsonBody, media_type};
use super::problem::{Problem, ProblemKind, ProblemResponses};
use crate::audit::PluginAuditEntry;
use crate::config::AutoApprove;
use crate::identity::{ConnectorsReader, PluginsAdmin};
use crate::plugins::policy::MAX_SIGNATURES;
use crate::query::SeqParams;
use crate::service::PluginVersionView;
use stella_runtime::signature::MAX_SIGNATURE_TEXT;

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
    /// `built-in` (embedded in the service) or `stored` (the active version in the plugin store).
    pub source: String,
    /// The file, for `file` connectors (loaded as they are by the command line only).
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

pub(crate) fn describe(state: &AppState, c: &LoadedConnector) -> Plugin {
    let manifest = c.manifest().clone();
    let (source, path) = match c.source() {
        ConnectorSource::BuiltIn => ("built-in", None),
        ConnectorSource::File(p) => ("file", Some(p.display().to_string())),
        ConnectorSource::Stored => ("stored", None),
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
    security(("bearer" = ["integrations.read"]), ("bearer" = ["plugins.admin"])),
    responses(
        (status = 200, description = "Loaded connectors and refused files", body = PluginList),
        ProblemResponses,
    ))]
pub async fn list_plugins(reader: ConnectorsReader, State(state): State<AppState>) -> Response {
    let connectors = state.catalog.loaded_connectors(&reader);
    let items = connectors.iter().map(|c| describe(&state, c)).collect();
    axum::Json(PluginList { items, failures: connectors.failures().to_vec() }).into_response()
}

/// Get one loaded connector.
#[utoipa::path(get, path = "/api/v1/plugins/{provider}", tag = "plugins", operation_id = "getPlugin",
    params(("provider" = String, Path, description = "The provider id")),
    security(("bearer" = ["integrations.read"]), ("bearer" = ["plugins.admin"])),
    responses(
        (status = 200, description = "The connector", body = Plugin),
        ProblemResponses,
    ))]
pub async fn get_plugin(
    reader: ConnectorsReader,
    State(state): State<AppState>,
    Path(provider): Path<String>,
) -> Result<Response, Problem> {
    let connectors = state.catalog.loaded_connectors(&reader);
    let connector = connectors
        .get(&provider)
        .ok_or_else(|| Problem::new(ProblemKind::NotFound, "no connector with this provider id is loaded"))?;
    Ok(axum::Json(describe(&state, connector)).into_response())
}

/// A component upload: the `.wasm` bytes.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct WasmComponent(pub Vec<u8>);

/// Submit a connector component to the plugin store.
///
/// The component is checked as the sandbox loads it (format, world, imports, manifest,
/// compilation) and its signatures against the trusted keys; whatever fails is refused (422
/// `plugin-refused`, with the reason) and stored nowhere. It is stored as a `pending` version of
/// its provider, or approved and activated at once under the `narrower-signed` policy. The same
/// bytes submitted again answer the version stored (200).
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins", operation_id = "submitPlugin",
    request_body(content = WasmComponent, content_type = "application/wasm",
        description = "The component (`.wasm`), at most the sandbox's `max-component-bytes`"),
    params(("Stella-Signature" = Option<String>, Header,
        description = "The base64 of a signature file (minisign `.minisig`, or cosign's `.sig`); repeat for several (at most 4)")),
    security(("bearer" = ["plugins.admin"])),
    responses(
        (status = 201, description = "Stored as a new version", body = PluginVersionView),
        (status = 200, description = "These bytes were stored before: the version", body = PluginVersionView),
        ProblemResponses,
    ))]
pub async fn submit_plugin(
    admin: PluginsAdmin,
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, Problem> {
    let signatures = signature_headers(request.headers())?;
    let is_wasm = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| media_type(v) == "application/wasm");
    if !is_wasm {
        return Err(Problem::new(
            ProblemKind::UnsupportedMediaType,
            "send the component as `Content-Type: application/wasm`, its signatures in Stella-Signature headers",
        ));
    }
    // The body is read here, under the sandbox's component limit rather than the API's JSON limit.
    let limit = state.catalog.sandbox().config().max_component_bytes;
    let bytes = axum::body::to_bytes(request.into_body(), usize::try_from(limit).unwrap_or(usize::MAX)).await.map_err(
        |_| {
            Problem::new(
                ProblemKind::PayloadTooLarge,
                format!("the component is larger than {limit} bytes (or was cut off)"),
            )
        },
    )?;
    let submitted = state
        .catalog
        .submit_plugin(
            &admin,
            bytes.to_vec(),
            crate::plugins::Signatures { files: signatures, images: Vec::new() },
            "api".into(),
        )
        .await?;
    let status = if submitted.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(submitted.view)).into_response())
}

/// A pull from a registry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PullRequest {
    /// `REGISTRY/REPOSITORY[:TAG|@DIGEST]`; the registry must be one of `plugins.registries`.
    #[schema(min_length = 1, max_length = 1024)]
    pub reference: String,
}

/// Pull a connector from an OCI registry into the plugin store.
///
/// The reference is resolved once and pinned by its manifest digest (the version's `origin` is
/// `oci:<registry>/<repository>@<digest>`); the signatures pushed beside it by cosign's tag
/// convention (`sha256-<digest>.sig`) come along. The component is then submitted as an upload
/// is: checked, verified, stored pending (or approved under `narrower-signed`).
#[utoipa::path(post, path = "/api/v1/plugins/pull", tag = "plugins", operation_id = "pullPlugin",
    request_body = PullRequest,
    security(("bearer" = ["plugins.admin"])),
    responses(
        (status = 201, description = "Stored as a new version", body = PluginVersionView),
        (status = 200, description = "These bytes were stored before: the version", body = PluginVersionView),
        ProblemResponses,
    ))]
pub async fn pull_plugin(
    admin: PluginsAdmin,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<PullRequest>,
) -> Result<Response, Problem> {
    let submitted = state.catalog.pull_plugin(&admin, &request.reference).await?;
    let status = if submitted.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(submitted.view)).into_response())
}

/// The signatures of an upload, each decoded from base64 and within its limit. A header that is
/// not one refuses the submission (422 `plugin-refused`), like a signature that does not verify.
fn signature_headers(headers: &HeaderMap) -> Result<Vec<String>, Problem> {
    let values: Vec<_> = headers.get_all(crate::plugins::SIGNATURE_HEADER).iter().collect();
    if values.len() > MAX_SIGNATURES {
        return Err(Problem::new(
            ProblemKind::PluginRefused,
            format!("at most {MAX_SIGNATURES} Stella-Signature headers are read"),
        ));
    }
    values
        .into_iter()
        .map(|v| {
            let bad = |why: &str| Problem::new(ProblemKind::PluginRefused, format!("a Stella-Signature header {why}"));
            if v.len() > MAX_SIGNATURE_TEXT * 2 {
                return Err(bad("is too long to be a signature"));
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes().trim_ascii())
                .map_err(|_| bad("is not base64 (send the base64 of the signature file)"))?;
            String::from_utf8(raw).map_err(|_| bad("does not decode to text"))
        })
        .collect()
}

/// A provider's versions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginVersionList {
    /// Newest submission first; a pending version carries its permission diff.
    pub items: Vec<PluginVersionView>,
}

/// List a provider's versions in the plugin store.
#[utoipa::path(get, path = "/api/v1/plugins/{provider}/versions", tag = "plugins", operation_id = "listPluginVersions",
    params(("provider" = String, Path, description = "The provider id")),
    security(("bearer" = ["plugins.admin"])),
    responses(
        (status = 200, description = "The versions, newest first (none: an empty list)", body = PluginVersionList),
        ProblemResponses,
    ))]
pub async fn list_plugin_versions(
    admin: PluginsAdmin,
    State(state): State<AppState>,
    Path(provider): Path<String>,
) -> Result<Response, Problem> {
    let items = state.catalog.plugin_versions(&admin, &provider).await?;
    Ok(axum::Json(PluginVersionList { items }).into_response())
}

/// Get one version, with its permission diff while it is pending.
#[utoipa::path(get, path = "/api/v1/plugins/{provider}/versions/{version}", tag = "plugins",
    operation_id = "getPluginVersion",
    params(("provider" = String, Path, description = "The provider id"),
           ("version" = String, Path, description = "The version")),
    security(("bearer" = ["plugins.admin"])),
    responses(
        (status = 200, description = "The version", body = PluginVersionView),
        ProblemResponses,
    ))]
pub async fn get_plugin_version(
    admin: PluginsAdmin,
    State(state): State<AppState>,
    Path((provider, version)): Path<(String, String)>,
) -> Result<Response, Problem> {
    Ok(axum::Json(state.catalog.plugin_version(&admin, &provider, &version).await?).into_response())
}

/// An approval: the permissions digest the reviewer saw.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Approval {
    /// The version's `permissionsDigest`, as read with its permissions and diff.
    pub permissions_digest: String,
}

/// Approve a pending version, and make it active.
///
/// The body names the permissions digest the reviewer saw; a version whose permissions are not
/// exactly those is not approved (409 `plugin-conflict`).
#[utoipa::path(post, path = "/api/v1/plugins/{provider}/versions/{version}/approve", tag = "plugins",
    operation_id = "approvePluginVersion",
    params(("provider" = String, Path, description = "The provider id"),
           ("version" = String, Path, description = "The version")),
    request_body = Approval,
    security(("bearer" = ["plugins.admin"])),
    responses(
        (status = 200, description = "Approved and active", body = PluginVersionView),
        ProblemResponses,
    ))]
pub async fn approve_plugin_version(
    admin: PluginsAdmin,
    State(state): State<AppState>,
    Path((provider, version)): Path<(String, String)>,
    JsonBody(approval): JsonBody<Approval>,
) -> Result<Response, Problem> {
    let view = state.catalog.approve_plugin(&admin, &provider, &version, &approval.permissions_digest).await?;
    Ok(axum::Json(view).into_response())
}

/// A rejection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rejection {
    /// Why, for the record (1 to 1024 characters, not blank, no control characters).
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub reason: String,
}

/// Reject a pending version: it never runs.
#[utoipa::path(post, path = "/api/v1/plugins/{provider}/versions/{version}/reject", tag = "plugins",
    operation_id = "rejectPluginVersion",
    params(("provider" = String, Path, description = "The provider id"),
           ("version" = String, Path, description = "The version")),
    request_body = Rejection,
    security(("bearer" = ["plugins.admin"])),
    responses(
        (status = 200, description = "Rejected", body = PluginVersionView),
        ProblemResponses,
    ))]
pub async fn reject_plugin_version(
    admin: PluginsAdmin,
    State(state): State<AppState>,
    Path((provider, version)): Path<(String, String)>,
    JsonBody(rejection): JsonBody<Rejection>,
) -> Result<Response, Problem> {
    let view = state.catalog.reject_plugin(&admin, &provider, &version, &rejection.reason).await?;
    Ok(axum::Json(view).into_response())
}

/// Make an approved version the active one (a rollback, or forward again).
#[utoipa::path(post, path = "/api/v1/plugins/{provider}/versions/{version}/activate", tag = "plugins",
    operation_id = "activatePluginVersion",
    params(("provider" = String, Path, description = "The provider id"),
           ("version" = String, Path, description = "The version")),
    security(("bearer" = ["plugins.admin"])),
    responses(
        (status = 200, description = "Active", body = PluginVersionView),
        ProblemResponses,
    ))]
pub async fn activate_plugin_version(
    admin: PluginsAdmin,
    State(state): State<AppState>,
    Path((provider, version)): Path<(String, String)>,
) -> Result<Response, Problem> {
    Ok(axum::Json(state.catalog.activate_plugin(&admin, &provider, &version).await?).into_response())
}

/// The admission policy in effect.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginPolicy {
    /// The trusted keys, by id (`minisign:<key id>`, `cosign:<fingerprint>`).
    pub trusted_keys: Vec<String>,
    /// Whether a signature by a trusted key is required.
    pub require_signature: bool,
    /// Providers admitted unsigned by name.
    pub unsigned_exceptions: Vec<String>,
    /// `never` or `narrower-signed`.
    pub auto_approve: AutoApprove,
}

/// Read the admission policy: trusted keys, signatures required, exceptions, auto-approval.
#[utoipa::path(get, path = "/api/v1/plugin-policy", tag = "plugins", operation_id = "getPluginPolicy",
    security(("bearer" = ["plugins.admin"])),
    responses(
        (status = 200, description = "The policy", body = PluginPolicy),
        ProblemResponses,
    ))]
pub async fn get_plugin_policy(admin: PluginsAdmin, State(state): State<AppState>) -> Response {
    let policy = state.catalog.admission_policy(&admin);
    axum::Json(PluginPolicy {
        trusted_keys: policy.keys.iter().map(|k| k.id.clone()).collect(),
        require_signature: policy.require_signature,
        unsigned_exceptions: policy.unsigned_exceptions.iter().cloned().collect(),
        auto_approve: policy.auto_approve,
    })
    .into_response()
}

/// A page of the platform's audit trail.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginAuditPage {
    /// Entries, oldest first.
    pub items: Vec<PluginAuditEntry>,
    /// Pass as `after` to get the entries that follow.
    pub next_cursor: String,
}

/// Read the platform's audit trail: every submission, approval, rejection and activation,
/// hash-chained (`stella-integrations audit verify` checks it).
#[utoipa::path(get, path = "/api/v1/plugin-audit", tag = "plugins", operation_id = "listPluginAudit",
    params(SeqParams),
    security(("bearer" = ["plugins.admin"])),
    responses(
        (status = 200, description = "Entries, oldest first", body = PluginAuditPage),
        ProblemResponses,
    ))]
pub async fn list_plugin_audit(
    admin: PluginsAdmin,
    State(state): State<AppState>,
    QueryOf(params): QueryOf<SeqParams>,
) -> Result<Response, Problem> {
    let (after, limit) = params.parse()?;
    let items = state.catalog.plugin_audit(&admin, after, limit).await?;
    let next_cursor = items.last().map(|e| e.seq).unwrap_or(after).to_string();
    Ok(axum::Json(PluginAuditPage { items, next_cursor }).into_response())
}
