//! Builds every example of `test-programs` (and the in-memory connector) as a wasm32-wasip2
//! component through the workspace's guest build (`stella-guest-build`), then writes `gen.rs`: one path
//! constant per program and a `foreach_program!` macro that the test suite expands, so a
//! program without a test fails the build.

use std::path::PathBuf;

use stella_guest_build::Guests;

fn main() {
    let guests = Guests::for_build_script();
    let workspace = guests.workspace();
    let programs_dir = workspace.join("runtime/test-programs");

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
    guests.build("the test programs", &["-p", "test-programs", "--examples"]);
    guests.build("the in-memory connector", &["-p", "connector-in-memory"]);

    let out_wasm = guests.out_dir();
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
    let in_memory = guests.component("connector-in-memory");
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
