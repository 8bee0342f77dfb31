//! The `codex` operations (`spec/protocol.md` §3.8) over the library's
//! shard and backup calls: `codex_claim` is [`Resolver::shard_claim`],
//! `codex_backup` [`Resolver::codex_backup`], `codex_restore`
//! [`Resolver::codex_restore`], `codex_rewrap` [`Resolver::codex_rewrap`].

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value, json};
use vaultref::vault::{Resolver, ShardStore, TransitKey};

use super::{State, failed};

/// `configure`'s `codex` member.
#[derive(Clone, Debug)]
pub(crate) struct CodexSettings {
    pub(crate) records: ShardStore,
    pub(crate) transit: TransitKey,
    pub(crate) store: PathBuf,
}

/// Reads `configure`'s `codex` member (absent: `Ok(None)`).
pub(crate) fn settings(req: &Map<String, Value>) -> Result<Option<CodexSettings>, String> {
    let Some(c) = req.get("codex").filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    let s = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("codex.{what} must be a string"))
    };
    Ok(Some(CodexSettings {
        records: ShardStore {
            mount: s(&c["records"]["mount"], "records.mount")?,
            prefix: s(&c["records"]["prefix"], "records.prefix")?,
        },
        transit: TransitKey {
            mount: s(&c["transit"]["mount"], "transit.mount")?,
            key: s(&c["transit"]["key"], "transit.key")?,
        },
        store: PathBuf::from(s(&c["store"], "store")?),
    }))
}

/// Carries out a `codex_*` request.
pub(crate) fn handle(op: &str, req: &Map<String, Value>, state: &State) -> Value {
    let (Some(resolver), Some(c)) = (&state.resolver, &state.codex) else {
        return failed(
            op,
            "config_invalid",
            "configure gave no Vault settings or no codex settings",
        );
    };
    let text = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or_default();
    let (shard, worker) = (text("shard"), text("worker_id"));
    let res: &Resolver = resolver;
    let done = state.rt.block_on(async {
        match op {
            "codex_claim" => {
                let ttl = Duration::from_millis(req["ttl_ms"].as_u64().unwrap_or(60_000));
                res.shard_claim(&c.records, shard, worker, ttl)
                    .await
                    .map(|r| json!({"outcome": "claimed", "epoch": r.epoch}))
            }
            "codex_backup" => res
                .codex_backup(
                    &c.records,
                    &c.transit,
                    &c.store,
                    shard,
                    worker,
                    std::path::Path::new(text("volume")),
                )
                .await
                .map(|b| json!({"outcome": "backed_up", "version": b.version})),
            "codex_restore" => res
                .codex_restore(
                    &c.records,
                    &c.transit,
                    &c.store,
                    shard,
                    worker,
                    std::path::Path::new(text("to")),
                    req.get("version").and_then(Value::as_u64),
                )
                .await
                .map(|b| json!({"outcome": "restored", "version": b.version})),
            _ => res.codex_rewrap(&c.transit, &c.store, None).await.map(
                |r| json!({"outcome": "rewrapped", "backups": r.backups, "rewrapped": r.rewrapped}),
            ),
        }
    });
    match done {
        Ok(mut reply) => {
            reply["reply"] = json!(op);
            reply
        }
        Err(e) => failed(op, e.code().as_str(), e.message()),
    }
}
