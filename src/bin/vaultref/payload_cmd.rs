//! `vaultref payload check`: validate a `codex_exec` job file.
//!
//! Prints every error with its code and JSON pointer (never a secret: the
//! library scrubs messages, and nothing of the input is printed besides what
//! passed validation). Exit codes: 0 valid, 1 invalid, 2 usage error.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use vaultref::payload::{CodexExecJob, PayloadError, QueuePolicy, ValidationOptions, validate};
use zeroize::Zeroizing;

use crate::Format;
use crate::policy_args::PolicyArgs;

#[derive(Subcommand)]
pub enum PayloadCommand {
    /// Check a job file (`-` for stdin) against spec/codex-exec.md.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// The ref policy for the job's auth refs (`{repository}` in scopes is
    /// bound to the job's own repository).
    #[command(flatten)]
    policy: PolicyArgs,
    /// Queue policy: a repository the worker may take, exact match (repeatable;
    /// default: any).
    #[arg(long = "allowed-repository", value_name = "R")]
    allowed_repositories: Vec<String>,
    /// Queue policy: a job type the worker may take (repeatable; default: any).
    #[arg(long = "allowed-job-type", value_name = "T")]
    allowed_job_types: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The job file, or `-` for stdin.
    #[arg(value_name = "FILE")]
    file: String,
}

pub fn run(cmd: PayloadCommand) -> ExitCode {
    match cmd {
        PayloadCommand::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> ExitCode {
    let options = match build_options(&args) {
        Ok(o) => o,
        Err(e) => {
            errln!("error[{}]: {}", e.code(), e.message());
            return ExitCode::from(2);
        }
    };
    // The job may hold a secret (that is what the lint looks for): wipe the
    // buffer when done.
    let mut input = Zeroizing::new(Vec::new());
    let read = if args.file == "-" {
        io::stdin().lock().read_to_end(&mut input).map(drop)
    } else {
        std::fs::File::open(&args.file).and_then(|mut f| f.read_to_end(&mut input).map(drop))
    };
    if let Err(e) = read {
        errln!("error: cannot read {}: {e}", args.file);
        return ExitCode::from(2);
    }
    let result = validate(&input, &options);
    let written = write_result(&mut crate::output::stdout(), args.format, &result);
    if let Err(e) = written {
        errln!("error: {e}");
        return ExitCode::from(2);
    }
    ExitCode::from(if result.is_ok() { 0 } else { 1 })
}

fn build_options(args: &CheckArgs) -> Result<ValidationOptions, vaultref::policy::PolicyError> {
    let policy = args.policy.policy()?;
    let list = |l: &Vec<String>| (!l.is_empty()).then(|| l.clone());
    let queue = QueuePolicy {
        allowed_repositories: list(&args.allowed_repositories),
        allowed_job_types: list(&args.allowed_job_types),
    };
    Ok(ValidationOptions {
        ref_policy: policy,
        worker_id: args.policy.worker_id.clone(),
        queue_policy: (queue != QueuePolicy::default()).then_some(queue),
    })
}

fn write_result(
    out: &mut impl Write,
    format: Format,
    result: &Result<CodexExecJob, Vec<PayloadError>>,
) -> io::Result<()> {
    match (format, result) {
        (Format::Text, Ok(job)) => {
            writeln!(out, "ok codex_exec job")?;
            writeln!(out, "  repository:       {}", job.repository())?;
            match job.repository_slug() {
                Some(s) => writeln!(out, "  slug:             {s}")?,
                None => writeln!(
                    out,
                    "  slug:             (none: scopes using it match nothing)"
                )?,
            }
            if let Some(r) = job.git_ref() {
                writeln!(out, "  ref:              {r}")?;
            }
            writeln!(out, "  publish mode:     {}", mode_name(job))?;
            let show =
                |r: Option<&vaultref::SecretRef>| r.map_or("(none)".to_string(), |r| r.to_string());
            writeln!(out, "  repoAuthRef:      {}", show(job.repo_auth_ref()))?;
            writeln!(out, "  publish auth ref: {}", show(job.publish_auth_ref()))
        }
        (Format::Text, Err(errors)) => {
            for e in errors {
                let pointer = if e.pointer.is_empty() {
                    "(the job)"
                } else {
                    &e.pointer
                };
                writeln!(out, "error[{}] at {pointer}: {}", e.code, e.message)?;
            }
            let n = errors.len();
            writeln!(out, "{n} error{}", if n == 1 { "" } else { "s" })
        }
        (Format::Json, Ok(job)) => writeln!(
            out,
            "{}",
            json!({
                "valid": true,
                "repository": job.repository(),
                "repository_slug": job.repository_slug(),
                "ref": job.git_ref(),
                "publish_mode": mode_name(job),
                "repo_auth_ref": job.repo_auth_ref().map(|r| r.to_string()),
                "publish_auth_ref": job.publish_auth_ref().map(|r| r.to_string()),
            })
        ),
        (Format::Json, Err(errors)) => {
            writeln!(out, "{}", json!({"valid": false, "errors": errors}))
        }
    }
}

fn mode_name(job: &CodexExecJob) -> &'static str {
    use vaultref::payload::PublishMode;
    match job.publish().mode() {
        PublishMode::None => "none",
        PublishMode::Branch => "branch",
        PublishMode::Pr => "pr",
    }
}
