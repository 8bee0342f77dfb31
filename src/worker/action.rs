//! The job action: what edits the checkout between preparation and publish.
//!
//! Running Codex itself is out of scope for this crate. The worker instead
//! takes an optional [`JobAction`]: a command run in the work dir, or an
//! in-process callback. Tests and the conformance harness use one that
//! writes a file; a deployment would run Codex here.
//!
//! The action never receives the git credential. A command runs with a
//! cleared environment holding only `PATH`, `LC_ALL`, `VAULTREF_JOB_ID`,
//! `VAULTREF_INSTRUCTION` and `VAULTREF_WORKDIR`, plus the variables the
//! worker's `action_env` setting resolves from Vault for it (an API key such
//! as `CODEX_API_KEY`, `spec/resolver.md` W12: registered with the job's
//! redactor, in the action's environment only, dropped when the action ends);
//! its stdout and stderr go through the job's redactor into the worker log.
//!
//! A command runs in its own process group; when it exits or times out, the
//! whole group is killed, so nothing it started in the background survives
//! into the publish step.
//!
//! A process group is not enough against an action that means harm: a
//! `setsid` grandchild leaves the group, waits for the push, and reads git's
//! credential socket and nonce from `/proc/<git pid>/environ`. So by default
//! a command runs in a PID namespace of its own with its own `/proc`
//! ([`Isolation::PidNamespace`], through util-linux `unshare --pid --fork
//! --mount-proc --kill-child`): it sees only its own processes, and when it
//! exits the kernel kills every process it started, `setsid` or not. Where
//! that is not available (no `unshare`, no privilege for namespaces) command
//! actions are refused unless the worker is set to [`Isolation::Off`]
//! (`spec/resolver.md` W9).
//!
//! A PID namespace hides processes, not files. An action running as the
//! worker's user could still open what the worker can: the token and
//! secret-id files, another job's private directory and its credential
//! socket (enough to flood it while that job pushes). So the isolated action
//! also runs as another user ([`ActionUser`], `nobody` by default; `unshare
//! --setgid --setuid`, supplementary groups dropped): the worker's files stay
//! the worker's. The work dir is handed to that user for the action and
//! taken back before git runs again (`crate::git::GitJob::run_action`). The
//! action starts in its work dir, so it needs no right on the directories
//! above it. Dropping to another user needs root, as the PID namespace
//! already does; a worker that is not root gets no isolation and refuses
//! command actions.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use super::log::JobLog;

/// How long the action's output is still read after it ended (a process
/// that left its group may hold the pipes open forever).
const PUMP_GRACE: Duration = Duration::from_secs(2);

/// How command actions are isolated (`spec/resolver.md` W9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// A PID namespace with its own `/proc` (the default); command actions
    /// are refused where it cannot be had.
    #[default]
    PidNamespace,
    /// No isolation beyond the process group: an action can outlive itself
    /// with `setsid` and see the worker's processes. Only for actions that are
    /// trusted not to try.
    Off,
}

/// The user and group an isolated command action runs as (`nobody`,
/// 65534:65534, by default). It must not be the worker's own user, and
/// should own nothing: the action can read whatever this user can.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionUser {
    /// The user id.
    pub uid: u32,
    /// The group id (the only group: supplementary groups are dropped).
    pub gid: u32,
}

impl Default for ActionUser {
    fn default() -> ActionUser {
        ActionUser {
            uid: 65534,
            gid: 65534,
        }
    }
}

/// What the worker found out about isolation when it started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IsolationStatus {
    /// Command actions run in a PID namespace through this `unshare`, as
    /// this user.
    Namespaced {
        /// The `unshare` binary.
        unshare: PathBuf,
        /// Who the action runs as.
        user: ActionUser,
    },
    /// Isolation was asked for but cannot be had here; the reason.
    Unavailable(String),
    /// Isolation is off by setting.
    Off,
}

impl IsolationStatus {
    /// Checks once what `setting` can get on this machine: runs `true` the
    /// way an action would run, in a PID namespace as `user`.
    pub fn probe(setting: Isolation, user: ActionUser) -> IsolationStatus {
        if setting == Isolation::Off {
            return IsolationStatus::Off;
        }
        // SAFETY: geteuid cannot fail and touches no memory of ours.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return IsolationStatus::Unavailable(format!(
                "the worker runs as uid {euid}, not root: it can neither create a PID namespace nor run the action as another user"
            ));
        }
        if user.uid == 0 || user.gid == 0 {
            return IsolationStatus::Unavailable(
                "the action user is root (uid or gid 0), which would isolate nothing".into(),
            );
        }
        let Some(unshare) = find_on_path("unshare") else {
            return IsolationStatus::Unavailable("`unshare` (util-linux) is not on PATH".into());
        };
        let ok = Command::new(&unshare)
            .args(unshare_args(user))
            .arg("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match ok {
            Ok(s) if s.success() => IsolationStatus::Namespaced { unshare, user },
            Ok(s) => IsolationStatus::Unavailable(format!(
                "`unshare --pid --mount-proc --setuid {} --setgid {}` failed ({s})",
                user.uid, user.gid
            )),
            Err(e) => IsolationStatus::Unavailable(format!("cannot run `unshare`: {e}")),
        }
    }

    /// One line for the worker's log at start.
    pub fn describe(&self) -> String {
        match self {
            IsolationStatus::Namespaced { user, .. } => format!(
                "job actions run in a PID namespace of their own, as uid {} gid {}",
                user.uid, user.gid
            ),
            IsolationStatus::Unavailable(why) => format!(
                "WARNING: job actions cannot be isolated here ({why}); command actions will be refused (set action_isolation to Off to run them unisolated)"
            ),
            IsolationStatus::Off => {
                "WARNING: job action isolation is off: an action can outlive itself, read git's environment and the worker's files".into()
            }
        }
    }

    /// Who a command action runs as, when it is isolated.
    pub fn action_user(&self) -> Option<ActionUser> {
        match self {
            IsolationStatus::Namespaced { user, .. } => Some(*user),
            _ => None,
        }
    }
}

/// `unshare`'s arguments before the program: a new PID namespace whose
/// first process is the action, its own `/proc`, the action killed if
/// `unshare` is, and the action's user and group (util-linux drops the
/// supplementary groups with `--setgid`).
fn unshare_args(user: ActionUser) -> Vec<String> {
    let mut args: Vec<String> = ["--pid", "--fork", "--mount-proc", "--kill-child"]
        .map(String::from)
        .into();
    args.extend([
        "--setgid".into(),
        user.gid.to_string(),
        "--setuid".into(),
        user.uid.to_string(),
        "--".into(),
    ]);
    args
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What the action is told about the job.
#[derive(Clone, Copy, Debug)]
pub struct ActionContext<'a> {
    /// The job id.
    pub job_id: &'a str,
    /// The payload's `instruction`.
    pub instruction: &'a str,
    /// The checked-out work dir.
    pub work_dir: &'a Path,
    /// The variables `action_env` resolved for this action (W12): a command
    /// gets them in its environment, a callback here.
    pub env: &'a [(String, SecretString)],
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
    pub fn run(
        &self,
        ctx: &ActionContext<'_>,
        isolation: &IsolationStatus,
        log: &JobLog,
    ) -> Result<(), String> {
        match self {
            JobAction::Callback(f) => f(ctx),
            JobAction::Command {
                program,
                args,
                timeout,
            } => run_command(program, args, *timeout, ctx, isolation, log),
        }
    }
}

fn run_command(
    program: &Path,
    args: &[String],
    timeout: Duration,
    ctx: &ActionContext<'_>,
    isolation: &IsolationStatus,
    log: &JobLog,
) -> Result<(), String> {
    let mut cmd = match isolation {
        IsolationStatus::Namespaced { unshare, user } => {
            let mut c = Command::new(unshare);
            c.args(unshare_args(*user)).arg(program);
            c
        }
        IsolationStatus::Unavailable(why) => {
            return Err(format!(
                "the job action was not run: it needs isolation (a PID namespace), which is unavailable here ({why})"
            ));
        }
        IsolationStatus::Off => Command::new(program),
    };
    cmd.args(args)
        .current_dir(ctx.work_dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LC_ALL", "C")
        .env("VAULTREF_JOB_ID", ctx.job_id)
        .env("VAULTREF_INSTRUCTION", ctx.instruction)
        .env("VAULTREF_WORKDIR", ctx.work_dir)
        .envs(ctx.env.iter().map(|(k, v)| (k, v.expose_secret())))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Where isolation cannot be had, a command action is refused: never
    /// run unisolated behind the operator's back.
    #[test]
    fn an_action_is_not_run_when_isolation_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let action = JobAction::Command {
            program: PathBuf::from("sh"),
            args: vec!["-c".into(), format!("touch '{}'", marker.display())],
            timeout: Duration::from_secs(5),
        };
        let ctx = ActionContext {
            job_id: "j",
            instruction: "x",
            work_dir: dir.path(),
            env: &[],
        };
        let log = JobLog::new("j", crate::worker::stderr_sink(), &[]);
        let e = action
            .run(&ctx, &IsolationStatus::Unavailable("test".into()), &log)
            .unwrap_err();
        assert!(e.contains("isolation"), "{e}");
        assert!(!marker.exists(), "the action ran");
        action.run(&ctx, &IsolationStatus::Off, &log).unwrap();
        assert!(marker.exists(), "with isolation off the action runs");
    }
}
