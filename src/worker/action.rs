//! The job action: what edits the checkout between preparation and publish.
//!
//! Running Codex itself is out of scope for this crate. The worker instead
//! takes an optional [`JobAction`]: a command run in the work dir, or an
//! in-process callback. Tests and the conformance harness use one that
//! writes a file; a deployment would run Codex here.
//!
//! The action never receives a secret. A command runs with a cleared
//! environment holding only `PATH`, `LC_ALL`, and `VAULTREF_JOB_ID`,
//! `VAULTREF_INSTRUCTION` and `VAULTREF_WORKDIR`; its stdout and stderr go
//! through the job's redactor into the worker log (a defence in depth: it
//! could still print something it read from disk).
//!
//! A command runs in its own process group; when it exits or times out, the
//! whole group is killed, so nothing it started in the background survives
//! into the publish step.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::log::JobLog;

/// How long the action's output is still read after it ended (a process
/// that left its group may hold the pipes open forever).
const PUMP_GRACE: Duration = Duration::from_secs(2);

/// What the action is told about the job.
#[derive(Clone, Copy, Debug)]
pub struct ActionContext<'a> {
    /// The job id.
    pub job_id: &'a str,
    /// The payload's `instruction`.
    pub instruction: &'a str,
    /// The checked-out work dir.
    pub work_dir: &'a Path,
}

/// An in-process action.
pub type ActionFn = Arc<dyn Fn(&ActionContext<'_>) -> Result<(), String> + Send + Sync>;

/// How the worker edits a checkout.
#[derive(Clone)]
pub enum JobAction {
    /// Runs `program args...` in the work dir, with a time limit.
    Command {
        /// The program.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
        /// Time limit; the process is killed after it.
        timeout: Duration,
    },
    /// Calls a function.
    Callback(ActionFn),
}

impl std::fmt::Debug for JobAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobAction::Command {
                program,
                args,
                timeout,
            } => f
                .debug_struct("Command")
                .field("program", program)
                .field("args", args)
                .field("timeout", timeout)
                .finish(),
            JobAction::Callback(_) => f.write_str("Callback(..)"),
        }
    }
}

impl JobAction {
    /// Runs the action. The error message is redacted by the caller before it
    /// is logged or reported.
    pub fn run(&self, ctx: &ActionContext<'_>, log: &JobLog) -> Result<(), String> {
        match self {
            JobAction::Callback(f) => f(ctx),
            JobAction::Command {
                program,
                args,
                timeout,
            } => run_command(program, args, *timeout, ctx, log),
        }
    }
}

fn run_command(
    program: &Path,
    args: &[String],
    timeout: Duration,
    ctx: &ActionContext<'_>,
    log: &JobLog,
) -> Result<(), String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(ctx.work_dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LC_ALL", "C")
        .env("VAULTREF_JOB_ID", ctx.job_id)
        .env("VAULTREF_INSTRUCTION", ctx.instruction)
        .env("VAULTREF_WORKDIR", ctx.work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so that its background children can be killed
    // with it (see `crate::proc_group`).
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run the job action {}: {e}", program.display()))?;
    let pumps: Vec<_> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        let mut out = log.stream();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut pipe, &mut out);
            let _ = out.flush();
            let _ = out.finish();
        })
    })
    .collect();
    // Whatever the action left running in the background must not outlive
    // it: it would run during the push, next to git and its credential.
    let status = crate::proc_group::wait_then_kill_group(&mut child, Instant::now() + timeout)
        .map_err(|e| format!("waiting for the job action: {e}"))?;
    let pump_deadline = Instant::now() + PUMP_GRACE;
    for p in pumps {
        let _ = crate::proc_group::join_within(p, pump_deadline);
    }
    match status {
        None => Err(format!("the job action timed out after {timeout:?}")),
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(format!("the job action exited with {s}")),
    }
}
