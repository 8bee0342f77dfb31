//! `vaultref doctor [REF...]`: the runbook's checks with the worker's own
//! settings (`vaultref::vault::doctor`): the server, its leader, the login,
//! for each ref the policy and the secret, the audit devices. A table a
//! person reads at a glance, or JSON.
//!
//! Exit codes: 0 every check passed (a check the token may not make, shown
//! `?`, does not fail); 1 a check failed; 2 usage or configuration error.

use std::process::ExitCode;

use clap::Args;
use vaultref::ScopeContext;
use vaultref::vault::doctor::{DoctorReport, RefToCheck, Verdict};
use vaultref::vault::{ResolveError, Resolver, VaultConfig};

use crate::Format;
use crate::policy_args::PolicyArgs;

#[derive(Args)]
pub struct DoctorArgs {
    /// Refs a job of this worker uses, checked with the worker's policy and
    /// token (`vault://mount/path#field`).
    #[arg(value_name = "REF")]
    refs: Vec<String>,
    /// The job's repository (`owner/repo`), bound to `{repository}` in scopes.
    #[arg(long, value_name = "R")]
    repository: Option<String>,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

fn echo(text: &str) -> String {
    vaultref::redact::redact(text)
}

fn usage(e: &ResolveError) -> ExitCode {
    errln!("error[{}]: {}", e.code(), echo(e.message()));
    ExitCode::from(2)
}

pub fn run(args: DoctorArgs) -> ExitCode {
    let policy = match args.policy.policy() {
        Ok(p) => p,
        Err(e) => {
            return usage(&ResolveError::new(
                vaultref::ErrorCode::ConfigInvalid,
                e.message(),
            ));
        }
    };
    let config = match VaultConfig::from_env() {
        Ok(Some(c)) => c,
        Ok(None) => {
            return usage(&ResolveError::new(
                vaultref::ErrorCode::ConfigInvalid,
                "no Vault settings: set VAULT_ADDR and the worker's auth (see README)",
            ));
        }
        Err(e) => return usage(&e),
    };
    let ctx = ScopeContext {
        repository: args.repository.clone(),
        worker_id: args.policy.worker_id.clone(),
    };
    let refs: Vec<RefToCheck> = args
        .refs
        .iter()
        .map(|typed| {
            let parsed = policy
                .check(typed, &ctx)
                .map_err(|e| ResolveError::new(e.code(), e.message()));
            (typed.clone(), parsed)
        })
        .collect();
    let runtime = match crate::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let report = runtime.block_on(async {
        let resolver = Resolver::new(config).await?;
        let report = resolver.doctor(&refs).await;
        resolver.shutdown().await;
        Ok::<_, ResolveError>(report)
    });
    let mut report = match report {
        Ok(r) => r,
        Err(e) => return usage(&e),
    };
    // Every text through the built-in token rules (refs are typed by a
    // person, messages may quote them): field by field, so JSON stays JSON.
    for c in &mut report.checks {
        c.subject = echo(&c.subject);
        c.detail = echo(&c.detail);
        c.fix = c.fix.as_deref().map(echo);
    }
    match args.format {
        Format::Text => print_text(&report),
        Format::Json => {
            let mut value = serde_json::to_value(&report).unwrap_or_default();
            value["ok"] = report.ok().into();
            outln!("{value}");
        }
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_text(report: &DoctorReport) {
    outln!(
        "vaultref doctor: {} (auth: {})",
        report.vault_addr,
        report.auth_method
    );
    let width = report
        .checks
        .iter()
        .map(|c| c.check.len())
        .max()
        .unwrap_or(0);
    for c in &report.checks {
        let mark = match c.verdict {
            Verdict::Pass => "✓",
            Verdict::Fail => "✗",
            Verdict::Unknown => "?",
        };
        // Not `ref: detail`: a ref's field named `token` followed by `: `
        // reads as an assignment to the output scrub.
        let subject = if c.check.starts_with("ref.") {
            format!("{} — ", c.subject)
        } else {
            String::new()
        };
        outln!("{mark} {:width$}  {subject}{}", c.check, c.detail);
        if let Some(fix) = &c.fix
            && c.verdict != Verdict::Pass
        {
            outln!("  {:width$}  fix: {fix}", "");
        }
    }
    let failed = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .count();
    let unknown = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Unknown)
        .count();
    let tail = if unknown > 0 {
        format!(" ({unknown} could not be told with this token)")
    } else {
        String::new()
    };
    if failed == 0 {
        outln!("all checks passed{tail}");
    } else {
        outln!("{failed} check(s) failed{tail}");
    }
}
