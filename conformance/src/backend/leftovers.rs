//! What a killed harness leaves on the Docker engine, and removing it.
//!
//! testcontainers removes a container when its handle is dropped, and a
//! cluster's network with its last container. A harness killed outright
//! (`SIGKILL` from a CI job's timeout, the OOM killer) drops nothing: its
//! containers keep running, holding their loopback ports and memory, and
//! their network stays. There is no reaper container to do it (Ryuk would
//! have to be pulled from a registry), so the harness does it itself:
//!
//! - every container it starts carries the label [`OWNER_LABEL`] naming its
//!   *owner*, the harness process, as `<namespace>-<pid>-<start time>` (the
//!   namespace: this boot and pid namespace, so a harness in another
//!   container or on another host sharing the engine never judges it; the
//!   start time from `/proc/<pid>/stat`, so a pid used again by another
//!   process is not taken for the owner); a cluster's network has the owner
//!   in its name, `vaultref-ha-<owner>-<run>`;
//! - before its first container, a run removes the containers and the
//!   cluster networks whose owner is gone ([`sweep`]), and says so on
//!   standard error.
//!
//! What belongs to a live harness (another run on the same engine) is left
//! alone, and so is anything whose owner cannot be read: only what this
//! harness provably started and provably outlived is removed.

use std::collections::HashMap;

use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};
use tokio::sync::OnceCell;

/// The label naming a container's owner.
pub const OWNER_LABEL: &str = "io.vaultref.conformance.owner";

/// The prefix of a cluster network's name; the owner follows it.
pub const NETWORK_PREFIX: &str = "vaultref-ha-";

/// This process as an owner: `<namespace>-<pid>-<start time in clock
/// ticks>`, or `unknown` where `/proc` cannot tell (then nothing this
/// process leaves is ever taken for a dead owner's: see [`owner_is_gone`]).
pub fn this_owner() -> String {
    let pid = std::process::id();
    match (namespace(), start_time(pid)) {
        (Some(ns), Some(start)) => format!("{ns}-{pid}-{start}"),
        _ => "unknown".into(),
    }
}

/// Where this process's pids mean something: this boot of this machine
/// (`/proc/sys/kernel/random/boot_id`) and this pid namespace, as 8 hex
/// digits of their SHA-256. A harness in a CI job's container, or on
/// another host sharing the engine, has other pids: its owners are not
/// this process's to judge.
fn namespace() -> Option<String> {
    use sha2::{Digest, Sha256};
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let mut h = Sha256::new();
    h.update(boot.trim().as_bytes());
    h.update(b"\n");
    h.update(ns.as_os_str().as_encoded_bytes());
    Some(hex::encode(&h.finalize()[..4]))
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`, in
/// clock ticks since boot), if it exists and can be read.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields after its closing parenthesis. Field 3 is the first.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether the owner named `owner` (`<namespace>-<pid>-<start time>`) is
/// provably gone: it is of this process's namespace, and no process has
/// that pid (`kill(pid, 0)` says `ESRCH`) or the one that has it started at
/// another time. Anything else, an owner that cannot be parsed, of another
/// namespace, or a process whose start time cannot be read (`/proc`
/// mounted `hidepid`), is not gone: what cannot be attributed is not
/// removed.
pub fn owner_is_gone(owner: &str) -> bool {
    let mut parts = owner.splitn(3, '-');
    let (Some(ns), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    if namespace().as_deref() != Some(ns) || pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
    let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    if !alive {
        return true;
    }
    start_time(pid).is_some_and(|t| t != start)
}

/// The owner part of a cluster network's name
/// (`vaultref-ha-<namespace>-<pid>-<start>-<run>`), if it has one.
pub fn network_owner(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(NETWORK_PREFIX)?;
    let parts: Vec<&str> = rest.splitn(4, '-').collect();
    let [ns, pid, start, _run] = parts[..] else {
        return None;
    };
    Some(&rest[..ns.len() + pid.len() + start.len() + 2])
}

/// What [`sweep`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Containers removed.
    pub containers: usize,
    /// Networks removed.
    pub networks: usize,
}

/// Every container carrying [`OWNER_LABEL`], running or not, as `(id,
/// owner)`, and the name of every network whose name starts with
/// [`NETWORK_PREFIX`]. What cannot be listed is left out.
pub async fn owned(docker: &Docker) -> (Vec<(String, String)>, Vec<String>) {
    let filters = HashMap::from([("label", vec![OWNER_LABEL])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| {
            let owner = c.labels?.remove(OWNER_LABEL)?;
            Some((c.id?, owner))
        })
        .collect();
    let filters = HashMap::from([("name", vec![NETWORK_PREFIX])]);
    let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
    let networks = docker
        .list_networks(Some(options))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.name.filter(|n| n.starts_with(NETWORK_PREFIX)))
        .collect();
    (containers, networks)
}

/// Removes the containers and cluster networks left by harnesses that are
/// gone. Errors are not fatal to a run (it only cleans up): a container or
/// network that cannot be listed or removed is left.
pub async fn sweep(docker: &Docker) -> Swept {
    let mut swept = Swept::default();
    let (containers, networks) = owned(docker).await;
    for (id, owner) in containers {
        if !owner_is_gone(&owner) {
            continue;
        }
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        if docker.remove_container(&id, Some(options)).await.is_ok() {
            swept.containers += 1;
        }
    }
    for name in networks {
        // A network still in use (a container of a live harness) cannot be
        // removed; the engine says so and it stays.
        if network_owner(&name).is_some_and(owner_is_gone)
            && docker.remove_network(&name).await.is_ok()
        {
            swept.networks += 1;
        }
    }
    swept
}

/// [`sweep`], once per process, before its first container.
pub(super) async fn sweep_once() {
    static DONE: OnceCell<()> = OnceCell::const_new();
    DONE.get_or_init(|| async {
        let Ok(docker) = Docker::connect_with_local_defaults() else {
            return;
        };
        // Cleaning up must not hold a run up: an engine that stops
        // answering gets ten seconds.
        let swept = tokio::time::timeout(std::time::Duration::from_secs(10), sweep(&docker))
            .await
            .unwrap_or_default();
        if swept != Swept::default() {
            eprintln!(
                "conformance: removed {} container(s) and {} network(s) left by a harness \
                 that is gone (label {OWNER_LABEL})",
                swept.containers, swept.networks
            );
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_gone_and_a_finished_one_is() {
        let me = this_owner();
        assert_ne!(
            me, "unknown",
            "/proc gives this process's namespace and start time"
        );
        assert!(!owner_is_gone(&me));
        let ns = namespace().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid);
        child.wait().unwrap();
        // Reaped: the pid names no process (or, reused, one that started
        // later); either way the owner is gone.
        assert!(owner_is_gone(&format!("{ns}-{pid}-{}", start.unwrap_or(1))));
        // This pid with another start time: a reused pid, not the owner.
        let start: u64 = me.rsplit('-').next().unwrap().parse().unwrap();
        let pid = std::process::id();
        assert!(owner_is_gone(&format!("{ns}-{pid}-{}", start + 1)));
        // The same, recorded in another namespace: not this process's to judge.
        assert!(!owner_is_gone(&format!("00000000-{pid}-{}", start + 1)));
    }

    #[test]
    fn what_cannot_be_attributed_is_never_gone() {
        let ns = namespace().unwrap();
        for owner in [
            "".to_string(),
            "unknown".into(),
            "12-5".into(),
            format!("{ns}-12"),
            format!("{ns}--5"),
            format!("{ns}-abc-5"),
            format!("{ns}-12-abc"),
            format!("{ns}-0-5"),
            format!("{ns}-4294967295-5"),
        ] {
            assert!(!owner_is_gone(&owner), "{owner:?}");
        }
    }

    #[test]
    fn a_network_name_gives_its_owner() {
        assert_eq!(
            network_owner("vaultref-ha-0a1b2c3d-123-456-abcd"),
            Some("0a1b2c3d-123-456")
        );
        assert_eq!(network_owner("vaultref-ha-abcd"), None);
        assert_eq!(network_owner("vaultref-ha-0a1b2c3d-123-456"), None);
        assert_eq!(network_owner("other-0a1b2c3d-123-456-abcd"), None);
    }
}
