//! The web console: server-rendered HTML for operators and security teams, from the same binary.
//!
//! It is another door to the same operations as the API, never a second path to the data: each
//! page calls [`crate::service::Catalog`] with the signed-in session's caller and scopes, so
//! tenancy, scopes and the 404 rule are the API's by construction. No JavaScript is needed (one
//! first-party script shows times in the viewer's time zone), nothing is loaded from elsewhere,
//! and every answer carries a strict Content-Security-Policy.
//!
//! - [`crate::identity::session`]: what a sign-in is (its secret, its CSRF token);
//! - `integrations.rs`, `connectors.rs`, `invocations.rs`, `sign_in.rs`: each page area, its
//!   handlers and its markup; `layout.rs`: what the pages share;
//! - this file: the routes, the session cookie, and the security headers.

mod connectors;
mod integrations;
mod invocations;
mod layout;
pub mod oidc;
mod sign_in;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::config::ConsoleConfig;
use crate::http::AppState;
use crate::identity::Grant;
use crate::identity::session::{self, ConsoleSession};
use crate::query::QueryError;
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
        .route("/console/", get(integrations::integrations_page))
        .route("/console/integrations/new", get(integrations::new_integration_page))
        .route("/console/integrations", post(integrations::create_integration))
        .route("/console/integrations/{id}", get(integrations::integration_page))
        .route("/console/integrations/{id}/{action}", post(integrations::integration_action))
        .route("/console/connectors", get(connectors::connectors_page))
        .route("/console/connectors/{provider}", get(connectors::connector_page))
        .route("/console/connectors/{provider}/versions/{version}/{decision}", post(connectors::decide_version))
        .route("/console/invocations", get(invocations::invocations_page))
        .route("/console/invocations/{id}", get(invocations::invocation_page))
        .route("/console/sign-in", get(sign_in::sign_in_page))
        .route("/console/sign-in/link", get(sign_in::sign_in_with_link))
        .route("/console/auth/start", get(sign_in::start_sign_in))
        .route(CALLBACK_PATH, get(sign_in::finish_sign_in))
        .route("/console/sign-out", post(sign_in::sign_out))
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
                Html(layout::message("Not allowed", &format!("Your sign-in lacks the `{scope}` scope for this page."))),
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
                (status, Html(layout::message("Something went wrong", &text))).into_response()
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

/// A form's fields (blank ones left out, to show again), and the parameters they are: read by
/// the one reading the API uses ([`crate::query`]).
fn read_form<T: serde::de::DeserializeOwned>(
    fields: &[(String, String)],
) -> (layout::FormValues, Result<T, QueryError>) {
    let filled = crate::query::filled(fields);
    (filled.iter().cloned().collect(), crate::query::read_pairs(&filled))
}

/// A page that shows a refused query is a 400, as the API's answer would be.
fn status_of(error: &Option<String>) -> StatusCode {
    if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK }
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
    (StatusCode::FORBIDDEN, Html(layout::message("Form refused", text))).into_response()
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
