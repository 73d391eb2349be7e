//! Signatures over component files, verified offline against keys an operator trusts.
//!
//! Two formats, the ones third parties already sign with:
//!
//! - **minisign** (Ed25519): the public key as minisign writes it (`minisign.pub`, or its base64
//!   line alone), the signature as a `.minisig` file. Prehashed (BLAKE2b, minisign's default since
//!   0.8) and legacy signatures both verify; the trusted comment is covered by the signature.
//! - **cosign-compatible ECDSA P-256**, as `cosign sign-blob --key` writes it: the public key as a
//!   PEM `PUBLIC KEY` (SubjectPublicKeyInfo), the signature as the base64 of the DER-encoded ECDSA
//!   signature over the file's SHA-256.
//!
//! Nothing here touches the network. Which keys are trusted, and what happens to an unsigned
//! component, is the caller's policy.

use base64::Engine as _;

/// The longest key or signature text read, in bytes (a minisign signature is under 400, a PEM
/// P-256 key under 200): anything longer is not one.
pub const MAX_SIGNATURE_TEXT: usize = 4096;

/// Why a key or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The key is neither a minisign public key nor a PEM ECDSA P-256 public key.
    #[error("not a public key this service reads (a minisign public key, or a PEM ECDSA P-256 public key): {0}")]
    BadKey(String),
    /// The signature text cannot be read in the key's format.
    #[error("not a {format} signature: {reason}")]
    BadSignature {
        /// The key's format.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The signature is well formed but was not made by this key over these bytes.
    #[error("the signature does not verify with this key")]
    Mismatch,
}

/// A public key an operator trusts.
#[derive(Clone)]
pub enum TrustedKey {
    /// A minisign Ed25519 key, with its key id (hex, as minisign prints it).
    Minisign {
        /// The key.
        key: minisign_verify::PublicKey,
        /// Its id.
        id: String,
    },
    /// An ECDSA P-256 key: the uncompressed point.
    EcdsaP256 {
        /// `04 || X || Y`.
        point: Vec<u8>,
    },
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Minisign { id, .. } => write!(f, "minisign key {id}"),
            Self::EcdsaP256 { .. } => write!(f, "ECDSA P-256 key {}", self.id()),
        }
    }
}

/// The DER prefix of a SubjectPublicKeyInfo holding an uncompressed P-256 point:
/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits) }.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl TrustedKey {
    /// Reads a key: a PEM `PUBLIC KEY` block (ECDSA P-256), a `minisign.pub` file, or a minisign
    /// key's base64 line.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        if text.len() > MAX_SIGNATURE_TEXT {
            return Err(SignatureError::BadKey(format!("longer than {MAX_SIGNATURE_TEXT} bytes")));
        }
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            return Self::parse_pem(text);
        }
        let key = if text.lines().count() > 1 {
            minisign_verify::PublicKey::decode(text)
        } else {
            minisign_verify::PublicKey::from_base64(text)
        }
        .map_err(|e| SignatureError::BadKey(format!("as a minisign key: {e}")))?;
        // minisign's key id: bytes 2..10 of the decoded key, a little-endian u64, printed as
        // minisign prints it (upper-case hex without leading zeros).
        let line = text.lines().last().unwrap_or_default().trim();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(line)
            .map_err(|e| SignatureError::BadKey(format!("as a minisign key: {e}")))?;
        let id = raw
            .get(2..10)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(|b| format!("{:X}", u64::from_le_bytes(b)))
            .unwrap_or_default();
        Ok(Self::Minisign { key, id })
    }

    fn parse_pem(text: &str) -> Result<Self, SignatureError> {
        let mut lines = text.lines().map(str::trim);
        if lines.next() != Some("-----BEGIN PUBLIC KEY-----") {
            return Err(SignatureError::BadKey("a PEM key must be a `PUBLIC KEY` block".into()));
        }
        let body: String = lines.by_ref().take_while(|l| *l != "-----END PUBLIC KEY-----").collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| SignatureError::BadKey(format!("its PEM body is not base64: {e}")))?;
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) if point.len() == 65 && point[0] == 0x04 => Ok(Self::EcdsaP256 { point: point.to_vec() }),
            _ => Err(SignatureError::BadKey("the PEM key is not an uncompressed ECDSA P-256 key".into())),
        }
    }

    /// The key's format, as named in messages and in the API.
    pub fn format(&self) -> &'static str {
        match self {
            Self::Minisign { .. } => "minisign",
            Self::EcdsaP256 { .. } => "cosign",
        }
    }

    /// A stable name for the key, shown wherever a signer is recorded: `minisign:<key id>` (the id
    /// minisign prints), or `cosign:<first 16 hex digits of the sha256 of its DER
    /// SubjectPublicKeyInfo>`.
    pub fn id(&self) -> String {
        match self {
            Self::Minisign { id, .. } => format!("minisign:{id}"),
            Self::EcdsaP256 { point } => {
                use sha2::Digest as _;
                let der = [&P256_SPKI_PREFIX[..], point].concat();
                format!("cosign:{}", &hex::encode(sha2::Sha256::digest(der))[..16])
            }
        }
    }

    /// Checks that `signature` (the signature file's text) was made by this key over `file`.
    pub fn verify(&self, file: &[u8], signature: &str) -> Result<(), SignatureError> {
        let bad = |reason: String| SignatureError::BadSignature { format: self.format(), reason };
        if signature.len() > MAX_SIGNATURE_TEXT {
            return Err(bad(format!("longer than {MAX_SIGNATURE_TEXT} bytes")));
        }
        match self {
            Self::Minisign { key, .. } => {
                let sig = minisign_verify::Signature::decode(signature).map_err(|e| bad(e.to_string()))?;
                key.verify(file, &sig, true).map_err(|e| match e {
                    minisign_verify::Error::InvalidSignature => SignatureError::Mismatch,
                    // Made by another key: for this key, a signature that does not verify.
                    minisign_verify::Error::UnexpectedKeyId => SignatureError::Mismatch,
                    other => bad(other.to_string()),
                })
            }
            Self::EcdsaP256 { point } => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(signature.trim())
                    .map_err(|e| bad(format!("not base64: {e}")))?;
                ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
                    .verify(file, &der)
                    .map_err(|_| SignatureError::Mismatch)
            }
        }
    }
}

/// Signs `file` as `cosign sign-blob --key` does with an ECDSA P-256 key: the base64 of the
/// DER-encoded signature over the file's SHA-256. The key is a PEM `PRIVATE KEY` (unencrypted
/// PKCS#8, as `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes it).
/// Returns the signature text and the id of the matching public key.
pub fn sign_cosign(private_key_pem: &str, file: &[u8]) -> Result<(String, String), SignatureError> {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
    let bad = |reason: &str| SignatureError::BadKey(reason.to_string());
    if private_key_pem.len() > MAX_SIGNATURE_TEXT {
        return Err(bad("the private key file is too long"));
    }
    let mut lines = private_key_pem.trim().lines().map(str::trim);
    if lines.next() != Some("-----BEGIN PRIVATE KEY-----") {
        return Err(bad(
            "the signing key must be an unencrypted PEM `PRIVATE KEY` (PKCS#8) ECDSA P-256 key, such as              `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes",
        ));
    }
    let body: String = lines.take_while(|l| *l != "-----END PRIVATE KEY-----").collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| bad("the PEM body of the private key is not base64"))?;
    let rng = ring::rand::SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng)
        .map_err(|e| bad(&format!("not an ECDSA P-256 PKCS#8 key with its public key: {e}")))?;
    let signature = pair.sign(&rng, file).map_err(|_| bad("signing failed"))?;
    let id = TrustedKey::EcdsaP256 { point: pair.public_key().as_ref().to_vec() }.id();
    Ok((base64::engine::general_purpose::STANDARD.encode(signature.as_ref()), id))
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;

    /// minisign's own example (minisign-verify's documentation): a prehashed signature of `test`.
    const MINISIGN_KEY: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    const MINISIGN_SIG: &str = "untrusted comment: signature from minisign secret key
RUQf6LRCGA9i559r3g7V1qNyJDApGip8MfqcadIgT9CuhV3EMhHoN1mGTkUidF/z7SrlQgXdy8ofjb7bNJJylDOocrCo8KLzZwo=
trusted comment: timestamp:1633700835\tfile:test\tprehashed
wLMDjy9FLAuxZ3q4NlEvkgtyhrr0gtTu6KC4KBJdITbbOeAi1zBIYo0v4iTgt8jJpIidRJnp94ABQkJAgAooBQ==";

    #[test]
    fn a_minisign_signature_verifies_only_over_its_own_bytes() {
        let key = TrustedKey::parse(MINISIGN_KEY).unwrap();
        assert_eq!(key.format(), "minisign");
        assert_eq!(format!("{key:?}"), "minisign key E7620F1842B4E81F");
        assert_eq!(key.id(), "minisign:E7620F1842B4E81F");
        key.verify(b"test", MINISIGN_SIG).unwrap();
        assert_eq!(key.verify(b"test!", MINISIGN_SIG), Err(SignatureError::Mismatch));
        // The trusted comment is signed too.
        let edited = MINISIGN_SIG.replace("timestamp:1633700835", "timestamp:1633700836");
        assert_eq!(key.verify(b"test", &edited), Err(SignatureError::Mismatch));
        assert!(matches!(key.verify(b"test", "not a signature"), Err(SignatureError::BadSignature { .. })));
        let pub_file = format!("untrusted comment: minisign public key E7620F1842B4E81F\n{MINISIGN_KEY}\n");
        TrustedKey::parse(&pub_file).unwrap().verify(b"test", MINISIGN_SIG).unwrap();
    }

    fn p256_pem(public: &[u8]) -> String {
        let der = [&P256_SPKI_PREFIX[..], public].concat();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    }

    #[test]
    fn an_ecdsa_p256_signature_verifies_only_with_its_key_over_its_bytes() {
        let rng = SystemRandom::new();
        let pair = |rng: &SystemRandom| {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, rng).unwrap();
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), rng).unwrap()
        };
        let (signer, other) = (pair(&rng), pair(&rng));
        let file = b"\0asm component bytes";
        let sig = base64::engine::general_purpose::STANDARD.encode(signer.sign(&rng, file).unwrap().as_ref());
        let key = TrustedKey::parse(&p256_pem(signer.public_key().as_ref())).unwrap();
        assert_eq!(key.format(), "cosign");
        assert!(key.id().starts_with("cosign:") && key.id().len() == 23, "{}", key.id());
        key.verify(file, &sig).unwrap();
        key.verify(file, &format!("{sig}\n")).unwrap();
        assert_eq!(key.verify(b"another file", &sig), Err(SignatureError::Mismatch));
        let stranger = TrustedKey::parse(&p256_pem(other.public_key().as_ref())).unwrap();
        assert_eq!(stranger.verify(file, &sig), Err(SignatureError::Mismatch));
        assert!(matches!(key.verify(file, "%%%"), Err(SignatureError::BadSignature { .. })));
    }

    #[test]
    fn a_minisign_key_id_is_printed_as_minisign_prints_it() {
        // A key whose id starts with a zero nibble: minisign prints no leading zero.
        let mut raw = vec![b'E', b'd'];
        raw.extend(0x02C2_8FF2_0435_C1AFu64.to_le_bytes());
        raw.extend([7u8; 32]);
        let line = base64::engine::general_purpose::STANDARD.encode(&raw);
        let key = TrustedKey::parse(&line).unwrap();
        assert_eq!(key.id(), "minisign:2C28FF20435C1AF");
    }

    #[test]
    fn keys_of_other_kinds_and_oversized_texts_are_refused_by_name() {
        for (text, needle) in [
            ("", "minisign"),
            ("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----", "PUBLIC KEY"),
            ("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----", "base64"),
            // A P-384 key's SPKI: another curve.
            ("-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE\n-----END PUBLIC KEY-----", "P-256"),
        ] {
            let e = TrustedKey::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        let long = "A".repeat(MAX_SIGNATURE_TEXT + 1);
        assert!(TrustedKey::parse(&long).unwrap_err().to_string().contains("longer than"));
        let key = TrustedKey::parse(MINISIGN_KEY).unwrap();
        assert!(key.verify(b"test", &long).unwrap_err().to_string().contains("longer than"));
    }
}
