//! The conformance kit: a connector run against servers that are not its product.
//!
//! A connector that reports success against the wrong server is worse than none: the catalog
//! shows green while nothing works, and the credential may have gone to whoever answered. The kit
//! starts impostors on loopback ([`Impostor::ALL`]: an empty JSON object, an HTML page, an
//! intranet Basic prompt, a 500, silence, a certificate for another host, a redirect to a login
//! page) and runs the connector's `test-connection` and `check-health` against each, in the real
//! sandbox, with a throwaway credential. Per case it reports whether the connector claimed
//! success (a false green), whether the credential reached the impostor, the failure class it
//! chose and whether that class fits the case, and whether it ended within its deadline.
//!
//! A false green fails the run, and so does a credential sent, unless the connector's manifest
//! declares `credential-before-proof` (its product answers nothing identifying without one), and
//! so does a run where the connector asked for no request at all (nothing was tested: usually a
//! configuration it refused).

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::record::Interface;
pub use crate::record::Operation;
use crate::secrets::{AuthRef, SecretNamespace, SecretValue, StaticSecretResolver};
use crate::{
    CA_CERTIFICATES_KEY, ConnectionConfig, ConnectorSource, FailureClass, HealthStatus, IntegrationType, LoadError,
    Sandbox, SandboxConfig, SetupError,
};

/// The AuthRef every case's integration carries; the kit's resolver holds its throwaway value.
pub const AUTH_REF: &str = "ref://conformance/kit/credential";

/// The most of a request an impostor reads (head and body): it only looks for the credential.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// A server that is not the connector's product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Impostor {
    /// 200 with an empty JSON object, to every request.
    EmptyJson,
    /// 200 with an HTML page, to every request.
    HtmlPage,
    /// An intranet's 401 with `WWW-Authenticate: Basic` and an HTML body.
    BasicPrompt,
    /// 500 to every request.
    ServerError,
    /// Accepts the connection and never answers.
    Silent,
    /// TLS with a certificate (from a CA the integration trusts) that names another host.
    WrongCertificate,
    /// 302 to a login page, which answers 200 with an HTML form.
    LoginRedirect,
}

impl Impostor {
    /// Every impostor, in the order the kit reports them.
    pub const ALL: [Impostor; 7] = [
        Self::EmptyJson,
        Self::HtmlPage,
        Self::BasicPrompt,
        Self::ServerError,
        Self::Silent,
        Self::WrongCertificate,
        Self::LoginRedirect,
    ];

    /// The case's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::EmptyJson => "empty-json",
            Self::HtmlPage => "html-page",
            Self::BasicPrompt => "basic-prompt",
            Self::ServerError => "server-error",
            Self::Silent => "silent",
            Self::WrongCertificate => "wrong-certificate",
            Self::LoginRedirect => "login-redirect",
        }
    }

    /// What the impostor does, for people.
    pub fn description(self) -> &'static str {
        match self {
            Self::EmptyJson => "200 with `{}` to every request",
            Self::HtmlPage => "200 with an HTML page to every request",
            Self::BasicPrompt => "401 `WWW-Authenticate: Basic realm=\"Intranet\"` with an HTML body",
            Self::ServerError => "500 to every request",
            Self::Silent => "accepts the connection and never answers",
            Self::WrongCertificate => "TLS, with a trusted CA's certificate for another host",
            Self::LoginRedirect => "302 to /login, an HTML sign-in form",
        }
    }

    /// The failure classes that say what happened. A connector that must send its credential
    /// first cannot tell an intranet's or a single sign-on's refusal from its product refusing
    /// the credential, so `auth` fits those for it.
    pub fn fitting(self, credential_before_proof: bool) -> Vec<FailureClass> {
        use FailureClass::*;
        match self {
            Self::EmptyJson | Self::HtmlPage => vec![ProviderMismatch],
            Self::BasicPrompt | Self::LoginRedirect if credential_before_proof => vec![ProviderMismatch, Auth],
            Self::BasicPrompt | Self::LoginRedirect => vec![ProviderMismatch],
            // A product that marks every answer (a header) may call an unmarked 500 another product.
            Self::ServerError => vec![ProviderDown, ProviderMismatch],
            Self::Silent => vec![Timeout],
            Self::WrongCertificate => vec![Tls],
        }
    }

    /// The answer to a request for `target` (path and query), or `None` to stay silent.
    fn answer(self, target: &str) -> Option<Vec<u8>> {
        let (status, headers, body): (&str, &[(&str, &str)], &str) = match self {
            Self::EmptyJson | Self::WrongCertificate => ("200 OK", &[("Content-Type", "application/json")], "{}"),
            Self::HtmlPage => ("200 OK", &[("Content-Type", "text/html; charset=utf-8")], WELCOME_PAGE),
            Self::BasicPrompt => (
                "401 Unauthorized",
                &[("Content-Type", "text/html; charset=utf-8"), ("WWW-Authenticate", "Basic realm=\"Intranet\"")],
                PROMPT_PAGE,
            ),
            Self::ServerError => {
                ("500 Internal Server Error", &[("Content-Type", "text/plain")], "Internal Server Error")
            }
            Self::Silent => return None,
            Self::LoginRedirect if target.starts_with("/login") => {
                ("200 OK", &[("Content-Type", "text/html; charset=utf-8")], LOGIN_PAGE)
            }
            Self::LoginRedirect => ("302 Found", &[("Location", "/login?next=%2F"), ("Content-Type", "text/html")], ""),
        };
        let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        for (name, value) in headers {
            out += &format!("{name}: {value}\r\n");
        }
        out += "\r\n";
        out += body;
        Some(out.into_bytes())
    }
}

const WELCOME_PAGE: &str =
    "<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>";
const PROMPT_PAGE: &str = "<!DOCTYPE html><html><head><title>401 Unauthorized</title></head><body><h1>Authorization Required</h1></body></html>";
const LOGIN_PAGE: &str = "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form method=\"post\" \
     action=\"/login\"><input name=\"username\"><input name=\"password\" type=\"password\"><button>Sign in</button>\
     </form></body></html>";

/// One export run against one impostor.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseReport {
    /// The impostor.
    pub impostor: Impostor,
    /// The export.
    pub operation: Operation,
    /// The connector said the integration works (a test's success; a health of `healthy` or
    /// `degraded`): a false green.
    pub claimed_success: bool,
    /// The failure class it chose.
    pub failure: Option<FailureClass>,
    /// Whether that class fits the case (see [`Impostor::fitting`]).
    pub class_fits: bool,
    /// The classes that would have fitted.
    pub fitting: Vec<FailureClass>,
    /// The connector's message.
    pub message: String,
    /// Requests the impostor received.
    pub requests: u32,
    /// Whether the connector asked the host for any HTTP request (to the impostor or not).
    pub asked: bool,
    /// The credential reached the impostor: seen in a request, or applied by the host to a request
    /// to it (a token derived from it included).
    pub credential_sent: bool,
    /// How long the invocation took, in milliseconds.
    pub duration_ms: u64,
    /// Its deadline, in milliseconds.
    pub deadline_ms: u64,
    /// Whether it ended by itself within its deadline (the sandbox did not have to stop it).
    pub within_deadline: bool,
}

/// The kit's verdict on a connector.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConformanceReport {
    /// The connector's provider id.
    pub provider: String,
    /// Its version.
    pub version: String,
    /// The sha256 of the component.
    pub sha256: String,
    /// The integration type the cases ran as.
    pub integration_type: IntegrationType,
    /// The manifest's reason to send the credential before the server is proven, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_before_proof: Option<String>,
    /// Every case, impostor by impostor, test before health.
    pub cases: Vec<CaseReport>,
    /// Cases where the connector claimed success.
    pub false_greens: usize,
    /// Cases where the credential reached the impostor.
    pub credentials_sent: usize,
    /// Cases whose failure class does not fit.
    pub misfits: usize,
    /// Cases the sandbox had to stop at the deadline.
    pub overdue: usize,
    /// The connector asked for no request in any case (it stopped at its configuration, or needs
    /// no server): nothing was tested, and the run does not pass.
    pub untested: bool,
    /// Something was tested, with no false green, and no credential sent unless the manifest
    /// declares why.
    pub passed: bool,
}

/// What the kit runs with.
pub struct Options {
    /// The integration type (must be one the connector serves, and one with a server).
    pub integration_type: IntegrationType,
    /// The integration's configuration (a JSON object). For the certificate case the kit's CA is
    /// added to its `caCertificates`.
    pub configuration: serde_json::Value,
    /// The throwaway credential behind [`AUTH_REF`]: any value by default; one of the shape the
    /// connector needs (a test private key) for a connector that signs with it.
    pub credential: String,
    /// The operator's sandbox (limits, timeouts); the kit allows loopback in its network policy.
    pub sandbox: SandboxConfig,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("integration_type", &self.integration_type)
            .field("configuration", &self.configuration)
            .field("credential", &crate::secrets::REDACTED)
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

/// Why the kit could not run.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// The options do not make sense for this connector.
    #[error("{0}")]
    Invalid(String),
    /// The sandbox could not be built.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The component was refused.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// An impostor could not start.
    #[error("cannot start an impostor server: {0}")]
    Impostor(String),
}

/// Runs every export against every impostor; the cases run at once.
pub async fn run(
    wasm: &[u8],
    source: ConnectorSource,
    options: Options,
) -> Result<ConformanceReport, ConformanceError> {
    let Options { integration_type, mut configuration, credential, mut sandbox } = options;
    if integration_type == IntegrationType::Artifact {
        return Err(ConformanceError::Invalid(
            "integrations of type `artifact` have no server, so there is nothing to impersonate".into(),
        ));
    }
    if !configuration.is_object() {
        return Err(ConformanceError::Invalid("the configuration must be a JSON object".into()));
    }
    if credential.trim().is_empty() {
        return Err(ConformanceError::Invalid("the throwaway credential is empty".into()));
    }
    sandbox.network.allow.push("127.0.0.1/32".parse().expect("a valid network"));
    let mut secrets = StaticSecretResolver::default();
    secrets.insert(AuthRef::parse(AUTH_REF).expect("a valid AuthRef"), SecretValue::new(credential.clone()));
    let sandbox = Arc::new(Sandbox::new(sandbox, Arc::new(secrets))?);
    let connector = Arc::new(sandbox.load(wasm, source)?);
    if !connector.manifest().serves(integration_type) {
        return Err(ConformanceError::Invalid(format!(
            "the connector does not serve integration type `{integration_type}`"
        )));
    }
    let declared = connector.manifest().connector.credential_before_proof.clone();
    let ca = KitCa::new().map_err(ConformanceError::Impostor)?;
    let configuration_with_ca = {
        let own = configuration.get(CA_CERTIFICATES_KEY).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let mut c = configuration.clone();
        c[CA_CERTIFICATES_KEY] = format!("{own}\n{}", ca.ca_pem).trim_start().into();
        c
    };
    // Only the certificate case needs the kit's CA; the others see the configuration as given.
    let configuration_plain = std::mem::take(&mut configuration);

    let mut cases = JoinSet::new();
    let mut impostors = Vec::new();
    for (index, impostor) in Impostor::ALL.into_iter().enumerate() {
        let tls = (impostor == Impostor::WrongCertificate).then(|| ca.acceptor.clone());
        // One server per export, so that each case's requests and credential are its own.
        for operation in [Operation::TestConnection, Operation::CheckHealth] {
            let server = ImpostorServer::start(impostor, tls.clone(), &credential)
                .await
                .map_err(|e| ConformanceError::Impostor(e.to_string()))?;
            let config = ConnectionConfig {
                integration_id: uuid::Uuid::new_v4().to_string(),
                name: format!("conformance-{}", impostor.name()),
                integration_type,
                provider: connector.provider().to_string(),
                base_url: Some(server.base_url.clone()),
                auth_ref: Some(AUTH_REF.into()),
                secret_namespace: SecretNamespace::Unscoped,
                configuration: if tls.is_some() { configuration_with_ca.clone() } else { configuration_plain.clone() },
                environment: Some("conformance".into()),
            };
            let (sandbox, connector, origin) = (sandbox.clone(), connector.clone(), server.base_url.clone());
            let fitting = impostor.fitting(declared.is_some());
            cases.spawn(async move {
                let (claimed_success, failure, message, record) = match operation {
                    Operation::TestConnection => {
                        let run = sandbox.test_connection(&connector, &config).await;
                        (run.result.success, run.result.failure, run.result.message, run.record)
                    }
                    Operation::CheckHealth => {
                        let run = sandbox.check_health(&connector, &config).await;
                        let claimed = run.result.status != HealthStatus::Unhealthy;
                        (claimed, run.result.failure, run.result.message, run.record)
                    }
                };
                // A request that failed before it was written (no connection, no TLS session) sent
                // nothing; one that timed out may have been written, and counts.
                let applied = record.host_calls.iter().any(|call| {
                    call.interface == Interface::Http
                        && call.auth_ref.is_some()
                        && call.target.starts_with(&origin)
                        && !matches!(call.error.as_deref(), Some("denied" | "dns" | "connection-refused" | "tls"))
                });
                let requested = record.host_calls.iter().any(|call| call.interface == Interface::Http);
                let stopped = record.trap.as_ref().is_some_and(|t| t.limit == Some(crate::limits::LimitKind::Deadline));
                let case = CaseReport {
                    impostor,
                    operation,
                    claimed_success,
                    class_fits: failure.is_some_and(|f| fitting.contains(&f)),
                    failure,
                    fitting,
                    message,
                    requests: 0,
                    asked: requested,
                    credential_sent: applied,
                    duration_ms: record.duration_ms,
                    deadline_ms: record.limits.deadline_ms,
                    within_deadline: !stopped && record.duration_ms <= record.limits.deadline_ms,
                };
                (index * 2 + operation as usize, case)
            });
            impostors.push(server);
        }
    }
    let mut reports: Vec<(usize, CaseReport)> = Vec::with_capacity(impostors.len());
    while let Some(done) = cases.join_next().await {
        reports.push(done.map_err(|e| ConformanceError::Invalid(format!("a case did not finish: {e}")))?);
    }
    reports.sort_by_key(|(i, _)| *i);
    let cases: Vec<CaseReport> = reports
        .into_iter()
        .map(|(i, mut case)| {
            let seen = impostors[i].seen();
            case.requests = seen.requests;
            case.credential_sent |= seen.credential;
            case
        })
        .collect();

    let count = |f: fn(&CaseReport) -> bool| cases.iter().filter(|c| f(c)).count();
    let false_greens = count(|c| c.claimed_success);
    let credentials_sent = count(|c| c.credential_sent);
    let misfits = count(|c| !c.claimed_success && !c.class_fits);
    let overdue = count(|c| !c.within_deadline);
    let untested = !cases.iter().any(|c| c.asked);
    Ok(ConformanceReport {
        provider: connector.provider().to_string(),
        version: connector.manifest().connector.version.clone(),
        sha256: connector.sha256().to_string(),
        integration_type,
        passed: !untested && false_greens == 0 && (credentials_sent == 0 || declared.is_some()),
        credential_before_proof: declared,
        cases,
        false_greens,
        credentials_sent,
        misfits,
        overdue,
        untested,
    })
}

/// What an impostor noticed.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    requests: u32,
    credential: bool,
}

/// An impostor listening on loopback; it stops, with every connection it holds, when dropped.
struct ImpostorServer {
    base_url: String,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ImpostorServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ImpostorServer {
    async fn start(
        impostor: Impostor,
        tls: Option<tokio_rustls::TlsAcceptor>,
        credential: &str,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let needles = Arc::new(needles(credential));
        let task = {
            let (seen, tls) = (seen.clone(), tls.clone());
            tokio::spawn(async move {
                // Connections live in the set, so aborting the server drops them all.
                let mut connections = JoinSet::new();
                loop {
                    let Ok((stream, _)) = listener.accept().await else { return };
                    let (seen, needles, tls) = (seen.clone(), needles.clone(), tls.clone());
                    connections.spawn(async move {
                        match tls {
                            None => serve(stream, impostor, &seen, &needles).await,
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    serve(stream, impostor, &seen, &needles).await;
                                }
                            }
                        }
                    });
                    while connections.try_join_next().is_some() {}
                }
            })
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        Ok(Self { base_url: format!("{scheme}://127.0.0.1:{port}"), seen, task })
    }

    fn seen(&self) -> Seen {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the credential looks like in a request: the value, and each long line of a multi-line
/// one (a PEM key's).
fn needles(credential: &str) -> Vec<Vec<u8>> {
    let mut needles = vec![credential.as_bytes().to_vec()];
    needles.extend(
        credential.lines().map(str::trim).filter(|l| l.len() >= 16 && *l != credential).map(|l| l.as_bytes().to_vec()),
    );
    needles
}

/// Reads one request (head and body, up to [`MAX_REQUEST_BYTES`]), notes it, and answers it.
async fn serve(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    impostor: Impostor,
    seen: &Mutex<Seen>,
    needles: &[Vec<u8>],
) {
    let mut request = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find(&request, b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) if request.len() + n > MAX_REQUEST_BYTES => return,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let length = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    while request.len() < head_end + length.min(MAX_REQUEST_BYTES - head_end) {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&chunk[..n.min(MAX_REQUEST_BYTES - request.len())]),
        }
    }
    {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.requests += 1;
        seen.credential |= carries(&request, &head, needles);
    }
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    match impostor.answer(target) {
        Some(answer) => {
            let _ = stream.write_all(&answer).await;
            let _ = stream.shutdown().await;
        }
        // Silence: hold the connection until the caller gives up or the kit ends.
        None => {
            let _ = stream.read(&mut chunk).await;
            std::future::pending::<()>().await;
        }
    }
}

/// Whether a request carries the credential: as it is anywhere in it, or inside a Basic
/// `Authorization`.
fn carries(request: &[u8], head: &str, needles: &[Vec<u8>]) -> bool {
    use base64::Engine;
    let basic = header(head, "authorization")
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")).map(str::trim))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    needles.iter().any(|n| find(request, n).is_some() || find(&basic, n).is_some())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The kit's own CA, which the certificate case's integration trusts, and a server
/// certificate it signed for a host that is not the one the connector calls.
struct KitCa {
    ca_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

/// The host the certificate names: never the loopback address the connector calls.
const CERTIFICATE_HOST: &str = "impostor.invalid";

impl KitCa {
    fn new() -> Result<Self, String> {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let fail = |e: rcgen::Error| format!("cannot make the kit's certificate: {e}");
        let ca_key = KeyPair::generate().map_err(fail)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).map_err(fail)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().map_err(fail)?;
        let leaf = CertificateParams::new(vec![CERTIFICATE_HOST.to_string()])
            .map_err(fail)?
            .signed_by(&leaf_key, &issuer)
            .map_err(fail)?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(leaf.der().to_vec())],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .map_err(|e| e.to_string())?;
        Ok(Self { ca_pem: ca_cert.pem(), acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_found_as_it_is_inside_basic_and_by_its_pem_lines() {
        let canary = needles("s3cr3t-canary-value");
        let plain = b"GET / HTTP/1.1\r\nAuthorization: Bearer s3cr3t-canary-value\r\n\r\n";
        assert!(carries(plain, &String::from_utf8_lossy(plain), &canary));
        // base64("user:s3cr3t-canary-value")
        let basic = b"GET / HTTP/1.1\r\nauthorization: Basic dXNlcjpzM2NyM3QtY2FuYXJ5LXZhbHVl\r\n\r\n";
        assert!(carries(basic, &String::from_utf8_lossy(basic), &canary));
        let none = b"GET / HTTP/1.1\r\nAuthorization: Basic dXNlcjpvdGhlcg==\r\n\r\n";
        assert!(!carries(none, &String::from_utf8_lossy(none), &canary));

        let pem = "-----BEGIN KEY-----\nMIIEowIBAAKCAQEAtest0123456789\nshort\n-----END KEY-----";
        let pem_needles = needles(pem);
        let body = b"POST / HTTP/1.1\r\nContent-Length: 30\r\n\r\nMIIEowIBAAKCAQEAtest0123456789";
        assert!(carries(body, &String::from_utf8_lossy(body), &pem_needles));
    }

    #[test]
    fn every_impostor_but_the_silent_one_answers_and_the_redirect_leads_to_a_login_form() {
        for impostor in Impostor::ALL {
            let answer = impostor.answer("/api/v1/version").map(|a| String::from_utf8(a).unwrap());
            assert_eq!(answer.is_none(), impostor == Impostor::Silent, "{impostor:?}");
            assert!(!impostor.fitting(false).is_empty());
        }
        let redirect = String::from_utf8(Impostor::LoginRedirect.answer("/").unwrap()).unwrap();
        assert!(redirect.starts_with("HTTP/1.1 302") && redirect.contains("Location: /login"), "{redirect}");
        let login = String::from_utf8(Impostor::LoginRedirect.answer("/login?next=%2F").unwrap()).unwrap();
        assert!(login.starts_with("HTTP/1.1 200") && login.contains("type=\"password\""), "{login}");
        assert!(Impostor::BasicPrompt.fitting(true).contains(&FailureClass::Auth));
        assert!(!Impostor::BasicPrompt.fitting(false).contains(&FailureClass::Auth));
    }
}
