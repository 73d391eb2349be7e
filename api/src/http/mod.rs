//! The HTTP API: routes, the middleware every request passes through, and the OpenAPI document.
//!
//! Every route is registered through [`routes`] with its `#[utoipa::path]` annotation, so the
//! served OpenAPI document lists exactly the routes the router serves; the route × scope × tenant
//! test (`api/tests/api/http.rs`) walks that document, so a route added without a rule fails it.

// A `Problem` is large (it carries the problem's extension members), and it is built only on the
// error path, where one move of ~200 bytes does not matter; boxing it would clutter every handler.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Verifier;
use stella_runtime::ConnectorCatalog;

use crate::service::Catalog;

pub mod bulk;
pub mod events;
pub mod extract;
pub mod integrations;
pub mod invocations;
pub mod ops;
pub mod plugins;
pub mod problem;
pub mod switches;

use problem::{PROBLEM_JSON, Problem, ProblemKind};
use switches::{Feature, is_off};

/// The header that carries the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// What handlers share.
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppParts>);

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct AppParts {
    /// The catalog's operations.
    pub catalog: Catalog,
    /// Verifies bearer tokens.
    pub verifier: Verifier,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// The served documents, for the connectors they were rendered from.
    documents: std::sync::RwLock<Documents>,
}

/// The OpenAPI document (JSON) and the reference page rendered from it, which name the providers
/// of the connectors served: rendered again when the active set changes.
#[derive(Debug)]
struct Documents {
    rendered_for: Arc<ConnectorCatalog>,
    document: Arc<String>,
    reference: Arc<String>,
}

impl Documents {
    fn render(connectors: Arc<ConnectorCatalog>) -> Self {
        let doc = served_openapi(&connectors);
        let reference = reference::render(&doc);
        let document = serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes");
        Self { rendered_for: connectors, document: Arc::new(document), reference: Arc::new(reference) }
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl AppState {
    /// State over these parts.
    pub fn new(catalog: Catalog, verifier: Verifier, max_body_bytes: usize) -> Self {
        let documents = std::sync::RwLock::new(Documents::render(catalog.connectors()));
        Self(Arc::new(AppParts { catalog, verifier, max_body_bytes, documents }))
    }

    /// The served OpenAPI document (JSON) and reference page, for the connectors served now.
    pub fn documents(&self) -> (Arc<String>, Arc<String>) {
        let connectors = self.catalog.connectors();
        {
            let current = self.documents.read().unwrap_or_else(|e| e.into_inner());
            if Arc::ptr_eq(&current.rendered_for, &connectors) {
                return (current.document.clone(), current.reference.clone());
            }
        }
        let rendered = Documents::render(connectors);
        let answer = (rendered.document.clone(), rendered.reference.clone());
        *self.documents.write().unwrap_or_else(|e| e.into_inner()) = rendered;
        answer
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "StellaOps Integration Catalog",
        description = "Registers, tests and watches an organisation's connections to container registries, source hosts, CI systems, runtime hosts and vulnerability feeds. Every connector runs as a WebAssembly component in a sandbox.\n\nAuthenticate with a bearer JWT carrying `integrations.read` or `integrations.admin` and a tenant; the plugin store's routes need the platform-wide `plugins.admin`. Errors are `application/problem+json` (RFC 9457).",
        license(name = "Apache-2.0"),
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "integrations", description = "Integrations: create, read, change, delete, audit"),
        (name = "lifecycle", description = "Activate, test, pause and resume"),
        (name = "plugins", description = "The loaded connectors and what they may do; the plugin store: submit, review, approve, reject and activate connector code (`plugins.admin`)"),
        (name = "invocations", description = "The invocation ledger: what every connector did (`integrations.audit`, or `plugins.admin` across tenants)"),
        (name = "events", description = "Lifecycle events (the outbox)"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        scheme.description = Some(
            "A JWT (HS256 with the local key, or RS256/ES256 from the configured JWKS) whose `scope` claim holds `integrations.read`, `integrations.admin`, `integrations.audit` and/or `plugins.admin` and whose tenant claim names the tenant.".into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Every route, with its OpenAPI description.
pub fn routes() -> OpenApiRouter<AppState> {
    use integrations as i;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(i::list_integrations, i::create_integration))
        .routes(routes!(bulk::export_integrations))
        .routes(routes!(bulk::import_integrations))
        .routes(routes!(i::get_integration, i::update_integration, i::delete_integration))
        .routes(routes!(i::test_integration))
        .routes(routes!(i::activate_integration))
        .routes(routes!(i::pause_integration))
        .routes(routes!(i::resume_integration))
        .routes(routes!(i::get_health))
        .routes(routes!(i::get_audit))
        .routes(routes!(i::get_latest_test))
        .routes(routes!(plugins::list_plugins, plugins::submit_plugin))
        .routes(routes!(plugins::get_plugin))
        .routes(routes!(plugins::pull_plugin))
        .routes(routes!(plugins::list_plugin_versions))
        .routes(routes!(plugins::get_plugin_version))
        .routes(routes!(plugins::approve_plugin_version))
        .routes(routes!(plugins::reject_plugin_version))
        .routes(routes!(plugins::activate_plugin_version))
        .routes(routes!(plugins::get_plugin_policy))
        .routes(routes!(plugins::list_plugin_audit))
        .routes(routes!(invocations::list_invocations))
        .routes(routes!(invocations::export_invocations))
        .routes(routes!(invocations::get_invocation))
        .routes(routes!(invocations::get_egress_report))
        .routes(routes!(events::list_events))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi_json))
        .routes(routes!(ops::reference_page))
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// A tag: not blank, no control characters (the rule of `domain::IntegrationSpec::validate`).
const TAG_PATTERN: &str =
    r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

/// The document a running service serves: [`openapi`] plus what only the running service knows
/// (the providers it loaded) and what the derive cannot say (constraints on tag items).
pub fn served_openapi(connectors: &ConnectorCatalog) -> serde_json::Value {
    let mut doc = serde_json::to_value(openapi()).expect("the OpenAPI document serializes");
    let providers: Vec<&str> = connectors.iter().map(|c| c.provider()).collect();
    // Each provider with the types its connector serves: a body that pairs them otherwise is
    // refused (422), so the document says so.
    let pairs: Vec<serde_json::Value> = connectors
        .iter()
        .map(|c| {
            serde_json::json!({"properties": {
                "provider": {"const": c.provider()},
                "type": {"enum": c.manifest().connector.types},
            }})
        })
        .collect();
    let spec = &mut doc["components"]["schemas"]["IntegrationSpec"];
    spec["properties"]["provider"]["enum"] = serde_json::json!(providers);
    spec["properties"]["tags"]["items"] =
        serde_json::json!({"type": "string", "minLength": 1, "maxLength": 256, "pattern": TAG_PATTERN});
    spec["anyOf"] = serde_json::json!(pairs);
    doc
}

mod reference;

/// The service: every route of the API and the `pages` served beside it (the console's), behind
/// the request middleware.
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    let (router, _) = routes().split_for_parts();
    let max_body = state.max_body_bytes;
    let mut router = router.merge(pages).fallback(ops::not_found);
    // Every layer is always there, except in a benchmark build told to leave one out (`switches`).
    if !is_off(Feature::Problems) {
        router = router.layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_problem));
    }
    if [Feature::Problems, Feature::Metrics, Feature::Tracing].iter().any(|f| !is_off(*f)) {
        router = router.layer(ObserveLayer(state.clone()));
    }
    router.layer(DefaultBodyLimit::max(max_body)).with_state(state)
}

/// Puts [`observe`] around every route. A hand-written layer rather than axum's
/// `middleware::from_fn`, which per request boxes the rest of the stack into a `Next` and splits
/// and rejoins the request for its extractors: a few allocations and copies on every request.
#[derive(Clone)]
struct ObserveLayer(AppState);

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner, state: self.0.clone() }
    }
}

/// A route with [`observe`] around it.
#[derive(Clone)]
struct Observe<S> {
    inner: S,
    state: AppState,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The service that was polled ready answers; a clone stays for the next request.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move { Ok(observe(&state, request, ready).await) })
    }
}

/// Gives the request an id, logs and counts it, and turns any error response that is not yet a
/// problem (axum's own 405, a failed extractor) into one.
async fn observe<S>(state: &AppState, request: Request, mut inner: S) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    let problems = !is_off(Feature::Problems);
    let request_id = match problems {
        false => String::new(),
        true => request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(new_request_id, str::to_string),
    };
    let method = request.method().clone();
    // The matched route is shared (an `Arc<str>` inside), not copied per request.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let span = match is_off(Feature::Tracing) {
        false => tracing::info_span!("request", request_id = %request_id, method = %method, route = %route),
        true => tracing::Span::none(),
    };
    let mut response = match inner.call(request).instrument(span.clone()).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    if problems {
        // The console answers its errors as pages of its own.
        if (status.is_client_error() || status.is_server_error()) && !is_problem(&response) && !is_html(&response) {
            response = as_problem(response).await;
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, v);
        }
    }
    let elapsed = started.elapsed();
    if !is_off(Feature::Metrics) {
        state.catalog.metrics().record_request(method.as_str(), route, status.as_u16(), elapsed);
    }
    if !is_off(Feature::Tracing) {
        span.in_scope(|| {
            tracing::info!(status = status.as_u16(), elapsed_ms = elapsed.as_secs_f64() * 1000.0, "answered");
        });
    }
    response
}

/// A request id unique across processes without a random draw per request: a random prefix per
/// process and a counter.
fn new_request_id() -> String {
    static PREFIX: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_string());
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!("{}-{:x}", *PREFIX, NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// A handler that panicked (a bug) answers 500 problem+json instead of dropping the connection.
fn panic_problem(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = %message, "a request handler panicked");
    Problem::new(ProblemKind::Internal, "an internal error occurred; it has been logged").into_response()
}

fn is_html(response: &Response) -> bool {
    response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
}

fn is_problem(response: &Response) -> bool {
    response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

async fn as_problem(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let kind = match parts.status.as_u16() {
        401 => ProblemKind::Unauthenticated,
        403 => ProblemKind::Forbidden,
        404 => ProblemKind::NotFound,
        405 => ProblemKind::MethodNotAllowed,
        413 => ProblemKind::PayloadTooLarge,
        415 => ProblemKind::UnsupportedMediaType,
        422 => ProblemKind::Validation,
        s if s >= 500 => ProblemKind::Internal,
        _ => ProblemKind::BadRequest,
    };
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let detail = if text.is_empty() { kind.describe().2.to_string() } else { text };
    let mut problem = Problem::new(kind, detail);
    problem.status = parts.status.as_u16();
    let mut response = problem.into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        response.headers_mut().insert(header::ALLOW, allow.clone());
    }
    response
}
