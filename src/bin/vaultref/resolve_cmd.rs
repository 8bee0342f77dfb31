//! `vaultref resolve REF --fingerprint-key-file F`: resolve a ref with the
//! Vault settings from the environment and print a fingerprint of the value
//! (`hmac-sha256:<hex>`), never the value.
//!
//! Exit codes: 0 resolved; 1 the ref is invalid or did not resolve; 2 usage
//! or configuration error (`config_invalid`, `vault_not_configured`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;
use vaultref::ErrorCode;
use vaultref::ScopeContext;
use vaultref::vault::{FingerprintKey, ResolveError, Resolver, VaultConfig};

use crate::Format;

#[derive(Args)]
pub struct ResolveArgs {
    /// The ref, e.g. `vault://kv/moonmind/repos/Owner/Repo#github_token`.
    #[arg(value_name = "REF")]
    secret_ref: String,
    /// File holding the fingerprint key in hex (at least 16 bytes).
    #[arg(long, value_name = "FILE")]
    fingerprint_key_file: PathBuf,
    /// Job id sent to Vault in the job-id header (audit correlation).
    #[arg(long, value_name = "ID", default_value = "vaultref-cli")]
    job_id: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

fn exit_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::ConfigInvalid | ErrorCode::VaultNotConfigured => 2,
        _ => 1,
    }
}

/// User input echoed back, through the built-in token rules: a token pasted
/// where a ref belongs must not land on stdout or in a CI log.
fn echo(text: &str) -> String {
    vaultref::redact::redact(text)
}

fn fail(args: &ResolveArgs, e: &ResolveError) -> ExitCode {
    // Messages may quote the ref (and so the pasted token).
    let message = echo(e.message());
    match args.format {
        Format::Text => errln!("error[{}]: {message}", e.code()),
        Format::Json => outln!(
            "{}",
            json!({
                "ref": echo(&args.secret_ref),
                "job_id": echo(&args.job_id),
                "outcome": "failed",
                "code": e.code(),
                "message": message,
            })
        ),
    }
    ExitCode::from(exit_code(e.code()))
}

pub fn run(args: ResolveArgs) -> ExitCode {
    let key = match FingerprintKey::from_file(&args.fingerprint_key_file) {
        Ok(k) => k,
        Err(e) => return fail(&args, &e),
    };
    let config = match VaultConfig::from_env() {
        Ok(Some(c)) => c,
        Ok(None) => {
            return fail(
                &args,
                &ResolveError::not_configured(&args.secret_ref, &args.job_id),
            );
        }
        Err(e) => return fail(&args, &e),
    };
    let runtime = match crate::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let resolver = Resolver::new(config).await?;
        let value = resolver
            .resolve_str(&args.secret_ref, &ScopeContext::default(), &args.job_id)
            .await;
        // Revoke a token we logged in for: a one-shot command leaves no lease.
        resolver.shutdown().await;
        value.map(|v| key.fingerprint(&v))
    });
    match result {
        Ok(fingerprint) => {
            match args.format {
                Format::Text => outln!("{fingerprint}"),
                Format::Json => outln!(
                    "{}",
                    json!({
                        "ref": echo(&args.secret_ref),
                        "job_id": echo(&args.job_id),
                        "outcome": "resolved",
                        "fingerprint": fingerprint,
                    })
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&args, &e),
    }
}
