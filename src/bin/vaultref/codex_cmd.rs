//! `vaultref codex claim|renew|release|status --shard S`: a Codex auth
//! volume's owner, kept in Vault (`spec/codex-shards.md`), with the worker's
//! own Vault settings from the environment.
//!
//! Exit codes: 0 done (for `status`: the shard is owned by `--worker-id`,
//! or, without it, the record was read); 1 refused (`codex_shard_not_owned`,
//! or not owned at `status`); 2 usage, configuration or Vault error.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use vaultref::ErrorCode;
use vaultref::vault::{ResolveError, Resolver, ShardRecord, ShardStore, VaultConfig};

use crate::Format;

#[derive(Subcommand)]
pub enum CodexCommand {
    /// Take the shard for this worker (when nobody holds a live lease on it).
    Claim(ShardArgs),
    /// Extend this worker's lease.
    Renew(ShardArgs),
    /// Give the shard up.
    Release(ShardArgs),
    /// Show the shard's record.
    Status(ShardArgs),
}

#[derive(Args)]
pub struct ShardArgs {
    /// The shard (the Codex auth volume's id).
    #[arg(long, value_name = "S")]
    shard: String,
    /// This worker's id (required except for `status`).
    #[arg(long, value_name = "W")]
    worker_id: Option<String>,
    /// Lease length in seconds (claim, renew).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    ttl: u64,
    /// The KV v2 mount of the records.
    #[arg(long, value_name = "M", default_value = "kv")]
    mount: String,
    /// The path of the records under the mount.
    #[arg(long, value_name = "P", default_value = "moonmind/codex/shards")]
    prefix: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

fn fail(e: &ResolveError) -> ExitCode {
    errln!(
        "error[{}]: {}",
        e.code(),
        vaultref::redact::redact(e.message())
    );
    if e.code() == ErrorCode::CodexShardNotOwned {
        ExitCode::from(1)
    } else {
        ExitCode::from(2)
    }
}

pub fn run(command: CodexCommand) -> ExitCode {
    let (op, args) = match command {
        CodexCommand::Claim(a) => ("claim", a),
        CodexCommand::Renew(a) => ("renew", a),
        CodexCommand::Release(a) => ("release", a),
        CodexCommand::Status(a) => ("status", a),
    };
    let worker = match (&args.worker_id, op) {
        (Some(w), _) => w.clone(),
        (None, "status") => String::new(),
        (None, _) => {
            return fail(&ResolveError::new(
                ErrorCode::ConfigInvalid,
                format!("`codex {op}` needs --worker-id"),
            ));
        }
    };
    let config = match VaultConfig::from_env() {
        Ok(Some(c)) => c,
        Ok(None) => {
            return fail(&ResolveError::new(
                ErrorCode::ConfigInvalid,
                "no Vault settings: set VAULT_ADDR and the worker's auth (see README)",
            ));
        }
        Err(e) => return fail(&e),
    };
    let runtime = match crate::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let store = ShardStore {
        mount: args.mount.clone(),
        prefix: args.prefix.clone(),
    };
    let ttl = Duration::from_secs(args.ttl);
    let result = runtime.block_on(async {
        let resolver = Resolver::new(config).await?;
        let shard = args.shard.as_str();
        let rec = match op {
            "claim" => resolver.shard_claim(&store, shard, &worker, ttl).await,
            "renew" => resolver.shard_renew(&store, shard, &worker, ttl).await,
            "release" => resolver.shard_release(&store, shard, &worker).await,
            _ => resolver.shard_status(&store, shard).await,
        };
        resolver.shutdown().await;
        rec
    });
    let rec = match result {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    print(&rec, op, args.format);
    if op == "status" && !worker.is_empty() && !rec.owned_by(&worker) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print(rec: &ShardRecord, op: &str, format: Format) {
    match format {
        Format::Json => {
            let value = serde_json::to_value(rec).unwrap_or_default();
            outln!("{}", vaultref::redact::redact(&value.to_string()));
        }
        Format::Text => {
            let owner = if rec.owner.is_empty() {
                "nobody".to_owned()
            } else {
                format!("worker `{}`", rec.owner_shown())
            };
            let lease = if rec.live {
                format!("lease live until {} (Unix ms)", rec.lease_expires_ms)
            } else {
                "no live lease".to_owned()
            };
            outln!(
                "{op}: shard `{}` (version {}, epoch {}): {owner}, {lease}",
                rec.shard,
                rec.version,
                rec.epoch
            );
        }
    }
}
