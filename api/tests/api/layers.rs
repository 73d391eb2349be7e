//! The service's modules are layered as the map at the top of `api/src/lib.rs` (and the README's
//! "Where things are") says: a module uses only modules below it. Checked here by reading every
//! source file of `api/src` for the crate paths it names (`use crate::…`, `crate::x::y(…)`), so a
//! change that imports upwards fails this test with the file and the path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A file belongs to the layer of its top-level module, or of the
/// submodule named here (the health scheduler is a door, over the service, while the rest of
/// `health` is what the service builds on).
const LAYERS: &[&str] = &[
    "identity",
    "lifecycle",
    "domain",
    "config",
    "metrics",
    "ledger",
    "events",
    "audit",
    "plugins",
    "health",
    "query",
    "store",
    "service",
    "bulk",
    "auth",
    "http",
    "console",
    "relay",
    "health::scheduler",
    "maintenance",
    "server",
    "cli",
    "main",
];

/// The layer of a module path such as `health::scheduler` or `store` (its longest listed prefix).
fn layer_of(path: &str) -> Option<usize> {
    LAYERS
        .iter()
        .enumerate()
        .filter(|(_, layer)| path == **layer || path.starts_with(&format!("{layer}::")))
        .max_by_key(|(_, layer)| layer.len())
        .map(|(rank, _)| rank)
}

/// `health/scheduler.rs` → `health::scheduler`; `store/mod.rs` → `store`; `lib.rs` → ``.
fn module_of(file: &Path) -> String {
    let mut parts: Vec<String> =
        file.components().map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every crate path a source names outside its comments: `crate::a::b` once for
/// `use crate::{a::b, c}` as `a::b` and `c`.
fn crate_paths(source: &str) -> Vec<String> {
    let code: String = source.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect();
    let mut paths = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        // `stella_crate::`, `my_crate::` are other names.
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // A `use crate::{…}` group: its top-level members, up to the matching brace.
            let (mut depth, mut member, mut end) = (0, String::new(), group.len());
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        end = i;
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        paths.push(std::mem::take(&mut member));
                        continue;
                    }
                    _ => {}
                }
                member.push(c);
            }
            paths.push(member);
            rest = &group[end..];
        } else {
            let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            paths.push(path);
        }
    }
    paths
        .into_iter()
        .map(|p| {
            // `a::b::{c, d}` or `a::b::C` → its module part: the lower-case segments.
            p.split("::")
                .map(str::trim)
                .take_while(|s| s.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
                .collect::<Vec<_>>()
                .join("::")
        })
        .filter(|p| !p.is_empty())
        .collect()
}

#[test]
fn no_module_imports_from_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut upward = BTreeMap::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = module_of(relative);
        if module.is_empty() {
            continue; // lib.rs declares the modules; it imports none.
        }
        let from =
            layer_of(&module).unwrap_or_else(|| panic!("{module} ({}) is in no layer of LAYERS", file.display()));
        let source = std::fs::read_to_string(file).unwrap();
        for path in crate_paths(&source) {
            let target =
                layer_of(&path).unwrap_or_else(|| panic!("`crate::{path}` in {} is in no layer", file.display()));
            checked += 1;
            if target > from {
                upward.entry(relative.display().to_string()).or_insert_with(Vec::new).push(path);
            }
        }
    }
    assert!(checked > 200, "only {checked} crate paths were found: the reading of the sources is broken");
    assert!(upward.is_empty(), "imports from a module above (file: paths): {upward:#?}");
}

#[test]
fn the_reading_of_crate_paths_finds_groups_and_inline_paths() {
    let source = "use crate::{audit::{A, B}, domain, service::Catalog};\n\
                  // crate::cli::ignored in a comment\n\
                  let x = crate::health::scheduler::run(stella_crate::not_ours);\n";
    assert_eq!(crate_paths(source), ["audit", "domain", "service", "health::scheduler::run"]);
    assert_eq!(layer_of("health::scheduler::run"), LAYERS.iter().position(|l| *l == "health::scheduler"));
    assert_eq!(layer_of("health::policy"), LAYERS.iter().position(|l| *l == "health"));
    assert_eq!(module_of(Path::new("store/mod.rs")), "store");
}
