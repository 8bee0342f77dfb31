//! Codex auth volume shards: which worker owns which volume, kept in a KV v2
//! record and changed only by check-and-set writes (`spec/codex-shards.md`).
//!
//! There is no lock service: Vault's check-and-set is the only arbiter. Each
//! operation reads the record (and its version), decides, and writes with
//! `options.cas` set to the version it read; a write that lost the race gets
//! a 400 and the operation reads and decides again. So of any two workers
//! acting on the same version, one wins and the other sees the winner's
//! record. Leases expire by the workers' clocks (Unix milliseconds in the
//! record), which is why a lease should be minutes long.
//!
//! The record holds no secret. Members this module does not know are kept.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::error::ResolveError;
use super::inspect::server_text;
use super::resolver::Resolver;
use crate::ErrorCode;

/// Where shard records live: `<mount>/data/<prefix>/<shard>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardStore {
    /// The KV v2 mount (default `kv`).
    pub mount: String,
    /// The path prefix under the mount (default `moonmind/codex/shards`).
    pub prefix: String,
}

impl Default for ShardStore {
    fn default() -> Self {
        ShardStore {
            mount: "kv".to_owned(),
            prefix: "moonmind/codex/shards".to_owned(),
        }
    }
}

/// How many times an operation reads and decides again after losing a
/// check-and-set race before it gives up.
pub const CAS_ATTEMPTS: usize = 5;

/// A shard's record as read, with the KV v2 version it was read at (0: no
/// record).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShardRecord {
    /// The shard id.
    pub shard: String,
    /// The KV v2 version of the record (0 when there is none).
    pub version: u64,
    /// The owning worker, `""` when nobody owns it.
    pub owner: String,
    /// Incremented by every claim that changed the owner.
    pub epoch: u64,
    /// Unix milliseconds after which the lease is expired.
    pub lease_expires_ms: u64,
    /// Whether the lease was live when read (owner set, expiry in the future).
    pub live: bool,
    /// Every member of the record's data, the ones above included.
    pub data: Map<String, Value>,
    /// Whether the operation that returned this record wrote it (a release
    /// of a shard nobody owns writes nothing).
    pub written: bool,
}

impl ShardRecord {
    fn from_data(shard: &str, version: u64, data: Map<String, Value>, now: u64) -> ShardRecord {
        let owner = data
            .get("owner")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let num = |k: &str| data.get(k).and_then(Value::as_u64).unwrap_or(0);
        let lease_expires_ms = num("lease_expires_ms");
        ShardRecord {
            shard: shard.to_owned(),
            version,
            live: !owner.is_empty() && lease_expires_ms > now,
            epoch: num("epoch"),
            owner,
            lease_expires_ms,
            data,
            written: false,
        }
    }

    /// The owner as shown to a person: the record is written by whoever may
    /// write it, so control characters (a forged line, an escape sequence)
    /// are shown as `?` and the length is capped.
    pub fn owner_shown(&self) -> String {
        server_text(&self.owner)
    }

    /// Whether `worker` holds a live lease.
    pub fn owned_by(&self, worker: &str) -> bool {
        self.live && self.owner == worker
    }
}

/// What an operation does to a record it read, or why it refuses.
enum Step {
    Write(Map<String, Value>),
    Done,
}

/// Whether `shard` is a valid shard id (`spec/codex-shards.md` §1).
pub fn valid_shard_id(shard: &str) -> bool {
    let b = shard.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
}

/// The workers' clock in Unix milliseconds (leases, backup records).
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(super) fn not_owned(rec: &ShardRecord, worker: &str, now: u64) -> ResolveError {
    let held = if rec.owner.is_empty() {
        "nobody owns it".to_owned()
    } else if rec.lease_expires_ms > now {
        format!(
            "worker `{}` owns it for {} ms more",
            rec.owner_shown(),
            rec.lease_expires_ms - now
        )
    } else {
        format!("worker `{}`'s lease has expired", rec.owner_shown())
    };
    ResolveError::new(
        ErrorCode::CodexShardNotOwned,
        format!(
            "shard `{}` is not owned by worker `{worker}`: {held}",
            rec.shard
        ),
    )
}

impl ShardStore {
    fn data_path(&self, shard: &str) -> Result<String, ResolveError> {
        if !valid_shard_id(shard) {
            return Err(ResolveError::config(format!(
                "`{}` is not a shard id ([A-Za-z0-9][A-Za-z0-9._-]{{0,63}})",
                shard.escape_debug()
            )));
        }
        Ok(format!("{}/data/{}/{shard}", self.mount, self.prefix))
    }
}

impl Resolver {
    /// The shard's record (version 0 and no owner when there is none).
    pub async fn shard_status(
        &self,
        store: &ShardStore,
        shard: &str,
    ) -> Result<ShardRecord, ResolveError> {
        let path = store.data_path(shard)?;
        self.read_shard(&path, shard, None).await
    }

    /// Claims `shard` for `worker` for `ttl` (spec §2): succeeds when nobody
    /// owns it, the lease has expired, or `worker` owns it already.
    pub async fn shard_claim(
        &self,
        store: &ShardStore,
        shard: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<ShardRecord, ResolveError> {
        let ttl = ms(ttl);
        self.shard_op(store, shard, |rec, now| {
            if rec.live && rec.owner != worker {
                return Err(not_owned(rec, worker, now));
            }
            let mut d = leased(rec, now, ttl);
            if rec.owner != worker {
                d.insert("epoch".into(), json!(rec.epoch + 1));
                d.insert("claimed_at_ms".into(), json!(now));
            }
            d.insert("owner".into(), json!(worker));
            Ok(Step::Write(d))
        })
        .await
    }

    /// Renews `worker`'s lease on `shard` (also after expiry, if nobody took
    /// the shard over in between).
    pub async fn shard_renew(
        &self,
        store: &ShardStore,
        shard: &str,
        worker: &str,
        ttl: Duration,
    ) -> Result<ShardRecord, ResolveError> {
        let ttl = ms(ttl);
        self.shard_op(store, shard, |rec, now| {
            if rec.owner != worker {
                return Err(not_owned(rec, worker, now));
            }
            Ok(Step::Write(leased(rec, now, ttl)))
        })
        .await
    }

    /// Releases `worker`'s shard; releasing a shard nobody owns is a no-op.
    pub async fn shard_release(
        &self,
        store: &ShardStore,
        shard: &str,
        worker: &str,
    ) -> Result<ShardRecord, ResolveError> {
        self.shard_op(store, shard, |rec, now| {
            if rec.owner.is_empty() {
                return Ok(Step::Done);
            }
            if rec.owner != worker {
                return Err(not_owned(rec, worker, now));
            }
            let mut d = rec.data.clone();
            d.insert("owner".into(), json!(""));
            d.insert("lease_expires_ms".into(), json!(now));
            Ok(Step::Write(d))
        })
        .await
    }

    /// Sets `member` of the record to `value` as its owner (the preflight
    /// status, the last credential refresh, the latest backup).
    pub async fn shard_record(
        &self,
        store: &ShardStore,
        shard: &str,
        worker: &str,
        member: &str,
        value: Value,
    ) -> Result<ShardRecord, ResolveError> {
        const MEMBERS: &[&str] = &[
            "last_preflight",
            "last_credential_refresh_ms",
            "latest_backup",
        ];
        if !MEMBERS.contains(&member) {
            return Err(ResolveError::config(format!(
                "`{}` is not a member a shard's owner records ({})",
                member.escape_debug(),
                MEMBERS.join(", ")
            )));
        }
        self.shard_op(store, shard, |rec, now| {
            if !rec.owned_by(worker) {
                return Err(not_owned(rec, worker, now));
            }
            let mut d = rec.data.clone();
            d.insert(member.into(), value.clone());
            Ok(Step::Write(d))
        })
        .await
    }

    /// Read, decide, write with check-and-set; again on a lost race.
    async fn shard_op(
        &self,
        store: &ShardStore,
        shard: &str,
        decide: impl Fn(&ShardRecord, u64) -> Result<Step, ResolveError>,
    ) -> Result<ShardRecord, ResolveError> {
        let path = store.data_path(shard)?;
        for _ in 0..CAS_ATTEMPTS {
            let rec = self.read_shard(&path, shard, None).await?;
            let now = now_ms();
            let data = match decide(&rec, now)? {
                Step::Done => return Ok(rec),
                Step::Write(d) => d,
            };
            let body = serde_json::to_vec(&json!({
                "options": { "cas": rec.version },
                "data": Value::Object(data.clone()),
            }))
            .map_err(|e| ResolveError::config(format!("shard record: {e}")))?;
            let held = self.tokens.current().await?;
            let reply = self
                .transport
                .post(&path, Some(held.token()), Zeroizing::new(body))
                .await?;
            match reply.status {
                200 | 204 => {
                    let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                    let version = answer["data"]["version"].as_u64().ok_or_else(|| {
                        ResolveError::new(
                            ErrorCode::VaultUnavailable,
                            format!("Vault accepted the write of {path} but named no version"),
                        )
                    })?;
                    let mut rec = ShardRecord::from_data(shard, version, data, now);
                    rec.written = true;
                    return Ok(rec);
                }
                // A check-and-set mismatch: somebody wrote first. Decide again.
                400 if String::from_utf8_lossy(&reply.body).contains("check-and-set") => continue,
                403 => {
                    return Err(ResolveError::new(
                        ErrorCode::VaultPermissionDenied,
                        format!(
                            "the worker's token may not write {path} (its policy needs create and update there)"
                        ),
                    ));
                }
                s => {
                    return Err(ResolveError::new(
                        ErrorCode::VaultUnavailable,
                        format!("Vault answered HTTP {s} to the write of {path}"),
                    ));
                }
            }
        }
        Err(ResolveError::new(
            ErrorCode::VaultUnavailable,
            format!("shard `{shard}`: lost the check-and-set race {CAS_ATTEMPTS} times in a row"),
        ))
    }

    /// Reads the record at `path` (a KV v2 data path), at `version` or the
    /// latest.
    async fn read_shard(
        &self,
        path: &str,
        shard: &str,
        version: Option<u64>,
    ) -> Result<ShardRecord, ResolveError> {
        let held = self.tokens.current().await?;
        let full = match version {
            Some(v) => format!("{path}?version={v}"),
            None => path.to_owned(),
        };
        let reply = self.transport.get_worker(&full, held.token()).await?;
        let now = now_ms();
        match reply.status {
            200 => {
                let answer: Value = serde_json::from_slice(&reply.body).map_err(|_| {
                    ResolveError::new(
                        ErrorCode::VaultUnavailable,
                        format!("Vault's answer for {path} is not JSON"),
                    )
                })?;
                let version = answer["data"]["metadata"]["version"].as_u64().unwrap_or(0);
                let data = answer["data"]["data"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                Ok(ShardRecord::from_data(shard, version, data, now))
            }
            404 => {
                // No record, or a deleted latest version: its metadata names
                // the version a check-and-set write must give.
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                let version = answer["data"]["metadata"]["version"].as_u64().unwrap_or(0);
                Ok(ShardRecord::from_data(shard, version, Map::new(), now))
            }
            403 => Err(ResolveError::new(
                ErrorCode::VaultPermissionDenied,
                format!("the worker's token may not read {path}"),
            )),
            s => Err(ResolveError::new(
                ErrorCode::VaultUnavailable,
                format!("Vault answered HTTP {s} to the read of {path}"),
            )),
        }
    }

    /// Every version of the shard's record, oldest first (for audits and
    /// the tests of `spec/codex-shards.md` §4). KV v2 keeps the last
    /// `max_versions` versions (10 unless the mount or the secret's metadata
    /// says otherwise); older ones come back empty, with version 0.
    pub async fn shard_history(
        &self,
        store: &ShardStore,
        shard: &str,
    ) -> Result<Vec<ShardRecord>, ResolveError> {
        let path = store.data_path(shard)?;
        let latest = self.read_shard(&path, shard, None).await?;
        let mut out = Vec::new();
        for v in 1..=latest.version {
            out.push(self.read_shard(&path, shard, Some(v)).await?);
        }
        Ok(out)
    }
}

/// `rec`'s data with the lease extended to `now + ttl`.
fn leased(rec: &ShardRecord, now: u64, ttl: u64) -> Map<String, Value> {
    let mut d = rec.data.clone();
    d.insert("lease_expires_ms".into(), json!(now.saturating_add(ttl)));
    d.insert("renewed_at_ms".into(), json!(now));
    d
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids() {
        for ok in ["a", "codex-1", "w.2_x", &"x".repeat(64)] {
            assert!(valid_shard_id(ok), "{ok}");
        }
        for bad in ["", "-a", "a/b", "..", "a b", &"x".repeat(65), "é"] {
            assert!(!valid_shard_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_record_without_owner_or_with_a_past_expiry_is_not_live() {
        let data = |owner: &str, exp: u64| {
            let mut m = Map::new();
            m.insert("owner".into(), json!(owner));
            m.insert("lease_expires_ms".into(), json!(exp));
            m
        };
        assert!(ShardRecord::from_data("s", 1, data("w1", 2_000), 1_000).owned_by("w1"));
        assert!(!ShardRecord::from_data("s", 1, data("w1", 1_000), 1_000).live);
        assert!(!ShardRecord::from_data("s", 1, data("", 9_000), 1_000).live);
        assert!(!ShardRecord::from_data("s", 1, data("w1", 2_000), 1_000).owned_by("w2"));
    }
}
