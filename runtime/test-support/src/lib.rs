//! Test support shared by the sandbox's tests (`runtime/tests`) and the connectors' tests
//! (`connectors/builtin/tests`).
//!
//! [`Stub`] is a provider stand-in: an HTTP/1.1 server on loopback (plain, or TLS with a
//! certificate from a [`PrivateCa`]) that answers each `METHOD /path` with a canned response the
//! test sets, remembers every request it saw, and answers anything else like a generic web server
//! would (404 with an HTML page).
//!
//! [`registry::Registry`] is the real CNCF distribution registry (Debian's `docker-registry`),
//! started for one test with Basic auth and a certificate from a private CA.

pub mod registry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A canned response.
#[derive(Clone, Debug)]
pub struct Canned {
    /// The status code.
    pub status: u16,
    /// The headers (`Content-Length` is added).
    pub headers: Vec<(String, String)>,
    /// The body (none is sent to a HEAD request).
    pub body: Vec<u8>,
}

impl Canned {
    /// An empty answer with `status`.
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    /// A JSON answer.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::new(status).header("Content-Type", "application/json").body(body.to_string())
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// A request the stub received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The path, with its query.
    pub path: String,
    /// The headers, in the order sent.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct State {
    routes: Mutex<HashMap<String, Canned>>,
    seen: Mutex<Vec<Seen>>,
}

/// A private CA and a server certificate it signed (for `localhost` and `127.0.0.1`, or the names
/// given).
#[derive(Debug)]
pub struct PrivateCa {
    /// The CA certificate, as an integration's `caCertificates` carries it.
    pub ca_pem: String,
    /// The server certificate (PEM).
    pub leaf_pem: String,
    /// The server certificate's private key (PEM).
    pub leaf_key_pem: String,
    /// The server certificate (DER).
    pub leaf_der: Vec<u8>,
    /// The server certificate's private key (PKCS #8 DER).
    pub leaf_key_der: Vec<u8>,
}

impl Default for PrivateCa {
    fn default() -> Self {
        Self::new()
    }
}

impl PrivateCa {
    /// A new CA, and a server certificate it signed for `localhost` and `127.0.0.1`.
    pub fn new() -> Self {
        Self::for_names(&["localhost", "127.0.0.1"])
    }

    /// A new CA, and a server certificate it signed for these names.
    pub fn for_names(names: &[&str]) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            leaf_pem: leaf.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
            leaf_der: leaf.der().to_vec(),
            leaf_key_der: leaf_key.serialize_der(),
        }
    }
}

/// The headers that carry a credential to the providers the stubs stand in for: the standard one,
/// GitLab's and CircleCI's.
pub const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "private-token", "circle-token"];

/// A provider stand-in on loopback; stops when dropped.
#[derive(Debug)]
pub struct Stub {
    /// `http://127.0.0.1:<port>` or `https://127.0.0.1:<port>`.
    pub base_url: String,
    /// The private CA that signed a TLS stub's certificate (PEM), as an integration's
    /// `caCertificates` carries it.
    pub ca_pem: Option<String>,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stub {
    /// A plain HTTP stub.
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// A TLS stub whose certificate (for `127.0.0.1` and `localhost`) a private CA signed.
    pub async fn start_tls() -> Self {
        Self::start_tls_for(&["localhost", "127.0.0.1"]).await
    }

    /// A TLS stub whose certificate, from a private CA, names `names`: a public provider's fixed
    /// host (`api.bitbucket.org`), which the sandbox's `network.pin` sends here. Its `base_url`
    /// is still the loopback address; `addr` is what to pin the name to.
    pub async fn start_tls_for(names: &[&str]) -> Self {
        let ca = PrivateCa::for_names(names);
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(ca.leaf_der.clone())],
                rustls::pki_types::PrivateKeyDer::Pkcs8(ca.leaf_key_der.clone().into()),
            )
            .unwrap();
        let mut stub = Self::serve(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await;
        stub.ca_pem = Some(ca.ca_pem);
        stub
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let task = {
            let state = state.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else { return };
                    let (state, tls) = (state.clone(), tls.clone());
                    tokio::spawn(async move {
                        match tls {
                            None => answer(stream, &state).await,
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    answer(stream, &state).await;
                                }
                            }
                        }
                    });
                }
            })
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        Self { base_url: format!("{scheme}://127.0.0.1:{port}"), ca_pem: None, state, task }
    }

    /// The stub's socket address (what a pinned host name resolves to).
    pub fn addr(&self) -> std::net::SocketAddr {
        let port =
            self.base_url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("the base URL ends with a port");
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Answers `METHOD /path` (the path with its query) with `canned` from now on.
    pub fn on(&self, method: &str, path: &str, canned: Canned) -> &Self {
        self.state.routes.lock().unwrap().insert(format!("{method} {path}"), canned);
        self
    }

    /// Answers `METHOD /path` with `canned` when the request carries a credential header
    /// ([`CREDENTIAL_HEADERS`]; taking precedence over [`Stub::on`], which then answers the
    /// requests without one).
    pub fn on_authorized(&self, method: &str, path: &str, canned: Canned) -> &Self {
        self.state.routes.lock().unwrap().insert(format!("{method} {path} +auth"), canned);
        self
    }

    /// Forgets every canned answer.
    pub fn clear(&self) {
        self.state.routes.lock().unwrap().clear();
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// Serves the requests of one connection (keep-alive) until the client closes it.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(stream: S, state: &State) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers = Vec::new();
        let mut length = 0;
        loop {
            let mut h = String::new();
            if stream.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let authorized = headers.iter().any(|(n, _)| CREDENTIAL_HEADERS.iter().any(|c| n.eq_ignore_ascii_case(c)));
        let canned = {
            let routes = state.routes.lock().unwrap();
            let found = authorized.then(|| routes.get(&format!("{method} {path} +auth"))).flatten();
            found.or_else(|| routes.get(&format!("{method} {path}"))).cloned()
        };
        let canned = canned.unwrap_or_else(|| {
            Canned::new(404)
                .header("Content-Type", "text/html")
                .body("<html><body><h1>404 Not Found</h1><hr><center>nginx</center></body></html>")
        });
        state.seen.lock().unwrap().push(Seen { method: method.clone(), path, headers });
        let mut head = format!("HTTP/1.1 {} Stub\r\n", canned.status);
        for (name, value) in &canned.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let body: &[u8] = if method == "HEAD" { &[] } else { &canned.body };
        head.push_str(&format!("Content-Length: {}\r\n\r\n", canned.body.len()));
        if stream.get_mut().write_all(head.as_bytes()).await.is_err()
            || stream.get_mut().write_all(body).await.is_err()
            || stream.get_mut().flush().await.is_err()
        {
            return;
        }
    }
}
