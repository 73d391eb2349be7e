//! Verifying who is calling: bearer JWTs, one-time sign-in links and ID tokens, read into the
//! [`crate::identity::Principal`] whose scopes decide what it may do.
//!
//! Two kinds of keys verify tokens:
//! - a local HS256 key, for a single installation: configured, or generated on first use into the
//!   data directory (`jwt-hs256.key`), which `stella-integrations token` uses to sign;
//! - the RS256 / ES256 public keys of an identity provider, as a JWKS (file or URL), for production.
//!
//! The algorithm a token may use follows from the key that verifies it, never from the token alone:
//! HS256 only with the local key, RS256 only with an RSA key, ES256 only with a P-256 key. Unsigned
//! tokens (`alg: none`) and every other algorithm are refused. `exp` is required; `nbf`, `iss` and
//! `aud` are checked when present or configured.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::{hmac, signature};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{AuthConfig, LOCAL_ISSUER};
use crate::identity::{AuthError, Caller, Principal, SignInLink, is_tenant_id};

/// The file, in the data directory, that holds the generated local key.
pub const LOCAL_KEY_FILE: &str = "jwt-hs256.key";
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: i64 = 60;
/// Longest token accepted, in bytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The JWKS URL is fetched again at most once in this many seconds, whatever the configuration.
const MIN_JWKS_REFRESH_SECONDS: u64 = 1;
/// How long a verified bearer token is taken on trust before its signature is checked again
/// (never past its own expiry). A key removed from the JWKS stops working within this long.
const RECENT_TOKEN_SECONDS: i64 = 60;
/// How many verified tokens are remembered (the token and its principal, ~200 bytes beside the
/// token's own).
const MAX_RECENT_TOKENS: usize = 4096;
/// How many bytes of token text are remembered in all: a typical JWT is under 1 KiB, so this
/// holds thousands, and 4,096 long (up to 16 KiB) tokens cannot make the memory 64 MiB.
const MAX_RECENT_TOKEN_BYTES: usize = 2 << 20;
/// The `use` claim of a one-time console sign-in link's token.
pub const SIGN_IN_LINK_USE: &str = "console-sign-in";
/// The longest a console sign-in link may be valid.
pub const MAX_SIGN_IN_LINK_TTL: Duration = Duration::from_secs(3600);

/// One public key of a JWKS.
#[derive(Clone, Debug)]
enum PublicKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { point: Vec<u8> },
}

#[derive(Clone, Debug)]
struct Jwk {
    kid: Option<String>,
    key: PublicKey,
}

/// Verifies bearer tokens.
pub struct Verifier {
    local: Option<hmac::Key>,
    /// Keys from the JWKS file: fixed for the life of the process.
    file_keys: Vec<Jwk>,
    /// Keys from the JWKS URL: replaced by each fetch.
    url_keys: Mutex<Vec<Jwk>>,
    jwks_url: Option<String>,
    last_fetch: Mutex<Option<Instant>>,
    refresh_interval: Duration,
    issuer: Option<String>,
    audience: Option<String>,
    tenant_claim: String,
    /// Bearer tokens verified in the last minute.
    recent: RecentTokens,
}

/// Bearer tokens verified recently: a client that sends the same token on every request pays for
/// its signature check (an HMAC, or an RSA or ECDSA verification of tens of µs) and its claims
/// once a minute, not on every request.
///
/// Keyed by the whole token, compared for equality: a hit is exactly a token that verified. (A
/// SHA-256 of the token as the key cost more than everything else the check does: ~15,000
/// instructions per request for a 1 KiB token, against a SipHash and a comparison.) Holding the
/// token text adds nothing to what the process holds anyway (the request's own buffers, the
/// local signing key). The map's SipHash has a per-process random key, so a caller cannot aim a
/// probe at a remembered token's slot, and a miss falls through to the full, constant-time
/// signature check. Bounded in entries and in bytes: when either is full, the expired entries go,
/// and if that frees too little, all of them.
#[derive(Debug, Default)]
struct RecentTokens {
    entries: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    by_token: std::collections::HashMap<Box<str>, (Principal, i64)>,
    /// The token text held, in bytes.
    bytes: usize,
}

impl RecentTokens {
    /// The principal of a token verified before and still within its time, at `now`.
    fn get(&self, token: &str, now: i64) -> Option<Principal> {
        let entries = self.entries.lock().expect("the token cache lock is never poisoned");
        entries.by_token.get(token).filter(|(_, until)| now < *until).map(|(principal, _)| principal.clone())
    }

    /// Remembers a verified token's principal until `until` (Unix seconds).
    fn put(&self, token: &str, principal: Principal, until: i64, now: i64) {
        let mut entries = self.entries.lock().expect("the token cache lock is never poisoned");
        let Remembered { by_token, bytes } = &mut *entries;
        if let Some(entry) = by_token.get_mut(token) {
            *entry = (principal, until);
            return;
        }
        let full = |by_token: &std::collections::HashMap<Box<str>, _>, bytes: usize| {
            by_token.len() >= MAX_RECENT_TOKENS || bytes + token.len() > MAX_RECENT_TOKEN_BYTES
        };
        if full(by_token, *bytes) {
            by_token.retain(|_, (_, until)| now < *until);
            *bytes = by_token.keys().map(|t| t.len()).sum();
            if full(by_token, *bytes) {
                by_token.clear();
                *bytes = 0;
            }
        }
        if token.len() <= MAX_RECENT_TOKEN_BYTES {
            *bytes += token.len();
            by_token.insert(token.into(), (principal, until));
        }
    }

    #[cfg(test)]
    fn len_and_bytes(&self) -> (usize, usize) {
        let entries = self.entries.lock().expect("the token cache lock is never poisoned");
        (entries.by_token.len(), entries.bytes)
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("local", &self.local.is_some())
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for this configuration; the local key comes from `local_key` (see
    /// [`local_key`]). A JWKS URL is fetched here, so a wrong URL fails the start.
    pub async fn new(config: &AuthConfig, local_key: Option<Vec<u8>>) -> Result<Self, String> {
        let mut file_keys = Vec::new();
        if let Some(path) = &config.jwks_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the JWKS file {}: {e}", path.display()))?;
            file_keys =
                parse_jwks(&text).map_err(|e| format!("the JWKS file {} is not usable: {e}", path.display()))?;
        }
        let url_keys = match &config.jwks_url {
            Some(url) => fetch_jwks(url).await?,
            None => Vec::new(),
        };
        let local =
            if config.local_tokens_enabled() { local_key.map(|k| hmac::Key::new(hmac::HMAC_SHA256, &k)) } else { None };
        if local.is_none() && file_keys.is_empty() && config.jwks_url.is_none() {
            return Err("no key can verify tokens: enable local tokens or configure a JWKS".into());
        }
        Ok(Self {
            local,
            file_keys,
            url_keys: Mutex::new(url_keys),
            jwks_url: config.jwks_url.clone(),
            last_fetch: Mutex::new(Some(Instant::now())),
            // A floor, so tokens with made-up key ids cannot make every request fetch the JWKS.
            refresh_interval: Duration::from_secs(config.jwks_refresh_seconds.max(MIN_JWKS_REFRESH_SECONDS)),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            tenant_claim: config.tenant_claim.clone(),
            recent: RecentTokens::default(),
        })
    }

    /// Verifies a token and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid("the token is too long".into()));
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some(principal) = self.recent.get(token, now) {
            return Ok(principal);
        }
        let (claims, local) = self.verified_claims(token).await?;
        // A console sign-in link is spent on the console's sign-in page, never as a bearer token.
        if claims.get("use").and_then(Value::as_str) == Some(SIGN_IN_LINK_USE) {
            return Err(AuthError::Invalid("a console sign-in link is not a bearer token".into()));
        }
        let principal = self.check_claims(&claims, local)?;
        // `check_claims` found `exp`; the token is taken on trust until then at the latest.
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
        let until = exp.saturating_add(LEEWAY_SECONDS).min(now.saturating_add(RECENT_TOKEN_SECONDS));
        self.recent.put(token, principal.clone(), until, now);
        Ok(principal)
    }

    /// Verifies a one-time console sign-in link's token (`stella-integrations console-link`): a
    /// local HS256 token whose `use` is [`SIGN_IN_LINK_USE`], valid at most
    /// [`MAX_SIGN_IN_LINK_TTL`], with a `jti` the caller records as spent.
    pub async fn verify_sign_in_link(&self, token: &str) -> Result<SignInLink, AuthError> {
        let invalid = |m: &str| AuthError::Invalid(m.to_string());
        let (claims, local) = self.verified_claims(token).await?;
        if !local || claims.get("use").and_then(Value::as_str) != Some(SIGN_IN_LINK_USE) {
            return Err(invalid("this is not a console sign-in link"));
        }
        let principal = self.check_claims(&claims, local)?;
        let link_id = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty() && j.len() <= 64)
            .ok_or_else(|| invalid("the link has no usable `jti`"))?;
        let (iat, exp) = (claims.get("iat").and_then(Value::as_i64), claims.get("exp").and_then(Value::as_i64));
        let (Some(iat), Some(exp)) = (iat, exp) else { return Err(invalid("the link has no `iat` or `exp`")) };
        if exp.saturating_sub(iat) > MAX_SIGN_IN_LINK_TTL.as_secs() as i64 {
            return Err(invalid("the link is valid for longer than a sign-in link may be"));
        }
        Ok(SignInLink { principal, link_id: link_id.to_string(), expires_at: exp })
    }

    /// Verifies an OpenID Connect ID token issued for a sign-in that sent `nonce`, and answers
    /// who it names, read as from a bearer token (tenant claim, `sub`, `scope`).
    pub async fn verify_id_token(&self, token: &str, nonce: &str) -> Result<Principal, AuthError> {
        let (claims, local) = self.verified_claims(token).await?;
        if local {
            return Err(AuthError::Invalid("an ID token is signed by the identity provider".into()));
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(AuthError::Invalid("the ID token is not for this sign-in (nonce)".into()));
        }
        self.check_claims(&claims, local)
    }

    /// The claims of a token whose signature verifies, and whether the local key verified it.
    async fn verified_claims(&self, token: &str) -> Result<(serde_json::Map<String, Value>, bool), AuthError> {
        let invalid = |m: &str| AuthError::Invalid(m.to_string());
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("the token is too long"));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("a JWT has three dot-separated parts"));
        };
        let header: Header = decode_json(header_b64).ok_or_else(|| invalid("the header is not base64url JSON"))?;
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| invalid("the signature is not base64url"))?;
        let signed = &token.as_bytes()[..header_b64.len() + 1 + claims_b64.len()];
        let local = header.alg == "HS256";
        match header.alg.as_str() {
            "HS256" => {
                let key = self.local.as_ref().ok_or_else(|| invalid("HS256 tokens are not accepted here"))?;
                hmac::verify(key, signed, &signature).map_err(|_| invalid("the signature does not verify"))?;
            }
            "RS256" | "ES256" => self.verify_public(&header, signed, &signature).await?,
            "none" | "" => return Err(invalid("unsigned tokens are refused")),
            _ => return Err(invalid("the algorithm is not accepted: use HS256 (local), RS256 or ES256")),
        }
        let claims: serde_json::Map<String, Value> =
            decode_json(claims_b64).ok_or_else(|| invalid("the claims are not a base64url JSON object"))?;
        Ok((claims, local))
    }

    async fn verify_public(&self, header: &Header, signed: &[u8], signature: &[u8]) -> Result<(), AuthError> {
        let matches = |jwk: &Jwk| {
            let kid_ok = match (&header.kid, &jwk.kid) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            };
            let alg_ok = matches!(
                (header.alg.as_str(), &jwk.key),
                ("RS256", PublicKey::Rsa { .. }) | ("ES256", PublicKey::P256 { .. })
            );
            kid_ok && alg_ok
        };
        let verify_with = |keys: &[Jwk]| -> Option<bool> {
            let candidates: Vec<&Jwk> = keys.iter().filter(|k| matches(k)).collect();
            if candidates.is_empty() {
                return None;
            }
            Some(candidates.iter().any(|jwk| {
                match &jwk.key {
                    PublicKey::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, signed, signature)
                        .is_ok(),
                    PublicKey::P256 { point } => {
                        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                            .verify(signed, signature)
                            .is_ok()
                    }
                }
            }))
        };
        let verify_all = |url_keys: &[Jwk]| match (verify_with(&self.file_keys), verify_with(url_keys)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (None, None) => None,
            _ => Some(false),
        };
        let known = {
            let keys = self.url_keys.lock().expect("the JWKS lock is never poisoned");
            verify_all(&keys)
        };
        let verified = match known {
            Some(v) => v,
            None => {
                // An identity provider rotates keys by publishing a new `kid` first.
                self.refresh_jwks().await;
                let keys = self.url_keys.lock().expect("the JWKS lock is never poisoned");
                verify_all(&keys).ok_or_else(|| AuthError::Invalid("no trusted key matches the token".into()))?
            }
        };
        if verified { Ok(()) } else { Err(AuthError::Invalid("the signature does not verify".into())) }
    }

    async fn refresh_jwks(&self) {
        let Some(url) = &self.jwks_url else { return };
        {
            let mut last = self.last_fetch.lock().expect("the JWKS lock is never poisoned");
            if last.is_some_and(|t| t.elapsed() < self.refresh_interval) {
                return;
            }
            *last = Some(Instant::now());
        }
        match fetch_jwks(url).await {
            Ok(keys) => *self.url_keys.lock().expect("the JWKS lock is never poisoned") = keys,
            Err(e) => tracing::warn!(error = %e, "cannot refresh the JWKS"),
        }
    }

    /// Checks the claims; `local` tokens must carry the local issuer when none is configured.
    fn check_claims(&self, claims: &serde_json::Map<String, Value>, local: bool) -> Result<Principal, AuthError> {
        let invalid = |m: String| AuthError::Invalid(m);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| invalid("the token has no `exp`".into()))?;
        if exp.saturating_add(LEEWAY_SECONDS) < now {
            return Err(invalid("the token has expired".into()));
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_i64().ok_or_else(|| invalid("`nbf` is not a number".into()))?;
            if nbf.saturating_sub(LEEWAY_SECONDS) > now {
                return Err(invalid("the token is not valid yet".into()));
            }
        }
        let issuer = match &self.issuer {
            Some(i) => Some(i.as_str()),
            None if local => Some(LOCAL_ISSUER),
            None => None,
        };
        if let Some(issuer) = issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer)
        {
            return Err(invalid("the token's issuer is not trusted".into()));
        }
        if let Some(audience) = &self.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => a == audience,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience.as_str())),
                _ => false,
            };
            if !ok {
                return Err(invalid(format!("the token is not meant for this service (audience `{audience}`)")));
            }
        }
        let tenant = claims
            .get(&self.tenant_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("the token has no `{}` claim", self.tenant_claim)))?;
        if !is_tenant_id(tenant) {
            return Err(invalid("the tenant claim is empty, too long or has control characters".into()));
        }
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        if subject.is_empty() || subject.len() > 256 || subject.chars().any(char::is_control) {
            return Err(invalid("the token has no usable `sub`".into()));
        }
        let scopes = claims
            .get("scope")
            .and_then(Value::as_str)
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        Ok(Principal { caller: Caller { tenant: tenant.to_string(), subject: subject.to_string() }, scopes })
    }
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    alg: String,
    kid: Option<String>,
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Reads a JWKS document: RSA keys (`n`, `e`) and EC P-256 keys (`x`, `y`). Keys of other types,
/// or marked for another use than signatures, are skipped.
fn parse_jwks(text: &str) -> Result<Vec<Jwk>, String> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Map<String, Value>>,
    }
    let doc: Document = serde_json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
    let b64 = |k: &serde_json::Map<String, Value>, name: &str| -> Result<Vec<u8>, String> {
        let s = k.get(name).and_then(Value::as_str).ok_or_else(|| format!("a key lacks `{name}`"))?;
        URL_SAFE_NO_PAD.decode(s).map_err(|_| format!("a key's `{name}` is not base64url"))
    };
    let mut keys = Vec::new();
    for k in &doc.keys {
        if k.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            continue;
        }
        let kid = k.get("kid").and_then(Value::as_str).map(str::to_string);
        let key = match (k.get("kty").and_then(Value::as_str), k.get("crv").and_then(Value::as_str)) {
            (Some("RSA"), _) => PublicKey::Rsa { n: b64(k, "n")?, e: b64(k, "e")? },
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (b64(k, "x")?, b64(k, "y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("a P-256 key's coordinates are not 32 bytes".into());
                }
                let mut point = vec![0x04];
                point.extend(x);
                point.extend(y);
                PublicKey::P256 { point }
            }
            _ => continue,
        };
        keys.push(Jwk { kid, key });
    }
    if keys.is_empty() {
        return Err("it holds no RSA or P-256 signing key".into());
    }
    Ok(keys)
}

async fn fetch_jwks(url: &str) -> Result<Vec<Jwk>, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build the JWKS client: {e}"))?;
    let response = client.get(url).send().await.map_err(|e| format!("cannot fetch the JWKS from {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("the JWKS URL {url} answered {}", response.status()));
    }
    let text = response.text().await.map_err(|e| format!("cannot read the JWKS from {url}: {e}"))?;
    parse_jwks(&text).map_err(|e| format!("the JWKS at {url} is not usable: {e}"))
}

/// The local HS256 key: the configured one, or the one kept in `data_dir` (generated there on
/// first use, readable only by its owner).
pub fn local_key(config: &AuthConfig, data_dir: &Path) -> Result<Vec<u8>, String> {
    if let Some(key) = &config.hs256_key {
        if key.len() < 32 {
            return Err("auth.hs256-key must be at least 32 bytes".into());
        }
        return Ok(key.as_bytes().to_vec());
    }
    let path = data_dir.join(LOCAL_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return URL_SAFE_NO_PAD
                .decode(text.trim())
                .ok()
                .filter(|k| k.len() >= 32)
                .ok_or_else(|| format!("{} does not hold a base64url key of 32 bytes or more", path.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    std::fs::create_dir_all(data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let mut key = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| "the system random generator failed".to_string())?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, URL_SAFE_NO_PAD.encode(key).as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(key.to_vec())
        }
        // Another process (`serve` and `token` started together) created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => local_key(config, data_dir),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// What `stella-integrations token` puts in a token.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// The tenant.
    pub tenant: String,
    /// The scopes, space-separated in the token.
    pub scopes: Vec<String>,
    /// The subject.
    pub subject: String,
    /// How long it is valid.
    pub ttl: Duration,
}

/// Signs an HS256 token with the local key, with the issuer and audience the configuration checks.
pub fn issue_local_token(config: &AuthConfig, key: &[u8], request: &TokenRequest) -> String {
    local_token(config, key, request, None)
}

/// Signs a one-time console sign-in link's token (see [`Verifier::verify_sign_in_link`]); its
/// `ttl` must not pass [`MAX_SIGN_IN_LINK_TTL`].
pub fn issue_sign_in_link(config: &AuthConfig, key: &[u8], request: &TokenRequest) -> String {
    local_token(config, key, request, Some(SIGN_IN_LINK_USE))
}

fn local_token(config: &AuthConfig, key: &[u8], request: &TokenRequest, usage: Option<&str>) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = serde_json::json!({
        "sub": request.subject,
        "scope": request.scopes.join(" "),
        "iat": now,
        "nbf": now,
        "exp": now + request.ttl.as_secs() as i64,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    claims[config.tenant_claim.as_str()] = Value::String(request.tenant.clone());
    claims["iss"] = Value::String(config.issuer.clone().unwrap_or_else(|| LOCAL_ISSUER.into()));
    if let Some(aud) = &config.audience {
        claims["aud"] = Value::String(aud.clone());
    }
    if let Some(usage) = usage {
        claims["use"] = Value::String(usage.into());
    }
    sign_hs256(key, &serde_json::json!({"alg": "HS256", "typ": "JWT"}), &claims)
}

/// Signs a token with HS256 (also used by tests to forge hostile tokens).
pub fn sign_hs256(key: &[u8], header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).expect("JSON serializes")),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("JSON serializes"))
    );
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Parses a duration such as `30s`, `15m`, `12h`, `7d` (a bare number is seconds).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration such as 30m, 12h or 7d"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}` is not a duration such as 30m, 12h or 7d")),
    };
    if seconds == 0 || seconds > 366 * 86_400 {
        return Err("a token lives between 1 second and 366 days".into());
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(tenant: &str) -> Principal {
        Principal {
            caller: Caller { tenant: tenant.into(), subject: "someone".into() },
            scopes: vec![crate::identity::READ_SCOPE.into()],
        }
    }

    #[test]
    fn a_remembered_token_is_taken_on_trust_only_until_its_time() {
        let recent = RecentTokens::default();
        recent.put("header.claims.signature", principal("acme"), 1_000, 900);
        assert_eq!(recent.get("header.claims.signature", 999), Some(principal("acme")));
        assert_eq!(recent.get("header.claims.signature", 1_000), None, "at its time it must be verified again");
        // Another token, even one differing in a single byte or a prefix of it, is not the
        // remembered one.
        assert_eq!(recent.get("header.claims.signaturf", 999), None);
        assert_eq!(recent.get("header.claims.signatur", 999), None);
        // Remembered again (verified again at its time): one entry, its bytes counted once.
        recent.put("header.claims.signature", principal("acme"), 2_000, 1_000);
        assert_eq!(recent.get("header.claims.signature", 1_999), Some(principal("acme")));
        assert_eq!(recent.len_and_bytes(), (1, "header.claims.signature".len()));
    }

    #[test]
    fn the_remembered_tokens_are_bounded_however_many_a_caller_sends() {
        let recent = RecentTokens::default();
        // Half of them expire at 100, half stay valid: when full, the expired ones go first.
        for i in 0..MAX_RECENT_TOKENS {
            let until = if i % 2 == 0 { 100 } else { 10_000 };
            recent.put(&format!("token-{i}"), principal("acme"), until, 50);
        }
        assert_eq!(recent.len_and_bytes().0, MAX_RECENT_TOKENS);
        recent.put("one more", principal("acme"), 10_000, 200);
        assert_eq!(recent.len_and_bytes().0, MAX_RECENT_TOKENS / 2 + 1);
        assert!(recent.get("token-1", 200).is_some(), "a valid entry survives");
        // All still valid: past the bound, everything goes rather than growing.
        for i in 0..2 * MAX_RECENT_TOKENS {
            recent.put(&format!("flood-{i}"), principal("acme"), 10_000, 200);
            assert!(recent.len_and_bytes().0 <= MAX_RECENT_TOKENS);
        }
    }

    #[test]
    fn the_remembered_token_text_is_bounded_in_bytes_however_long_the_tokens() {
        let recent = RecentTokens::default();
        // Tokens of the longest length accepted, all valid for long: far fewer than the entry
        // bound fit in the byte bound, and the bytes never pass it.
        let long = |i: usize| format!("{i:08}{}", "x".repeat(MAX_TOKEN_BYTES - 8));
        for i in 0..MAX_RECENT_TOKENS {
            recent.put(&long(i), principal("acme"), 10_000, 200);
            let (entries, bytes) = recent.len_and_bytes();
            assert!(bytes <= MAX_RECENT_TOKEN_BYTES, "{bytes} bytes held after {i} tokens");
            assert_eq!(bytes, entries * MAX_TOKEN_BYTES, "the bytes are counted exactly");
        }
        // The latest one is remembered; the memory was emptied rather than grown.
        assert!(recent.get(&long(MAX_RECENT_TOKENS - 1), 300).is_some());
        assert!(recent.len_and_bytes().0 <= MAX_RECENT_TOKEN_BYTES / MAX_TOKEN_BYTES);
        // Expired long tokens make room first: the valid short one survives the next eviction.
        let recent = RecentTokens::default();
        recent.put("short", principal("acme"), 10_000, 200);
        for i in 0..MAX_RECENT_TOKEN_BYTES / MAX_TOKEN_BYTES - 1 {
            recent.put(&long(i), principal("acme"), 250, 200);
        }
        assert_eq!(recent.len_and_bytes().0, MAX_RECENT_TOKEN_BYTES / MAX_TOKEN_BYTES, "all of them still fit");
        recent.put(&long(999_999), principal("acme"), 10_000, 300);
        assert!(recent.get("short", 300).is_some(), "a valid entry survives when expired ones make room");
        assert_eq!(recent.len_and_bytes(), (2, "short".len() + MAX_TOKEN_BYTES));
    }
}
