//! Signing in and out: the sign-in page, one-time links, the OpenID Connect flow (`oidc.rs`
//! talks to the provider), and the cookies they set.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, html};
use serde::Deserialize;

use crate::config::ConsoleConfig;
use crate::identity::session;

use super::layout::layout;
use super::{
    ConsoleState, PENDING_COOKIE, PageError, cookie_value, csrf_refused, oidc, session_cookie, session_of,
    session_secret, with_token,
};

/// The sign-in page, with why the last attempt failed.
pub(super) fn sign_in_html(console: &super::Console, error: Option<&str>) -> String {
    layout(
        None,
        "Sign in",
        "",
        html! {
            h1 { "Sign in" }
            @if let Some(why) = error {
                p.error role="alert" { "Sign-in refused: " (why) }
            }
            @if let Some(issuer) = console.provider() {
                p { a.button href="/console/auth/start" { "Sign in with " (issuer) } }
                p.muted { "Or, on the service's machine, ask for a one-time link:" }
            } @else {
                p { "On the service's machine, ask for a one-time sign-in link:" }
            }
            pre { "stella-integrations console-link --tenant <tenant>" }
        },
    )
}

/// After a sign-in: moves on to `to` from this site, so the SameSite=Strict cookie goes along.
pub(super) fn continue_to(to: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(format!("0;url={to}"));
                title { "Signed in · Integration Catalog" }
            }
            body { p { "Signed in. " a href=(to) { "Continue to the console" } } }
        }
    }
    .into_string()
}

pub(super) async fn sign_in_page(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    // Signed in already: straight to the console.
    if let Some(secret) = session_secret(&headers)
        && let Ok(Some(_)) = state.catalog.console_session(&secret).await
    {
        return Redirect::to("/console/").into_response();
    }
    Html(sign_in_html(&state.console, None)).into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct LinkParams {
    token: String,
}

/// A one-time link (`stella-integrations console-link`): spent, then a session.
pub(super) async fn sign_in_with_link(State(state): State<ConsoleState>, Query(params): Query<LinkParams>) -> Response {
    let refused = |why: &str| (StatusCode::UNAUTHORIZED, Html(sign_in_html(&state.console, Some(why)))).into_response();
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
pub(super) fn signed_in_answer(config: &ConsoleConfig, secret: &str, ttl: Duration) -> Response {
    let mut response = Html(continue_to("/console/")).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(config, secret, ttl));
    response
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    csrf: String,
}

pub(super) async fn sign_out(
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

/// Begins a sign-in at the identity provider: a pending sign-in in a short-lived cookie (Lax, so
/// it comes back with the provider's redirect), and the browser sent to the provider.
pub(super) async fn start_sign_in(State(state): State<ConsoleState>) -> Response {
    let Some(idp) = &state.console.idp else {
        return (StatusCode::NOT_FOUND, Html(sign_in_html(&state.console, Some("no identity provider is configured"))))
            .into_response();
    };
    let pending = oidc::PendingSignIn::new();
    let url = match idp.authorization_url(&pending).await {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(error = e.logged(), "a console sign-in could not begin");
            let why = "the identity provider cannot be reached; try again later";
            return (StatusCode::BAD_GATEWAY, Html(sign_in_html(&state.console, Some(why)))).into_response();
        }
    };
    let mut response = Redirect::to(&url).into_response();
    let cookie = pending_cookie(&state.console.config, &pending.to_cookie(), Duration::from_secs(600));
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

#[derive(Debug, Deserialize)]
pub(super) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's answer: the state checked against this browser's pending sign-in, the code
/// redeemed, the ID token verified, and a session opened.
pub(super) async fn finish_sign_in(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let refused = |why: &str| {
        let mut response = (StatusCode::UNAUTHORIZED, Html(sign_in_html(&state.console, Some(why)))).into_response();
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
pub(super) fn pending_cookie(config: &ConsoleConfig, value: &str, max_age: Duration) -> HeaderValue {
    let secure = if config.secure_cookies() { "; Secure" } else { "" };
    let cookie = format!(
        "{PENDING_COOKIE}={value}; Path=/console/auth; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&cookie).expect("a sign-in cookie is a valid header value")
}
