//! A connector without `reveal-secrets` tries to read its credential all the same. It has the host
//! apply the credential to requests whose answers reflect it (an echo, a redirect whose `Location`
//! carries it, an error page quoting it, the value re-encoded every way a server could), follows
//! the redirect, and asks whether a guess is right through the errors of requests it cannot send
//! and through a request carrying the guess. It reports everything it got back as steps; the test
//! checks that none of it holds the value and that the record shows every attempt.
use stella_connector_sdk::http::ResponseExt;
use stella_connector_sdk::prelude::*;

struct Thief;

/// Every way the stub re-encodes what it was sent (`/echo-encoded?as=…`).
const ENCODINGS: [&str; 8] = ["hex", "HEX", "base64", "base64url", "percent", "lower", "upper", "reversed"];

fn answer(r: Result<http::Response, http::HttpError>) -> String {
    match r {
        Ok(r) => {
            let headers: Vec<String> = r.headers.iter().map(|h| format!("{}: {}", h.name, h.value)).collect();
            format!("{} [{}] {}", r.status, headers.join("; "), r.text())
        }
        Err(e) => format!("error {e:?}"),
    }
}

impl Connector for Thief {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let mut report = Report::new();
        let base = config.base_url.clone().unwrap_or_default();
        let Some(Ok(secret)) = secrets::integration_secret(config) else {
            return report.fail(FailureClass::Auth, "resolve", "no secret");
        };
        let settings = configuration(config);
        let text = |key: &str| settings.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_string();

        for path in ["/echo", "/echo-error", "/echo-json"] {
            report.pass(path, answer(http::get(&format!("{base}{path}")).bearer(&secret).send()));
        }
        for encoding in ENCODINGS {
            let url = format!("{base}/echo-encoded?as={encoding}");
            report.pass(&format!("encoded-{encoding}"), answer(http::get(&url).bearer(&secret).send()));
        }
        // The redirect: what its Location says, then where following it (with the credential, as a
        // connector following a redirect does) leads.
        let redirect = http::get(&format!("{base}/echo-redirect")).bearer(&secret).send();
        let location = redirect.as_ref().ok().and_then(|r| r.header("location")).unwrap_or_default().to_string();
        report.pass("redirect", answer(redirect));
        if !location.is_empty() {
            report.pass("followed", answer(http::get(&location).bearer(&secret).send()));
        }

        // The guesses: a wrong one and, for the test, the right one. The errors of requests the host
        // refuses to build must say the same of both.
        for label in ["wrong", "right"] {
            let guess = text(label);
            let bad_name = http::get(&format!("{base}/ok")).header(&format!("x-{guess} bad"), "1").send();
            report.pass(&format!("header-name-{label}"), answer(bad_name));
            let bad_value = http::get(&format!("{base}/ok")).header("x-guess", &format!("{guess}\n")).send();
            report.pass(&format!("header-value-{label}"), answer(bad_value));
            let placement =
                http::get(&format!("{base}/ok")).secret_header(&format!("{guess} bad"), None, &secret).send();
            report.pass(&format!("placement-{label}"), answer(placement));
            let origin = http::get(&format!("http://{guess}.invalid/")).send();
            report.pass(&format!("origin-{label}"), answer(origin));
            let pointer = http::get(&format!("{base}/token")).bearer(&secret).send_for_token(&[&guess]);
            report.pass(&format!("pointer-{label}"), format!("{:?}", pointer.map(|(r, t)| (r.status, t.is_some()))));
            // A request that would carry the guess: the right one is refused (and raises the alarm).
            let carried = http::get(&format!("{base}/collect?q={guess}")).header("x-leak", &guess).send();
            report.pass(&format!("carried-{label}"), answer(carried));
        }
        // Answers it cannot be searched in, or only in part: asked for, refused; sent unasked,
        // withheld.
        let gzip = http::get(&format!("{base}/echo")).header("Accept-Encoding", "gzip").bearer(&secret).send();
        report.pass("accept-encoding", answer(gzip));
        let range = http::get(&format!("{base}/echo")).header("Range", "bytes=7-10").bearer(&secret).send();
        report.pass("range", answer(range));
        report.pass("gzip", answer(http::get(&format!("{base}/echo-gzip")).bearer(&secret).send()));
        // A string of its choosing made a held value (a token answer's other fields): the start of
        // the secret, to cut it in half in the next echo.
        let _ = http::get(&format!("{base}/token-overlap")).send_for_token(&["/token"]);
        report.pass("overlap", answer(http::get(&format!("{base}/echo")).bearer(&secret).send()));
        // Credentials go only into headers meant for them.
        let referer = http::get(&format!("{base}/echo")).secret_header("Referer", None, &secret).send();
        report.pass("referer", answer(referer));
        let cookie = http::get(&format!("{base}/echo")).secret_header("Cookie", Some("session="), &secret).send();
        report.pass("cookie", answer(cookie));
        // Last, the server's address made a held value: a request that names it now carries that
        // value (refused), and the address is redacted from what follows but not from the origins
        // the record says were contacted.
        let _ = http::get(&format!("{base}/token-host")).send_for_token(&["/token"]);
        report.pass("hidden", answer(http::get(&format!("{base}/collect?after=hiding")).send()));
        report.success("done")
    }
}

register_connector!(Thief, "connector-thief.toml");
