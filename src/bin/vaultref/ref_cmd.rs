//! `vaultref ref check`: validate refs against the grammar and a policy.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;
use vaultref::{RefError, ScopeContext, SecretRef};

use crate::Format;
use crate::policy_args::PolicyArgs;

#[derive(Subcommand)]
pub enum RefCommand {
    /// Check refs; `-` reads one ref per line from stdin.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// The job's repository (`owner/repo`), bound to `{repository}` in scopes.
    #[arg(long, value_name = "OWNER/REPO")]
    repository: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Refs to check, or `-` for one per line on stdin.
    #[arg(required = true, value_name = "REF")]
    refs: Vec<String>,
}

pub fn run(cmd: RefCommand) -> ExitCode {
    match cmd {
        RefCommand::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> ExitCode {
    let policy = match args.policy.policy() {
        Ok(p) => p,
        Err(e) => {
            errln!("error[{}]: {}", e.code(), e.message());
            return ExitCode::from(2);
        }
    };
    let ctx = ScopeContext {
        repository: args.repository.clone(),
        worker_id: args.policy.worker_id.clone(),
    };
    let mut out = crate::output::stdout();
    let mut all_valid = true;
    let mut report = |input: &[u8]| -> io::Result<()> {
        let result = policy.check_bytes(input, &ctx);
        all_valid &= result.is_ok();
        write_result(&mut out, args.format, input, &result)
    };
    let mut io_result = Ok(());
    for r in &args.refs {
        if r == "-" {
            for line in io::stdin().lock().split(b'\n') {
                io_result = line.and_then(|l| report(&l));
                if io_result.is_err() {
                    break;
                }
            }
        } else {
            io_result = report(r.as_bytes());
        }
        if io_result.is_err() {
            break;
        }
    }
    if let Err(e) = io_result {
        errln!("error: {e}");
        return ExitCode::from(2);
    }
    ExitCode::from(if all_valid { 0 } else { 1 })
}

fn write_result(
    out: &mut impl Write,
    format: Format,
    input: &[u8],
    result: &Result<SecretRef, RefError>,
) -> io::Result<()> {
    let shown = input.escape_ascii().to_string();
    match (format, result) {
        (Format::Text, Ok(r)) => {
            writeln!(out, "ok {r}")?;
            writeln!(out, "  mount:   {}", r.mount())?;
            writeln!(out, "  path:    {}", r.path())?;
            match r.version() {
                Some(v) => writeln!(out, "  version: {v}")?,
                None => writeln!(out, "  version: latest")?,
            }
            writeln!(out, "  field:   {}", r.field())
        }
        (Format::Text, Err(e)) => {
            writeln!(out, "error[{}]: {}", e.code(), e.message())?;
            writeln!(out, "  | {shown}")?;
            if let Some(at) = e.offset() {
                // The caret sits under the escaped form of the offending byte.
                let column = input[..at.min(input.len())].escape_ascii().count();
                writeln!(out, "  | {}^", " ".repeat(column))?;
            }
            Ok(())
        }
        (Format::Json, Ok(r)) => writeln!(
            out,
            "{}",
            json!({
                "ref": shown,
                "valid": true,
                "mount": r.mount(),
                "path": r.path(),
                "version": r.version(),
                "field": r.field(),
            })
        ),
        (Format::Json, Err(e)) => writeln!(
            out,
            "{}",
            json!({
                "ref": shown,
                "valid": false,
                "code": e.code(),
                "offset": e.offset(),
                "message": e.message(),
            })
        ),
    }
}
