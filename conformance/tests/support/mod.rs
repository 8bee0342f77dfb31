//! What the conformance crate's test files share.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The adapters run `vaultref` (next to them) as git's credential helper:
/// builds it if this test run did not. `adapter` is the path of an adapter
/// binary of this build.
pub fn ensure_helper(adapter: &str) {
    let helper = PathBuf::from(adapter).with_file_name("vaultref");
    if helper.is_file() {
        return;
    }
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--package",
            "vaultref",
            "--bin",
            "vaultref",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the vaultref binary failed");
}

/// The `report.json` a run wrote into `reports`.
pub fn report_json(reports: &Path) -> Value {
    let path = reports.join("report.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
