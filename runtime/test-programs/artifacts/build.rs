//! Builds every example of `test-programs` (and the in-memory connector) as a wasm32-wasip2
//! component with a nested cargo in its own target directory, then writes `gen.rs`: one path
//! constant per program and a `foreach_program!` macro that the test suite expands, so a
//! program without a test fails the build.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.join("../../..").canonicalize().unwrap();
    let programs_dir = workspace.join("runtime/test-programs");
    let target_dir = workspace.join("target/guests");

    let mut names: Vec<String> = std::fs::read_dir(programs_dir.join("examples"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "rs").then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    names.sort();

    // Two builds: with `--examples`, cargo builds only examples of every selected package, so the
    // in-memory connector's own cdylib needs a build of its own.
    for selection in [&["-p", "test-programs", "--examples"][..], &["-p", "connector-in-memory"]] {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&workspace)
            .args(["build", "--target", "wasm32-wasip2", "--profile", "guest", "--target-dir"])
            .arg(&target_dir)
            .args(selection)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the test programs failed (`rustup target add wasm32-wasip2`?)");
    }

    let out_wasm = target_dir.join("wasm32-wasip2/guest");
    let mut code = String::new();
    for name in &names {
        let path = out_wasm.join(format!("examples/{name}.wasm"));
        assert!(path.exists(), "{} was not built", path.display());
        code += &format!(
            "/// The `{name}` test program.\npub const {}: &str = {:?};\n",
            name.to_uppercase(),
            path.display().to_string()
        );
    }
    let in_memory = out_wasm.join("connector_in_memory.wasm");
    assert!(in_memory.exists(), "{} was not built", in_memory.display());
    code +=
        &format!("/// The in-memory connector.\npub const IN_MEMORY: &str = {:?};\n", in_memory.display().to_string());
    code += "/// Expands `$mac!(name)` for every test program.\n#[macro_export]\nmacro_rules! foreach_program {\n    ($mac:ident) => {\n";
    for name in &names {
        code += &format!("        $mac!({name});\n");
    }
    code += "    };\n}\n";
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("gen.rs"), code).unwrap();

    for dir in ["runtime/test-programs", "connectors/sdk", "connectors/in-memory", "wit", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
}
