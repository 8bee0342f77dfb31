//! `cargo xtask conformance [ARGS...]`: builds the harness and the reference
//! adapter, then runs the harness with ARGS (see `vaultref-conformance
//! --help`). Without `--impl`, the harness runs the reference adapter built
//! next to it. The exit code is the harness's: 0 as expected, 1 not, 2 could
//! not run.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

pub fn run(args: &[String]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(&cargo)
        .current_dir(&root)
        // Every binary of the workspace: the harness, the adapters and
        // `vaultref` (the worker's git credential helper, run by the
        // adapter). `--workspace` resolves features as `cargo test
        // --workspace` does (with the workspace's resolver 1), so the two
        // commands share one build of the dependency graph.
        .args(["build", "--quiet", "--workspace", "--bins"])
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("xtask conformance: building the harness failed ({s})");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("xtask conformance: cannot run {cargo}: {e}");
            return ExitCode::from(2);
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let harness = target.join("debug").join("vaultref-conformance");
    match Command::new(&harness).args(args).status() {
        Ok(s) => ExitCode::from(s.code().map_or(2, |c| c.clamp(0, 255) as u8)),
        Err(e) => {
            eprintln!("xtask conformance: cannot run {}: {e}", harness.display());
            ExitCode::from(2)
        }
    }
}
