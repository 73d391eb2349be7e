//! Signing in through the configured OpenID provider: the authorization code flow with PKCE
//! (S256), a `state` that binds the answer to the browser that asked, and a `nonce` that binds the
//! ID token to this sign-in. The ID token is verified like a bearer token (the provider's JWKS, its
//! issuer, this client as audience) and its claims name the tenant and scopes exactly as a bearer
//! token's do (`auth.tenant-claim`, `scope`).
//!
//! The provider is discovered (`/.well-known/openid-configuration`) at the first sign-in and then
//! kept, so the service starts whether or not the provider answers.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::auth::Verifier;
use crate::config::{AuthConfig, OidcConfig};
use crate::identity::Principal;
use crate::identity::session::new_secret;

/// The longest answer read from the provider (discovery, token).
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// How long the provider has to answer.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a sign-in through the provider failed: what the browser is told, in this service's own
/// words, and what the log keeps. The provider's answers (an error body, a discovery document
/// that is not one) are logged, never shown: a signed-out browser is nobody this service knows,
/// and the provider's words may name its internals.
#[derive(Debug)]
pub struct SignInError {
    shown: String,
    logged: String,
}

impl SignInError {
    /// The provider failed or answered what cannot be used: the browser is told only that.
    fn provider(logged: impl Into<String>) -> Self {
        Self {
            shown: "the identity provider could not complete the sign-in; try again later".into(),
            logged: logged.into(),
        }
    }

    /// What the browser is shown.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// What the log keeps.
    pub fn logged(&self) -> &str {
        &self.logged
    }
}

/// What the provider's discovery document says.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// The discovered provider.
#[derive(Debug)]
struct Discovered {
    authorization_endpoint: String,
    token_endpoint: String,
    verifier: Verifier,
}

/// The identity provider, discovered at first use.
#[derive(Debug)]
pub struct IdentityProvider {
    config: OidcConfig,
    redirect_uri: String,
    tenant_claim: String,
    discovered: tokio::sync::OnceCell<Discovered>,
    http: reqwest::Client,
}

/// A sign-in under way: kept in a short-lived cookie of the browser that began it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSignIn {
    /// Echoed by the provider; must match.
    pub state: String,
    /// Must be in the ID token.
    pub nonce: String,
    /// The PKCE verifier, sent with the code.
    pub verifier: String,
}

impl PendingSignIn {
    /// A new one: three random secrets.
    pub fn new() -> Self {
        Self { state: new_secret(), nonce: new_secret(), verifier: new_secret() }
    }

    /// As the cookie holds it.
    pub fn to_cookie(&self) -> String {
        format!("{}.{}.{}", self.state, self.nonce, self.verifier)
    }

    /// From the cookie; `None` if it is not one.
    pub fn from_cookie(value: &str) -> Option<Self> {
        let mut parts = value.split('.');
        let (Some(state), Some(nonce), Some(verifier), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let ok = |s: &str| crate::identity::session::plausible_secret(s);
        (ok(state) && ok(nonce) && ok(verifier)).then(|| Self {
            state: state.into(),
            nonce: nonce.into(),
            verifier: verifier.into(),
        })
    }
}

impl Default for PendingSignIn {
    fn default() -> Self {
        Self::new()
    }
}

impl IdentityProvider {
    /// The provider of `config`, answering at `redirect_uri`; tokens name tenants in
    /// `tenant_claim`.
    pub fn new(config: OidcConfig, redirect_uri: String, tenant_claim: String) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the identity provider's client builds");
        Self { config, redirect_uri, tenant_claim, discovered: tokio::sync::OnceCell::new(), http }
    }

    /// The provider's issuer, as configured.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    async fn discovered(&self) -> Result<&Discovered, SignInError> {
        self.discovered
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
                let document: Discovery = self.get_json(self.http.get(&url)).await?;
                if document.issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
                    let why = format!("the provider at {url} names another issuer, `{}`", document.issuer);
                    return Err(SignInError::provider(why));
                }
                let auth = AuthConfig {
                    local_tokens: Some(false),
                    jwks_url: Some(document.jwks_uri),
                    issuer: Some(document.issuer),
                    audience: Some(self.config.client_id.clone()),
                    tenant_claim: self.tenant_claim.clone(),
                    ..AuthConfig::default()
                };
                let verifier = Verifier::new(&auth, None).await.map_err(SignInError::provider)?;
                Ok(Discovered {
                    authorization_endpoint: document.authorization_endpoint,
                    token_endpoint: document.token_endpoint,
                    verifier,
                })
            })
            .await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, SignInError> {
        let failed = |why: String| SignInError::provider(why);
        let mut response =
            request.send().await.map_err(|e| failed(format!("the identity provider cannot be reached: {e}")))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| failed(format!("the identity provider's answer: {e}")))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(failed("the identity provider's answer is too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(failed(format!("the identity provider answered {status}: {text}")));
        }
        serde_json::from_slice(&body)
            .map_err(|e| failed(format!("the identity provider's answer is not what was expected: {e}")))
    }

    /// Where to send the browser to sign in, for `pending`.
    pub async fn authorization_url(&self, pending: &PendingSignIn) -> Result<String, SignInError> {
        let discovered = self.discovered().await?;
        let mut scopes = vec!["openid".to_string()];
        scopes.extend(self.config.scopes.iter().filter(|s| *s != "openid").cloned());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.verifier.as_bytes()));
        let mut url = url::Url::parse(&discovered.authorization_endpoint)
            .map_err(|e| SignInError::provider(format!("the provider's authorization endpoint is not a URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Redeems the provider's `code` for `pending`, and answers who signed in.
    pub async fn finish(&self, pending: &PendingSignIn, code: &str) -> Result<Principal, SignInError> {
        #[derive(Deserialize)]
        struct TokenAnswer {
            id_token: String,
        }
        let discovered = self.discovered().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", pending.verifier.as_str()),
            ("client_id", self.config.client_id.as_str()),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut request = self
            .http
            .post(&discovered.token_endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        if let Some(secret) = &self.config.client_secret {
            request = request.basic_auth(&self.config.client_id, Some(secret));
        }
        let answer: TokenAnswer = self.get_json(request).await?;
        discovered
            .verifier
            .verify_id_token(&answer.id_token, &pending.nonce)
            .await
            // This service's own words about the token (which claim, which audience): shown.
            .map_err(|e| {
                let why = format!("the ID token is refused: {e}");
                SignInError { shown: why.clone(), logged: why }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_sign_in_goes_through_its_cookie_whole_or_not_at_all() {
        let pending = PendingSignIn::new();
        assert_eq!(PendingSignIn::from_cookie(&pending.to_cookie()), Some(pending.clone()));
        for bad in ["", "a.b.c", &format!("{}.{}", pending.state, pending.nonce), &format!("{}.x", pending.to_cookie())]
        {
            assert_eq!(PendingSignIn::from_cookie(bad), None, "{bad}");
        }
    }
}
