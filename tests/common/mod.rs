//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod chaos;
pub mod e2e;
pub mod otlp;
pub mod structural;
pub mod tools;

use std::path::{Path, PathBuf};

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn repo_path(relative: &str) -> PathBuf {
    repo_root().join(relative)
}

/// Every non-empty document of a YAML file.
pub fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}
