//! `ha` scenarios: a 3-node OpenBao raft cluster of the scenario's own
//! (`spec/resolver.md` §13; processes or containers, skipped on the external
//! backend). The
//! implementation is given every node's address (`vault.cluster_addrs`)
//! unless the scenario says otherwise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Map, Value, json};
use vaultref::testing::hostile::{Answer, Catcher, HostileVault};

use super::rig::{REPO, describe, expect_completed, job, outcome, put_token, rig_with, run_job};
use super::support::{
    Auth, Session, fingerprint, own_scope, put_versions, resolve_token, session_with, verr,
};
use crate::backend::{APPROLE_MOUNT, KV_MOUNT, Vault};
use crate::cx::Cx;
use crate::scenario::{BoxFuture, Level, Profile, Scenario};
use crate::verdict::{Failure, Verdict};

fn fail(spec: &str, expected: impl Into<String>, actual: impl Into<String>) -> Verdict {
    Verdict::Fail(Failure::new(spec, expected, actual))
}

/// The scenario's own cluster, and `cx` answering it.
async fn own_cluster(cx: &Cx) -> Result<(Cx, Arc<Vault>), Verdict> {
    let Some(own) = cx.cluster_vault().await? else {
        return Err(Verdict::Skip(
            "the harness cannot start a cluster on this backend".into(),
        ));
    };
    Ok((cx.with_own_vault(own.clone()), own))
}

/// The scenario's own cluster, `cx` answering it, the secret's value and
/// path.
async fn cluster(cx: &Cx) -> Result<(Cx, Arc<Vault>, SecretString, String), Verdict> {
    let (cx, own) = own_cluster(cx).await?;
    let value = cx.fake_token();
    let path = put_versions(&cx, &[&value]).await?;
    own.cluster_leader().await.map_err(Verdict::Error)?;
    // Ready when every node answers the read itself (a standby's KV
    // mount answers 400 for a while after it is mounted).
    own.cluster_wait_served(&format!("{KV_MOUNT}/data/{path}"))
        .await
        .map_err(Verdict::Error)?;
    Ok((cx, own, value, path))
}

/// Writes `value` as the secret's new version through the active node;
/// returns once the write is acknowledged.
async fn write_through_leader(
    own: &Vault,
    path: &str,
    value: &SecretString,
) -> Result<(), Verdict> {
    let leader = own.cluster_leader().await.map_err(Verdict::Error)?;
    let admin = own
        .cluster_admin(leader)
        .await
        .ok_or_else(|| Verdict::Error("no admin".into()))?;
    admin
        .kv_put(KV_MOUNT, path, &[("token", value)])
        .await
        .map_err(verr)
        .map(drop)
}

/// A token session addressed to `first`, with `rest` as the other nodes.
async fn session(cx: &Cx, first: &str, rest: &[String]) -> Result<Session, Verdict> {
    let extra = json!({"vault_addr": first, "vault_cluster_addrs": rest});
    session_with(cx, &own_scope(cx), Auth::Token { ttl: "10m" }, extra, &[]).await
}

/// What one `resolve` reply was: the value, another value, or a code.
fn resolved(s: &Session, reply: &Map<String, Value>, value: &SecretString) -> Result<(), String> {
    match reply.get("outcome").and_then(Value::as_str) {
        Some("resolved")
            if reply.get("fingerprint").and_then(Value::as_str)
                == Some(&fingerprint(&s.key, value)) =>
        {
            Ok(())
        }
        Some("resolved") => Err("resolved to another value".into()),
        _ => Err(format!(
            "failed with code {} ({})",
            reply.get("code").unwrap_or(&Value::Null),
            reply.get("message").and_then(Value::as_str).unwrap_or("")
        )),
    }
}

/// The logins the cluster answered with a token (every node's audit log):
/// the AppRole login responses. An error when the logs cannot be read.
fn logins(own: &Vault) -> Result<usize, Verdict> {
    let login = format!("auth/{APPROLE_MOUNT}/login");
    let entries = own.audit_entries().ok_or_else(|| {
        Verdict::Error("the cluster's audit logs cannot be read by the harness".into())
    })?;
    Ok(entries
        .iter()
        .filter(|e| !e.is_request() && e.path() == login && e.tokens().next().is_some())
        .count())
}

/// A task aborted when its handle is dropped (a scenario that returns
/// early leaves no watcher holding the cluster).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long after the leader was killed a job must still end (the longest
/// failover the scenario waits for) and declined jobs must complete after a
/// new leader is elected (the bound).
const REQUEUE_WITHIN: Duration = Duration::from_secs(30);

/// `ha.leader-killed-mid-queue` (`strict`: `ha.no-failed-resolution`): ten
/// queued jobs run by one worker (AppRole, every node's address). Before
/// the 4th the token is rotated (a new version written and acknowledged;
/// the git server now takes only it), and the leader is killed as the 4th
/// is sent. Every job must end `completed`, `declined` or `failed` with
/// `vault_unavailable`; a completed job pushed with the new version (the
/// git server refuses the old one); declined jobs are queued again and must
/// complete within 30 s of the new leader; at most one login per failover
/// episode (the first login plus one). Strict: every job completes at
/// once. Measured: the cluster's failover window (kill to a new active
/// leader, as the harness saw it) and the worker's (kill to the first job
/// after it that completed).
async fn leader_killed(cx: Cx, strict: bool) -> Result<Verdict, Verdict> {
    let spec = if strict {
        "resolver.md C4: with every node's address, every job rides through the election"
    } else {
        "resolver.md C2-C4, W7: during a failover a job completes, is declined or fails with vault_unavailable, never uses another version"
    };
    let (cx, own) = own_cluster(&cx).await?;
    let v1 = cx.fake_token();
    let r = put_token(&cx, "ha", &v1).await?;
    let path = format!("{}/repos/{REPO}/ha", cx.prefix());
    own.cluster_wait_served(&format!("{KV_MOUNT}/data/{path}"))
        .await
        .map_err(Verdict::Error)?;
    let addrs = own.cluster_addrs().await;
    let auth = Auth::AppRole {
        ttl: "10m",
        max_ttl: "1h",
        bad_secret_id: false,
    };
    let vault = json!({"vault_addr": addrs[0], "vault_cluster_addrs": &addrs[1..]});
    let mut rig = rig_with(&cx, None, vault, auth).await?;
    rig.git.set_tokens(REPO, &v1);
    let mut declined = Vec::new();
    let mut killed_at = None;
    let mut election = None;
    for n in 1..=10 {
        let id = format!("job-ha-{n}");
        let reply = if n == 4 {
            // The rotation, acknowledged by the leader; then the kill, sent
            // with the job.
            let v2 = cx.fake_token();
            write_through_leader(&own, &path, &v2).await?;
            rig.git.set_tokens(REPO, &v2);
            let job = run_job(&mut rig.s, &id, job(Some(&r), None, true));
            let kill = async {
                own.kill_cluster_leader().await?;
                let at = Instant::now();
                // The harness watches for the new leader from the kill on,
                // while the queue runs (aborted if the scenario ends first).
                let watcher = own.clone();
                let elected = AbortOnDrop(tokio::spawn(async move {
                    watcher.cluster_leader().await.map(|_| Instant::now())
                }));
                Ok::<_, String>((at, elected))
            };
            let (reply, killed) = tokio::join!(job, kill);
            let (at, elected) = killed.map_err(Verdict::Error)?;
            killed_at = Some(at);
            election = Some(elected);
            reply?
        } else {
            run_job(&mut rig.s, &id, job(Some(&r), None, true)).await?
        };
        match outcome(&reply) {
            ("completed", _) => {
                let v = expect_completed(spec, &reply, &rig.git, &id, true);
                if v != Verdict::Pass {
                    return Ok(v);
                }
                if let Some(t) = killed_at
                    && !cx.measured("worker_failover_window_ms")
                {
                    cx.measure("worker_failover_window_ms", t.elapsed().as_millis() as u64);
                }
            }
            ("declined", _) if !strict => declined.push(id),
            ("failed", "vault_unavailable") if !strict => {}
            _ => {
                return Ok(fail(
                    spec,
                    if strict {
                        "every job completed (pushed with the version current when it ran)"
                    } else {
                        "completed (with the current version), declined, or failed with vault_unavailable"
                    },
                    format!("{id}: {}", describe(&reply)),
                ));
            }
        }
    }
    let (Some(mut task), Some(killed_at)) = (election, killed_at) else {
        return Err(Verdict::Error("the leader was never killed".into()));
    };
    let elected = (&mut task.0)
        .await
        .map_err(|e| Verdict::Error(e.to_string()))?
        .map_err(Verdict::Error)?;
    cx.measure(
        "failover_window_ms",
        elected.duration_since(killed_at).as_millis() as u64,
    );
    // Declined jobs stay queued: run again until they complete, within
    // 30 s of the new leader.
    let until = elected + REQUEUE_WITHIN;
    for id in &declined {
        loop {
            let reply = run_job(&mut rig.s, id, job(Some(&r), None, true)).await?;
            match outcome(&reply) {
                ("completed", _) => {
                    let v = expect_completed(spec, &reply, &rig.git, id, true);
                    if v != Verdict::Pass {
                        return Ok(v);
                    }
                    break;
                }
                ("declined", _) if Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                _ => {
                    return Ok(fail(
                        "resolver.md W7: a declined job is taken again within 30 s of Vault answering",
                        "completed within 30 s of the new leader",
                        format!(
                            "{id} queued again {} ms after the new leader: {}",
                            elected.elapsed().as_millis(),
                            describe(&reply)
                        ),
                    ));
                }
            }
        }
    }
    if !declined.is_empty() {
        cx.measure("declined_jobs", declined.len() as u64);
    }
    let logins = logins(&own)?;
    cx.measure("logins", logins as u64);
    if logins == 0 {
        // The jobs completed, so the worker logged in: the logs missed it.
        return Err(Verdict::Error(
            "no AppRole login in the cluster's audit logs, though jobs completed".into(),
        ));
    }
    if logins > 2 {
        return Ok(fail(
            "resolver.md C6: a token outlives a leader change; at most one login per failover episode",
            "at most 2 logins (the first, and one for the failover)",
            format!("{logins} logins in the nodes' audit logs"),
        ));
    }
    Ok(Verdict::Pass)
}

/// `ha.standby-address`: only a standby's address.
async fn standby_address(cx: Cx) -> Result<Verdict, Verdict> {
    let spec = "resolver.md §13: a standby forwards to the active node; a worker given only its address resolves";
    let (cx, own, value, path) = cluster(&cx).await?;
    let leader = own.cluster_leader().await.map_err(Verdict::Error)?;
    let addrs = own.cluster_addrs().await;
    let standby = addrs[(leader + 1) % addrs.len()].clone();
    let mut s = session(&cx, &standby, &[]).await?;
    for job in 0..3 {
        let reply = resolve_token(&mut s, &path, &format!("job-sb-{job}")).await?;
        if let Err(e) = resolved(&s, &reply, &value) {
            return Ok(fail(spec, "resolved to the value through the standby", e));
        }
    }
    Ok(Verdict::Pass)
}

/// `ha.sealed-node`: a sealed standby named first.
async fn sealed_node(cx: Cx) -> Result<Verdict, Verdict> {
    let spec = "resolver.md C2-C3: a sealed node is passed over for the active one";
    let (cx, own, value, path) = cluster(&cx).await?;
    let leader = own.cluster_leader().await.map_err(Verdict::Error)?;
    let addrs = own.cluster_addrs().await;
    let sealed = (leader + 1) % addrs.len();
    own.seal_cluster_node(sealed)
        .await
        .map_err(Verdict::Error)?;
    let rest: Vec<String> = (0..addrs.len())
        .filter(|&i| i != sealed)
        .map(|i| addrs[i].clone())
        .collect();
    let mut s = session(&cx, &addrs[sealed], &rest).await?;
    for job in 0..3 {
        let reply = resolve_token(&mut s, &path, &format!("job-sealed-{job}")).await?;
        if let Err(e) = resolved(&s, &reply, &value) {
            return Ok(fail(
                spec,
                "resolved to the value through the unsealed nodes",
                e,
            ));
        }
    }
    Ok(Verdict::Pass)
}

/// `ha.rotation-during-failover`: a new version written and acknowledged,
/// the leader killed at once; every resolution for the next 8 s must give
/// the new version or fail, and one must give it.
///
/// The standby listed first after the leader is frozen while the new
/// version is written (the leader and the other standby commit it) and let
/// go once the leader is dead: it holds the old version until the new
/// leader catches it up, so a client that takes a standby's own read gets
/// the old version, provided the leader dies before its next replication
/// round (about 50 ms) tells the frozen node's socket the commit: on the
/// process backend the kill follows the acknowledgement within a
/// millisecond or so (the broken-adapter test runs there), through Docker
/// it takes longer. Without the freeze, the running standbys learned the
/// commit in that same window and applied it at once, so whether a client
/// saw the old version depended on how fast the harness killed the leader.
async fn rotation(cx: Cx) -> Result<Verdict, Verdict> {
    let spec = "resolver.md C2: a version acknowledged before a failover is never read back as an older one";
    let (cx, own, old, path) = cluster(&cx).await?;
    let addrs = own.cluster_addrs().await;
    let mut s = session(&cx, &addrs[0], &addrs[1..]).await?;
    let reply = resolve_token(&mut s, &path, "job-rot-0").await?;
    if let Err(e) = resolved(&s, &reply, &old) {
        return Ok(fail(
            spec,
            "the first version resolves before the rotation",
            e,
        ));
    }
    let new = cx.fake_token();
    let leader = own.cluster_leader().await.map_err(Verdict::Error)?;
    let stale = (0..addrs.len())
        .find(|&i| i != leader)
        .ok_or_else(|| Verdict::Error("a cluster of one node".into()))?;
    let admin = own
        .cluster_admin(leader)
        .await
        .ok_or_else(|| Verdict::Error("no admin".into()))?;
    // While the node is frozen nothing may ask it anything (the request
    // would hang): the leader is written to and killed by index.
    own.pause_cluster_node(stale, true)
        .await
        .map_err(Verdict::Error)?;
    let written = admin.kv_put(KV_MOUNT, &path, &[("token", &new)]).await;
    let killed = match &written {
        Ok(_) => own.kill_cluster_node(leader).await,
        Err(_) => Ok(()),
    };
    own.pause_cluster_node(stale, false)
        .await
        .map_err(Verdict::Error)?;
    written.map_err(verr)?;
    killed.map_err(Verdict::Error)?;
    let until = Instant::now() + Duration::from_secs(8);
    let mut got_new = false;
    let mut job = 0;
    while Instant::now() < until {
        job += 1;
        let reply = resolve_token(&mut s, &path, &format!("job-rot-{job}")).await?;
        if resolved(&s, &reply, &old).is_ok() {
            return Ok(fail(
                spec,
                "never the version before the acknowledged write",
                format!("resolution {job} after the leader was killed gave the old version"),
            ));
        }
        got_new |= resolved(&s, &reply, &new).is_ok();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !got_new {
        return Ok(fail(
            spec,
            "the new version once a leader is back",
            "never resolved in 8 s",
        ));
    }
    Ok(Verdict::Pass)
}

/// `ha.hostile-node`: the first configured address is a node that says it
/// is a standby, names an address outside the cluster as the leader
/// (`leader_address`, as a node with a wrong `api_addr` does) and redirects
/// the secret's path there. Resolutions must give the value through the
/// real nodes, the hostile node must not be asked for the secret (it never
/// says it is active), and nothing may reach the outside address.
async fn hostile_node(cx: Cx) -> Result<Verdict, Verdict> {
    let spec = "resolver.md C1, C3: only the node that says it is active is asked; a token goes only to configured addresses";
    let (cx, own, value, path) = cluster(&cx).await?;
    let outside = Catcher::start().map_err(verr)?;
    let kv_path = format!("{KV_MOUNT}/data/{path}");
    let leader = json!({"ha_enabled": true, "is_self": false,
                        "leader_address": outside.url(),
                        "leader_cluster_address": outside.url()});
    let standby = json!({"initialized": true, "sealed": false, "standby": true});
    let tls = own
        .cluster_tls()
        .await
        .ok_or_else(|| Verdict::Error("the cluster serves no HTTPS".into()))?;
    let hostile = HostileVault::start_tls(
        &[
            ("sys/leader", Answer::Json(200, leader.to_string())),
            ("sys/health", Answer::Json(429, standby.to_string())),
            (
                kv_path.as_str(),
                Answer::Redirect(format!("{}/v1/{kv_path}", outside.url())),
            ),
        ],
        &tls,
    )
    .map_err(verr)?;
    let addrs = own.cluster_addrs().await;
    let mut s = session(&cx, &hostile.url(), &addrs).await?;
    let mut verdict = Verdict::Pass;
    for job in 0..3 {
        let reply = resolve_token(&mut s, &path, &format!("job-hostile-{job}")).await?;
        if let Err(e) = resolved(&s, &reply, &value) {
            verdict = fail(spec, "resolved to the value through the real nodes", e);
            break;
        }
    }
    // After the implementation exits, so a revocation at exit counts too.
    let _ = s.iut.shutdown().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    if outside.connections() > 0 {
        return Ok(fail(
            spec,
            "nothing sent to the address the hostile node names",
            format!(
                "{} connection(s), {} byte(s) sent to it",
                outside.connections(),
                outside.received().len()
            ),
        ));
    }
    if hostile.requests().iter().any(|(_, p)| *p == kv_path) {
        return Ok(fail(
            spec,
            "the secret asked of the active node only",
            "the node that says it is a standby was asked for the secret",
        ));
    }
    Ok(verdict)
}

type Body = fn(Cx) -> BoxFuture<Result<Verdict, Verdict>>;

/// Every `ha` scenario.
pub fn scenarios() -> Vec<Scenario> {
    let rows: [(&str, Level, &str, &str, Body); 6] = [
        (
            "ha.leader-killed-mid-queue",
            Level::Must,
            "resolver.md C2-C4, C6, W7",
            "10 queued jobs, a rotation, the leader killed with the 4th: each completes with the new version, is declined (and completes within 30 s of the new leader) or fails with vault_unavailable; at most one login per failover",
            |cx| Box::pin(leader_killed(cx, false)),
        ),
        (
            "ha.no-failed-resolution",
            Level::Should,
            "resolver.md C4",
            "The same: every job completes at once",
            |cx| Box::pin(leader_killed(cx, true)),
        ),
        (
            "ha.standby-address",
            Level::Must,
            "resolver.md §13",
            "Only a standby's address: resolutions work (forwarded)",
            |cx| Box::pin(standby_address(cx)),
        ),
        (
            "ha.sealed-node",
            Level::Must,
            "resolver.md C2-C3",
            "A sealed node named first: resolutions go to the others",
            |cx| Box::pin(sealed_node(cx)),
        ),
        (
            "ha.rotation-during-failover",
            Level::Must,
            "resolver.md C2",
            "A write acknowledged just before the leader dies is never read back as the old version",
            |cx| Box::pin(rotation(cx)),
        ),
        (
            "ha.hostile-node",
            Level::Must,
            "resolver.md C1, C3",
            "A configured node that says it is a standby, names an outside address as leader and redirects there: the value comes from the real nodes, nothing goes outside",
            |cx| Box::pin(hostile_node(cx)),
        ),
    ];
    rows.into_iter()
        .map(|(id, level, section, title, body)| {
            let run = Arc::new(move |cx: Cx| -> BoxFuture<Verdict> {
                Box::pin(async move {
                    match body(cx).await {
                        Ok(v) | Err(v) => v,
                    }
                })
            });
            Scenario::live(
                id,
                Profile::Ha,
                level,
                section,
                title,
                super::support::VAULT,
                run,
            )
        })
        .collect()
}
