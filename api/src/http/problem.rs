//! Every error the API returns: `application/problem+json` (RFC 9457) with a stable `type` per
//! kind of error. The kinds, their statuses and what a client should do are listed in
//! [`ProblemKind`] and in the README.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::FieldError;
use crate::identity::AuthError;
use crate::lifecycle::Action;
use crate::query::QueryError;
use crate::service::{ServiceError, Shown};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Where the problem types live; each kind appends its slug.
pub const PROBLEM_BASE: &str = "https://stellaops.io/problems/integrations/";

/// A kind of error: its slug (the end of the `type` URI), status and title never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// 400: the query string, a header or the JSON syntax is wrong.
    BadRequest,
    /// 401: no token, or one that is not valid.
    Unauthenticated,
    /// 403: the token lacks the scope.
    Forbidden,
    /// 404: no such resource in the caller's tenant.
    NotFound,
    /// 405: the route does not support the method.
    MethodNotAllowed,
    /// 410: a feed's cursor is older than what is kept; `oldestCursor` is where it is complete.
    CursorGone,
    /// 409: the name is taken in the tenant.
    NameConflict,
    /// 409: the lifecycle does not allow the action now.
    LifecycleConflict,
    /// 409: a plugin version's status forbids the action, the permissions digest approved is not
    /// the version's, or the version is stored with other bytes.
    PluginConflict,
    /// 412: `If-Match` names an older version.
    PreconditionFailed,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 422: fields are invalid.
    Validation,
    /// 422: the `Idempotency-Key` was used with a different request.
    IdempotencyKeyReused,
    /// 422: a submitted component fails the load-time checks or the signature policy.
    PluginRefused,
    /// 428: `If-Match` is required.
    PreconditionRequired,
    /// 500: a bug.
    Internal,
    /// 502: a server the operation depends on (a registry) failed or refused.
    BadGateway,
    /// 503: the database is unavailable; retry.
    Unavailable,
}

impl ProblemKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [ProblemKind; 19] = [
        Self::BadRequest,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::CursorGone,
        Self::NameConflict,
        Self::LifecycleConflict,
        Self::PluginConflict,
        Self::PluginRefused,
        Self::PreconditionFailed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::Validation,
        Self::IdempotencyKeyReused,
        Self::PreconditionRequired,
        Self::Internal,
        Self::BadGateway,
        Self::Unavailable,
    ];

    /// (slug, status, title).
    pub fn describe(self) -> (&'static str, StatusCode, &'static str) {
        match self {
            Self::BadRequest => ("bad-request", StatusCode::BAD_REQUEST, "The request is malformed"),
            Self::Unauthenticated => ("unauthenticated", StatusCode::UNAUTHORIZED, "Authentication is required"),
            Self::Forbidden => ("forbidden", StatusCode::FORBIDDEN, "The token lacks the required scope"),
            Self::NotFound => ("not-found", StatusCode::NOT_FOUND, "Not found"),
            Self::MethodNotAllowed => {
                ("method-not-allowed", StatusCode::METHOD_NOT_ALLOWED, "The method is not allowed on this resource")
            }
            Self::CursorGone => ("cursor-gone", StatusCode::GONE, "The cursor is older than the oldest entry kept"),
            Self::NameConflict => ("name-conflict", StatusCode::CONFLICT, "The name is already taken"),
            Self::LifecycleConflict => {
                ("lifecycle-conflict", StatusCode::CONFLICT, "The action is not allowed in the current state")
            }
            Self::PluginConflict => {
                ("plugin-conflict", StatusCode::CONFLICT, "The plugin version's state does not allow the action")
            }
            Self::PluginRefused => ("plugin-refused", StatusCode::UNPROCESSABLE_ENTITY, "The component is refused"),
            Self::PreconditionFailed => {
                ("precondition-failed", StatusCode::PRECONDITION_FAILED, "The integration has changed")
            }
            Self::PayloadTooLarge => {
                ("payload-too-large", StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large")
            }
            Self::UnsupportedMediaType => (
                "unsupported-media-type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "The request body's media type is not accepted",
            ),
            Self::Validation => ("validation", StatusCode::UNPROCESSABLE_ENTITY, "The request is not valid"),
            Self::IdempotencyKeyReused => (
                "idempotency-key-reused",
                StatusCode::UNPROCESSABLE_ENTITY,
                "The idempotency key was used with a different request",
            ),
            Self::PreconditionRequired => {
                ("precondition-required", StatusCode::PRECONDITION_REQUIRED, "An If-Match header is required")
            }
            Self::Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
            Self::BadGateway => ("bad-gateway", StatusCode::BAD_GATEWAY, "A server the operation depends on failed"),
            Self::Unavailable => ("unavailable", StatusCode::SERVICE_UNAVAILABLE, "The service is unavailable"),
        }
    }

    /// The `type` URI.
    pub fn type_uri(self) -> String {
        format!("{PROBLEM_BASE}{}", self.describe().0)
    }
}

/// An RFC 9457 problem document, with this API's extension members.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Identifies the kind of error: `https://stellaops.io/problems/integrations/<kind>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the kind (fixed per type).
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened in this occurrence.
    pub detail: String,
    /// For `validation`: each offending field.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<ProblemField>,
    /// For `lifecycle-conflict`: the integration's current status.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub current_status: Option<String>,
    /// For `lifecycle-conflict`: the actions allowed in the current status.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub allowed_actions: Option<Vec<String>>,
    /// For `precondition-failed`: the current version (its ETag is `"<version>"`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub current_version: Option<i64>,
    /// For `cursor-gone`: the oldest cursor from which the feed is complete (pass it as `after`;
    /// the events before it are no longer kept).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub oldest_cursor: Option<String>,
    /// Headers to send with it (`WWW-Authenticate`, `Allow`).
    #[serde(skip)]
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

/// The error responses every operation documents: a problem the client can fix (4XX) or one of
/// the service (5XX), each an RFC 9457 document.
#[derive(Debug, utoipa::IntoResponses)]
pub enum ProblemResponses {
    /// A problem with the request (its `type` says which: see the problem types).
    #[response(status = "4XX", content_type = "application/problem+json")]
    Client(Problem),
    /// A problem of the service: `unavailable` (503, retry) or `internal` (500).
    #[response(status = "5XX", content_type = "application/problem+json")]
    Server(Problem),
}

/// One invalid field.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ProblemField {
    /// The field's path (`name`, `configuration.auth.password`, `limit`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl From<FieldError> for ProblemField {
    fn from(e: FieldError) -> Self {
        Self { field: e.field, message: e.message }
    }
}

impl Problem {
    /// A problem of `kind` with this detail.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        let (_, status, title) = kind.describe();
        Self {
            problem_type: kind.type_uri(),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: vec![],
            current_status: None,
            allowed_actions: None,
            current_version: None,
            oldest_cursor: None,
            headers: vec![],
        }
    }

    /// A 422 naming one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut p = Self::new(ProblemKind::Validation, format!("`{field}`: {message}"));
        p.errors.push(ProblemField { field: field.to_string(), message });
        p
    }

    /// A 400 about a query parameter or header.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::BadRequest, detail)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).expect("a problem serializes");
        let mut response =
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))], body).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(fields) => {
                let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
                let mut p = Problem::new(ProblemKind::Validation, format!("invalid fields: {}", names.join(", ")));
                p.errors = fields.into_iter().map(ProblemField::from).collect();
                p
            }
            ServiceError::NotFound => Problem::new(ProblemKind::NotFound, "no such integration"),
            ServiceError::NameTaken(name) => {
                Problem::new(ProblemKind::NameConflict, format!("an integration named `{name}` already exists"))
            }
            ServiceError::Conflict(c) => {
                let allowed: Vec<String> = c.allowed().iter().map(|a: &Action| a.as_str().to_string()).collect();
                let mut p = Problem::new(ProblemKind::LifecycleConflict, c.to_string());
                p.current_status = Some(c.status.as_str().to_string());
                p.allowed_actions = Some(allowed);
                p
            }
            ServiceError::Stale { current } => {
                let mut p = Problem::new(
                    ProblemKind::PreconditionFailed,
                    format!("the integration is now at version {current}; read it again and retry"),
                );
                p.current_version = Some(current);
                p
            }
            ServiceError::PreconditionRequired => Problem::new(
                ProblemKind::PreconditionRequired,
                "send If-Match with the ETag of the version you read, so a concurrent change is not overwritten",
            ),
            ServiceError::KeyReused => Problem::new(
                ProblemKind::IdempotencyKeyReused,
                "this Idempotency-Key was first used with a different request body; use a new key",
            ),
            // The database's disk is full or failing: nothing was kept, and it will not pass in a
            // moment; the operator is told by the log and /readyz.
            ServiceError::Unavailable(crate::store::StoreError::Storage(_)) => {
                let mut p = Problem::new(
                    ProblemKind::Unavailable,
                    "the database cannot write now (its storage is full or failing); nothing was changed; retry later",
                );
                p.headers.push((header::RETRY_AFTER, HeaderValue::from_static("10")));
                p
            }
            // Each is a moment's contention or outage: the client may retry at once.
            e @ (ServiceError::Unavailable(_) | ServiceError::KeyInFlight | ServiceError::KeptChanging(_)) => {
                tracing::warn!(reason = %e, "database unavailable");
                let mut p = Problem::new(ProblemKind::Unavailable, "the database is unavailable; retry shortly");
                p.headers.push((header::RETRY_AFTER, HeaderValue::from_static("1")));
                p
            }
            ServiceError::PluginRefused(Shown(reason)) => Problem::new(ProblemKind::PluginRefused, reason),
            ServiceError::PluginNotFound => Problem::new(ProblemKind::NotFound, "no such plugin version"),
            ServiceError::ProviderNotFound => Problem::new(
                ProblemKind::NotFound,
                "no connector of this provider is loaded, and none ran in the ledger you may read",
            ),
            ServiceError::InvocationNotFound => Problem::new(ProblemKind::NotFound, "no such invocation"),
            ServiceError::PluginConflict(Shown(reason)) => Problem::new(ProblemKind::PluginConflict, reason),
            ServiceError::Upstream { shown: Shown(reason), logged } => {
                tracing::warn!(%reason, answer = %logged, "a server the operation depends on failed");
                Problem::new(ProblemKind::BadGateway, reason)
            }
            ServiceError::CursorGone { oldest } => {
                let mut p = Problem::new(
                    ProblemKind::CursorGone,
                    format!(
                        "the events after this cursor up to {oldest} are no longer kept (see [events] retention); \
                         continue from `after={oldest}`, knowing the events before it were missed"
                    ),
                );
                p.oldest_cursor = Some(oldest.to_string());
                p
            }
            ServiceError::Internal(reason) => {
                tracing::error!(%reason, "internal error");
                Problem::new(ProblemKind::Internal, "an internal error occurred; it has been logged")
            }
        }
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<QueryError> for Problem {
    /// A query the API does not read: 400, saying which parameter and why.
    fn from(e: QueryError) -> Self {
        Problem::bad_request(e.message)
    }
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        let (kind, challenge) = match &e {
            AuthError::Missing => (ProblemKind::Unauthenticated, r#"Bearer realm="stella-integrations""#.to_string()),
            AuthError::Invalid(why) => {
                // RFC 6750 §3: the description is limited to %x20-21 / %x23-5B / %x5D-7E.
                let description: String =
                    why.chars().filter(|c| matches!(*c, ' '..='~') && *c != '"' && *c != '\\').take(200).collect();
                (
                    ProblemKind::Unauthenticated,
                    format!(
                        r#"Bearer realm="stella-integrations", error="invalid_token", error_description="{description}""#
                    ),
                )
            }
            AuthError::MissingScope(scope) => (
                ProblemKind::Forbidden,
                format!(r#"Bearer realm="stella-integrations", error="insufficient_scope", scope="{scope}""#),
            ),
        };
        let mut p = Problem::new(kind, e.to_string());
        let challenge = HeaderValue::from_str(&challenge)
            .unwrap_or_else(|_| HeaderValue::from_static(r#"Bearer realm="stella-integrations""#));
        p.headers.push((header::WWW_AUTHENTICATE, challenge));
        p
    }
}
