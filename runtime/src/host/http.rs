//! `http`: outbound requests, checked against the origin allowlist, the network policy and the
//! request budget, with credentials applied by the host and bodies read under a cap.

use std::error::Error as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use url::{Host as UrlHost, Url};

use std::sync::Mutex;

use super::{HostState, Journal, elapsed_ms, lock};
use crate::bindings::http::{Credential, CredentialPlacement, Header, Host, HttpError, Method, Request, Response};
use crate::http_client::{AddressDenied, DnsFailure};
use crate::record::{DenialKind, HostCall};

const MAX_URL_LEN: usize = 8192;
const MAX_HEADERS: usize = 64;
const MAX_HEADER_BYTES: usize = 32 * 1024;
const MAX_REQUEST_BODY: usize = 1 << 20;

/// Headers the host owns: the guest may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// The URL as the audit shows it: scheme, host, port and path, never the query or fragment.
pub(crate) fn audit_target(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{}:{}{}", url.scheme(), host, port, url.path()),
        None => format!("{}://{}{}", url.scheme(), host, url.path()),
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
    }
}

fn error_kind(e: &HttpError) -> (&'static str, &str) {
    match e {
        HttpError::Denied(m) => ("denied", m),
        HttpError::Dns(m) => ("dns", m),
        HttpError::ConnectionRefused(m) => ("connection-refused", m),
        HttpError::Timeout(m) => ("timeout", m),
        HttpError::Tls(m) => ("tls", m),
        HttpError::BodyTooLarge(m) => ("body-too-large", m),
        HttpError::InvalidRequest(m) => ("invalid-request", m),
        HttpError::Other(m) => ("other", m),
    }
}

impl Host for HostState {
    async fn send(
        &mut self,
        request: Request,
        credential: Option<Credential>,
    ) -> wasmtime::Result<Result<Response, HttpError>> {
        let started = Instant::now();
        let method = method_name(request.method);
        let mut call = HostCall {
            interface: "http".into(),
            operation: method.into(),
            bytes_sent: request.body.as_ref().map_or(0, |b| b.len() as u64),
            ..HostCall::default()
        };
        let result = self.send_checked(request, credential, &mut call).await;
        call.duration_ms = elapsed_ms(started);
        let mut j = lock(&self.cx.journal);
        match &result {
            Ok(resp) => {
                call.status = Some(resp.status);
                call.bytes_received = resp.body.len() as u64;
            }
            Err(e) => {
                let (kind, message) = error_kind(e);
                call.error = Some(kind.into());
                call.error_message = Some(j.redactor.redact(message));
            }
        }
        call.target = j.redactor.redact(&call.target);
        j.host_calls.push(call);
        drop(j);
        // Messages go back to the guest redacted too: an error can echo a URL or header.
        Ok(result.map_err(|e| self.redact_error(e)))
    }
}

impl HostState {
    fn redact_error(&self, e: HttpError) -> HttpError {
        let j = lock(&self.cx.journal);
        let r = |m: String| j.redactor.redact(&m);
        match e {
            HttpError::Denied(m) => HttpError::Denied(r(m)),
            HttpError::Dns(m) => HttpError::Dns(r(m)),
            HttpError::ConnectionRefused(m) => HttpError::ConnectionRefused(r(m)),
            HttpError::Timeout(m) => HttpError::Timeout(r(m)),
            HttpError::Tls(m) => HttpError::Tls(r(m)),
            HttpError::BodyTooLarge(m) => HttpError::BodyTooLarge(r(m)),
            HttpError::InvalidRequest(m) => HttpError::InvalidRequest(r(m)),
            HttpError::Other(m) => HttpError::Other(r(m)),
        }
    }

    fn deny(&self, kind: DenialKind, target: &str, reason: String) -> HttpError {
        lock(&self.cx.journal).deny(kind, target, &reason);
        HttpError::Denied(reason)
    }

    async fn send_checked(
        &mut self,
        request: Request,
        credential: Option<Credential>,
        call: &mut HostCall,
    ) -> Result<Response, HttpError> {
        // Every call spends budget, refused or not: a guest looping on denied requests is
        // stopped just the same.
        self.cx.requests_made += 1;
        if request.url.len() > MAX_URL_LEN {
            call.target = "(over-long URL)".into();
            return Err(HttpError::InvalidRequest(format!("the URL is longer than {MAX_URL_LEN} bytes")));
        }
        let url = Url::parse(&request.url).map_err(|e| {
            call.target = "(malformed URL)".into();
            HttpError::InvalidRequest(format!("the URL is not valid: {e}"))
        })?;
        call.target = audit_target(&url);
        if self.cx.requests_made > self.cx.limits.max_requests {
            let why = format!("the invocation's budget of {} requests is spent", self.cx.limits.max_requests);
            return Err(self.deny(DenialKind::RequestBudget, &call.target, why));
        }
        if url.scheme() != "http" && url.scheme() != "https" {
            let why = format!("scheme `{}` is not allowed; use http or https", url.scheme());
            return Err(self.deny(DenialKind::InvalidRequest, &call.target, why));
        }
        if !url.username().is_empty() || url.password().is_some() {
            let why = "credentials in a URL are not allowed; apply a secret handle".to_string();
            return Err(self.deny(DenialKind::InvalidRequest, &call.target, why));
        }
        if let Err(why) = self.cx.origins.check(&url) {
            return Err(self.deny(DenialKind::Origin, &call.target, why));
        }
        // An IP literal is never resolved, so the network policy is checked here; host names
        // are checked by the client's resolver on every address they resolve to.
        let literal = match url.host() {
            Some(UrlHost::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(UrlHost::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && let Err(why) = self.cx.egress.policy().check(ip)
        {
            return Err(self.deny(DenialKind::Address, &call.target, why));
        }

        let headers = self.build_headers(&request.headers, credential, call)?;
        if let Some(body) = &request.body
            && body.len() > MAX_REQUEST_BODY
        {
            return Err(HttpError::InvalidRequest(format!("the request body is larger than {MAX_REQUEST_BODY} bytes")));
        }

        let remaining = self.cx.deadline.saturating_duration_since(Instant::now());
        let mut timeout = self.cx.egress.timeouts().request.min(remaining);
        if let Some(ms) = request.timeout_ms {
            timeout = timeout.min(Duration::from_millis(ms.into()));
        }
        if timeout.is_zero() {
            return Err(HttpError::Timeout("the invocation's deadline has passed".into()));
        }
        let reqwest_method = reqwest::Method::from_bytes(method_name(request.method).as_bytes())
            .expect("every WIT method is a valid HTTP method");
        let mut builder = self.cx.client.request(reqwest_method, url.clone()).headers(headers).timeout(timeout);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let journal = self.cx.journal.clone();
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return Err(classify(&journal, &e, &call.target)),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| Header {
                name: name.as_str().to_string(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect();
        let body = read_capped(&journal, self.cx.limits.max_response_bytes, response, call).await?;
        Ok(Response { status, headers, body })
    }

    fn build_headers(
        &mut self,
        headers: &[Header],
        credential: Option<Credential>,
        call: &mut HostCall,
    ) -> Result<reqwest::header::HeaderMap, HttpError> {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        if headers.len() > MAX_HEADERS {
            return Err(HttpError::InvalidRequest(format!("more than {MAX_HEADERS} headers")));
        }
        let total: usize = headers.iter().map(|h| h.name.len() + h.value.len()).sum();
        if total > MAX_HEADER_BYTES {
            return Err(HttpError::InvalidRequest(format!("headers larger than {MAX_HEADER_BYTES} bytes")));
        }
        let mut map = HeaderMap::new();
        for h in headers {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("`{}` is not a valid header name", h.name)))?;
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(HttpError::InvalidRequest(format!("the header `{name}` is set by the host")));
            }
            let value = HeaderValue::from_str(&h.value)
                .map_err(|_| HttpError::InvalidRequest(format!("the value of header `{name}` is not valid")))?;
            map.append(name, value);
        }
        if let Some(cred) = credential {
            let handle = self
                .table
                .get(&cred.secret)
                .map_err(|_| HttpError::InvalidRequest("the secret handle is not valid".into()))?;
            call.auth_ref = Some(handle.origin.clone());
            let secret = handle.value.clone();
            let (name, value) = match cred.placement {
                CredentialPlacement::Bearer => (reqwest::header::AUTHORIZATION, format!("Bearer {}", secret.expose())),
                CredentialPlacement::Basic(username) => {
                    if username.contains(':') {
                        return Err(HttpError::InvalidRequest("a basic-auth username may not contain `:`".into()));
                    }
                    lock(&self.cx.journal).redactor.add_basic(&username, &secret);
                    let pair = format!("{username}:{}", secret.expose());
                    (
                        reqwest::header::AUTHORIZATION,
                        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)),
                    )
                }
                CredentialPlacement::Header(placement) => {
                    let name = HeaderName::from_bytes(placement.name.as_bytes()).map_err(|_| {
                        HttpError::InvalidRequest(format!("`{}` is not a valid header name", placement.name))
                    })?;
                    if RESERVED_HEADERS.contains(&name.as_str()) {
                        return Err(HttpError::InvalidRequest(format!("the header `{name}` is set by the host")));
                    }
                    (name, format!("{}{}", placement.prefix.unwrap_or_default(), secret.expose()))
                }
            };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| HttpError::InvalidRequest("the secret cannot be written into a header".into()))?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        Ok(map)
    }
}

async fn read_capped(
    journal: &Mutex<Journal>,
    cap: u64,
    mut response: reqwest::Response,
    call: &mut HostCall,
) -> Result<Vec<u8>, HttpError> {
    if let Some(len) = response.content_length()
        && len > cap
    {
        call.bytes_received = 0;
        return Err(HttpError::BodyTooLarge(format!("the response declares {len} bytes; the limit is {cap}")));
    }
    let mut body = Vec::new();
    loop {
        // The request's timeout (set on the request builder) covers the body too.
        let chunk = match response.chunk().await {
            Err(e) => return Err(classify(journal, &e, &call.target)),
            Ok(None) => return Ok(body),
            Ok(Some(c)) => c,
        };
        if (body.len() + chunk.len()) as u64 > cap {
            // Stop reading here: the rest of the body is never buffered.
            return Err(HttpError::BodyTooLarge(format!("the response body exceeds the limit of {cap} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
}

/// Maps a client error to the typed error the guest sees.
fn classify(journal: &Mutex<Journal>, e: &reqwest::Error, target: &str) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = source {
        if let Some(denied) = s.downcast_ref::<AddressDenied>() {
            let reason = denied.to_string();
            lock(journal).deny(DenialKind::Address, target, &reason);
            return HttpError::Denied(reason);
        }
        if let Some(dns) = s.downcast_ref::<DnsFailure>() {
            return HttpError::Dns(dns.to_string());
        }
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return HttpError::Tls(tls.to_string());
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            // io::Error's `source()` skips the error it wraps, and TLS errors arrive wrapped in
            // one or two io::Errors: unwrap them by hand.
            let mut inner = io.get_ref();
            while let Some(e) = inner {
                if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                    return HttpError::Tls(tls.to_string());
                }
                inner = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
            }
            match io.kind() {
                K::ConnectionRefused | K::ConnectionReset | K::ConnectionAborted | K::NotConnected => {
                    return HttpError::ConnectionRefused(io.to_string());
                }
                K::TimedOut => return HttpError::Timeout(io.to_string()),
                _ => {}
            }
        }
        source = s.source();
    }
    if e.is_timeout() {
        HttpError::Timeout("the request did not complete in time".into())
    } else if e.is_connect() {
        HttpError::ConnectionRefused(error_chain(e))
    } else {
        HttpError::Other(error_chain(e))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
