//! Encrypted backups of a Codex auth volume (`spec/codex-backups.md`):
//! `backup`, `restore` and `rewrap` for the owner of a shard.
//!
//! Envelope encryption: each backup gets a fresh data key from Transit
//! (`<mount>/datakey/plaintext/<key>`), seals the volume's tar stream with it
//! chunk by chunk (`envelope`), keeps only the wrapped key in its header, and
//! drops the plaintext key. No volume byte goes to Vault (Transit caps a
//! request at 32 MB, and there is no reason to send it). A restore asks
//! Transit to unwrap the key (`<mount>/decrypt/<key>`); a rotation is
//! followed by `rewrap` (`<mount>/rewrap/<key>`), which replaces wrapped keys
//! in headers and never sees a plaintext key or a chunk. So a writer's policy
//! needs only `datakey/plaintext`, a restorer's `decrypt`, an operator's
//! `rewrap`: a worker that may back up cannot read old backups.
//!
//! Where things are:
//! - `envelope`: the file format, sealing and opening, the token guard;
//! - `archive`: the volume as tar, and the checked extraction;
//! - this module: Transit calls, the store directory, the shard record, and
//!   the order of the steps (every check before anything is written at the
//!   restore target).
//!
//! The store is a directory (a mounted off-host volume, say):
//! `<store>/<shard>/backup-<N>.vrcb`, written to a temporary file and linked
//! in place without replacing anything; `rewrap` replaces a file by rename.

mod archive;
mod envelope;

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use envelope::{Header, LeakFound, LeakGuard, OpeningReader, SealingWriter, as_corrupt};

use super::error::ResolveError;
use super::resolver::Resolver;
use super::shards::{ShardRecord, ShardStore, not_owned, now_ms, valid_shard_id};
use crate::ErrorCode;

/// The Transit key that wraps data keys: `<mount>/.../<key>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitKey {
    /// The Transit mount (default `transit`).
    pub mount: String,
    /// The key's name (default `codex`).
    pub key: String,
}

impl Default for TransitKey {
    fn default() -> Self {
        TransitKey {
            mount: "transit".to_owned(),
            key: "codex".to_owned(),
        }
    }
}

/// A backup as made or restored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackupInfo {
    /// The shard.
    pub shard: String,
    /// The backup's version within the shard.
    pub version: u64,
    /// Its object key in the store: `<shard>/backup-<N>.vrcb`.
    pub key: String,
    /// Bytes of ciphertext (the file after its header).
    pub size: u64,
    /// SHA-256 of those bytes, lower-case hex.
    pub sha256: String,
    /// The Transit key version that wrapped the data key.
    pub transit_key_version: u64,
    /// What the archive holds.
    pub files: u64,
    /// Directories in the archive.
    pub dirs: u64,
    /// Symbolic links in the archive.
    pub links: u64,
    /// Bytes of regular files.
    pub bytes: u64,
}

/// What `rewrap` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RewrapReport {
    /// Backups looked at.
    pub backups: u64,
    /// Backups whose data key was wrapped again with a newer key version.
    pub rewrapped: u64,
    /// The lowest key version wrapping any backup afterwards (0: no backup):
    /// the key's `min_decryption_version` can be raised to it.
    pub min_key_version: u64,
}

fn object_key(shard: &str, version: u64) -> String {
    format!("{shard}/backup-{version}.vrcb")
}

/// The `N` of a file name `backup-<N>.vrcb`.
fn version_of(name: &str) -> Option<u64> {
    let n = name.strip_prefix("backup-")?.strip_suffix(".vrcb")?;
    (!n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
}

fn corrupt_err(shard: &str, key: &str, why: &str) -> ResolveError {
    ResolveError::new(
        ErrorCode::CodexBackupCorrupt,
        format!("backup {key} of shard `{shard}` does not verify: {why}"),
    )
}

/// A disk error on `what`: the store, the volume or the target are
/// settings the operator gave.
fn disk(what: &str, e: &io::Error) -> ResolveError {
    ResolveError::config(format!("{what}: {e}"))
}

/// Transit's answer holding a key: `data.plaintext` (zeroized) and/or
/// `data.ciphertext`.
#[derive(Deserialize)]
struct TransitReply {
    data: TransitData,
}

#[derive(Deserialize)]
struct TransitData {
    #[serde(default)]
    plaintext: Option<Zeroizing<String>>,
    #[serde(default)]
    ciphertext: Option<String>,
}

impl Resolver {
    /// `POST <transit>/<op>/<key>` with `body`; the `data` of a 200.
    async fn transit(
        &self,
        transit: &TransitKey,
        op: &str,
        body: Value,
    ) -> Result<TransitData, ResolveError> {
        let path = format!("{}/{op}/{}", transit.mount, transit.key);
        let held = self.tokens.current().await?;
        let body = Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default());
        let reply = self.transport.post(&path, Some(held.token()), body).await?;
        let vault_says = || {
            let v: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            v["errors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default()
        };
        match reply.status {
            200 => serde_json::from_slice::<TransitReply>(&reply.body)
                .map(|r| r.data)
                .map_err(|_| {
                    ResolveError::new(
                        ErrorCode::VaultUnavailable,
                        format!("Vault's answer for {path} is not Transit's"),
                    )
                }),
            403 => Err(ResolveError::new(
                ErrorCode::VaultPermissionDenied,
                format!("the token's policy does not allow update on {path}"),
            )),
            400 | 404 if op == "decrypt" => Err(ResolveError::new(
                ErrorCode::CodexBackupCorrupt,
                format!(
                    "Transit will not unwrap the data key at {path}: {}",
                    vault_says()
                ),
            )),
            400 | 404 => Err(ResolveError::config(format!(
                "Transit refused {path}: {} ({})",
                vault_says(),
                if op == "rewrap" {
                    "a key version below min_decryption_version cannot be rewrapped: raise the minimum after the rewrap"
                } else {
                    "is the key there, of type aes256-gcm96?"
                }
            ))),
            s => Err(ResolveError::new(
                ErrorCode::VaultUnavailable,
                format!("Vault answered HTTP {s} to {path}"),
            )),
        }
    }

    /// The shard's record, which `worker` must own with a live lease.
    async fn owned_record(
        &self,
        shards: &ShardStore,
        shard: &str,
        worker: &str,
    ) -> Result<ShardRecord, ResolveError> {
        let rec = self.shard_status(shards, shard).await?;
        if !rec.owned_by(worker) {
            return Err(not_owned(&rec, worker, now_ms()));
        }
        Ok(rec)
    }

    /// Backs up the volume at `volume` as the next version of `shard` in
    /// `store`, as `worker`, which must own the shard; records it as the
    /// shard's `latest_backup`.
    pub async fn codex_backup(
        &self,
        shards: &ShardStore,
        transit: &TransitKey,
        store: &Path,
        shard: &str,
        worker: &str,
        volume: &Path,
    ) -> Result<BackupInfo, ResolveError> {
        let rec = self.owned_record(shards, shard, worker).await?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(store)
            .map_err(|e| disk(&store.display().to_string(), &e))?;
        let _lock = lock_store(store, false).await?;
        let dir = store.join(shard);
        let recorded = latest_backup(&rec)["version"].as_u64().unwrap_or(0);
        let version = recorded
            .max(highest_version(&dir)?)
            .checked_add(1)
            .ok_or_else(|| {
                ResolveError::config(format!("shard `{shard}` has no backup version left"))
            })?;
        let data = self
            .transit(transit, "datakey/plaintext", json!({"bits": 256}))
            .await?;
        let (Some(plain), Some(wrapped)) = (data.plaintext, data.ciphertext) else {
            return Err(ResolveError::new(
                ErrorCode::VaultUnavailable,
                "Transit's data key answer lacks the key",
            ));
        };
        let key_version = envelope::key_version(&wrapped).ok_or_else(|| {
            ResolveError::new(
                ErrorCode::VaultUnavailable,
                "Transit's wrapped data key has no `vault:v<N>:` prefix",
            )
        })?;
        let key = decode_key(&plain).map_err(|why| {
            ResolveError::new(
                ErrorCode::VaultUnavailable,
                format!("Transit's data key: {why}"),
            )
        })?;
        drop(plain);
        let header = Header {
            format: 1,
            shard: shard.to_owned(),
            version,
            created_ms: now_ms(),
            cipher: envelope::CIPHER.to_owned(),
            chunk_size: envelope::CHUNK as u32,
            transit_mount: transit.mount.clone(),
            transit_key: transit.key.clone(),
            wrapped_key: wrapped,
            key_version,
        };
        let token = self.tokens.current().await?;
        let guard = LeakGuard::new(vec![Zeroizing::new(
            token.token().expose_secret().as_bytes().to_vec(),
        )]);
        drop(token);
        let volume = volume.to_owned();
        let info =
            tokio::task::spawn_blocking(move || write_backup(&dir, &volume, header, &key, guard))
                .await
                .map_err(|e| ResolveError::config(format!("the backup task failed: {e}")))??;
        self.shard_record(
            shards,
            shard,
            worker,
            "latest_backup",
            json!({
                "key": info.key,
                "version": info.version,
                "size": info.size,
                "sha256": info.sha256,
                "transit_key_version": info.transit_key_version,
                "at_ms": now_ms(),
            }),
        )
        .await?;
        Ok(info)
    }

    /// Restores backup `version` of `shard` (default: the record's
    /// `latest_backup`) from `store` to `to`, which must not exist or be an
    /// empty directory, as `worker`, which must own the shard.
    #[allow(clippy::too_many_arguments)]
    pub async fn codex_restore(
        &self,
        shards: &ShardStore,
        transit: &TransitKey,
        store: &Path,
        shard: &str,
        worker: &str,
        to: &Path,
        version: Option<u64>,
    ) -> Result<BackupInfo, ResolveError> {
        let rec = self.owned_record(shards, shard, worker).await?;
        let latest = latest_backup(&rec);
        let version = match version.or_else(|| latest["version"].as_u64()) {
            Some(v) if v > 0 => v,
            _ => {
                return Err(ResolveError::config(format!(
                    "shard `{shard}` has no recorded backup: name one with --version"
                )));
            }
        };
        let key = object_key(shard, version);
        // The record's size and hash bind its latest backup: a valid older
        // backup put in its place is refused.
        let expect = (latest["version"].as_u64() == Some(version)).then(|| {
            (
                latest["size"].as_u64().unwrap_or(0),
                latest["sha256"].as_str().unwrap_or("").to_owned(),
            )
        });
        check_target(to)?;
        let path = store.join(&key);
        let mut file = open_nofollow(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ResolveError::config(format!("no backup {key} in {}", store.display()))
            } else {
                disk(&format!("backup {key}"), &e)
            }
        })?;
        let header = envelope::read_header(&mut file).map_err(|e| {
            as_corrupt(&e).map_or_else(|| disk(&key, &e), |c| corrupt_err(shard, &key, &c))
        })?;
        if header.shard != shard || header.version != version {
            return Err(corrupt_err(
                shard,
                &key,
                &format!(
                    "its header says shard `{}` version {}",
                    crate::vault::inspect::server_text(&header.shard),
                    header.version
                ),
            ));
        }
        let data = self
            .transit(
                transit,
                "decrypt",
                json!({"ciphertext": header.wrapped_key}),
            )
            .await?;
        let plain = data.plaintext.unwrap_or_default();
        let key_bytes = decode_key(&plain).map_err(|why| corrupt_err(shard, &key, &why))?;
        drop(plain);
        let to = to.to_owned();
        let shard_owned = shard.to_owned();
        tokio::task::spawn_blocking(move || {
            restore_backup(file, &header, &key_bytes, &to, expect, &key).map_err(|e| match e {
                Failure::Corrupt(c) => corrupt_err(&shard_owned, &key, &c),
                Failure::Disk(what, e) => disk(&what, &e),
            })
        })
        .await
        .map_err(|e| ResolveError::config(format!("the restore task failed: {e}")))?
    }

    /// Re-wraps the data key of every backup in `store` (or of `shard`'s
    /// only) with the Transit key's latest version. Never sees a plaintext
    /// key or a chunk; each file is replaced by rename. Holds the store's
    /// rewrap lock throughout, waiting for another rewrap, or a backup, to
    /// end first ([`REWRAP_LOCK`]).
    pub async fn codex_rewrap(
        &self,
        transit: &TransitKey,
        store: &Path,
        shard: Option<&str>,
    ) -> Result<RewrapReport, ResolveError> {
        let _lock = lock_store(store, true).await?;
        let mut report = RewrapReport::default();
        let mut min = u64::MAX;
        for path in backups_in(store, shard)? {
            let shown = path
                .strip_prefix(store)
                .unwrap_or(&path)
                .display()
                .to_string();
            let mut file = open_nofollow(&path).map_err(|e| disk(&shown, &e))?;
            let header = envelope::read_header(&mut file).map_err(|e| {
                as_corrupt(&e).map_or_else(
                    || disk(&shown, &e),
                    |c| ResolveError::new(ErrorCode::CodexBackupCorrupt, format!("{shown}: {c}")),
                )
            })?;
            if header.transit_mount != transit.mount || header.transit_key != transit.key {
                return Err(ResolveError::config(format!(
                    "{shown} is wrapped by Transit key {}/{}, not {}/{}",
                    crate::vault::inspect::server_text(&header.transit_mount),
                    crate::vault::inspect::server_text(&header.transit_key),
                    transit.mount,
                    transit.key
                )));
            }
            let data = self
                .transit(transit, "rewrap", json!({"ciphertext": header.wrapped_key}))
                .await?;
            let wrapped = data.ciphertext.unwrap_or_default();
            let version = envelope::key_version(&wrapped).ok_or_else(|| {
                ResolveError::new(
                    ErrorCode::VaultUnavailable,
                    "Transit's rewrapped key has no `vault:v<N>:` prefix",
                )
            })?;
            report.backups += 1;
            min = min.min(version);
            if version != header.key_version {
                let header = Header {
                    wrapped_key: wrapped,
                    key_version: version,
                    ..header
                };
                let offset = file.stream_position().map_err(|e| disk(&shown, &e))?;
                replace_header(&path, file, offset, &header).map_err(|e| disk(&shown, &e))?;
                report.rewrapped += 1;
            }
        }
        report.min_key_version = if report.backups == 0 { 0 } else { min };
        Ok(report)
    }
}

/// The record's `latest_backup` (`null` when there is none).
fn latest_backup(rec: &ShardRecord) -> &Value {
    rec.data.get("latest_backup").unwrap_or(&Value::Null)
}

fn decode_key(b64: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let key = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| "the data key is not base64".to_owned())?,
    );
    if key.len() != 32 {
        return Err(format!("a data key of {} bytes, not 32", key.len()));
    }
    Ok(key)
}

/// Opens a regular file without following a link or blocking on a pipe
/// planted in the store.
fn open_nofollow(path: &Path) -> io::Result<File> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

/// The highest `N` of `backup-<N>.vrcb` in `dir` (0: none, or no dir).
fn highest_version(dir: &Path) -> Result<u64, ResolveError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(disk(&dir.display().to_string(), &e)),
    };
    let mut max = 0;
    for e in entries {
        let e = e.map_err(|e| disk(&dir.display().to_string(), &e))?;
        if let Some(v) = e.file_name().to_str().and_then(version_of) {
            max = max.max(v);
        }
    }
    Ok(max)
}

/// Every backup file in `store` (of `shard` only, when given), sorted.
fn backups_in(store: &Path, shard: Option<&str>) -> Result<Vec<PathBuf>, ResolveError> {
    let read = |d: &Path| fs::read_dir(d).map_err(|e| disk(&d.display().to_string(), &e));
    let shards: Vec<PathBuf> = match shard {
        Some(s) => {
            if !valid_shard_id(s) {
                return Err(ResolveError::config(format!(
                    "`{}` is not a shard id",
                    s.escape_debug()
                )));
            }
            vec![store.join(s)]
        }
        None => read(store)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().is_some_and(valid_shard_id))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect(),
    };
    let mut out = Vec::new();
    for dir in shards {
        if !dir.exists() {
            continue;
        }
        for e in read(&dir)?.filter_map(Result::ok) {
            if e.file_name().to_str().and_then(version_of).is_some()
                && e.file_type().is_ok_and(|t| t.is_file())
            {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `to` must not exist, or be an empty directory (not a link); its parent
/// must be a directory.
fn check_target(to: &Path) -> Result<(), ResolveError> {
    match fs::symlink_metadata(to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = parent_of(to);
            if !parent.is_dir() {
                return Err(ResolveError::config(format!(
                    "{} does not exist (the restore target's parent must)",
                    parent.display()
                )));
            }
            Ok(())
        }
        Err(e) => Err(disk(&to.display().to_string(), &e)),
        Ok(m) if m.is_dir() && fs::read_dir(to).is_ok_and(|mut d| d.next().is_none()) => Ok(()),
        Ok(_) => Err(ResolveError::config(format!(
            "{} exists and is not an empty directory: a restore never overwrites a volume",
            to.display()
        ))),
    }
}

fn parent_of(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Seals the volume into a new file `<dir>/backup-<version>.vrcb`.
fn write_backup(
    dir: &Path,
    volume: &Path,
    header: Header,
    key: &[u8],
    guard: LeakGuard,
) -> Result<BackupInfo, ResolveError> {
    let shard = header.shard.clone();
    let key_name = object_key(&shard, header.version);
    let shown = dir.display().to_string();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| disk(&shown, &e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".backup-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(|e| disk(&shown, &e))?;
    let mut out = BufWriter::with_capacity(1 << 16, tmp);
    envelope::write_header(&mut out, &header).map_err(|e| disk(&shown, &e))?;
    let aead = envelope::data_key(key).map_err(|c| ResolveError::config(c.0))?;
    let sealer = SealingWriter::new(aead, &shard, header.version, out, guard);
    let (sealer, counts) = archive::write_volume(volume, sealer).map_err(|e| {
        if e.get_ref().is_some_and(|r| r.is::<LeakFound>()) {
            ResolveError::config(format!(
                "{}: the volume holds the worker's Vault token (a token file inside the volume?); nothing was stored",
                volume.display()
            ))
        } else {
            disk(&format!("volume {}", volume.display()), &e)
        }
    })?;
    let sealed = sealer.finish().map_err(|e| {
        if e.get_ref().is_some_and(|r| r.is::<LeakFound>()) {
            ResolveError::config(format!(
                "{}: the volume holds the worker's Vault token; nothing was stored",
                volume.display()
            ))
        } else {
            disk(&shown, &e)
        }
    })?;
    let tmp = sealed
        .out
        .into_inner()
        .map_err(|e| disk(&shown, e.error()))?;
    tmp.as_file().sync_all().map_err(|e| disk(&shown, &e))?;
    let final_path = dir.join(format!("backup-{}.vrcb", header.version));
    tmp.persist_noclobber(&final_path).map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            ResolveError::config(format!(
                "{key_name} appeared while this backup was written (another backup of the same shard?)"
            ))
        } else {
            disk(&shown, &e.error)
        }
    })?;
    // The new name durable too, not only the bytes.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| disk(&shown, &e))?;
    Ok(BackupInfo {
        shard,
        version: header.version,
        key: key_name,
        size: sealed.size,
        sha256: sealed.sha256,
        transit_key_version: header.key_version,
        files: counts.files,
        dirs: counts.dirs,
        links: counts.links,
        bytes: counts.bytes,
    })
}

enum Failure {
    Corrupt(String),
    Disk(String, io::Error),
}

/// Opens, extracts into a fresh directory beside `to`, checks the end and
/// the record's hash, and only then renames it to `to`. On any failure the
/// fresh directory is removed and `to` is as it was.
fn restore_backup(
    file: File,
    header: &Header,
    key: &[u8],
    to: &Path,
    expect: Option<(u64, String)>,
    key_name: &str,
) -> Result<BackupInfo, Failure> {
    let parent = parent_of(to);
    let disk_err = |what: &str| {
        let what = what.to_owned();
        move |e: io::Error| match as_corrupt(&e) {
            Some(c) => Failure::Corrupt(c),
            None => Failure::Disk(what, e),
        }
    };
    let fresh = tempfile::Builder::new()
        .prefix(".vaultref-restore-")
        .tempdir_in(parent)
        .map_err(disk_err(&parent.display().to_string()))?;
    let aead = envelope::data_key(key).map_err(|c| Failure::Corrupt(c.0))?;
    let reader = OpeningReader::new(aead, header, BufReader::with_capacity(1 << 16, file));
    let result = archive::extract(reader, fresh.path()).map_err(|e| match as_corrupt(&e) {
        Some(c) => Failure::Corrupt(c),
        // A malformed tar stream inside authenticated chunks (tar's message
        // may quote an entry's path: shown as a server's text).
        None if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::Other => {
            Failure::Corrupt(format!(
                "the archive is malformed: {}",
                crate::vault::inspect::server_text(&e.to_string())
            ))
        }
        None => Failure::Disk(fresh.path().display().to_string(), e),
    });
    let (reader, counts) = match result {
        Ok(r) => r,
        Err(f) => {
            make_removable(fresh.path());
            return Err(f);
        }
    };
    let end = reader.finish().map_err(disk_err(key_name));
    let checked = end.and_then(|(size, sha256)| match &expect {
        Some((s, h)) if *s != size || *h != sha256 => Err(Failure::Corrupt(format!(
            "its ciphertext is not the one the shard record names (size {size}, SHA-256 {sha256}; recorded {s}, {h})"
        ))),
        _ => Ok((size, sha256)),
    });
    let (size, sha256) = match checked {
        Ok(x) => x,
        Err(f) => {
            make_removable(fresh.path());
            return Err(f);
        }
    };
    if to.exists()
        && let Err(e) = fs::remove_dir(to)
    {
        make_removable(fresh.path());
        return Err(Failure::Disk(to.display().to_string(), e));
    }
    let made = fresh.keep();
    fs::rename(&made, to).map_err(|e| {
        make_removable(&made);
        let _ = fs::remove_dir_all(&made);
        Failure::Disk(to.display().to_string(), e)
    })?;
    Ok(BackupInfo {
        shard: header.shard.clone(),
        version: header.version,
        key: key_name.to_owned(),
        size,
        sha256,
        transit_key_version: header.key_version,
        files: counts.files,
        dirs: counts.dirs,
        links: counts.links,
        bytes: counts.bytes,
    })
}

/// Gives the owner write and search permission on every directory under
/// `root`, so that a half-extracted tree with read-only directories can be
/// removed.
fn make_removable(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let _ = fs::set_permissions(root, fs::Permissions::from_mode(0o700));
    for e in entries.filter_map(Result::ok) {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
            make_removable(&e.path());
        }
    }
}

/// The file in a store whose advisory `flock` a rewrap holds exclusively
/// and a backup shared (`spec/codex-backups.md` §5). Two rewraps at once
/// could each rename a header over the other's, and a backup wrapped by the
/// old version could be linked after a rewrap listed the store: either
/// leaves a backup wrapped by an older key version than the report names,
/// and an operator who then raised `min_decryption_version` to that report
/// would make it unrestorable. Never deleted.
pub const REWRAP_LOCK: &str = ".rewrap.lock";

/// Opens (creating it, never through a link) and locks `store`'s
/// [`REWRAP_LOCK`]: exclusively for a rewrap, shared for a backup (from
/// before its data key until its file is linked, so a rewrap that lists
/// the store never misses a backup wrapped by an older key version). Waits
/// while a conflicting lock is held; the lock lasts as long as the returned
/// file. A lock file replaced while waiting (deleted, renamed) is opened
/// again: the lock must be on the file at the path.
async fn lock_store(store: &Path, exclusive: bool) -> Result<File, ResolveError> {
    let path = store.join(REWRAP_LOCK);
    let shown = path.display().to_string();
    let refused = |e: &io::Error| {
        ResolveError::config(format!(
            "{shown}: {e} (backups and rewraps lock the store with this file: create it or \
             make the store writable)"
        ))
    };
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    loop {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .or_else(|e| match e.raw_os_error() {
                // A store root this process may not write: an existing
                // lock file still locks (flock needs no write access).
                Some(libc::EACCES | libc::EROFS) => fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|_| e),
                _ => Err(e),
            })
            .map_err(|e| refused(&e))?;
        loop {
            // `File::try_lock` is newer than the crate's minimum Rust.
            // SAFETY: `flock` on a descriptor owned by `file`; no memory passes.
            if unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) } == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Some(libc::EINTR) => {}
                _ => return Err(disk(&shown, &e)),
            }
        }
        use std::os::unix::fs::MetadataExt;
        let held = file.metadata().map_err(|e| disk(&shown, &e))?;
        let at_path = fs::symlink_metadata(&path).ok();
        if at_path.is_some_and(|m| (m.dev(), m.ino()) == (held.dev(), held.ino())) {
            return Ok(file);
        }
    }
}

/// Writes `header` and the rest of `file` (from `offset`) to a temporary
/// file beside `path`, and renames it over `path`.
fn replace_header(path: &Path, mut file: File, offset: u64, header: &Header) -> io::Result<()> {
    let dir = parent_of(path);
    let tmp = tempfile::Builder::new()
        .prefix(".rewrap-")
        .suffix(".partial")
        .tempfile_in(dir)?;
    let mut out = BufWriter::with_capacity(1 << 16, tmp);
    envelope::write_header(&mut out, header)?;
    file.seek(SeekFrom::Start(offset))?;
    io::copy(&mut file, &mut out)?;
    let tmp = out
        .into_inner()
        .map_err(|e| io::Error::other(e.to_string()))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_file_names() {
        assert_eq!(version_of("backup-1.vrcb"), Some(1));
        assert_eq!(version_of("backup-120.vrcb"), Some(120));
        for bad in [
            "backup-0.vrcb",
            "backup-01.vrcb",
            "backup-.vrcb",
            "backup-1.vrcb.partial",
            "x",
        ] {
            assert_eq!(version_of(bad), None, "{bad}");
        }
        assert_eq!(object_key("s", 3), "s/backup-3.vrcb");
    }

    #[test]
    fn a_restore_target_must_be_new_or_empty() {
        let d = tempfile::tempdir().unwrap();
        assert!(check_target(&d.path().join("new")).is_ok());
        assert!(check_target(d.path()).is_ok());
        fs::write(d.path().join("f"), b"").unwrap();
        assert_eq!(
            check_target(d.path()).unwrap_err().code(),
            ErrorCode::ConfigInvalid
        );
        assert!(check_target(&d.path().join("f")).is_err());
        assert!(check_target(&d.path().join("no/such/dir")).is_err());
        std::os::unix::fs::symlink("/tmp", d.path().join("l")).unwrap();
        assert!(check_target(&d.path().join("l")).is_err());
    }
}
