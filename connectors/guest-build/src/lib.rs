//! The one place that builds guests: the connector crates and the sandbox's test programs,
//! compiled for `wasm32-wasip2` by a nested cargo, for the build scripts that embed them
//! (`connectors/builtin`) or hand their paths to tests (`runtime/test-programs/artifacts`).
//!
//! The nested cargo has a target directory of its own (`target/guests`), so it never waits on
//! the lock of the outer build that runs the build script, and it builds with the `guest`
//! profile of the workspace's `Cargo.toml`.

#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The wasm target guests are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The workspace's guest build: where it runs and where its components land.
#[derive(Debug, Clone)]
pub struct Guests {
    workspace: PathBuf,
    target_dir: PathBuf,
}

impl Guests {
    /// The guest build of the workspace that holds the crate whose build script is running.
    pub fn for_build_script() -> Self {
        let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
        Self::of_workspace(&workspace_root(&manifest_dir))
    }

    /// The guest build of the workspace at `workspace`.
    pub fn of_workspace(workspace: &Path) -> Self {
        Self { workspace: workspace.to_path_buf(), target_dir: workspace.join("target/guests") }
    }

    /// The workspace's root directory.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// Where the built components are: `<name>.wasm` for a crate's cdylib, `examples/<name>.wasm`
    /// for an example.
    pub fn out_dir(&self) -> PathBuf {
        self.target_dir.join(TARGET).join("guest")
    }

    /// The component a crate's cdylib builds to.
    pub fn component(&self, package: &str) -> PathBuf {
        self.out_dir().join(format!("{}.wasm", package.replace('-', "_")))
    }

    /// Builds `selection` (cargo arguments such as `["-p", "connector-harbor"]` or
    /// `["-p", "test-programs", "--examples"]`); panics, naming `what`, when the build fails.
    pub fn build(&self, what: &str, selection: &[&str]) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&self.workspace)
            .args(["build", "--target", TARGET, "--profile", "guest", "--target-dir"])
            .arg(&self.target_dir)
            .args(selection)
            // The outer build's flags and target directory are for the host, not for guests (the
            // guests' flags are in `.cargo/config.toml`).
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            // `make test` compiles the workspace through clippy (`RUSTC_WORKSPACE_WRAPPER`); the
            // guests are built for shipping, by rustc alone (clippy's driver turns MIR
            // optimisations off), and linted in the host build of the same crates.
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("CLIPPY_ARGS")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {what} failed (is the target installed? `rustup target add {TARGET}`)");
    }
}

/// A connector crate of the workspace: a folder `connectors/<name>/` with a `Cargo.toml` and a
/// `connector.toml`.
#[derive(Debug, Clone)]
pub struct ConnectorCrate {
    /// The provider id, from `connector.toml`.
    pub provider: String,
    /// The package name, from `Cargo.toml`.
    pub package: String,
    /// The crate's folder.
    pub dir: PathBuf,
}

/// Every connector crate under `connectors/`, by provider id.
///
/// Adding a connector is adding its folder, `connectors/<name>/` with `Cargo.toml`,
/// `connector.toml` and `src/`: the workspace takes it in by its `connectors/*` member glob,
/// this finds it, and the built-ins and `make connectors` follow. A folder with a
/// `connector.toml` but no `Cargo.toml` (the Python example) is not a Rust crate and is skipped.
pub fn connectors(workspace: &Path) -> Vec<ConnectorCrate> {
    let dir = workspace.join("connectors");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut found: Vec<ConnectorCrate> = entries
        .map(|e| e.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())).path())
        .filter(|d| d.join("connector.toml").is_file() && d.join("Cargo.toml").is_file())
        .map(|d| ConnectorCrate {
            provider: string_at(&d.join("connector.toml"), "connector", "provider"),
            package: string_at(&d.join("Cargo.toml"), "package", "name"),
            dir: d,
        })
        .collect();
    found.sort_by(|a, b| a.provider.cmp(&b.provider));
    found
}

/// The nearest directory at or above `dir` whose `Cargo.toml` has a `[workspace]` table.
pub fn workspace_root(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| {
            let manifest = d.join("Cargo.toml");
            manifest.is_file() && read_toml(&manifest).contains_key("workspace")
        })
        .unwrap_or_else(|| panic!("{} is not inside a cargo workspace", dir.display()))
        .canonicalize()
        .expect("the workspace root exists")
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("{} is not valid TOML: {e}", path.display()))
}

/// The string at `[table] key` of a TOML file.
fn string_at(path: &Path, table: &str, key: &str) -> String {
    read_toml(path)
        .get(table)
        .and_then(|t| t.get(key))
        .and_then(toml::Value::as_str)
        .unwrap_or_else(|| panic!("{} has no `{key}` in [{table}]", path.display()))
        .to_string()
}
