//! Outbound HTTP through the host: a small request builder.
//!
//! ```no_run
//! use stella_connector_sdk::prelude::*;
//!
//! fn catalog(config: &ConnectionConfig) -> Option<http::Response> {
//!     let secret = secrets::integration_secret(config)?.ok()?;
//!     http::get("https://registry.example.com/v2/_catalog")
//!         .header("Accept", "application/json")
//!         .bearer(&secret)
//!         .send()
//!         .ok()
//! }
//! ```

use crate::FailureClass;
use crate::secrets::Secret;
use crate::wit::stellaops::integrations::http as wit;

pub use wit::{Header, HttpError, Method, Response};

/// A request being built.
#[derive(Debug)]
pub struct RequestBuilder<'a> {
    request: wit::Request,
    credential: Option<(&'a Secret, wit::CredentialPlacement)>,
}

/// Starts a request.
pub fn request(method: Method, url: &str) -> RequestBuilder<'static> {
    RequestBuilder {
        request: wit::Request { method, url: url.to_string(), headers: Vec::new(), body: None, timeout_ms: None },
        credential: None,
    }
}

/// Starts a GET request.
pub fn get(url: &str) -> RequestBuilder<'static> {
    request(Method::Get, url)
}

/// Starts a POST request.
pub fn post(url: &str) -> RequestBuilder<'static> {
    request(Method::Post, url)
}

impl<'a> RequestBuilder<'a> {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request.headers.push(Header { name: name.to_string(), value: value.to_string() });
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.request.body = Some(body.into());
        self
    }

    /// Shortens the host's timeout for this request.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.request.timeout_ms = Some(ms);
        self
    }

    /// Applies the secret as `Authorization: Bearer …` (written by the host).
    pub fn bearer<'b>(self, secret: &'b Secret) -> RequestBuilder<'b> {
        self.with_credential(secret, wit::CredentialPlacement::Bearer)
    }

    /// Applies the secret as the password of `Authorization: Basic …`.
    pub fn basic<'b>(self, username: &str, secret: &'b Secret) -> RequestBuilder<'b> {
        self.with_credential(secret, wit::CredentialPlacement::Basic(username.to_string()))
    }

    /// Applies the secret as a named header, e.g. `PRIVATE-TOKEN`, with an optional prefix.
    pub fn secret_header<'b>(self, name: &str, prefix: Option<&str>, secret: &'b Secret) -> RequestBuilder<'b> {
        self.with_credential(
            secret,
            wit::CredentialPlacement::Header(wit::HeaderPlacement {
                name: name.to_string(),
                prefix: prefix.map(str::to_string),
            }),
        )
    }

    fn with_credential<'b>(self, secret: &'b Secret, placement: wit::CredentialPlacement) -> RequestBuilder<'b> {
        RequestBuilder { request: self.request, credential: Some((secret, placement)) }
    }

    /// Sends the request through the host.
    pub fn send(self) -> Result<Response, HttpError> {
        let credential = self.credential.map(|(secret, placement)| wit::Credential { secret, placement });
        wit::send(&self.request, credential.as_ref())
    }

    /// Sends a request whose 2xx JSON answer carries a short-lived credential (an OCI registry's
    /// bearer token, a GitHub App installation token), which the host keeps as a new [`Secret`]
    /// handle: apply it to later requests like any other; its value never enters the connector.
    /// `token_pointers` are JSON pointers tried in order (e.g. `["/token", "/access_token"]`).
    ///
    /// The response has the token (and any other `token`, `access_token`, `refresh_token` or
    /// `id_token` field) replaced by `[REDACTED]` in its body and headers; a 2xx answer without a
    /// token (of 8 or more visible ASCII characters), not JSON or over 64 KiB comes back with an
    /// empty body and no handle. Non-2xx answers come back whole, with no handle.
    pub fn send_for_token(self, token_pointers: &[&str]) -> Result<(Response, Option<Secret>), HttpError> {
        let credential = self.credential.map(|(secret, placement)| wit::Credential { secret, placement });
        let pointers: Vec<String> = token_pointers.iter().map(|p| p.to_string()).collect();
        let answer = wit::send_for_token(&self.request, credential.as_ref(), &pointers)?;
        Ok((Response { status: answer.status, headers: answer.headers, body: answer.body }, answer.token))
    }
}

/// Helpers on responses.
pub trait ResponseExt {
    /// The first header of that name (case-insensitive).
    fn header(&self, name: &str) -> Option<&str>;
    /// The body parsed as JSON.
    fn json(&self) -> Result<serde_json::Value, String>;
    /// The body as text (lossy).
    fn text(&self) -> String;
}

impl ResponseExt for Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }
    fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("the body is not JSON: {e}"))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl HttpError {
    /// The failure class a connector should report for this error.
    pub fn failure_class(&self) -> FailureClass {
        match self {
            HttpError::Denied(_) | HttpError::InvalidRequest(_) => FailureClass::Misconfigured,
            HttpError::Dns(_) | HttpError::ConnectionRefused(_) => FailureClass::Network,
            HttpError::Timeout(_) => FailureClass::Timeout,
            HttpError::Tls(_) => FailureClass::Tls,
            HttpError::BodyTooLarge(_) | HttpError::Other(_) => FailureClass::ProviderDown,
        }
    }
}
