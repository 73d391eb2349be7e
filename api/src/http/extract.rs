//! What handlers take from a request, each refusing bad input with a problem: the caller (token
//! and scope), a JSON body, an integration id, `If-Match`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::AppState;
use super::problem::{Problem, ProblemKind};
use crate::auth::{Access, AuthError};
use crate::service::{Caller, IfMatch};

async fn principal(parts: &Parts, state: &AppState) -> Result<crate::auth::Principal, Problem> {
    if super::switches::is_off(super::switches::Feature::Auth) {
        return Ok(super::switches::bench_principal());
    }
    let value = parts.headers.get(header::AUTHORIZATION).ok_or(AuthError::Missing)?;
    let value = value.to_str().map_err(|_| AuthError::Invalid("the Authorization header is not ASCII".into()))?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(AuthError::Invalid("the Authorization header must be `Bearer <token>`".into()).into()),
    };
    Ok(state.verifier.verify(token).await?)
}

async fn authorize(parts: &Parts, state: &AppState, access: Access) -> Result<Caller, Problem> {
    Ok(principal(parts, state).await?.require(access)?)
}

/// A reader of the invocation ledger: its tenant's with `integrations.audit` (or
/// `integrations.admin`), every tenant's with `plugins.admin`.
#[derive(Debug)]
pub struct Auditor(pub crate::service::LedgerScope);

impl FromRequestParts<AppState> for Auditor {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        Ok(Auditor(principal(parts, state).await?.ledger_scope()?))
    }
}

/// A caller whose token carries `integrations.read` (or admin).
#[derive(Debug)]
pub struct Reader(pub Caller);

/// A caller whose token carries `integrations.admin`.
#[derive(Debug)]
pub struct Admin(pub Caller);

/// A caller whose token carries `plugins.admin` (platform-wide; its tenant is only recorded).
#[derive(Debug)]
pub struct PluginsAdmin(pub Caller);

impl FromRequestParts<AppState> for PluginsAdmin {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        authorize(parts, state, Access::PluginsAdmin).await.map(PluginsAdmin)
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        authorize(parts, state, Access::Read).await.map(Reader)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        authorize(parts, state, Access::Admin).await.map(Admin)
    }
}

/// A JSON request body: `Content-Type: application/json` (415 otherwise), within the size limit
/// (413), well-formed (400), of the expected shape with no unknown field (422, naming the field).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Problem;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        if !is_json(req.headers()) {
            return Err(Problem::new(
                ProblemKind::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    ProblemKind::PayloadTooLarge,
                    format!("the body is larger than {} bytes", state.max_body_bytes),
                )
            } else {
                Problem::bad_request(format!("cannot read the body: {e}"))
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON document, telling syntax (400) from shape (422) errors.
pub fn parse_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Problem> {
    crate::domain::read_json(bytes).map_err(|e| {
        if e.syntax {
            Problem::bad_request(format!("the body is not valid JSON: {}", e.message))
        } else {
            Problem::invalid_field(&e.field, e.message)
        }
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = media_type(value);
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A media type without its parameters, lower-cased: `Application/JSON; charset=utf-8` is
/// `application/json`.
pub fn media_type(value: &str) -> String {
    value.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// An integration id from the path. A path segment that is not a UUID names nothing: 404.
pub fn integration_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::new(ProblemKind::NotFound, "no such integration"))
}

/// The version an `If-Match` header names (`Any` for `*`); an error for anything that is not one
/// strong ETag of this API (a weak ETag never matches, RFC 9110 §13.1.1).
pub fn if_match(headers: &HeaderMap) -> Result<IfMatch, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(IfMatch::Absent) };
    let text = value.to_str().map_err(|_| Problem::bad_request("If-Match is not ASCII"))?.trim();
    // An empty field is an empty list (RFC 9110 §5.6.1): no condition, as if it were absent.
    if text.is_empty() {
        return Ok(IfMatch::Absent);
    }
    if text == "*" {
        return Ok(IfMatch::Any);
    }
    if text.starts_with("W/") {
        return Err(Problem::new(
            ProblemKind::PreconditionFailed,
            "a weak ETag never matches (RFC 9110): send the ETag as returned",
        ));
    }
    let version =
        text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).and_then(|t| t.parse::<i64>().ok()).filter(|v| *v > 0);
    match version {
        Some(v) => Ok(IfMatch::Version(v)),
        None => Err(Problem::bad_request(format!(
            "If-Match must be an ETag returned by this API, such as \"3\" (got `{text}`)"
        ))),
    }
}

/// The ETag of a version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}
