//! `vaultref policy render|check`: the worker's Vault policy, made from its
//! queue policy and ref scopes (`vaultref::vault::acl`), and checked against
//! a live Vault with the worker's own token.
//!
//! Exit codes: 0 rendered, or every check passed; 1 a check failed or Vault
//! could not be asked; 2 usage or configuration error.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use vaultref::ErrorCode;
use vaultref::vault::acl::{self, WorkerGrant};
use vaultref::vault::{ResolveError, Resolver, VaultConfig};

use crate::Format;
use crate::policy_args::PolicyArgs;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Print the HCL policy granting read on exactly what the worker's jobs may name.
    Render {
        #[command(flatten)]
        grant: GrantArgs,
        /// Also grant `list` on each path's parent (the design's example).
        #[arg(long)]
        with_list: bool,
    },
    /// Check, with the worker's token (Vault settings from the environment),
    /// that it reads every allowed repository's paths and nothing outside.
    Check {
        #[command(flatten)]
        grant: GrantArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Args)]
pub struct GrantArgs {
    /// A repository the worker's queue policy allows, `owner/repo` (repeatable, at least one).
    #[arg(long = "allowed-repository", value_name = "R")]
    repositories: Vec<String>,
    #[command(flatten)]
    policy: PolicyArgs,
}

fn usage(message: &str) -> ExitCode {
    errln!(
        "error[{}]: {}",
        ErrorCode::ConfigInvalid,
        vaultref::redact::redact(message)
    );
    ExitCode::from(2)
}

fn vault_error(e: &ResolveError) -> ExitCode {
    errln!(
        "error[{}]: {}",
        e.code(),
        vaultref::redact::redact(e.message())
    );
    ExitCode::from(match e.code() {
        ErrorCode::ConfigInvalid | ErrorCode::VaultNotConfigured => 2,
        _ => 1,
    })
}

pub fn run(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Render { grant, with_list } => render(&grant, with_list),
        PolicyCommand::Check { grant, format } => check(&grant, format),
    }
}

/// The worker id `{worker_id}` binds to; `-` when none is given (templates
/// naming it then bind nothing, and render says so).
fn worker_id(args: &GrantArgs) -> &str {
    args.policy.worker_id.as_deref().unwrap_or("-")
}

fn render(args: &GrantArgs, with_list: bool) -> ExitCode {
    let policy = match args.policy.policy() {
        Ok(p) => p,
        Err(e) => return usage(e.message()),
    };
    let grant = WorkerGrant {
        worker_id: worker_id(args),
        repositories: &args.repositories,
        ref_policy: &policy,
    };
    match acl::render(&grant, with_list) {
        Ok(hcl) => {
            outln!("{}", hcl.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => usage(e.message()),
    }
}

fn check(args: &GrantArgs, format: Format) -> ExitCode {
    let policy = match args.policy.policy() {
        Ok(p) => p,
        Err(e) => return usage(e.message()),
    };
    let config = match VaultConfig::from_env() {
        Ok(Some(c)) => c,
        Ok(None) => {
            return usage("no Vault settings: set VAULT_ADDR and the worker's auth (see README)");
        }
        Err(e) => return vault_error(&e),
    };
    let runtime = match crate::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let grant = WorkerGrant {
        worker_id: worker_id(args),
        repositories: &args.repositories,
        ref_policy: &policy,
    };
    let result = runtime.block_on(async {
        let resolver = Resolver::new(config).await?;
        let report = acl::check(&resolver, &grant).await;
        resolver.shutdown().await;
        report
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => return vault_error(&e),
    };
    match format {
        Format::Text => {
            outln!(
                "vaultref policy check: worker {}, {} repositor{}, token policies [{}]",
                report.worker_id,
                args.repositories.len(),
                if args.repositories.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                report.policies.join(", ")
            );
            for c in &report.checks {
                let what = match c.kind {
                    "readable" => format!("read {} ({})", c.pattern, c.repository),
                    _ => format!("no read on {} ({})", c.pattern, c.repository),
                };
                outln!("{} {what}: {}", if c.ok { "✓" } else { "✗" }, c.detail);
            }
            let failed = report.checks.iter().filter(|c| !c.ok).count();
            outln!(
                "{}",
                if failed == 0 {
                    "all checks passed".to_string()
                } else {
                    format!("{failed} check(s) failed")
                }
            );
        }
        Format::Json => outln!(
            "{}",
            json!({"worker_id": report.worker_id, "policies": report.policies,
                   "ok": report.ok(), "checks": report.checks})
        ),
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
