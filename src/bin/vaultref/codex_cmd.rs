//! `vaultref codex claim|renew|release|status|backup|restore|rewrap`: a Codex
//! auth volume's owner, kept in Vault (`spec/codex-shards.md`), and its
//! Transit-enveloped backups (`spec/codex-backups.md`), with the worker's own
//! Vault settings from the environment.
//!
//! Exit codes: 0 done (for `status` with `--worker-id`: the shard is owned by
//! it); 1 the operation failed or was refused, with `error[<code>]` (for
//! `status`: not owned); 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use vaultref::ErrorCode;
use vaultref::vault::{
    BackupInfo, ResolveError, Resolver, RewrapReport, ShardRecord, ShardStore, TransitKey,
    VaultConfig,
};

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
    /// Encrypt the volume into the store as the shard's next backup (owner only).
    Backup(BackupArgs),
    /// Verify a backup and restore it to a new directory (owner only).
    Restore(RestoreArgs),
    /// Re-wrap every stored data key with the Transit key's latest version.
    Rewrap(RewrapArgs),
}

/// Where records and keys are, and the output format.
#[derive(Args)]
pub struct Common {
    /// The KV v2 mount of the records.
    #[arg(long, value_name = "M", default_value = "kv")]
    mount: String,
    /// The path of the records under the mount.
    #[arg(long, value_name = "P", default_value = "moonmind/codex/shards")]
    prefix: String,
    /// The Transit mount that wraps backup data keys.
    #[arg(long, value_name = "M", default_value = "transit")]
    transit_mount: String,
    /// The Transit key that wraps backup data keys.
    #[arg(long, value_name = "K", default_value = "codex")]
    transit_key: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
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
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct BackupArgs {
    /// The shard (the Codex auth volume's id).
    #[arg(long, value_name = "S")]
    shard: String,
    /// This worker's id: it must own the shard.
    #[arg(long, value_name = "W")]
    worker_id: String,
    /// The volume's directory.
    #[arg(long, value_name = "DIR")]
    volume: PathBuf,
    /// The backup store (a directory, e.g. a mounted off-host volume).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The shard (the Codex auth volume's id).
    #[arg(long, value_name = "S")]
    shard: String,
    /// This worker's id: it must own the shard.
    #[arg(long, value_name = "W")]
    worker_id: String,
    /// Where to restore: a path that does not exist, or an empty directory.
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// The backup store.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The backup version (default: the shard record's latest backup).
    #[arg(long, value_name = "N")]
    version: Option<u64>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct RewrapArgs {
    /// The backup store.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Only this shard's backups (default: every shard in the store).
    #[arg(long, value_name = "S")]
    shard: Option<String>,
    #[command(flatten)]
    common: Common,
}

fn fail(e: &ResolveError) -> ExitCode {
    errln!(
        "error[{}]: {}",
        e.code(),
        vaultref::redact::redact(e.message())
    );
    ExitCode::from(1)
}

/// What an operation returned, for [`show`].
enum Done {
    Record(ShardRecord),
    Backup(BackupInfo),
    Rewrap(RewrapReport),
}

pub fn run(command: CodexCommand) -> ExitCode {
    let (op, common) = match &command {
        CodexCommand::Claim(a) => ("claim", &a.common),
        CodexCommand::Renew(a) => ("renew", &a.common),
        CodexCommand::Release(a) => ("release", &a.common),
        CodexCommand::Status(a) => ("status", &a.common),
        CodexCommand::Backup(a) => ("backup", &a.common),
        CodexCommand::Restore(a) => ("restore", &a.common),
        CodexCommand::Rewrap(a) => ("rewrap", &a.common),
    };
    if let CodexCommand::Claim(a) | CodexCommand::Renew(a) | CodexCommand::Release(a) = &command
        && a.worker_id.is_none()
    {
        errln!("error: `codex {op}` needs --worker-id");
        return ExitCode::from(2);
    }
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
        mount: common.mount.clone(),
        prefix: common.prefix.clone(),
    };
    let transit = TransitKey {
        mount: common.transit_mount.clone(),
        key: common.transit_key.clone(),
    };
    let format = common.format;
    let result = runtime.block_on(async {
        let resolver = Resolver::new(config).await?;
        let done = operate(&resolver, &command, &store, &transit).await;
        resolver.shutdown().await;
        done
    });
    let done = match result {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    show(&done, op, format);
    match (&command, &done) {
        (CodexCommand::Status(a), Done::Record(rec)) => match &a.worker_id {
            Some(w) if !rec.owned_by(w) => ExitCode::from(1),
            _ => ExitCode::SUCCESS,
        },
        _ => ExitCode::SUCCESS,
    }
}

async fn operate(
    res: &Resolver,
    command: &CodexCommand,
    store: &ShardStore,
    transit: &TransitKey,
) -> Result<Done, ResolveError> {
    let worker = |a: &ShardArgs| a.worker_id.clone().unwrap_or_default();
    Ok(match command {
        CodexCommand::Claim(a) => Done::Record(
            res.shard_claim(store, &a.shard, &worker(a), Duration::from_secs(a.ttl))
                .await?,
        ),
        CodexCommand::Renew(a) => Done::Record(
            res.shard_renew(store, &a.shard, &worker(a), Duration::from_secs(a.ttl))
                .await?,
        ),
        CodexCommand::Release(a) => {
            Done::Record(res.shard_release(store, &a.shard, &worker(a)).await?)
        }
        CodexCommand::Status(a) => Done::Record(res.shard_status(store, &a.shard).await?),
        CodexCommand::Backup(a) => Done::Backup(
            res.codex_backup(store, transit, &a.store, &a.shard, &a.worker_id, &a.volume)
                .await?,
        ),
        CodexCommand::Restore(a) => Done::Backup(
            res.codex_restore(
                store,
                transit,
                &a.store,
                &a.shard,
                &a.worker_id,
                &a.to,
                a.version,
            )
            .await?,
        ),
        CodexCommand::Rewrap(a) => Done::Rewrap(
            res.codex_rewrap(transit, &a.store, a.shard.as_deref())
                .await?,
        ),
    })
}

fn show(done: &Done, op: &str, format: Format) {
    match done {
        Done::Record(rec) => print(rec, op, format),
        Done::Backup(info) => match format {
            Format::Json => outln!("{}", serde_json::to_value(info).unwrap_or_default()),
            Format::Text => outln!(
                "{op}: shard `{}` backup {} ({}): {} files, {} directories, {} links, {} bytes; ciphertext {} bytes, SHA-256 {}, Transit key version {}",
                info.shard,
                info.version,
                info.key,
                info.files,
                info.dirs,
                info.links,
                info.bytes,
                info.size,
                info.sha256,
                info.transit_key_version
            ),
        },
        Done::Rewrap(r) => match format {
            Format::Json => outln!("{}", serde_json::to_value(r).unwrap_or_default()),
            Format::Text if r.backups == 0 => outln!("rewrap: no backup in the store"),
            Format::Text => outln!(
                "rewrap: {} backups, {} rewrapped; every data key is wrapped by key version {} or later (min_decryption_version may be raised to it)",
                r.backups,
                r.rewrapped,
                r.min_key_version
            ),
        },
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
