//! `vaultref run --env NAME=REF... -- COMMAND ARGS...`: like `op run`.
//!
//! Resolves each ref (Vault settings from the environment, as for every
//! subcommand), runs the command with the values in its environment, and
//! passes its stdout and stderr through a redactor holding every resolved
//! value. Exits with the command's status; 1 when a ref cannot be resolved
//! (nothing is run then), 2 for usage or configuration errors.
//!
//! The values are in the child's environment (that is the point), never in
//! argv. The Vault settings variables (`VAULT_*`, `VAULTREF_*`) are removed
//! from the child's environment: the command gets the values it asked for,
//! not the means to read others.

use std::io::{self, Read, Write};
use std::process::{Command, ExitCode, Stdio};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use vaultref::redact::{RedactWriter, RedactorBuilder};
use vaultref::vault::{Resolver, VaultConfig};
use vaultref::{ErrorCode, ScopeContext};

#[derive(Args)]
pub struct RunArgs {
    /// `NAME=REF`: put the value of REF in the command's environment as NAME
    /// (repeatable).
    #[arg(long = "env", value_name = "NAME=REF", required = true)]
    env: Vec<String>,
    /// The job id sent to Vault with each read (default `run-<pid>`).
    #[arg(long, value_name = "ID")]
    job_id: Option<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub fn run(args: RunArgs) -> ExitCode {
    let mut pairs = Vec::new();
    for e in &args.env {
        match e.split_once('=') {
            Some((name, r)) if valid_env_name(name) && !r.is_empty() => pairs.push((name, r)),
            _ => {
                // The argument is echoed through the token rules: it may be
                // a token pasted where NAME=REF belongs.
                errln!(
                    "error[{}]: --env wants NAME=REF with NAME of [A-Za-z_][A-Za-z0-9_]*, got {:?}",
                    ErrorCode::ConfigInvalid,
                    vaultref::redact::redact(e)
                );
                return ExitCode::from(2);
            }
        }
    }
    let config = match VaultConfig::from_env() {
        Ok(Some(c)) => c,
        Ok(None) => {
            errln!(
                "error[{}]: no Vault settings: set VAULT_ADDR and an auth method",
                ErrorCode::VaultNotConfigured
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            errln!("error[{}]: {}", e.code(), e.message());
            return ExitCode::from(2);
        }
    };
    let job_id = args
        .job_id
        .clone()
        .unwrap_or_else(|| format!("run-{}", std::process::id()));
    let runtime = match crate::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let resolved: Result<Vec<(String, SecretString)>, (ErrorCode, String)> =
        runtime.block_on(async {
            let resolver = Resolver::new(config)
                .await
                .map_err(|e| (e.code(), e.message().to_owned()))?;
            let mut out = Vec::new();
            let mut failed = None;
            for (name, r) in &pairs {
                match resolver
                    .resolve_str(r, &ScopeContext::default(), &job_id)
                    .await
                {
                    Ok(value) => out.push(((*name).to_owned(), value)),
                    Err(e) => {
                        failed = Some((e.code(), e.message().to_owned()));
                        break;
                    }
                }
            }
            // Revoke a token we logged in for, whether or not every ref
            // resolved (spec T6): a failed run leaves no live login token.
            resolver.shutdown().await;
            match failed {
                Some(e) => Err(e),
                None => Ok(out),
            }
        });
    let resolved = match resolved {
        Ok(v) => v,
        Err((code, message)) => {
            // Messages may quote a ref, and so a token pasted as one.
            errln!("error[{code}]: {}", vaultref::redact::redact(&message));
            return ExitCode::from(if code == ErrorCode::ConfigInvalid {
                2
            } else {
                1
            });
        }
    };

    let mut builder = RedactorBuilder::new();
    for (name, value) in &resolved {
        if let Err(e) = builder.add_secret(value) {
            errln!("error[{}]: {name}: {}", e.code(), e.message());
            return ExitCode::from(1);
        }
    }
    let redactor = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            errln!("error[{}]: {}", e.code(), e.message());
            return ExitCode::from(1);
        }
    };

    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("VAULT_") || k.starts_with("VAULTREF_") || k.starts_with("BAO_") {
            cmd.env_remove(k.as_ref());
        }
    }
    for (name, value) in &resolved {
        cmd.env(name, value.expose_secret());
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            errln!("error: cannot run {}: {e}", args.command[0]);
            return ExitCode::from(2);
        }
    };
    drop(cmd);
    drop(resolved);
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let pumps = [
        pump(
            Box::new(out),
            RedactWriter::new(&redactor, Box::new(io::stdout())),
        ),
        pump(
            Box::new(err),
            RedactWriter::new(&redactor, Box::new(io::stderr())),
        ),
    ];
    let status = child.wait();
    for p in pumps {
        let _ = p.join();
    }
    match status {
        Ok(s) => match s.code() {
            Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
            None => {
                errln!("vaultref run: the command was killed by a signal");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            errln!("error: waiting for the command: {e}");
            ExitCode::from(1)
        }
    }
}

fn pump(
    mut from: Box<dyn Read + Send>,
    mut to: RedactWriter<Box<dyn Write + Send>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = io::copy(&mut from, &mut to);
        let _ = to.finish();
    })
}

fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
