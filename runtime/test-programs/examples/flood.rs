//! Calls one of the host's imports without end, keeping what it gets, until the host stops it.
//! `configuration.flood` says which (see `FLOODS`); the sandbox tests run each.
use stella_connector_sdk::crypto::{JwtAlgorithm, sign_jwt};
use stella_connector_sdk::prelude::*;
use test_programs::FLOODS;

struct Flood;

impl Connector for Flood {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let base = config.base_url.clone().unwrap_or_default();
        let which = configuration(config).get("flood").and_then(|v| v.as_str()).unwrap_or("").to_string();
        let own = || secrets::integration_secret(config).expect("an AuthRef").expect("it resolves");
        let mut kept = Vec::new();
        let mut pollables = Vec::new();
        let mut n: u64 = 0;
        loop {
            n += 1;
            match which.as_str() {
                "send-allowed" => drop(http::get(&format!("{base}/ok")).send()),
                "send-refused" => drop(http::get("https://exfiltrate.example.net/collect").send()),
                "send-for-token" => {
                    let credential = own();
                    loop {
                        let asked = http::get(&format!("{base}/token")).bearer(&credential).send_for_token(&["/token"]);
                        if let Ok((_, Some(token))) = asked {
                            kept.push(token);
                        }
                    }
                }
                "resolve-keep" => kept.push(own()),
                "resolve-drop" => drop(own()),
                "resolve-foreign" => drop(secrets::resolve("ref://integrations/other/token")),
                "reveal" => {
                    let secret = own();
                    loop {
                        drop(secret.reveal());
                    }
                }
                "sign-jwt" | "sign-jwt-keep" => {
                    let key = own();
                    loop {
                        n += 1;
                        match sign_jwt(&key, JwtAlgorithm::Es256, &format!(r#"{{"n":{n}}}"#)) {
                            Ok(token) if which == "sign-jwt-keep" => kept.push(token),
                            _ => {}
                        }
                    }
                }
                "log-empty" => log::info(""),
                "log-long" => log::info(&"x".repeat(1 << 20)),
                "stdout" => println!("line {n} of a flood on stdout"),
                "stderr" => eprintln!("line {n} of a flood on stderr"),
                "wasi-socket" => drop(std::net::TcpStream::connect("10.0.0.1:80")),
                "wasi-pollables" => {
                    pollables.push(wasip2::clocks::monotonic_clock::subscribe_duration(1_000_000_000));
                }
                "secret-method" => {
                    let secret = own();
                    loop {
                        std::hint::black_box(secret.auth_ref());
                    }
                }
                other => {
                    return Report::new().fail(
                        FailureClass::Misconfigured,
                        "flood",
                        format!("unknown flood `{other}`; known: {}", FLOODS.join(", ")),
                    );
                }
            }
        }
    }
}

register_connector!(Flood, "connector-flood.toml");
