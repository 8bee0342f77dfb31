//! Child processes run in their own process group and are killed as a group.
//!
//! Killing only the direct child of a job action or of `git` is not enough:
//! a background grandchild (`sleep &` in an action, `git-remote-https` and the
//! credential helper under git) keeps running and keeps the stdout/stderr
//! pipes open, so the threads reading them never finish. Each such child is
//! therefore spawned with `process_group(0)` (its pid is its group id), and
//! the whole group gets `SIGKILL` on timeout and when the child is done.
//!
//! Trade-off: a process that leaves the group (`setsid`) escapes; the pipe
//! readers are therefore joined with a deadline ([`join_within`]) and left
//! behind, detached, if they are still blocked. Killing a group after its
//! leader was reaped can, in theory, hit a new group that reused the id; the
//! window is the few microseconds between the reap and the kill.

use std::process::{Child, ExitStatus};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Sends `SIGKILL` to every process in the group led by `pid` (the group a
/// child spawned with `process_group(0)` leads). Errors (no such group) are
/// ignored: the group being gone already is the goal.
pub(crate) fn kill_group(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid
    // addresses the process group, never this process (we are not in it).
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// Joins `handle` if it finishes by `deadline`; otherwise leaves it running,
/// detached, and returns `None`.
pub(crate) fn join_within<T>(handle: JoinHandle<T>, deadline: Instant) -> Option<T> {
    while !handle.is_finished() {
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().ok()
}

/// Waits for `child` (spawned with `process_group(0)`) until `deadline`,
/// then kills its whole group, whether it exited, timed out or could not be
/// waited for: whatever it left running must not outlive it. `Ok(None)` is a
/// timeout (the child was killed and reaped).
pub(crate) fn wait_then_kill_group(
    child: &mut Child,
    deadline: Instant,
) -> std::io::Result<Option<ExitStatus>> {
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(Some(status)),
            Ok(None) if Instant::now() >= deadline => {
                kill_group(child.id());
                let _ = child.wait();
                break Ok(None);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                kill_group(child.id());
                let _ = child.wait();
                break Err(e);
            }
        }
    };
    kill_group(child.id());
    status
}
