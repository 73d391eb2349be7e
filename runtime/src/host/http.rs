//! `http`: outbound requests, checked against the origin allowlist, the network policy, the
//! request budget and the bindings of the secrets they carry, with credentials applied by the
//! host and bodies read under a cap.
//!
//! Two rules keep a credential's value out of a connector that may not reveal it:
//! - what comes back from a request (headers, `Location`, body) is scrubbed of every secret value
//!   the invocation holds, in every encoding the redactor recognizes, before the connector reads
//!   it: a server that reflects the request (an echo endpoint, an error page quoting it, a
//!   redirect carrying it) hands back `[REDACTED]`;
//! - an error message never repeats text the connector chose (its URL, host or header names): a
//!   message that did would come back redacted when the connector guessed a secret right and
//!   verbatim when it guessed wrong, an oracle answering one guess per request.

use std::error::Error as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;
use url::{Host as UrlHost, Url};

use std::sync::Mutex;

use super::{HostState, Journal, SecretHandle, elapsed_ms, lock};
use crate::bindings::http::{
    Credential, CredentialPlacement, Header, Host, HttpError, Method, Request, Response, TokenResponse,
};
use crate::http_client::{AddressDenied, DnsFailure};
use crate::record::{DenialKind, HostCall};
use crate::secrets::{Binding, REDACTED, SecretValue, Source};

const MAX_URL_LEN: usize = 8192;
const MAX_HEADERS: usize = 64;
const MAX_HEADER_BYTES: usize = 32 * 1024;
const MAX_REQUEST_BODY: usize = 1 << 20;
const MAX_TOKEN_POINTERS: usize = 8;
const MAX_TOKEN_POINTER_LEN: usize = 256;
/// A token answer is a small JSON document; a larger 2xx answer is withheld, not parsed.
const MAX_TOKEN_BODY: usize = 64 * 1024;
/// Credential fields (besides the pointers' strings) a token answer may carry and still be used.
const MAX_ANSWER_CREDENTIALS: usize = 16;
/// Shorter values are not taken as tokens: they could not be redacted without mangling text.
const MIN_TOKEN_LEN: usize = 8;
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// How long before its deadline a request ends at the latest (at most a fifth of the deadline),
/// leaving the connector time to report the timeout itself.
const REPORT_RESERVE: Duration = Duration::from_millis(250);
/// A header name the record keeps is cut to this.
const MAX_RECORDED_HEADER_NAME: usize = 128;

/// Headers the host owns: the guest may not set them. `accept-encoding` is always `identity`.
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
    "accept-encoding",
];

/// Headers that ask for part of an answer or another encoding of it: the host reads answers
/// whole and as they are, so that it can search them for the secrets it scrubs.
const WHOLE_ANSWER_HEADERS: &[&str] = &["range", "if-range", "accept-charset"];

/// Query parameters whose values the record never shows, whether or not the host knows them as
/// secrets: credentials a connector could have put there itself.
const CREDENTIAL_PARAMETERS: &[&str] = &[
    "access_token",
    "id_token",
    "refresh_token",
    "token",
    "api_key",
    "apikey",
    "key",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

/// Headers a credential may be written into, besides those [`credential_header_allowed`] accepts
/// by their last word.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-jfrog-art-api"];
/// The last dash-separated word of a header meant for a credential: `PRIVATE-TOKEN`,
/// `X-Api-Key`, `Circle-Token`, `X-Vault-Token`, `Ocp-Apim-Subscription-Key`, `X-Registry-Auth`.
const CREDENTIAL_HEADER_WORDS: &[&str] =
    &["token", "key", "apikey", "auth", "secret", "password", "credential", "credentials", "signature"];

/// Headers whose names end like a credential's but that servers log, echo or store as ordinary
/// request data.
const NOT_CREDENTIAL_HEADERS: &[&str] = &[
    "idempotency-key",
    "x-idempotency-key",
    "x-csrf-token",
    "x-xsrf-token",
    "csrf-token",
    "xsrf-token",
    "x-cache-key",
    "cache-key",
    "x-request-key",
];

/// Whether a credential may be written into the header `name` (lower-case): `Authorization`, or
/// a header whose name says it carries a credential. Never a header that servers, proxies and
/// their logs treat as ordinary request metadata (`Referer`, `Cookie`, `Host`, `Forwarded`,
/// `X-Forwarded-*`, `User-Agent`, the browser's `Sec-*`, idempotency and CSRF tokens, …) nor
/// `Proxy-Authorization` (the host uses no proxy: a proxy credential would be handed to the
/// origin server).
pub(crate) fn credential_header_allowed(name: &str) -> bool {
    if CREDENTIAL_HEADERS.contains(&name) {
        return true;
    }
    let metadata = name == "forwarded"
        || ["x-forwarded-", "proxy-", "sec-"].iter().any(|prefix| name.starts_with(prefix))
        || NOT_CREDENTIAL_HEADERS.contains(&name);
    !metadata && name.rsplit('-').next().is_some_and(|word| CREDENTIAL_HEADER_WORDS.contains(&word))
}

/// The URL as the handle of a token kept from its answer names it: scheme, host, port and path.
fn url_without_query(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{}:{}{}", url.scheme(), host, port, url.path()),
        None => format!("{}://{}{}", url.scheme(), host, url.path()),
    }
}

/// The URL as the record shows it (before redaction): everything but the fragment, which never
/// leaves the client, and with the values of credential-named query parameters
/// ([`CREDENTIAL_PARAMETERS`]) replaced by `[REDACTED]`.
pub(crate) fn audit_target(url: &Url) -> String {
    let mut target = url_without_query(url);
    if let Some(query) = url.query() {
        target.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                target.push('&');
            }
            let credential = |name: &str| {
                let decoded: String =
                    url::form_urlencoded::parse(name.as_bytes()).map(|(k, _)| k.to_ascii_lowercase()).collect();
                CREDENTIAL_PARAMETERS.contains(&decoded.as_str())
            };
            match pair.split_once('=') {
                Some((name, _)) if credential(name) => {
                    target.push_str(name);
                    target.push('=');
                    target.push_str(REDACTED);
                }
                _ => target.push_str(pair),
            }
        }
    }
    target
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

fn map_message(e: HttpError, f: impl Fn(String) -> String) -> HttpError {
    match e {
        HttpError::Denied(m) => HttpError::Denied(f(m)),
        HttpError::Dns(m) => HttpError::Dns(f(m)),
        HttpError::ConnectionRefused(m) => HttpError::ConnectionRefused(f(m)),
        HttpError::Timeout(m) => HttpError::Timeout(f(m)),
        HttpError::Tls(m) => HttpError::Tls(f(m)),
        HttpError::BodyTooLarge(m) => HttpError::BodyTooLarge(f(m)),
        HttpError::InvalidRequest(m) => HttpError::InvalidRequest(f(m)),
        HttpError::Other(m) => HttpError::Other(f(m)),
    }
}

impl Host for HostState {
    async fn send(
        &mut self,
        request: Request,
        credential: Option<Credential>,
    ) -> wasmtime::Result<Result<Response, HttpError>> {
        Ok(self.send_recorded(request, credential, None).await?.map(|(response, _)| response))
    }

    async fn send_for_token(
        &mut self,
        request: Request,
        credential: Option<Credential>,
        token_pointers: Vec<String>,
    ) -> wasmtime::Result<Result<TokenResponse, HttpError>> {
        let (response, kept) = match self.send_recorded(request, credential, Some(&token_pointers)).await? {
            Ok(answer) => answer,
            Err(e) => return Ok(Err(e)),
        };
        let token = match kept {
            Some(handle) => Some(self.push_secret(handle)?),
            None => None,
        };
        Ok(Ok(TokenResponse { status: response.status, headers: response.headers, body: response.body, token }))
    }
}

/// A request that was sent: the answer, the URL without its query (for a kept token's handle),
/// and the binding of the credential it carried (a token kept from the answer inherits it).
struct Sent {
    response: Response,
    url: String,
    binding: Option<Binding>,
}

impl HostState {
    /// Sends the request and writes its host call to the journal. With `token_pointers`, a 2xx
    /// JSON answer's token is taken out (see [`take_token`]) before the guest or the journal sees
    /// anything. Traps (the outer error) when the call ran out of one of the invocation's budgets.
    async fn send_recorded(
        &mut self,
        request: Request,
        credential: Option<Credential>,
        token_pointers: Option<&[String]>,
    ) -> wasmtime::Result<Result<(Response, Option<SecretHandle>), HttpError>> {
        lock(&self.cx.journal).begin_call()?;
        let started = Instant::now();
        let mut call = HostCall {
            interface: crate::record::Interface::Http,
            operation: method_name(request.method).into(),
            bytes_sent: request.body.as_ref().map_or(0, |b| b.len() as u64),
            body_sha256: request.body.as_ref().filter(|b| !b.is_empty()).map(|b| hex::encode(sha2::Sha256::digest(b))),
            request_headers: request
                .headers
                .iter()
                .take(MAX_HEADERS)
                .map(|h| crate::record::bounded_text(&h.name.to_ascii_lowercase(), MAX_RECORDED_HEADER_NAME))
                .collect(),
            ..HostCall::default()
        };
        // What the connector chose of the request, taken out of any message that goes back to it.
        let url_text = request.url.clone();
        let mut sent_to = None;
        let result = self.send_checked(request, credential, token_pointers, &mut call, &mut sent_to).await;
        call.duration_ms = elapsed_ms(started);
        // Parsed outside the journal's lock: a token answer may be up to MAX_TOKEN_BODY bytes.
        let result = result.map(|mut sent| {
            call.status = Some(sent.response.status);
            call.bytes_received = sent.response.body.len() as u64;
            let taken = token_pointers.and_then(|pointers| take_token(&mut sent.response, pointers));
            (sent, taken)
        });
        let mut j = lock(&self.cx.journal);
        let result = match result {
            Ok((mut sent, taken)) => {
                let kept = match taken {
                    None => None,
                    Some(taken) => {
                        // Every value is registered before the guest can see anything of the
                        // answer; a guest that made the host hold too many is stopped here.
                        let binding = sent.binding.as_ref();
                        let registered = taken
                            .scrubbed
                            .iter()
                            .chain([&taken.token])
                            .try_for_each(|v| j.add_secret(v, binding, Source::Answer));
                        if registered.is_ok() {
                            call.token_kept = true;
                        }
                        let origin = format!("token from {}", j.redactor.redact(&sent.url));
                        Some(SecretHandle { origin, value: taken.token, binding: sent.binding.clone() })
                    }
                };
                // Whatever the request applied or the server reflected, the guest reads none of it.
                match scrub_response(&j.redactor, &mut sent.response, self.cx.limits.max_response_bytes) {
                    Scrubbed::Nothing => {}
                    Scrubbed::Replaced => call.response_scrubbed = true,
                    Scrubbed::Withheld => call.response_withheld = true,
                }
                Ok((sent.response, kept))
            }
            Err(e) => {
                let (kind, message) = error_kind(&e);
                call.error = Some(kind.into());
                call.error_message = Some(j.redactor.redact(message));
                Err(e)
            }
        };
        // The origin goes into the summary as the URL named it, not as the redacted target: a
        // string the connector had the host hold must not hide where it sent a request. (A request
        // whose resolved address the policy refused never left.)
        if let Some(origin) = sent_to
            && call.error.as_deref() != Some("denied")
        {
            j.contacted(&origin);
        }
        call.target = j.redactor.redact(&call.target);
        for name in &mut call.request_headers {
            *name = j.redactor.redact(name);
        }
        j.record_call(call)?;
        // An error's message goes back without the connector's own text, then redacted (a TLS or
        // server message may quote what the server saw).
        Ok(result.map_err(|e| {
            let chosen = RequestText::of(&url_text);
            map_message(e, |m| j.redactor.redact(&chosen.removed_from(&m)))
        }))
    }
}

/// What scrubbing did to an answer.
enum Scrubbed {
    Nothing,
    /// A held secret's value was replaced.
    Replaced,
    /// The body could not be searched (compressed, in a wide character set) or scrubbing made it
    /// larger than the response limit: it was withheld whole.
    Withheld,
}

/// Scrubs every secret value the invocation holds out of an answer's headers and body. A body
/// the host cannot search as it is (a content coding the server applied though it was asked for
/// `identity`, UTF-16 or UTF-32 text) is withheld, since what it holds is unknown.
fn scrub_response(redactor: &crate::secrets::Redactor, response: &mut Response, max_body: u64) -> Scrubbed {
    if redactor.is_empty() {
        return Scrubbed::Nothing;
    }
    let header = |name: &str| {
        response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.to_ascii_lowercase())
    };
    let encoded = header("content-encoding").is_some_and(|c| !c.trim().is_empty() && c.trim() != "identity");
    let wide = header("content-type").is_some_and(|t| t.contains("utf-16") || t.contains("utf-32"));
    let mut outcome = Scrubbed::Nothing;
    if (encoded || wide) && !response.body.is_empty() {
        response.body.clear();
        outcome = Scrubbed::Withheld;
    } else if redactor.scrub(&mut response.body) {
        // Emptied: it matched too often to be searched.
        outcome = if response.body.is_empty() { Scrubbed::Withheld } else { Scrubbed::Replaced };
        // `[REDACTED]` may be longer than what it replaced: the guest never gets more than its
        // limit.
        if response.body.len() as u64 > max_body {
            response.body.clear();
            outcome = Scrubbed::Withheld;
        }
    }
    for header in &mut response.headers {
        for text in [&mut header.name, &mut header.value] {
            let scrubbed = redactor.redact(text);
            if scrubbed != *text {
                *text = scrubbed;
                if matches!(outcome, Scrubbed::Nothing) {
                    outcome = Scrubbed::Replaced;
                }
            }
        }
    }
    outcome
}

/// Text of a request the connector chose, which a message going back to it must not repeat: the
/// URL as given and as parsed, and its host.
struct RequestText {
    needles: Vec<String>,
}

impl RequestText {
    fn of(url: &str) -> Self {
        let mut needles = vec![url.to_string()];
        if let Ok(parsed) = Url::parse(url) {
            needles.push(parsed.to_string());
            if let Some(host) = parsed.host_str() {
                needles.push(host.to_string());
            }
        }
        needles.retain(|n| !n.is_empty());
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self { needles }
    }

    /// `message` with every piece of the request replaced by a placeholder (ASCII case ignored).
    fn removed_from(&self, message: &str) -> String {
        let mut out = message.to_string();
        for needle in &self.needles {
            let lower = out.to_ascii_lowercase();
            let needle_lower = needle.to_ascii_lowercase();
            if !lower.contains(&needle_lower) {
                continue;
            }
            let mut rebuilt = String::with_capacity(out.len());
            let mut at = 0;
            for (start, _) in lower.match_indices(&needle_lower) {
                if start < at {
                    continue;
                }
                rebuilt.push_str(&out[at..start]);
                rebuilt.push_str("<the request's host or URL>");
                at = start + needle.len();
            }
            rebuilt.push_str(&out[at..]);
            out = rebuilt;
        }
        out
    }
}

/// Token pointers must be JSON pointers (RFC 6901), a few and short.
fn check_token_pointers(pointers: &[String]) -> Result<(), String> {
    if pointers.is_empty() || pointers.len() > MAX_TOKEN_POINTERS {
        return Err(format!("give between 1 and {MAX_TOKEN_POINTERS} token pointers"));
    }
    for (i, p) in pointers.iter().enumerate() {
        if !p.starts_with('/') || p.len() > MAX_TOKEN_POINTER_LEN {
            // By position: the pointer is the connector's own text (see the module's documentation).
            return Err(format!(
                "token pointer {} (counting from 1) is not a JSON pointer to a field (it must start with `/` and be at \
                 most {MAX_TOKEN_POINTER_LEN} bytes)",
                i + 1
            ));
        }
    }
    Ok(())
}

/// What the host took out of a token answer.
struct Taken {
    /// The credential, kept as a new handle.
    token: SecretValue,
    /// Every other credential-like value of the answer, scrubbed from it and redacted from then on.
    scrubbed: Vec<SecretValue>,
}

/// Takes the token out of a 2xx JSON answer. The first pointer naming a string of
/// [`MIN_TOKEN_LEN`] or more visible ASCII characters (a value that can go into a header, and
/// long enough to redact) is the token. It, the strings at the other pointers, and every string
/// field named like a credential ([`CREDENTIAL_FIELDS`], at any depth) are replaced by
/// `[REDACTED]` wherever they occur in the body (values and keys) and in the headers. A 2xx
/// answer without a token, not JSON, over [`MAX_TOKEN_BODY`], or with more than
/// [`MAX_ANSWER_CREDENTIALS`] credential fields is withheld whole, since what it holds is unknown. Other answers pass as they are: error bodies carry no credential, and the
/// connector needs them to say what went wrong.
fn take_token(response: &mut Response, pointers: &[String]) -> Option<Taken> {
    if !(200..300).contains(&response.status) {
        return None;
    }
    let body = std::mem::take(&mut response.body);
    if body.len() > MAX_TOKEN_BODY {
        return None;
    }
    let mut json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let token = pointers.iter().find_map(|p| {
        json.pointer(p)
            .and_then(|v| v.as_str())
            .filter(|t| (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string)
    })?;
    let mut needles: Vec<String> =
        pointers.iter().filter_map(|p| Some(json.pointer(p)?.as_str()?.to_string())).collect();
    credential_fields(&json, &mut needles);
    // A token answer carries a few credentials; one with many is not an answer this understands,
    // and each value kept would cost every later redaction.
    if needles.len() > MAX_TOKEN_POINTERS + MAX_ANSWER_CREDENTIALS {
        return None;
    }
    needles.retain(|n| !n.is_empty() && *n != token);
    needles.push(token.clone());
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    needles.dedup();
    let scrub = |text: &str| needles.iter().fold(text.to_string(), |t, n| t.replace(n.as_str(), REDACTED));
    json = scrub_json(json, &scrub);
    response.body = serde_json::to_vec(&json).expect("a parsed JSON value serializes");
    for header in &mut response.headers {
        header.value = scrub(&header.value);
    }
    let scrubbed = needles.into_iter().filter(|n| *n != token).map(SecretValue::new).collect();
    Some(Taken { token: SecretValue::new(token), scrubbed })
}

/// Field names that hold credentials in OAuth 2.0 and registry token answers.
const CREDENTIAL_FIELDS: &[&str] = &["token", "access_token", "refresh_token", "id_token"];

fn credential_fields(value: &serde_json::Value, found: &mut Vec<String>) {
    if found.len() > MAX_TOKEN_POINTERS + MAX_ANSWER_CREDENTIALS {
        return;
    }
    match value {
        serde_json::Value::Object(fields) => {
            for (name, v) in fields {
                match v {
                    serde_json::Value::String(s) if CREDENTIAL_FIELDS.contains(&name.as_str()) => found.push(s.clone()),
                    _ => credential_fields(v, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| credential_fields(v, found)),
        _ => {}
    }
}

fn scrub_json(value: serde_json::Value, scrub: &impl Fn(&str) -> String) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(scrub(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| scrub_json(v, scrub)).collect()),
        Value::Object(fields) => {
            Value::Object(fields.into_iter().map(|(k, v)| (scrub(&k), scrub_json(v, scrub))).collect())
        }
        other => other,
    }
}

impl HostState {
    fn deny(&self, kind: DenialKind, target: &str, reason: String) -> HttpError {
        lock(&self.cx.journal).deny(kind, target, &reason);
        HttpError::Denied(reason)
    }

    async fn send_checked(
        &mut self,
        request: Request,
        credential: Option<Credential>,
        token_pointers: Option<&[String]>,
        call: &mut HostCall,
        sent_to: &mut Option<String>,
    ) -> Result<Sent, HttpError> {
        // Every request spends the request budget, refused or not (and every call the host-call
        // budget): a guest looping on denied requests is stopped just the same.
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
        if let Some(pointers) = token_pointers {
            check_token_pointers(pointers).map_err(HttpError::InvalidRequest)?;
        }
        if url.scheme() != "http" && url.scheme() != "https" {
            let why = "the scheme is not allowed; use http or https".to_string();
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
        // Malformed headers are refused first, the same way whatever they hold: what is looked for
        // next is only what would leave.
        let mut headers = guest_headers(&request.headers)?;
        headers.insert(reqwest::header::ACCEPT_ENCODING, reqwest::header::HeaderValue::from_static("identity"));
        if let Some(cred) = &credential {
            credential_header_name(&cred.placement)?;
        }
        self.check_carried_secrets(&url, &request, credential.as_ref(), call)?;
        let binding = self.apply_credential(&mut headers, credential, &url, call)?;
        if let Some(body) = &request.body
            && body.len() > MAX_REQUEST_BODY
        {
            return Err(HttpError::InvalidRequest(format!("the request body is larger than {MAX_REQUEST_BODY} bytes")));
        }

        // A request ends a little before the deadline, so that the connector still has time to
        // report the timeout itself (which step, which class) rather than being stopped.
        let reserve = (self.cx.limits.deadline() / 5).min(REPORT_RESERVE);
        let remaining = self.cx.deadline.saturating_duration_since(Instant::now()).saturating_sub(reserve);
        let mut timeout = self.cx.egress.timeouts().request.min(remaining);
        if let Some(ms) = request.timeout_ms {
            timeout = timeout.min(Duration::from_millis(ms.into()));
        }
        if timeout.is_zero() {
            return Err(HttpError::Timeout("the invocation's deadline is too near for another request".into()));
        }
        let reqwest_method = reqwest::Method::from_bytes(method_name(request.method).as_bytes())
            .expect("every WIT method is a valid HTTP method");
        let mut builder = self.cx.client.request(reqwest_method, url.clone()).headers(headers).timeout(timeout);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let journal = self.cx.journal.clone();
        *sent_to = Some(url.origin().ascii_serialization());
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return Err(classify(&journal, &e, &call.target, Phase::Sending)),
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
        Ok(Sent { response: Response { status, headers, body }, url: url_without_query(&url), binding })
    }

    /// Looks for the value of every secret the invocation holds in what the connector wrote
    /// itself: the URL, its headers and its body. A connector that may not reveal secrets should
    /// hold none, so one found is a denial; for one that may, a value sent to an origin outside
    /// its binding is.
    fn check_carried_secrets(
        &self,
        url: &Url,
        request: &Request,
        credential: Option<&Credential>,
        call: &mut HostCall,
    ) -> Result<(), HttpError> {
        let mut j = lock(&self.cx.journal);
        if j.redactor.is_empty() {
            return Ok(());
        }
        let mut found = Vec::new();
        let mut places = Vec::new();
        let redactor = &j.redactor;
        let mut look = |place: &dyn Fn() -> String, bytes: &[u8]| {
            let here = redactor.found(bytes);
            if !here.is_empty() {
                places.push(place());
                found.extend(here);
            }
        };
        look(&|| "url".into(), url.as_str().as_bytes());
        for h in &request.headers {
            let place = || format!("header {}", redactor.redact(&h.name.to_ascii_lowercase()));
            look(&place, h.name.as_bytes());
            look(&place, h.value.as_bytes());
        }
        if let Some(body) = &request.body {
            look(&|| "body".into(), body);
        }
        match credential.map(|c| &c.placement) {
            Some(CredentialPlacement::Basic(username)) => look(&|| "basic-auth username".into(), username.as_bytes()),
            Some(CredentialPlacement::Header(p)) => {
                look(&|| "credential header".into(), p.name.as_bytes());
                look(&|| "credential prefix".into(), p.prefix.as_deref().unwrap_or_default().as_bytes());
            }
            _ => {}
        }
        places.dedup();
        if places.is_empty() {
            return Ok(());
        }
        j.secret_in_request = true;
        // A digest of a body holding a secret would let whoever reads the record test guesses
        // of it.
        if places.iter().any(|p| p == "body") {
            call.body_sha256 = None;
        }
        call.secret_in_request =
            places.iter().map(|p| crate::record::bounded_text(p, MAX_RECORDED_HEADER_NAME + 8)).collect();
        if !self.cx.may_reveal_secrets {
            drop(j);
            let why = "the request carries the value of a secret the invocation holds, which a connector without \
                       `reveal-secrets` never reads: apply the secret handle instead"
                .to_string();
            return Err(self.deny(DenialKind::SecretInRequest, &call.target, why));
        }
        found.sort_unstable();
        found.dedup();
        let outside = found.iter().find_map(|&i| j.redactor.binding(i).filter(|b| !b.permits(url)).cloned());
        drop(j);
        match outside {
            None => Ok(()),
            Some(binding) => {
                let why = format!(
                    "the request carries the value of a secret bound to {binding}; the request's origin is not one of them"
                );
                Err(self.deny(DenialKind::SecretBinding, &call.target, why))
            }
        }
    }

    /// Writes the credential into its header, and returns its binding.
    fn apply_credential(
        &mut self,
        map: &mut reqwest::header::HeaderMap,
        credential: Option<Credential>,
        url: &Url,
        call: &mut HostCall,
    ) -> Result<Option<Binding>, HttpError> {
        use reqwest::header::HeaderValue;
        let Some(cred) = credential else { return Ok(None) };
        let handle = self
            .table
            .get(&cred.secret)
            .map_err(|_| HttpError::InvalidRequest("the secret handle is not valid".into()))?;
        call.auth_ref = Some(handle.origin.clone());
        let secret = handle.value.clone();
        let binding = handle.binding.clone();
        let name = credential_header_name(&cred.placement)?;
        if !credential_header_allowed(name.as_str()) {
            let why = "a credential goes only into `Authorization` or a header named for one (such as \
                       `PRIVATE-TOKEN` or `X-Api-Key`), never into a header servers log as request metadata"
                .to_string();
            let target = format!("{} (header {})", call.target, name.as_str());
            return Err(self.deny(DenialKind::CredentialPlacement, &target, why));
        }
        call.credential_header = Some(name.as_str().to_string());
        if let Some(binding) = &binding
            && !binding.permits(url)
        {
            let why = format!(
                "the credential {} is bound to {binding}; the request's origin is not one of them",
                handle.origin
            );
            return Err(self.deny(DenialKind::SecretBinding, &call.target, why));
        }
        let value = match cred.placement {
            CredentialPlacement::Bearer => format!("Bearer {}", secret.expose()),
            CredentialPlacement::Basic(username) => {
                if username.contains(':') {
                    return Err(HttpError::InvalidRequest("a basic-auth username may not contain `:`".into()));
                }
                if lock(&self.cx.journal).add_basic_secret(&username, &secret, binding.as_ref()).is_err() {
                    return Err(HttpError::Denied("the invocation holds too many secret values".into()));
                }
                let pair = format!("{username}:{}", secret.expose());
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
            }
            CredentialPlacement::Header(placement) => {
                format!("{}{}", placement.prefix.unwrap_or_default(), secret.expose())
            }
        };
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| HttpError::InvalidRequest("the secret cannot be written into a header".into()))?;
        value.set_sensitive(true);
        map.insert(name, value);
        Ok(binding)
    }
}

/// The header a credential placement names.
fn credential_header_name(placement: &CredentialPlacement) -> Result<reqwest::header::HeaderName, HttpError> {
    match placement {
        CredentialPlacement::Bearer | CredentialPlacement::Basic(_) => Ok(reqwest::header::AUTHORIZATION),
        CredentialPlacement::Header(p) => reqwest::header::HeaderName::from_bytes(p.name.as_bytes())
            .map_err(|_| HttpError::InvalidRequest("the credential's header name is not a valid HTTP token".into())),
    }
}

/// The connector's own headers, checked. Messages name a header by its position, never by its
/// name: the name is the connector's own text (see the module's documentation).
fn guest_headers(headers: &[Header]) -> Result<reqwest::header::HeaderMap, HttpError> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    if headers.len() > MAX_HEADERS {
        return Err(HttpError::InvalidRequest(format!("more than {MAX_HEADERS} headers")));
    }
    let total: usize = headers.iter().map(|h| h.name.len() + h.value.len()).sum();
    if total > MAX_HEADER_BYTES {
        return Err(HttpError::InvalidRequest(format!("headers larger than {MAX_HEADER_BYTES} bytes")));
    }
    let mut map = HeaderMap::new();
    for (i, h) in headers.iter().enumerate() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| {
            HttpError::InvalidRequest(format!(
                "the name of header {} (counting from 1) is not a valid HTTP token",
                i + 1
            ))
        })?;
        if let Some(reserved) = RESERVED_HEADERS.iter().find(|r| **r == name.as_str()) {
            return Err(HttpError::InvalidRequest(format!("the header `{reserved}` is set by the host")));
        }
        if let Some(part) = WHOLE_ANSWER_HEADERS.iter().find(|r| **r == name.as_str()) {
            return Err(HttpError::InvalidRequest(format!(
                "the header `{part}` may not be set: the host reads every answer whole and as it is, to scrub it of \
                 secrets"
            )));
        }
        let value = HeaderValue::from_str(&h.value).map_err(|_| {
            HttpError::InvalidRequest(format!("the value of header {} (counting from 1) is not valid", i + 1))
        })?;
        map.append(name, value);
    }
    Ok(map)
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
    // A declared length (within the cap, checked above) sizes the buffer once.
    let mut body = Vec::with_capacity(response.content_length().map_or(0, |len| len as usize));
    loop {
        // The request's timeout (set on the request builder) covers the body too.
        let chunk = match response.chunk().await {
            Err(e) => return Err(classify(journal, &e, &call.target, Phase::ReadingBody)),
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

/// Where a request failed: a connection that ends before the answer began is gone; one that ends
/// in the middle of a body is a broken answer.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Sending,
    ReadingBody,
}

/// Maps a client error to the typed error the guest sees.
fn classify(journal: &Mutex<Journal>, e: &reqwest::Error, target: &str, phase: Phase) -> HttpError {
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
                // A pooled keep-alive connection whose server went away fails with an EOF before
                // any answer (over TLS: "peer closed connection without sending TLS
                // close_notify"): the server is gone, as much as a refused connection says.
                K::ConnectionRefused | K::ConnectionReset | K::ConnectionAborted | K::NotConnected => {
                    return HttpError::ConnectionRefused(io.to_string());
                }
                K::UnexpectedEof if phase == Phase::Sending => return HttpError::ConnectionRefused(io.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Response {
        Response { status, headers: Vec::new(), body: body.as_bytes().to_vec() }
    }

    fn pointers(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn the_token_is_kept_and_every_credential_scrubbed_from_the_answer() {
        let mut r = answer(
            200,
            r#"{"token":"tok-12345678","access_token":"other-87654321","refresh_token":"refresh-0001",
                "expires_in":300,"note":"Bearer tok-12345678","tok-12345678":1,"nested":{"id_token":"id-token-42"}}"#,
        );
        r.headers.push(Header { name: "x-echo".into(), value: "t=tok-12345678".into() });
        let taken = take_token(&mut r, &pointers(&["/token"])).unwrap();
        assert_eq!(taken.token.expose(), "tok-12345678");
        let mut scrubbed: Vec<&str> = taken.scrubbed.iter().map(|v| v.expose()).collect();
        scrubbed.sort();
        assert_eq!(scrubbed, ["id-token-42", "other-87654321", "refresh-0001"]);
        let text = String::from_utf8(r.body.clone()).unwrap();
        for secret in ["tok-12345678", "other-87654321", "refresh-0001", "id-token-42"] {
            assert!(!text.contains(secret), "{text}");
        }
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["note"], format!("Bearer {REDACTED}"));
        assert_eq!(body["expires_in"], 300);
        assert_eq!(body[REDACTED], 1);
        assert_eq!(r.headers[0].value, format!("t={REDACTED}"));
    }

    #[test]
    fn pointers_are_tried_in_order_and_unusable_values_skipped() {
        let mut r =
            answer(200, r#"{"token":"","short":"abc","access_token":"second-choice","nested":{"t":"x y z w v"}}"#);
        let taken = take_token(&mut r, &pointers(&["/nested/t", "/short", "/token", "/access_token"])).unwrap();
        assert_eq!(taken.token.expose(), "second-choice");
    }

    #[test]
    fn a_2xx_answer_without_a_token_is_withheld_and_errors_pass_through() {
        let mut no_token = answer(200, r#"{"jwt":"something-secret"}"#);
        assert!(take_token(&mut no_token, &pointers(&["/token"])).is_none());
        assert!(no_token.body.is_empty());
        let mut too_short = answer(200, r#"{"token":"abc"}"#);
        assert!(take_token(&mut too_short, &pointers(&["/token"])).is_none());
        assert!(too_short.body.is_empty());
        let mut not_json = answer(200, "token=abcdefghij");
        assert!(take_token(&mut not_json, &pointers(&["/token"])).is_none());
        assert!(not_json.body.is_empty());
        let mut huge = answer(200, &format!(r#"{{"token":"tok-12345678","pad":"{}"}}"#, "x".repeat(MAX_TOKEN_BODY)));
        assert!(take_token(&mut huge, &pointers(&["/token"])).is_none());
        assert!(huge.body.is_empty());
        let many: Vec<String> = (0..40).map(|i| format!(r#"{{"token":"credential-{i:04}"}}"#)).collect();
        let mut crowded = answer(200, &format!(r#"{{"token":"tok-12345678","all":[{}]}}"#, many.join(",")));
        assert!(take_token(&mut crowded, &pointers(&["/token"])).is_none());
        assert!(crowded.body.is_empty());
        let mut denied = answer(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
        assert!(take_token(&mut denied, &pointers(&["/token"])).is_none());
        assert!(String::from_utf8(denied.body).unwrap().contains("UNAUTHORIZED"));
    }

    #[test]
    fn the_record_hides_credential_named_query_parameters() {
        let url = Url::parse(
            "https://h.example:8443/p?page=2&access_token=abc&API_KEY=x&acc%65ss_token=y&x-amz-signature=s&q=key&flag#f",
        )
        .unwrap();
        assert_eq!(
            audit_target(&url),
            "https://h.example:8443/p?page=2&access_token=[REDACTED]&API_KEY=[REDACTED]&acc%65ss_token=[REDACTED]\
             &x-amz-signature=[REDACTED]&q=key&flag"
        );
    }

    #[test]
    fn token_pointers_are_validated() {
        assert!(check_token_pointers(&pointers(&["/token", "/access_token"])).is_ok());
        assert!(check_token_pointers(&[]).is_err());
        assert!(check_token_pointers(&pointers(&["token"])).is_err());
        assert!(check_token_pointers(&pointers(&[""])).is_err());
        assert!(check_token_pointers(&vec!["/a".to_string(); 9]).is_err());
        assert!(check_token_pointers(&[format!("/{}", "a".repeat(300))]).is_err());
    }
}
