//! Uses `http.send-for-token` the way an OCI registry connector does: trades the integration's
//! secret for a short-lived token at `/token`, applies the token's handle to `/protected`, then
//! tries to get the token's value out (reveal, an echoing server, logs, stdout, the result). Also
//! checks that a 2xx answer without a token is withheld and an error answer passes whole.
use stella_connector_sdk::http::ResponseExt;
use stella_connector_sdk::prelude::*;

struct DerivedToken;

impl Connector for DerivedToken {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let mut report = Report::new();
        let base = config.base_url.clone().unwrap_or_default();
        let Some(Ok(secret)) = secrets::integration_secret(config) else {
            return report.fail(FailureClass::Auth, "resolve", "no secret");
        };
        let (answer, token) =
            match http::get(&format!("{base}/token")).bearer(&secret).send_for_token(&["/token", "/access_token"]) {
                Ok(x) => x,
                Err(e) => return report.fail(e.failure_class(), "token", e.to_string()),
            };
        let Some(token) = token else {
            return report.fail(FailureClass::Auth, "token", format!("status {}: {}", answer.status, answer.text()));
        };
        report.pass("token", answer.text());
        report.pass("origin", token.auth_ref());
        match token.reveal() {
            Ok(value) => report.pass("revealed", value),
            Err(e) => report.pass("reveal-denied", format!("{e:?}")),
        }
        match http::get(&format!("{base}/protected")).bearer(&token).send() {
            Ok(r) if r.status == 200 => report.pass("protected", r.text()),
            Ok(r) => return report.fail(FailureClass::Auth, "protected", format!("status {}", r.status)),
            Err(e) => return report.fail(e.failure_class(), "protected", e.to_string()),
        }
        let echoed = http::get(&format!("{base}/echo")).bearer(&token).send().map(|r| r.text()).unwrap_or_default();
        log::info(&format!("echoed: {echoed}"));
        println!("stdout echoed: {echoed}");
        report.pass("echo", echoed.clone());

        match http::get(&format!("{base}/token-opaque")).bearer(&secret).send_for_token(&["/token"]) {
            Ok((r, None)) if r.status == 200 && r.body.is_empty() => report.pass("withheld", "no token, no body"),
            Ok((r, t)) => {
                let what = format!("status {}, body {:?}, token {}", r.status, r.text(), t.is_some());
                return report.fail(FailureClass::Internal, "withheld", what);
            }
            Err(e) => return report.fail(e.failure_class(), "withheld", e.to_string()),
        }
        match http::get(&format!("{base}/token-multi")).bearer(&secret).send_for_token(&["/token"]) {
            Ok((r, Some(_))) => {
                let headers: Vec<String> = r.headers.iter().map(|h| format!("{}: {}", h.name, h.value)).collect();
                report.pass("multi", format!("{} | {}", r.text(), headers.join(", ")));
            }
            Ok((r, None)) => return report.fail(FailureClass::Internal, "multi", format!("no token: {}", r.status)),
            Err(e) => return report.fail(e.failure_class(), "multi", e.to_string()),
        }
        match http::get(&format!("{base}/token-short")).bearer(&secret).send_for_token(&["/token"]) {
            Ok((r, None)) if r.body.is_empty() => report.pass("short", "a 3-character token is not taken"),
            Ok((r, t)) => {
                let what = format!("status {}, body {:?}, token {}", r.status, r.text(), t.is_some());
                return report.fail(FailureClass::Internal, "short", what);
            }
            Err(e) => return report.fail(e.failure_class(), "short", e.to_string()),
        }
        match http::get(&format!("{base}/token")).send_for_token(&["/token"]) {
            Ok((r, None)) if r.status == 401 && !r.body.is_empty() => report.pass("error-passes", r.text()),
            Ok((r, t)) => {
                let what = format!("status {}, body {:?}, token {}", r.status, r.text(), t.is_some());
                return report.fail(FailureClass::Internal, "error-passes", what);
            }
            Err(e) => return report.fail(e.failure_class(), "error-passes", e.to_string()),
        }
        match http::get(&format!("{base}/token")).bearer(&secret).send_for_token(&["token"]) {
            Err(http::HttpError::InvalidRequest(m)) => report.pass("bad-pointer", m),
            other => {
                let what = format!("{:?}", other.map(|(r, t)| (r.status, t.is_some())));
                return report.fail(FailureClass::Internal, "bad-pointer", what);
            }
        }
        report.success(format!("echoed {echoed}"))
    }
}

register_connector!(DerivedToken);
