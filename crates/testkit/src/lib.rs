//! Paths that tests, benches and examples across the workspace share: the workspace root, the
//! models and the shared evaluation data. A dev-dependency only.

use std::path::{Path, PathBuf};

pub mod fronts;
pub mod pg;
pub mod processes;

/// The workspace root, found at run time from the package being run.
///
/// Cargo sets `CARGO_MANIFEST_DIR` to that package's directory when it runs a test, bench or
/// example (the workspace root itself for the `idverify` package, `crates/<name>` for the
/// others); the root is its nearest ancestor whose `Cargo.toml` declares `[workspace]`. Run time,
/// not compile time: with a target dir shared between checkouts, the path compiled in may be
/// another checkout's. The compiled-in path is the fallback for a binary run outside Cargo.
pub fn workspace_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    package.ancestors().find(|dir| declares_workspace(dir)).map(Path::to_path_buf).unwrap_or(package)
}

fn declares_workspace(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|manifest| manifest.lines().any(|line| line.trim() == "[workspace]"))
}

/// The models: `IDVERIFY_MODELS_DIR`, else `<workspace>/models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("IDVERIFY_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models"))
}

/// The shared evaluation data: `IDVERIFY_SHARED_DATA`, else `<workspace>/../shared/data`.
pub fn shared_data() -> PathBuf {
    std::env::var_os("IDVERIFY_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data"))
}

/// A script in `<workspace>/scripts`.
pub fn script(name: &str) -> PathBuf {
    workspace_root().join("scripts").join(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let root = super::workspace_root();
        assert!(super::declares_workspace(&root), "{}", root.display());
        assert!(root.join("crates/testkit/Cargo.toml").is_file(), "{}", root.display());
    }
}
