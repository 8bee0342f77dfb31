//! The broken adapter's defects in the `codex` operations, each a mistake a
//! first implementation makes (see [`super::faults::Fault`]):
//!
//! - `claim-without-cas`: reads the record, decides, and writes it without
//!   `options.cas` (check-then-act): two concurrent claims both win;
//! - `backup-plaintext`: stores the volume as a plain tar at the backup's
//!   path and restores it without any check;
//! - `rewrap-noop`: answers `codex_rewrap` without rewrapping;
//! - `rewrap-unlocked`: rewraps without honouring the store's rewrap lock
//!   (the lock file is moved aside, so the library locks a fresh one);
//! - `restore-from-cache`: keeps a copy of each backed-up volume in its temp
//!   dir "to make restores fast" and restores from it when Vault says no.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde_json::{Map, Value, json};
use vaultref::testing::Admin;

use super::faults::Fault;
use super::{State, failed};

/// Answers a `codex_*` request the faulty way, or `None` to let the shim
/// answer it. `vault` is the `vault` member `configure` was given.
pub(crate) fn before(
    fault: Fault,
    op: &str,
    req: &Map<String, Value>,
    state: &State,
    vault: Option<&Value>,
    temp_dir: Option<&Path>,
) -> Option<Value> {
    let c = state.codex.as_ref()?;
    let text = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or_default();
    let (shard, worker) = (text("shard"), text("worker_id"));
    match (fault, op) {
        (Fault::ClaimWithoutCas, "codex_claim") => {
            let admin = own_client(vault?)?;
            let path = format!("{}/data/{}/{shard}", c.records.mount, c.records.prefix);
            state.rt.block_on(async {
                let (_, rec) = admin.request("GET", &path, None).await.ok()?;
                let data = &rec["data"]["data"];
                let owner = data["owner"].as_str().unwrap_or("");
                let now = now_ms();
                let live =
                    !owner.is_empty() && data["lease_expires_ms"].as_u64().unwrap_or(0) > now;
                if live && owner != worker {
                    return Some(failed(
                        op,
                        "codex_shard_not_owned",
                        "another worker owns it",
                    ));
                }
                let ttl = req["ttl_ms"].as_u64().unwrap_or(60_000);
                let body =
                    json!({"data": {"owner": worker, "epoch": 1, "lease_expires_ms": now + ttl}});
                let (status, _) = admin.request("POST", &path, Some(body)).await.ok()?;
                Some(if status == 200 {
                    json!({"reply": op, "outcome": "claimed", "epoch": 1})
                } else {
                    failed(op, "vault_unavailable", "the write failed")
                })
            })
        }
        (Fault::BackupPlaintext, "codex_backup") => {
            let dir = c.store.join(shard);
            let done = std::fs::create_dir_all(&dir).and_then(|()| {
                let out = std::fs::File::create(dir.join("backup-1.vrcb"))?;
                let mut b = tar::Builder::new(out);
                b.follow_symlinks(false);
                b.append_dir_all(".", text("volume"))?;
                b.finish()
            });
            Some(match done {
                Ok(()) => json!({"reply": op, "outcome": "backed_up", "version": 1}),
                Err(e) => failed(op, "config_invalid", &e.to_string()),
            })
        }
        (Fault::BackupPlaintext, "codex_restore") => {
            let done = std::fs::File::open(c.store.join(shard).join("backup-1.vrcb"))
                .and_then(|f| tar::Archive::new(f).unpack(text("to")));
            Some(match done {
                Ok(()) => json!({"reply": op, "outcome": "restored", "version": 1}),
                Err(e) => failed(op, "config_invalid", &e.to_string()),
            })
        }
        (Fault::RewrapNoop, "codex_rewrap") => {
            Some(json!({"reply": op, "outcome": "rewrapped", "backups": 1, "rewrapped": 1}))
        }
        (Fault::RewrapUnlocked, "codex_rewrap") => {
            let lock = c.store.join(vaultref::vault::REWRAP_LOCK);
            let aside = c.store.join(".rewrap.lock.aside");
            let moved = std::fs::rename(&lock, &aside).is_ok();
            let reply = super::codex::handle(op, req, state);
            if moved {
                let _ = std::fs::rename(&aside, &lock);
            }
            Some(reply)
        }
        (Fault::RestoreFromCache, "codex_backup") => {
            let reply = super::codex::handle(op, req, state);
            if reply["outcome"] == "backed_up" {
                let _ = copy_tree(Path::new(text("volume")), &cache(temp_dir?, shard));
            }
            Some(reply)
        }
        (Fault::RestoreFromCache, "codex_restore") => {
            let reply = super::codex::handle(op, req, state);
            if reply["code"] == "vault_permission_denied"
                && copy_tree(&cache(temp_dir?, shard), Path::new(text("to"))).is_ok()
            {
                return Some(json!({"reply": op, "outcome": "restored", "version": 1}));
            }
            Some(reply)
        }
        _ => None,
    }
}

fn cache(temp_dir: &Path, shard: &str) -> PathBuf {
    temp_dir.join("codex-cache").join(shard)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An HTTP client holding the implementation's own token (from its token
/// file), for raw KV calls.
fn own_client(vault: &Value) -> Option<Admin> {
    let token = std::fs::read_to_string(vault["auth"]["token_file"].as_str()?).ok()?;
    let ca = vault["ca_cert"]
        .as_str()
        .and_then(|p| std::fs::read(p).ok());
    Admin::with_ca(
        vault["addr"].as_str()?,
        SecretString::from(token.trim().to_owned()),
        ca.as_deref(),
    )
    .ok()
}

/// Copies a tree: directories, files (with modes) and links as links.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let t = e.file_type()?;
        if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if t.is_dir() {
            copy_tree(&src, &dst)?;
            std::fs::set_permissions(&dst, std::fs::metadata(&src)?.permissions())?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}
