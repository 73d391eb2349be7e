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
use crate::identity::{Admin, Auditor, AuthError, ConnectorsReader, PluginsAdmin, Principal, Reader};
use crate::service::IfMatch;

async fn principal(parts: &Parts, state: &AppState) -> Result<Principal, Problem> {
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

/// The grants a handler takes: the principal of the request's bearer token, checked for the
/// grant (401 without a valid token, 403 without the scope).
macro_rules! grant_from_token {
    ($($grant:ty),*) => {$(
        impl FromRequestParts<AppState> for $grant {
            type Rejection = Problem;
            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
                Ok(principal(parts, state).await?.grant::<$grant>()?)
            }
        }
    )*};
}

grant_from_token!(Reader, Admin, PluginsAdmin, ConnectorsReader, Auditor);

/// The request's query read into `T` by the one reading every door shares ([`crate::query`]):
/// an unknown, repeated or malformed parameter is a 400 naming it.
#[derive(Debug)]
pub struct QueryOf<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryOf<T> {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        Ok(QueryOf(crate::query::read(parts.uri.query().unwrap_or(""))?))
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
