//! The web console: server-rendered HTML for operators and security teams, from the same binary.
//!
//! It is another door to the same operations as the API, never a second path to the data: each
//! page calls [`crate::service::Catalog`] with the signed-in session's caller and scopes, so
//! tenancy, scopes and the 404 rule are the API's by construction. No JavaScript is needed (one
//! first-party script shows times in the viewer's time zone), nothing is loaded from elsewhere,
//! and every answer carries a strict Content-Security-Policy.
//!
//! - [`crate::identity::session`]: what a sign-in is (its secret, its CSRF token);
//! - `pages.rs`: the HTML of each page;
//! - this file: the routes, the session cookie, and the security headers.

pub mod oidc;
mod pages;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::config::ConsoleConfig;
use crate::http::AppState;
use crate::identity::session::{self, ConsoleSession};
use crate::identity::{Admin, Auditor, ConnectorsReader, Grant, PluginsAdmin, Reader};
use crate::lifecycle::Action;
use crate::query::{InvocationParams, ListParams, Page, PageRequest, QueryError};
use crate::service::ServiceError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "stella_console";

/// The console as the service runs it: its settings and its identity provider.
#[derive(Debug)]
pub struct Console {
    /// The settings.
    pub config: ConsoleConfig,
    /// The identity provider, when one is configured.
    idp: Option<oidc::IdentityProvider>,
}

impl Console {
    /// The console of `config`; ID tokens name the tenant in `tenant_claim`, as bearer tokens do.
    pub fn new(config: ConsoleConfig, tenant_claim: &str) -> Self {
        let idp = config.oidc.clone().map(|oidc| {
            let public = config.public_url.clone().unwrap_or_default();
            let redirect_uri = format!("{}{CALLBACK_PATH}", public.trim_end_matches('/'));
            oidc::IdentityProvider::new(oidc, redirect_uri, tenant_claim.to_string())
        });
        Self { config, idp }
    }

    /// The identity provider's issuer, when one is configured.
    pub fn provider(&self) -> Option<&str> {
        self.idp.as_ref().map(oidc::IdentityProvider::issuer)
    }
}

/// Where the identity provider sends the browser back.
pub const CALLBACK_PATH: &str = "/console/auth/callback";
/// The cookie of a sign-in under way (state, nonce, PKCE verifier).
const PENDING_COOKIE: &str = "stella_console_signin";

/// What the console's pages share: the API's state (the same catalog, the same verifier) and the
/// console's own settings and identity provider.
#[derive(Clone, Debug)]
struct ConsoleState {
    api: AppState,
    console: Arc<Console>,
}

impl std::ops::Deref for ConsoleState {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.api
    }
}

/// The console's routes over the API's state (none when it is disabled), to be served by the
/// API's router.
pub fn routes(console: Console, api: AppState) -> Router<AppState> {
    if !console.config.enabled {
        return Router::new();
    }
    let state = ConsoleState { api, console: Arc::new(console) };
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(integrations_page))
        .route("/console/integrations/new", get(new_integration_page))
        .route("/console/integrations", post(create_integration))
        .route("/console/integrations/{id}", get(integration_page))
        .route("/console/integrations/{id}/{action}", post(integration_action))
        .route("/console/connectors", get(connectors_page))
        .route("/console/connectors/{provider}", get(connector_page))
        .route("/console/connectors/{provider}/versions/{version}/{decision}", post(decide_version))
        .route("/console/invocations", get(invocations_page))
        .route("/console/invocations/{id}", get(invocation_page))
        .route("/console/sign-in", get(sign_in_page))
        .route("/console/sign-in/link", get(sign_in_with_link))
        .route("/console/auth/start", get(start_sign_in))
        .route(CALLBACK_PATH, get(finish_sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/console.js", get(script))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// The headers of every console answer: a strict CSP (first-party styles and script only, no
/// framing, forms only to itself), no sniffing, no referrer to other sites, no caching of pages.
/// (`same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null` with the
/// console's own forms, and [`posted_from_here`] could not tell them from a forged one.)
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

async fn stylesheet() -> Response {
    let css = include_str!("assets/console.css");
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], css).into_response()
}

async fn script() -> Response {
    let js = include_str!("assets/console.js");
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], js)
        .into_response()
}

/// The value of the session cookie, if the request carries one.
fn session_secret(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
}

/// The value of the cookie `name`, if the request carries one.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_string())
}

/// The session cookie: HttpOnly, SameSite=Strict, `Secure` behind TLS, for the console's paths.
fn session_cookie(config: &ConsoleConfig, secret: &str, max_age: Duration) -> HeaderValue {
    let secure = if config.secure_cookies() { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&cookie).expect("a session cookie is a valid header value")
}

/// Why a page cannot be shown.
enum PageError {
    /// Not signed in (or the session ended): to the sign-in page.
    SignIn,
    /// The session lacks a scope the page needs.
    Forbidden(&'static str),
    /// The operation failed.
    Service(ServiceError),
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        Self::Service(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => Redirect::to("/console/sign-in").into_response(),
            Self::Forbidden(scope) => (
                StatusCode::FORBIDDEN,
                Html(pages::message("Not allowed", &format!("Your sign-in lacks the `{scope}` scope for this page."))),
            )
                .into_response(),
            Self::Service(e) => {
                let status = crate::http::problem::Problem::from(e).status;
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let text = if status.is_server_error() {
                    "The catalog could not answer; the error has been logged.".to_string()
                } else {
                    status.canonical_reason().unwrap_or("Error").to_string()
                };
                (status, Html(pages::message("Something went wrong", &text))).into_response()
            }
        }
    }
}

/// The signed-in session of a request.
async fn session_of(state: &ConsoleState, headers: &HeaderMap) -> Result<ConsoleSession, PageError> {
    let secret = session_secret(headers).ok_or(PageError::SignIn)?;
    state.catalog.console_session(&secret).await?.ok_or(PageError::SignIn)
}

/// The signed-in session of a request, with the grant a page needs (the same grant the API's
/// route for the same operation takes).
async fn signed_in<G: Grant>(state: &ConsoleState, headers: &HeaderMap) -> Result<(ConsoleSession, G), PageError> {
    let session = session_of(state, headers).await?;
    let grant = session.principal.grant::<G>().map_err(|_| PageError::Forbidden(G::SCOPE))?;
    Ok((session, grant))
}

async fn integrations_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(fields): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (session, reader) = signed_in::<Reader>(&state, &headers).await?;
    // The API's own reading of the same parameters: what it refuses, the page refuses (and says).
    let (values, query) = read_form::<ListParams>(&fields);
    let query = query.and_then(|mut params| {
        params.limit.get_or_insert(pages::PAGE_ROWS);
        params.parse()
    });
    let counts = state.catalog.state_counts(&reader).await?;
    let (page, error) = match query {
        Ok(query) => (state.catalog.list(&reader, &query).await?, None),
        Err(e) => (Page { items: Vec::new(), next_cursor: None }, Some(e.message)),
    };
    let ids: Vec<uuid::Uuid> = page.items.iter().map(|i| i.integration_id).collect();
    let uptime = state.catalog.uptime_24h(&reader, &ids).await?;
    let next = page.next_cursor.as_deref();
    let html = pages::integrations(&session, &values, &counts, &page.items, &uptime, next, error.as_deref());
    Ok((status_of(&error), Html(html)).into_response())
}

/// A form's fields (blank ones left out, to show again), and the parameters they are: read by
/// the one reading the API uses ([`crate::query`]).
fn read_form<T: serde::de::DeserializeOwned>(
    fields: &[(String, String)],
) -> (pages::FormValues, Result<T, QueryError>) {
    let values = fields.iter().map(|(k, v)| (k.clone(), v.trim().to_string())).filter(|(_, v)| !v.is_empty());
    (values.collect(), crate::query::read(&crate::query::without_blanks(fields)))
}

/// A page that shows a refused query is a 400, as the API's answer would be.
fn status_of(error: &Option<String>) -> StatusCode {
    if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK }
}

async fn sign_in_page(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    // Signed in already: straight to the console.
    if let Some(secret) = session_secret(&headers)
        && let Ok(Some(_)) = state.catalog.console_session(&secret).await
    {
        return Redirect::to("/console/").into_response();
    }
    Html(pages::sign_in(&state.console, None)).into_response()
}

#[derive(Debug, Deserialize)]
struct LinkParams {
    token: String,
}

/// A one-time link (`stella-integrations console-link`): spent, then a session.
async fn sign_in_with_link(State(state): State<ConsoleState>, Query(params): Query<LinkParams>) -> Response {
    let refused =
        |why: &str| (StatusCode::UNAUTHORIZED, Html(pages::sign_in(&state.console, Some(why)))).into_response();
    let link = match state.verifier.verify_sign_in_link(&params.token).await {
        Ok(link) => link,
        Err(e) => return refused(&e.to_string()),
    };
    let ttl = state.console.config.session_ttl();
    match state.catalog.open_console_session_with_link(link, ttl).await {
        Ok(Some((secret, _))) => signed_in_answer(&state.console.config, &secret, ttl),
        Ok(None) => refused("this sign-in link was used already: ask for a new one"),
        Err(e) => PageError::Service(e).into_response(),
    }
}

/// Sets the session cookie and moves on to the console with a page of its own: a navigation
/// that begins on another site (the identity provider, a terminal) does not carry a
/// SameSite=Strict cookie, one that begins on this page does.
fn signed_in_answer(config: &ConsoleConfig, secret: &str, ttl: Duration) -> Response {
    let mut response = Html(pages::continue_to("/console/")).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(config, secret, ttl));
    response
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn sign_out(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    form: Result<axum::Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    // Signing out needs no scope, only the session.
    let session = session_of(&state, &headers).await?;
    if with_token(&state, &headers, &session, form, |f| &f.csrf).is_none() {
        return Ok(csrf_refused());
    }
    if let Some(secret) = session_secret(&headers) {
        state.catalog.close_console_session(&secret).await?;
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&state.console.config, "", Duration::ZERO));
    Ok(response)
}

/// A form's fields, if it carries the session's token (CSRF); `None` for a form without it, or
/// one that does not parse, which the caller answers with [`csrf_refused`].
/// Also refuses a form posted from another origin (see [`posted_from_here`]), whatever it carries.
fn with_token<T>(
    state: &ConsoleState,
    headers: &HeaderMap,
    session: &ConsoleSession,
    form: Result<axum::Form<T>, axum::extract::rejection::FormRejection>,
    token: impl Fn(&T) -> &str,
) -> Option<T> {
    if !posted_from_here(&state.console.config, headers) {
        return None;
    }
    let axum::Form(form) = form.ok()?;
    session::csrf_matches(session, token(&form)).then_some(form)
}

/// Whether a form was posted from the console's own pages, as far as the browser says: its
/// `Origin` (or, without one, its `Referer`) must be the console's origin, `console.public-url`'s
/// or else the request's own host's. A browser sends one of them with every form it posts; a
/// request with neither is not a browser's and is left to the form token and the SameSite cookie
/// (this check is defence in depth beside them). An opaque origin (`null`) is refused.
fn posted_from_here(config: &ConsoleConfig, headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
    let claimed = match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => origin.to_string(),
        (None, Some(referer)) => match url::Url::parse(referer) {
            Ok(url) => url.origin().ascii_serialization(),
            Err(_) => return false,
        },
        (None, None) => return true,
    };
    match &config.public_url {
        Some(public) => url::Url::parse(public).is_ok_and(|u| u.origin().ascii_serialization() == claimed),
        // Behind a proxy that terminates TLS, the scheme the browser used is not known here.
        None => text(header::HOST).is_some_and(|host| {
            claimed.eq_ignore_ascii_case(&format!("http://{host}"))
                || claimed.eq_ignore_ascii_case(&format!("https://{host}"))
        }),
    }
}

/// A form without the session's token, or posted from another site (a forged cross-site request,
/// or a stale page).
fn csrf_refused() -> Response {
    let text = "This form did not carry this session's token or did not come from this console's pages (it may \
                be stale): reload the page and try again.";
    (StatusCode::FORBIDDEN, Html(pages::message("Form refused", text))).into_response()
}

/// Begins a sign-in at the identity provider: a pending sign-in in a short-lived cookie (Lax, so
/// it comes back with the provider's redirect), and the browser sent to the provider.
async fn start_sign_in(State(state): State<ConsoleState>) -> Response {
    let Some(idp) = &state.console.idp else {
        return (
            StatusCode::NOT_FOUND,
            Html(pages::sign_in(&state.console, Some("no identity provider is configured"))),
        )
            .into_response();
    };
    let pending = oidc::PendingSignIn::new();
    let url = match idp.authorization_url(&pending).await {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(error = e.logged(), "a console sign-in could not begin");
            let why = "the identity provider cannot be reached; try again later";
            return (StatusCode::BAD_GATEWAY, Html(pages::sign_in(&state.console, Some(why)))).into_response();
        }
    };
    let mut response = Redirect::to(&url).into_response();
    let cookie = pending_cookie(&state.console.config, &pending.to_cookie(), Duration::from_secs(600));
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

#[derive(Debug, Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's answer: the state checked against this browser's pending sign-in, the code
/// redeemed, the ID token verified, and a session opened.
async fn finish_sign_in(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let refused = |why: &str| {
        let mut response = (StatusCode::UNAUTHORIZED, Html(pages::sign_in(&state.console, Some(why)))).into_response();
        response.headers_mut().insert(header::SET_COOKIE, pending_cookie(&state.console.config, "", Duration::ZERO));
        response
    };
    let Some(idp) = &state.console.idp else { return refused("no identity provider is configured") };
    if let Some(error) = &params.error {
        // Anyone can send a browser here with any text: the description is logged, and only an
        // error code of OAuth's form (RFC 6749 §4.1.2.1) is shown.
        let description = params.error_description.as_deref().unwrap_or("");
        tracing::warn!(error, description, "the identity provider refused a console sign-in");
        let code = error.len() <= 64 && !error.is_empty() && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        let shown = if code {
            format!("the identity provider refused the sign-in (`{error}`)")
        } else {
            "the identity provider refused the sign-in".to_string()
        };
        return refused(&shown);
    }
    let pending = cookie_value(&headers, PENDING_COOKIE).and_then(|v| oidc::PendingSignIn::from_cookie(&v));
    let (Some(pending), Some(code), Some(returned)) = (pending, params.code, params.state) else {
        return refused("this sign-in was not begun in this browser, or took too long: sign in again");
    };
    if !session::csrf_matches_secret(&pending.state, &returned) {
        return refused("this answer is not for the sign-in this browser began: sign in again");
    }
    let principal = match idp.finish(&pending, &code).await {
        Ok(principal) => principal,
        Err(e) => {
            tracing::warn!(error = e.logged(), "a console sign-in was refused");
            return refused(e.shown());
        }
    };
    let ttl = state.console.config.session_ttl();
    match state.catalog.open_console_session(principal, ttl).await {
        Ok((secret, _)) => {
            let mut response = signed_in_answer(&state.console.config, &secret, ttl);
            response
                .headers_mut()
                .append(header::SET_COOKIE, pending_cookie(&state.console.config, "", Duration::ZERO));
            response
        }
        Err(e) => PageError::Service(e).into_response(),
    }
}

/// The pending sign-in's cookie: HttpOnly, SameSite=Lax (it must come back with the provider's
/// redirect, a navigation from another site), only for the sign-in's paths.
fn pending_cookie(config: &ConsoleConfig, value: &str, max_age: Duration) -> HeaderValue {
    let secure = if config.secure_cookies() { "; Secure" } else { "" };
    let cookie = format!(
        "{PENDING_COOKIE}={value}; Path=/console/auth; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&cookie).expect("a sign-in cookie is a valid header value")
}

/// An error of an operation as the page shows it: its status, and what the API's problem says
/// (the same rules and the same words as the API).
fn problem_of(e: ServiceError) -> (StatusCode, String) {
    let problem = crate::http::problem::Problem::from(e);
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut text = problem.detail;
    for field in problem.errors {
        text.push_str(&format!("; {}: {}", field.field, field.message));
    }
    (status, text)
}

/// What one integration's page shows (read anew for every answer).
async fn integration_view(
    state: &ConsoleState,
    reader: &Reader,
    id: uuid::Uuid,
) -> Result<pages::IntegrationView, PageError> {
    let integration = state.catalog.get(reader, id).await?;
    let report = state.catalog.health_report(reader, id, &PageRequest::first(pages::HISTORY_ROWS)).await?;
    let audit = state.catalog.audit(reader, id, 0, pages::AUDIT_ROWS).await?.items;
    Ok(pages::IntegrationView { integration, report, audit })
}

async fn integration_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    let (session, reader) = signed_in::<Reader>(&state, &headers).await?;
    // Not an id, or another tenant's: the same 404 as the API's.
    let id = uuid::Uuid::parse_str(&id).map_err(|_| PageError::Service(ServiceError::NotFound))?;
    let view = integration_view(&state, &reader, id).await?;
    Ok(Html(pages::integration(&session, &view, None)).into_response())
}

/// A lifecycle action's form: the session's token, and a pause's reason and ticket.
#[derive(Debug, Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    reason: Option<String>,
    ticket: Option<String>,
}

/// `activate`, `test`, `pause` or `resume`, as the API does them; then the page again (with the
/// API's error when the action was refused).
async fn integration_action(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    axum::extract::Path((id, action)): axum::extract::Path<(String, String)>,
    form: Result<axum::Form<ActionForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let (session, admin) = signed_in::<Admin>(&state, &headers).await?;
    let Some(form) = with_token(&state, &headers, &session, form, |f| &f.csrf) else { return Ok(csrf_refused()) };
    let id = uuid::Uuid::parse_str(&id).map_err(|_| PageError::Service(ServiceError::NotFound))?;
    let catalog = &state.catalog;
    let Some(action) = Action::parse(&action) else { return Err(PageError::Service(ServiceError::NotFound)) };
    let done = match action {
        Action::Activate => catalog.activate(&admin, id).await.map(|_| ()),
        Action::Test => catalog.test(&admin, id).await.map(|_| ()),
        Action::Pause => {
            let reason = form.reason.unwrap_or_default();
            let ticket = form.ticket.filter(|t| !t.trim().is_empty());
            catalog.pause(&admin, id, reason, ticket).await.map(|_| ())
        }
        Action::Resume => catalog.resume(&admin, id).await.map(|_| ()),
    };
    match done {
        // After a change, the page is read again (a reload does not repeat the action).
        Ok(()) => Ok(Redirect::to(&format!("/console/integrations/{id}")).into_response()),
        Err(ServiceError::NotFound) => Err(PageError::Service(ServiceError::NotFound)),
        Err(e) => {
            let (status, text) = problem_of(e);
            let view = integration_view(&state, &admin.reader(), id).await?;
            Ok((status, Html(pages::integration(&session, &view, Some(&text)))).into_response())
        }
    }
}

async fn new_integration_page(State(state): State<ConsoleState>, headers: HeaderMap) -> Result<Response, PageError> {
    let (session, _) = signed_in::<Admin>(&state, &headers).await?;
    let providers = providers(&state);
    Ok(Html(pages::new_integration(&session, &providers, &pages::NewIntegration::default(), None)).into_response())
}

/// The providers of the connectors loaded now, with their types.
fn providers(state: &ConsoleState) -> Vec<(String, Vec<String>)> {
    state
        .catalog
        .connectors()
        .iter()
        .map(|c| {
            let types = c.manifest().connector.types.iter().map(|t| t.as_str().to_string()).collect();
            (c.provider().to_string(), types)
        })
        .collect()
}

/// Creates an integration from the form, as `POST /api/v1/integrations` does from JSON.
async fn create_integration(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    form: Result<axum::Form<pages::NewIntegration>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let (session, admin) = signed_in::<Admin>(&state, &headers).await?;
    let Some(form) = with_token(&state, &headers, &session, form, |f| &f.csrf) else { return Ok(csrf_refused()) };
    let refused = |status: StatusCode, text: &str, form: &pages::NewIntegration| {
        (status, Html(pages::new_integration(&session, &providers(&state), form, Some(text)))).into_response()
    };
    let configuration: serde_json::Value = match form.configuration.trim() {
        "" => serde_json::json!({}),
        text => match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Ok(refused(StatusCode::UNPROCESSABLE_ENTITY, &format!("configuration: {e}"), &form)),
        },
    };
    let optional = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let tags: Vec<String> = form.tags.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
    let document = serde_json::json!({
        "name": form.name.trim(),
        "type": form.integration_type,
        "provider": form.provider,
        "baseUrl": optional(&form.base_url),
        "authRef": optional(&form.auth_ref),
        "environment": optional(&form.environment),
        "description": optional(&form.description),
        "tags": tags,
        "configuration": configuration,
    });
    // The API's own reading of a body, so the console accepts exactly what the API does.
    let bytes = document.to_string().into_bytes();
    let spec: crate::domain::IntegrationSpec = match crate::domain::read_json(&bytes) {
        Ok(spec) => spec,
        Err(e) => return Ok(refused(StatusCode::UNPROCESSABLE_ENTITY, &format!("{}: {}", e.field, e.message), &form)),
    };
    match state.catalog.create(&admin, spec).await {
        Ok(created) => Ok(Redirect::to(&format!("/console/integrations/{}", created.integration_id)).into_response()),
        Err(e) => {
            let (status, text) = problem_of(e);
            Ok(refused(status, &text, &form))
        }
    }
}

async fn invocations_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(fields): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (session, auditor) = signed_in::<Auditor>(&state, &headers).await?;
    let (values, query) = read_form::<InvocationParams>(&fields);
    let (page, error) = match query.and_then(InvocationParams::parse) {
        Ok(query) => (state.catalog.invocations(&auditor, &query).await?, None),
        Err(e) => (Page { items: Vec::new(), next_cursor: None }, Some(e.message)),
    };
    let html = pages::invocations(&session, &values, &page.items, page.next_cursor.as_deref(), error.as_deref());
    Ok((status_of(&error), Html(html)).into_response())
}

async fn invocation_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    let (session, auditor) = signed_in::<Auditor>(&state, &headers).await?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| PageError::Service(ServiceError::InvocationNotFound))?;
    let entry = state.catalog.invocation(&auditor, id).await?;
    Ok(Html(pages::invocation(&session, &entry)).into_response())
}

/// Every loaded connector, and (for `plugins.admin`) every version waiting for a decision.
async fn connectors_page(State(state): State<ConsoleState>, headers: HeaderMap) -> Result<Response, PageError> {
    let (session, reader) = signed_in::<ConnectorsReader>(&state, &headers).await?;
    let connectors = state.catalog.loaded_connectors(&reader);
    let loaded: Vec<_> = connectors.iter().map(|c| crate::http::plugins::describe(&state, c)).collect();
    let pending = match session.principal.grant::<PluginsAdmin>() {
        Ok(admin) => Some(state.catalog.pending_plugins(&admin).await?),
        Err(_) => None,
    };
    let signers = state.catalog.active_signers(&reader).await?;
    Ok(Html(pages::connectors(&session, &loaded, &signers, connectors.failures(), pending.as_deref())).into_response())
}

/// One connector: what it may do, its stored versions (for `plugins.admin`, with the decisions
/// to take), and its egress report (for whoever reads the ledger).
async fn connector_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    axum::extract::Path(provider): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    let session = session_of(&state, &headers).await?;
    render_connector(&state, &session, &provider, None).await
}

async fn render_connector(
    state: &ConsoleState,
    session: &ConsoleSession,
    provider: &str,
    error: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let principal = &session.principal;
    let reader = principal.grant::<ConnectorsReader>().map_err(|_| PageError::Forbidden(ConnectorsReader::SCOPE))?;
    let connectors = state.catalog.loaded_connectors(&reader);
    let loaded = connectors.get(provider).map(|c| crate::http::plugins::describe(state, c));
    let versions = match principal.grant::<PluginsAdmin>() {
        Ok(admin) => Some(state.catalog.plugin_versions(&admin, provider).await?),
        Err(_) => None,
    };
    if loaded.is_none() && versions.as_ref().is_none_or(|v| v.is_empty()) {
        return Err(PageError::Service(ServiceError::NotFound));
    }
    let report = match principal.grant::<Auditor>() {
        Ok(auditor) => {
            let since = crate::domain::unix_ms(crate::domain::now()) - 7 * 24 * 3600 * 1000;
            Some(state.catalog.egress_report(&auditor, provider, since).await?)
        }
        Err(_) => None,
    };
    let (status, text) = match error {
        Some((status, text)) => (status, Some(text)),
        None => (StatusCode::OK, None),
    };
    let html =
        pages::connector(session, provider, loaded.as_ref(), versions.as_deref(), report.as_ref(), text.as_deref());
    Ok((status, Html(html)).into_response())
}

/// A reviewer's decision on a pending version.
#[derive(Debug, Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf: String,
    digest: Option<String>,
    reason: Option<String>,
}

/// Approves (of exactly the permissions shown: their digest) or rejects (with a reason) a
/// version, as the API does; then the connector's page again.
async fn decide_version(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    axum::extract::Path((provider, version, decision)): axum::extract::Path<(String, String, String)>,
    form: Result<axum::Form<DecisionForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let (session, admin) = signed_in::<PluginsAdmin>(&state, &headers).await?;
    let Some(form) = with_token(&state, &headers, &session, form, |f| &f.csrf) else { return Ok(csrf_refused()) };
    let done = match decision.as_str() {
        "approve" => {
            let digest = form.digest.unwrap_or_default();
            state.catalog.approve_plugin(&admin, &provider, &version, &digest).await.map(|_| ())
        }
        "reject" => {
            let reason = form.reason.unwrap_or_default();
            state.catalog.reject_plugin(&admin, &provider, &version, &reason).await.map(|_| ())
        }
        _ => Err(ServiceError::NotFound),
    };
    match done {
        Ok(()) => Ok(Redirect::to(&format!("/console/connectors/{provider}")).into_response()),
        Err(e) => {
            let error = problem_of(e);
            render_connector(&state, &session, &provider, Some(error)).await
        }
    }
}
