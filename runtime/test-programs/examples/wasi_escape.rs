//! Tries the WASI doors: a file, an environment variable, a socket, a name lookup.
use stella_connector_sdk::prelude::*;

struct Escape;

impl Connector for Escape {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let target = configuration(config).get("socket").and_then(|v| v.as_str()).unwrap_or("127.0.0.1:9").to_string();
        let mut report = Report::new();
        let mut escaped = Vec::new();
        match std::fs::read("/etc/passwd") {
            Ok(_) => escaped.push("file"),
            Err(e) => report.pass("file", e.to_string()),
        }
        match std::fs::read_dir(".") {
            Ok(_) => escaped.push("dir"),
            Err(e) => report.pass("dir", e.to_string()),
        }
        match std::env::var("HOME").or_else(|_| std::env::var("PATH")) {
            Ok(_) => escaped.push("env"),
            Err(e) => report.pass("env", e.to_string()),
        }
        match std::env::vars().next() {
            Some(_) => escaped.push("env-list"),
            None => report.pass("env-list", "empty"),
        }
        match std::net::TcpStream::connect(target.as_str()) {
            Ok(_) => escaped.push("socket"),
            Err(e) => report.pass("socket", e.to_string()),
        }
        match std::net::ToSocketAddrs::to_socket_addrs("localhost:80") {
            Ok(addrs) if addrs.len() > 0 => escaped.push("dns"),
            Ok(_) => report.pass("dns", "no addresses"),
            Err(e) => report.pass("dns", e.to_string()),
        }
        if escaped.is_empty() {
            report.success("every WASI door was closed")
        } else {
            report.fail(FailureClass::Internal, "escape", format!("escaped through: {}", escaped.join(", ")))
        }
    }
}

register_connector!(Escape);
