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
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtins.rs"), code).unwrap();
    std::fs::write(guests.out_dir().join("connectors.tsv"), list).unwrap();

    // The whole folder: a connector added or removed changes the set, not only the crates'.
    for path in ["connectors", "wit", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", guests.workspace().join(path).display());
    }
}
