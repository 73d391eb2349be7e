//! A minimal HTTP/1.1 server on loopback for the sandbox tests: it counts requests, remembers
//! the credentials it saw, and serves the handful of behaviours the tests need.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The short-lived token `/token` hands out for any credential (an OCI token endpoint's answer).
pub const ISSUED_TOKEN: &str = "derived-token-7f3a91c2e5d4";
/// Other credentials of a token answer, which the connector must not see either.
pub const OTHER_CREDENTIALS: [&str; 2] = ["other-access-token-5e6f", "refresh-token-9a8b7c"];
const MULTI_BODY: &str = r#"{"token":"derived-token-7f3a91c2e5d4","access_token":"other-access-token-5e6f","refresh_token":"refresh-token-9a8b7c","expires_in":300}"#;

#[derive(Default)]
struct Seen {
    hits: AtomicUsize,
    authorization: Mutex<Vec<String>>,
    /// Every request's head (request line and headers), as it arrived.
    heads: Mutex<Vec<String>>,
}

pub struct StubServer {
    port: u16,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StubServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Seen::default());
        let task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    tokio::spawn(serve(stream, seen.clone()));
                }
            })
        };
        Self { port, seen, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn hits(&self) -> usize {
        self.seen.hits.load(Ordering::SeqCst)
    }

    pub fn seen_authorization(&self) -> Vec<String> {
        self.seen.authorization.lock().unwrap().clone()
    }

    /// Every request's head, as it arrived.
    pub fn seen_heads(&self) -> Vec<String> {
        self.seen.heads.lock().unwrap().clone()
    }
}

async fn serve(mut stream: TcpStream, seen: Arc<Seen>) {
    loop {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => buf.push(byte[0]),
                _ => return,
            }
            if buf.len() > 64 * 1024 {
                return;
            }
        }
        seen.hits.fetch_add(1, Ordering::SeqCst);
        let head = String::from_utf8_lossy(&buf).into_owned();
        seen.heads.lock().unwrap().push(head.clone());
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
            })
        };
        let mut echoed = Vec::new();
        for name in ["authorization", "x-api-key"] {
            if let Some(v) = header(name) {
                seen.authorization.lock().unwrap().push(v.clone());
                echoed.push(v);
            }
        }
        let route = path.split('?').next().unwrap_or("/");
        let response = match route {
            "/ok" | "/collect" => ok("ok"),
            // A product that names itself in every answer, as the Python example expects.
            "/product" => {
                let body = r#"{"status":"ok"}"#;
                format!(
                    "HTTP/1.1 200 OK\r\nX-Version: 2.4.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            "/echo" => ok(&echoed.join(" ")),
            // Servers that reflect the request: an error page quoting it, a JSON echo, the value
            // re-encoded, a redirect whose Location carries it (to a host the tests pin).
            "/echo-error" => {
                let quoted = echoed.join(" ");
                let body = format!("<h1>Bad request</h1><pre>Authorization: {quoted}</pre>");
                format!(
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nX-Debug-Authorization: {quoted}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            "/echo-json" => {
                json("200 OK", &serde_json::json!({"headers": {"authorization": echoed.join(" ")}}).to_string())
            }
            "/echo-encoded" => ok(&encoded(&echoed.join(" "), path.split_once("as=").map_or("", |(_, e)| e))),
            "/echo-redirect" => {
                let value: String = url::form_urlencoded::byte_serialize(echoed.join(" ").as_bytes()).collect();
                redirect(&format!("http://mirror.stella.test/landing?auth={value}"))
            }
            "/landing" => ok("landed"),
            // A server that compresses though asked for `identity` (the host cannot search such a
            // body, so it withholds it): the echo is sent as is under a gzip label.
            "/echo-gzip" => {
                let body = echoed.join(" ");
                format!("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n{body}", body.len())
            }
            // Token answers whose other credential fields are strings a connector could have chosen:
            // the start of the canary, and the stub's own address.
            "/token-overlap" => json(
                "200 OK",
                r#"{"token":"overlap-token-0001","access_token":"er c","refresh_token":"Bearer canary-5ecr","id_token":"r can"}"#,
            ),
            "/token-host" => json("200 OK", r#"{"token":"host-token-00001","access_token":"127.0.0.1"}"#),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                ok("slow ok")
            }
            "/token" if echoed.is_empty() => {
                json("401 Unauthorized", r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
            }
            "/token" => json(
                "200 OK",
                &format!(
                    r#"{{"token":"{ISSUED_TOKEN}","access_token":"{ISSUED_TOKEN}","expires_in":300,"issued_at":"2026-11-27T10:00:00Z"}}"#
                ),
            ),
            "/token-opaque" => json("200 OK", r#"{"jwt":"opaque-derived-secret-0b1c9d"}"#),
            // An answer with three different credentials, one of them echoed in a header too.
            "/token-multi" => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Echo: t={ISSUED_TOKEN}\r\nContent-Length: {}\r\n\r\n{}",
                MULTI_BODY.len(),
                MULTI_BODY
            ),
            "/token-short" => json("200 OK", r#"{"token":"abc"}"#),
            "/protected" if echoed.iter().any(|v| *v == format!("Bearer {ISSUED_TOKEN}")) => ok("protected ok"),
            "/protected" => json("401 Unauthorized", r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#),
            "/redirect-metadata" => redirect("http://169.254.169.254/latest/meta-data/"),
            "/redirect-stray" => redirect("https://exfiltrate.example.net/"),
            "/big-declared" => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\nxxxx").await;
                return;
            }
            "/flood" => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
                let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "f".repeat(16 * 1024));
                // Until the client hangs up.
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
                return;
            }
            _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
        };
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn ok(body: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

fn json(status: &str, body: &str) -> String {
    format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// `text` re-encoded the way `/echo-encoded?as=<encoding>` asks.
fn encoded(text: &str, encoding: &str) -> String {
    use base64::Engine as _;
    match encoding {
        "hex" => hex::encode(text),
        "HEX" => hex::encode_upper(text),
        "base64" => base64::engine::general_purpose::STANDARD.encode(text),
        "base64url" => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text),
        "percent" => text.bytes().map(|b| format!("%{b:02x}")).collect(),
        "lower" => text.to_lowercase(),
        "upper" => text.to_uppercase(),
        "reversed" => text.chars().rev().collect(),
        _ => text.to_string(),
    }
}

fn redirect(to: &str) -> String {
    format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
}
