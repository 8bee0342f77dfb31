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
//!   *owner*, the harness process, as `<pid>-<start time>` (the start time
//!   from `/proc/<pid>/stat`, so a pid used again by another process is not
//!   taken for the owner); a cluster's network has the owner in its name,
//!   `vaultref-ha-<owner>-<run>`;
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

/// This process as an owner: `<pid>-<start time in clock ticks>`, or
/// `<pid>-0` where `/proc` cannot tell the start time (then nothing this
/// process leaves is ever taken for a dead owner's: see [`owner_is_gone`]).
pub fn this_owner() -> String {
    let pid = std::process::id();
    format!("{pid}-{}", start_time(pid).unwrap_or(0))
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`, in
/// clock ticks since boot), if it exists.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields after its closing parenthesis. Field 3 is the first.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether the owner named `owner` (`<pid>-<start time>`) is provably gone:
/// no process has that pid, or the one that has it started at another time.
/// An owner that cannot be parsed, or was recorded without a start time, is
/// never gone (what cannot be attributed is not removed).
pub fn owner_is_gone(owner: &str) -> bool {
    let Some((pid, start)) = owner.split_once('-') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    if start == 0 {
        return false;
    }
    if !std::path::Path::new("/proc/self/stat").exists() {
        return false;
    }
    start_time(pid) != Some(start)
}

/// The owner part of a cluster network's name
/// (`vaultref-ha-<pid>-<start>-<run>`), if it has one.
pub fn network_owner(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(NETWORK_PREFIX)?;
    let mut parts = rest.splitn(3, '-');
    let (pid, start) = (parts.next()?, parts.next()?);
    parts.next()?;
    Some(&rest[..pid.len() + 1 + start.len()])
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
        let swept = sweep(&docker).await;
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
        assert!(!me.ends_with("-0"), "/proc gives this process's start time");
        assert!(!owner_is_gone(&me));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid);
        child.wait().unwrap();
        // Reaped: the pid names no process (or, reused, one that started
        // later); either way the owner is gone.
        let owner = format!("{pid}-{}", start.unwrap_or(1));
        assert!(owner_is_gone(&owner));
        // This pid with another start time: a reused pid, not the owner.
        let (pid, start) = me.split_once('-').unwrap();
        let other = format!("{pid}-{}", start.parse::<u64>().unwrap() + 1);
        assert!(owner_is_gone(&other));
    }

    #[test]
    fn what_cannot_be_attributed_is_never_gone() {
        for owner in [
            "", "x", "12", "12-", "-5", "abc-5", "12-abc", "12-0", "12-5-6",
        ] {
            assert!(!owner_is_gone(owner), "{owner:?}");
        }
    }

    #[test]
    fn a_network_name_gives_its_owner() {
        assert_eq!(network_owner("vaultref-ha-123-456-abcd"), Some("123-456"));
        assert_eq!(network_owner("vaultref-ha-abcd"), None);
        assert_eq!(network_owner("vaultref-ha-123-456"), None);
        assert_eq!(network_owner("other-123-456-abcd"), None);
    }
}
