//! The `vaultref` command line: thin plumbing over the library.
//!
//! Exit codes are uniform across subcommands: 0 success, 1 the input was
//! checked and found invalid (or a resolution failed), 2 usage or configuration
//! error.

#[macro_use]
mod output;

mod codex_cmd;
mod doctor_cmd;
mod git_credential_cmd;
mod payload_cmd;
mod policy_args;
mod policy_cmd;
mod redact_cmd;
mod ref_cmd;
mod resolve_cmd;
mod run_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "vaultref",
    version,
    about = "Resolve job secrets from Vault/OpenBao without exposing them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with secret references (`vault://mount/path#field`).
    #[command(subcommand)]
    Ref(ref_cmd::RefCommand),
    /// Work with `codex_exec` job payloads.
    #[command(subcommand)]
    Payload(payload_cmd::PayloadCommand),
    /// Mask secrets in a stream: stdin to stdout.
    Redact(redact_cmd::RedactArgs),
    /// Resolve a ref with the Vault settings from the environment and print
    /// `hmac-sha256:<hex>` of the value (never the value).
    Resolve(resolve_cmd::ResolveArgs),
    /// git's credential helper protocol (run by git under a worker, not by hand).
    GitCredential(git_credential_cmd::GitCredentialArgs),
    /// Resolve refs into a command's environment and redact its output (like `op run`).
    Run(run_cmd::RunArgs),
    /// The worker's Vault policy: render it from the queue policy and scopes, or check it.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// The runbook's checks with the worker's settings: server, leader, login,
    /// each ref's policy and secret, audit devices. Never prints a value.
    Doctor(doctor_cmd::DoctorArgs),
    /// Codex auth volume shards in Vault: claim, renew, release, status.
    #[command(subcommand)]
    Codex(codex_cmd::CodexCommand),
}

/// The single-threaded runtime the Vault subcommands run on; on failure,
/// the message is printed and the usage-error exit code returned.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            errln!("error: cannot start the async runtime: {e}");
            ExitCode::from(2)
        })
}

/// Output format shared by the checking subcommands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

fn main() -> ExitCode {
    let code = match Cli::try_parse() {
        // clap's errors quote the offending argument: through the scrub.
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                errln!("{}", text.trim_end());
            } else {
                outln!("{}", text.trim_end());
            }
            ExitCode::from(if e.use_stderr() { 2 } else { 0 })
        }
        Ok(cli) => match cli.command {
            Command::Ref(cmd) => ref_cmd::run(cmd),
            Command::Payload(cmd) => payload_cmd::run(cmd),
            Command::Redact(args) => redact_cmd::run(args),
            Command::Resolve(args) => resolve_cmd::run(args),
            Command::GitCredential(args) => git_credential_cmd::run(args),
            Command::Run(args) => run_cmd::run(args),
            Command::Policy(command) => policy_cmd::run(command),
            Command::Doctor(args) => doctor_cmd::run(args),
            Command::Codex(command) => codex_cmd::run(command),
        },
    };
    output::finish();
    code
}
