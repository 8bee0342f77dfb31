//! Hygiene (`protocol.md` §6): where the harness looks for secrets an
//! implementation let out, and which secrets it looks for.
//!
//! What is searched, each with `vaultref::testing::leak::find_leak` (every
//! spelling H1 lists):
//!
//! - **output**: the implementation's stdout and stderr (H1, H3);
//! - **replies**: every string of a `check_payload` or `check_ref` reply (H2);
//! - **its directories** (H4): after each live scenario, every regular file
//!   left under the directories the implementation was given (work dir,
//!   `TMPDIR`, the recording git's log), except the credential files the
//!   harness wrote there itself;
//! - **stray files** (H5): at the end of the run, every regular file created
//!   or changed during the run in the places a program writes to without
//!   being told (the temp dir, `/var/tmp`, `/dev/shm`, `$HOME`, three levels
//!   deep), except the harness's own directories ([`HARNESS_DIRS`]). The
//!   machine may be shared, so only files that changed during the run are read, and only
//!   this run's secrets are looked for: another program's files cannot
//!   match.
//!
//! Which secrets: every value the scenarios provisioned, every token and
//! secret id they handed out, the vectors' planted tokens, and every token
//! the Vault server issued during the run, learned from its audit log (which
//! the harness's servers write raw): a token the implementation obtained
//! itself by logging in is a secret too (H2).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::iut::Captured;
use crate::verdict::Failure;

/// Files larger than this are not read (a secret is short; a checkout's
/// pack file is not where an implementation writes one).
const MAX_FILE: u64 = 4 << 20;

/// How deep the stray-file scan goes below each of its roots.
const STRAY_DEPTH: usize = 3;

/// The most entries the stray-file scan looks at per root, so a huge home
/// directory cannot slow a run down.
const STRAY_ENTRIES: usize = 20_000;

/// Name prefixes of the directories the harness and its test servers make
/// in the temp dir (scenario directories, OpenBao's data and raw audit log,
/// the git server's repositories, the container backend's mounts): the
/// stray-file scan does not enter them. They hold the credentials the
/// harness hands out, by design.
pub const HARNESS_DIRS: &[&str] = &[
    "vaultref-conf-",
    "vaultref-bao-",
    "vaultref-git-server-",
    "vaultref-vault-",
];

/// H1/H3 over outputs: a failure naming the form, or `None`.
pub fn output_leak(outputs: &[Captured], secrets: &[SecretString]) -> Option<Failure> {
    if secrets.is_empty() {
        return None;
    }
    outputs.iter().enumerate().find_map(|(i, out)| {
        vaultref::testing::leak::find_leak(&out.snapshot(), secrets).map(|form| {
            Failure::new(
                "protocol.md §6 H1/H2: no secret value, nor an encoding of one, in the implementation's output",
                "no secret in stdout or stderr",
                format!(
                    "a secret ({form}) appeared on the implementation's {}",
                    if i % 2 == 0 { "stdout" } else { "stderr" }
                ),
            )
        })
    })
}

/// H2 over one reply: every string in it, decoded from JSON, searched for the
/// request's secrets.
pub fn reply_leak(reply: &Map<String, Value>, secrets: &[SecretString]) -> Option<Failure> {
    fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(m) => m.iter().for_each(|(k, x)| {
                out.push(k);
                strings(x, out)
            }),
            _ => {}
        }
    }
    if secrets.is_empty() {
        return None;
    }
    let mut all = Vec::new();
    for v in reply.values() {
        strings(v, &mut all);
    }
    let text = all.join("\n");
    vaultref::testing::leak::find_leak(text.as_bytes(), secrets).map(|form| {
        Failure::new(
            "protocol.md §6 H1; errors.md: a message never contains secret material",
            "no token from the request in the reply",
            format!("a token from the request ({form}) is in the reply"),
        )
    })
}

/// H4: every regular file under `roots` (not entering a directory named
/// `creds`, where the harness writes the credentials it hands out), searched
/// for `secrets`. The failure names the file relative to its root.
pub fn dir_leak(roots: &[PathBuf], secrets: &[SecretString]) -> Option<Failure> {
    if secrets.is_empty() {
        return None;
    }
    for root in roots {
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if meta.is_dir() {
                    if !(dir == *root && entry.file_name() == "creds") {
                        stack.push(path);
                    }
                } else if let Some(form) = file_leak(&path, &meta, secrets) {
                    let shown = path.strip_prefix(root).unwrap_or(&path);
                    return Some(Failure::new(
                        "protocol.md §6 H4: no secret in a file the implementation leaves in its directories",
                        "no secret in any file under the implementation's work and temporary directories",
                        format!("a secret ({form}) is in the file {}", shown.display()),
                    ));
                }
            }
        }
    }
    None
}

fn file_leak(
    path: &Path,
    meta: &std::fs::Metadata,
    secrets: &[SecretString],
) -> Option<&'static str> {
    if !meta.is_file() || meta.len() > MAX_FILE {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    vaultref::testing::leak::find_leak(&bytes, secrets)
}

/// The places a program writes to without being told, as they were when
/// the run started (H5).
pub struct StraySnapshot {
    roots: Vec<PathBuf>,
    seen: HashMap<PathBuf, (u64, i64, i64)>,
}

impl StraySnapshot {
    /// The default roots: the temp dir, `/var/tmp`, `/dev/shm` and `$HOME`.
    pub fn default_roots() -> Vec<PathBuf> {
        let mut roots = vec![std::env::temp_dir(), "/var/tmp".into(), "/dev/shm".into()];
        if let Some(home) = std::env::var_os("HOME") {
            roots.push(home.into());
        }
        roots.sort();
        roots.dedup();
        roots
    }

    /// Records every regular file under `roots` (size and mtime).
    pub fn take(roots: Vec<PathBuf>) -> StraySnapshot {
        let mut seen = HashMap::new();
        for root in &roots {
            walk(root, &mut |p, m| {
                seen.insert(p.to_path_buf(), stamp(m));
            });
        }
        StraySnapshot { roots, seen }
    }

    /// Every file created or changed since the snapshot, searched for
    /// `secrets`; the failure names the file.
    pub fn leak(&self, secrets: &[SecretString]) -> Option<Failure> {
        if secrets.is_empty() {
            return None;
        }
        let mut found = None;
        for root in &self.roots {
            walk(root, &mut |p, m| {
                if found.is_some() || self.seen.get(p) == Some(&stamp(m)) {
                    return;
                }
                if let Some(form) = file_leak(p, m, secrets) {
                    found = Some(Failure::new(
                        "protocol.md §6 H5 (P6): no secret in a file written outside the implementation's directories",
                        "no file created or changed during the run outside the given directories holds a secret",
                        format!("a secret ({form}) is in {}", p.display()),
                    ));
                }
            });
        }
        found
    }
}

fn stamp(m: &std::fs::Metadata) -> (u64, i64, i64) {
    (m.len(), m.mtime(), m.mtime_nsec())
}

/// Calls `f` for every regular file under `root`, at most [`STRAY_DEPTH`]
/// levels down and [`STRAY_ENTRIES`] entries, not entering the harness's
/// directories ([`HARNESS_DIRS`]) and not following symlinks.
fn walk(root: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    let mut budget = STRAY_ENTRIES;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if budget == 0 {
                return;
            }
            budget -= 1;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // At any depth: another harness run (a CI job beside this one)
            // may have its temp dir inside this one's.
            if HARNESS_DIRS.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth + 1 < STRAY_DEPTH {
                    stack.push((path, depth + 1));
                }
            } else if meta.is_file() {
                f(&path, &meta);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Vec<SecretString> {
        vec![SecretString::from("ghp_FAKEFAKEHYGIENE0123456789abcdef")]
    }

    #[test]
    fn dir_leak_reads_files_but_not_the_harness_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("creds")).unwrap();
        std::fs::create_dir_all(root.join("tmp/deep")).unwrap();
        std::fs::write(
            root.join("creds/token"),
            "ghp_FAKEFAKEHYGIENE0123456789abcdef",
        )
        .unwrap();
        assert!(dir_leak(std::slice::from_ref(&root), &secret()).is_none());
        std::fs::write(
            root.join("tmp/deep/debug.txt"),
            hex::encode("ghp_FAKEFAKEHYGIENE0123456789abcdef"),
        )
        .unwrap();
        let f = dir_leak(&[root], &secret()).expect("the hex-encoded secret is found");
        assert!(f.actual.contains("tmp/deep/debug.txt"), "{}", f.actual);
        assert!(!f.actual.contains("FAKEFAKE"), "{}", f.actual);
    }

    #[test]
    fn stray_files_are_new_or_changed_ones_outside_the_harness_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let run = root.join("vaultref-bao-x");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(root.join("old"), "ghp_FAKEFAKEHYGIENE0123456789abcdef").unwrap();
        let snap = StraySnapshot::take(vec![root.clone()]);
        // Unchanged since the snapshot: not this run's doing.
        assert!(snap.leak(&secret()).is_none());
        std::fs::write(run.join("audit.log"), "ghp_FAKEFAKEHYGIENE0123456789abcdef").unwrap();
        assert!(
            snap.leak(&secret()).is_none(),
            "a directory of the harness's"
        );
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(
            root.join("a/b/cache"),
            "x ghp_FAKEFAKEHYGIENE0123456789abcdef",
        )
        .unwrap();
        let f = snap.leak(&secret()).expect("the new file is read");
        assert!(f.actual.contains("a/b/cache"), "{}", f.actual);
    }
}
