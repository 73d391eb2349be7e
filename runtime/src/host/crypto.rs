//! `crypto`: JWT signing with a secret as the private key, so keys never enter the guest.

use base64::Engine as _;
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use wasmtime::component::Resource;

use super::{HostState, SecretHandle, lock};
use crate::bindings::crypto::{CryptoError, Host, JwtAlgorithm};
use crate::record::{DenialKind, HostCall};
use crate::secrets::SecretValue;

const MAX_CLAIMS: usize = 8 * 1024;

impl Host for HostState {
    async fn sign_jwt(
        &mut self,
        key: Resource<SecretHandle>,
        algorithm: JwtAlgorithm,
        claims_json: String,
    ) -> wasmtime::Result<Result<Resource<SecretHandle>, CryptoError>> {
        lock(&self.cx.journal).begin_call()?;
        let handle = self.table.get(&key)?;
        let origin = handle.origin.clone();
        let key_value = handle.value.clone();
        let binding = handle.binding.clone();
        let mut call = HostCall {
            interface: crate::record::Interface::Crypto,
            operation: crate::record::SIGN_JWT.into(),
            target: origin.clone(),
            auth_ref: Some(origin.clone()),
            ..HostCall::default()
        };
        let result = if !self.cx.may_sign_jwt {
            let why = "sign-jwt needs `sign-jwt = true` in the connector's manifest and the operator's permission"
                .to_string();
            lock(&self.cx.journal).deny(DenialKind::SignJwt, &origin, &why);
            Err(CryptoError::Denied(why))
        } else {
            sign(&key_value, algorithm, &claims_json)
        };
        let result = match result {
            Ok(token) => {
                let token = SecretValue::new(token);
                lock(&self.cx.journal).add_jwt(&token, binding.as_ref())?;
                Ok(token)
            }
            Err(e) => {
                let (kind, message) = match &e {
                    CryptoError::Denied(m) => ("denied", m),
                    CryptoError::InvalidKey(m) => ("invalid-key", m),
                    CryptoError::InvalidClaims(m) => ("invalid-claims", m),
                };
                call.error = Some(kind.into());
                call.error_message = Some(message.clone());
                Err(e)
            }
        };
        lock(&self.cx.journal).record_call(call)?;
        match result {
            Ok(token) => {
                // The token goes wherever the key may: it inherits the key's binding.
                let handle = SecretHandle { origin: format!("jwt signed with {origin}"), value: token, binding };
                Ok(Ok(self.push_secret(handle)?))
            }
            Err(e) => Ok(Err(e)),
        }
    }
}

fn sign(key: &SecretValue, algorithm: JwtAlgorithm, claims_json: &str) -> Result<String, CryptoError> {
    if claims_json.len() > MAX_CLAIMS {
        return Err(CryptoError::InvalidClaims(format!("the claims are larger than {MAX_CLAIMS} bytes")));
    }
    match serde_json::from_str::<serde_json::Value>(claims_json) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => {
            return Err(CryptoError::InvalidClaims("the claims must be a JSON object".into()));
        }
    }
    let der = PrivateKeyDer::from_pem_slice(key.expose().as_bytes())
        .map_err(|_| CryptoError::InvalidKey("the secret is not a PEM private key".into()))?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let alg = match algorithm {
        JwtAlgorithm::Rs256 => "RS256",
        JwtAlgorithm::Es256 => "ES256",
    };
    let signing_input =
        format!("{}.{}", b64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)), b64.encode(claims_json));
    let rng = ring::rand::SystemRandom::new();
    let signature = match algorithm {
        JwtAlgorithm::Rs256 => {
            let pair = match &der {
                PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
                PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
                _ => {
                    return Err(CryptoError::InvalidKey("RS256 needs an RSA private key (PKCS#1 or PKCS#8)".into()));
                }
            }
            .map_err(|e| CryptoError::InvalidKey(format!("the RSA key is not usable: {e}")))?;
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(&signature::RSA_PKCS1_SHA256, &rng, signing_input.as_bytes(), &mut sig)
                .map_err(|_| CryptoError::InvalidKey("signing with the RSA key failed".into()))?;
            sig
        }
        JwtAlgorithm::Es256 => {
            let PrivateKeyDer::Pkcs8(k) = &der else {
                return Err(CryptoError::InvalidKey(
                    "ES256 needs a P-256 key in PKCS#8 PEM (convert with `openssl pkcs8 -topk8 -nocrypt`)".into(),
                ));
            };
            let pair =
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, k.secret_pkcs8_der(), &rng)
                    .map_err(|e| CryptoError::InvalidKey(format!("the P-256 key is not usable: {e}")))?;
            pair.sign(&rng, signing_input.as_bytes())
                .map_err(|_| CryptoError::InvalidKey("signing with the P-256 key failed".into()))?
                .as_ref()
                .to_vec()
        }
    };
    Ok(format!("{signing_input}.{}", b64.encode(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn es256_tokens_verify_and_bad_input_is_typed() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec());
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem.secret_pkcs8_der());
        let pem_text = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
        let key = SecretValue::new(pem_text);
        let token = sign(&key, JwtAlgorithm::Es256, r#"{"iss":"123"}"#).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        use ring::signature::KeyPair;
        let public = signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref());
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).unwrap();

        assert!(matches!(sign(&key, JwtAlgorithm::Es256, "[1]"), Err(CryptoError::InvalidClaims(_))));
        assert!(matches!(sign(&key, JwtAlgorithm::Rs256, "{}"), Err(CryptoError::InvalidKey(_))));
        let not_a_key = SecretValue::new("plain-token".into());
        assert!(matches!(sign(&not_a_key, JwtAlgorithm::Es256, "{}"), Err(CryptoError::InvalidKey(_))));
    }
}
