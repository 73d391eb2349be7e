//! Builds the connector crates for `wasm32-wasip2` with a nested cargo (in its own target
//! directory, so it never waits on the outer build's lock) and embeds the components.

use std::path::PathBuf;
use std::process::Command;

/// (provider id, crate name) of every built-in connector.
const CONNECTORS: &[(&str, &str)] = &[
    ("in-memory", "connector-in-memory"),
    ("http-probe", "connector-http-probe"),
    ("harbor", "connector-harbor"),
    ("gitlab", "connector-gitlab"),
    ("gitea", "connector-gitea"),
    ("jenkins", "connector-jenkins"),
    ("artifact", "connector-artifact"),
    ("feed-mirror", "connector-feed-mirror"),
    ("oci-registry", "connector-oci-registry"),
    ("github-app", "connector-github-app"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.join("../..").canonicalize().unwrap();
    let target_dir = workspace.join("target/guests");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(&workspace)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "guest", "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR");
    for (_, krate) in CONNECTORS {
        cargo.args(["-p", krate]);
    }
    let status = cargo.status().expect("cargo runs");
    assert!(
        status.success(),
        "building the connectors failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );

    let mut code = String::from(
        "/// Every built-in connector: (provider id, component bytes).\npub static BUILTINS: &[(&str, &[u8])] = &[\n",
    );
    for (provider, krate) in CONNECTORS {
        let wasm = target_dir.join(format!("wasm32-wasip2/guest/{}.wasm", krate.replace('-', "_")));
        code.push_str(&format!("    ({provider:?}, include_bytes!({:?})),\n", wasm.display().to_string()));
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join("connectors").join(krate.trim_start_matches("connector-")).display()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtins.rs");
    std::fs::write(out, code).unwrap();
    println!("cargo:rerun-if-changed={}", workspace.join("connectors/sdk").display());
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!("cargo:rerun-if-changed={}", workspace.join(".cargo/config.toml").display());
}
