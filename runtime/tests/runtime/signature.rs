//! Signatures made by the tools third parties sign with verify here: Debian's `minisign` (current
//! and legacy formats), and `openssl` writing exactly what `cosign sign-blob --key` writes (the
//! base64 of a DER ECDSA P-256 signature over the file, a PEM public key). `make test` installs
//! both; without them the test fails under `CI=true` and says so elsewhere.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use stella_runtime::signature::{SignatureError, TrustedKey};

/// Runs a tool in `dir`; `None` when it is not installed (a failure under `CI=true`).
fn run(dir: &Path, tool: &str, args: &[&str]) -> Option<()> {
    let output = match Command::new(tool).args(args).current_dir(dir).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "`{tool}` is not installed (make test-tools)");
            eprintln!("skipped: `{tool}` is not installed (make test-tools installs it)");
            return None;
        }
        Err(e) => panic!("{tool}: {e}"),
    };
    assert!(output.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    Some(())
}

/// A file to sign: not text, and larger than one hash block.
fn component(dir: &Path) -> Vec<u8> {
    let bytes: Vec<u8> = b"\0asm\x0d\0\x01\0".iter().copied().chain((0..100_000u32).map(|n| (n * 7) as u8)).collect();
    std::fs::write(dir.join("connector.wasm"), &bytes).unwrap();
    bytes
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn minisign_signatures_verify_and_a_changed_byte_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bytes = component(d);
    // -W: a key without a password, so that nothing prompts.
    let Some(()) = run(d, "minisign", &["-G", "-W", "-p", "k.pub", "-s", "k.key"]) else { return };
    run(
        d,
        "minisign",
        &["-S", "-s", "k.key", "-m", "connector.wasm", "-x", "prehashed.minisig", "-t", "release 1.2.0"],
    )
    .unwrap();
    run(d, "minisign", &["-S", "-l", "-s", "k.key", "-m", "connector.wasm", "-x", "legacy.minisig"]).unwrap();

    let key = TrustedKey::parse(&read(d, "k.pub")).unwrap();
    for signature in ["prehashed.minisig", "legacy.minisig"] {
        key.verify(&bytes, &read(d, signature)).unwrap_or_else(|e| panic!("{signature}: {e}"));
        let mut changed = bytes.clone();
        changed[50_000] ^= 1;
        assert_eq!(key.verify(&changed, &read(d, signature)), Err(SignatureError::Mismatch), "{signature}");
    }
    // The key id minisign prints is the one shown.
    let id = read(d, "k.pub").lines().next().unwrap().rsplit(' ').next().unwrap().to_string();
    assert_eq!(format!("{key:?}"), format!("minisign key {id}"));

    // Another key's signature does not verify.
    run(d, "minisign", &["-G", "-W", "-p", "other.pub", "-s", "other.key"]).unwrap();
    let other = TrustedKey::parse(&read(d, "other.pub")).unwrap();
    assert_eq!(other.verify(&bytes, &read(d, "prehashed.minisig")), Err(SignatureError::Mismatch));
}

#[test]
fn cosign_format_signatures_made_with_openssl_verify_and_a_changed_byte_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bytes = component(d);
    let Some(()) = run(d, "openssl", &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "cosign.key"])
    else {
        return;
    };
    run(d, "openssl", &["ec", "-in", "cosign.key", "-pubout", "-out", "cosign.pub"]).unwrap();
    run(d, "openssl", &["dgst", "-sha256", "-sign", "cosign.key", "-out", "sig.der", "connector.wasm"]).unwrap();
    // cosign's .sig: the DER signature, base64, on one line.
    let signature = base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.join("sig.der")).unwrap());

    let key = TrustedKey::parse(&read(d, "cosign.pub")).unwrap();
    key.verify(&bytes, &signature).unwrap();
    let mut changed = bytes.clone();
    changed[0] ^= 1;
    assert_eq!(key.verify(&changed, &signature), Err(SignatureError::Mismatch));

    // Another curve's key is refused by name, not misread.
    run(d, "openssl", &["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "p384.key"]).unwrap();
    run(d, "openssl", &["ec", "-in", "p384.key", "-pubout", "-out", "p384.pub"]).unwrap();
    let e = TrustedKey::parse(&read(d, "p384.pub")).unwrap_err();
    assert!(e.to_string().contains("P-256"), "{e}");
}
