//! Builds every connector crate found under `connectors/` for `wasm32-wasip2` and embeds the
//! components. Adding a connector is adding its folder (`Cargo.toml`, `connector.toml`, `src/`):
//! nothing here names one.

use std::path::PathBuf;

use stella_guest_build::Guests;

fn main() {
    let guests = Guests::for_build_script();
    let connectors = stella_guest_build::connectors(guests.workspace());
    let selection: Vec<&str> = connectors.iter().flat_map(|c| ["-p", c.package.as_str()]).collect();
    guests.build("the connectors", &selection);

    let mut code = String::from(
        "/// Every built-in connector: (provider id, component bytes).\npub static BUILTINS: &[(&str, &[u8])] = &[\n",
    );
    // `make connectors` copies the components by this list, so it names none either.
    let mut list = String::new();
    for c in &connectors {
        let wasm = guests.component(&c.package).display().to_string();
        code.push_str(&format!("    ({:?}, include_bytes!({wasm:?})),\n", c.provider));
        list.push_str(&format!("{}\t{wasm}\n", c.provider));
    }
    code.push_str("];\n");
    // Each connector's tests live in its folder (`tests.rs`, beside `Cargo.toml`, where cargo does
    // not take it for a test of the guest crate); the connector test binary includes them all.
    let mut tests = String::new();
    for c in &connectors {
        let file = c.dir.join("tests.rs");
        if file.is_file() {
            let module = c.dir.file_name().unwrap().to_string_lossy().replace('-', "_");
            tests.push_str(&format!("#[path = {:?}]\nmod {module};\n", file.display().to_string()));
        }
    }
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("connector_tests.rs"), tests).unwrap();
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtins.rs"), code).unwrap();
    std::fs::write(guests.out_dir().join("connectors.tsv"), list).unwrap();

    // The whole folder: a connector added or removed changes the set, not only the crates'.
    for path in ["connectors", "wit", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", guests.workspace().join(path).display());
    }
}
