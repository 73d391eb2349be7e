//! Resolves its own secret, then tries to read it and to sign with it without permission.
use stella_connector_sdk::crypto::{JwtAlgorithm, sign_jwt};
use stella_connector_sdk::prelude::*;

struct Peek;

impl Connector for Peek {
    fn test_connection(config: &ConnectionConfig) -> TestResult {
        let mut report = Report::new();
        let secret = match secrets::integration_secret(config) {
            Some(Ok(s)) => s,
            other => {
                return report.fail(FailureClass::Auth, "resolve", format!("{:?}", other.map(|r| r.err())));
            }
        };
        report.pass("resolve", secret.auth_ref());
        if let Err(e) = sign_jwt(&secret, JwtAlgorithm::Rs256, "{}") {
            report.pass("sign-jwt-denied", format!("{e:?}"));
        } else {
            return report.fail(FailureClass::Internal, "sign-jwt", "signed without permission");
        }
        match secret.reveal() {
            Ok(value) => report.success(value),
            Err(e) => report.fail(FailureClass::Permission, "reveal", format!("{e:?}")),
        }
    }
}

register_connector!(Peek);
