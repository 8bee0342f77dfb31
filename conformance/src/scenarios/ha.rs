//! `ha` scenarios: a 3-node OpenBao raft cluster of the scenario's own
//! (`spec/resolver.md` §13; process backend only, skipped elsewhere). The
//! implementation is given every node's address (`vault.cluster_addrs`)
//! unless the scenario says otherwise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Map, Value, json};

use super::support::{
    Auth, Session, fingerprint, own_scope, put_versions, resolve_token, session_with, verr,
};
use crate::backend::{KV_MOUNT, Vault};
use crate::cx::Cx;
use crate::scenario::{BoxFuture, Level, Profile, Scenario};
use crate::verdict::{Failure, Verdict};

fn fail(spec: &str, expected: impl Into<String>, actual: impl Into<String>) -> Verdict {
    Verdict::Fail(Failure::new(spec, expected, actual))
}

/// The scenario's own cluster, `cx` answering it, the secret's value and
/// path.
async fn cluster(cx: &Cx) -> Result<(Cx, Arc<Vault>, SecretString, String), Verdict> {
    let Some(own) = cx.cluster_vault().await? else {
        return Err(Verdict::Skip(
            "a 3-node cluster needs the process backend".into(),
        ));
    };
    let cx = cx.with_own_vault(own.clone());
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

/// A token session addressed to `first`, with `rest` as the other nodes.
async fn session(cx: &Cx, first: &str, rest: &[String]) -> Result<Session, Verdict> {
    let extra = json!({"vault_addr": first, "vault_cluster_addrs": rest});
    session_with(cx, &own_scope(cx), Auth::Token { ttl: "10m" }, extra, &[]).await
}

/// What one `resolve` reply was: the value, another value, or a code.
fn outcome(s: &Session, reply: &Map<String, Value>, value: &SecretString) -> Result<(), String> {
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

/// `ha.leader-killed-mid-queue` (`strict`: `ha.no-failed-resolution`): ten
/// resolutions, the leader killed before the fourth.
async fn leader_killed(cx: Cx, strict: bool) -> Result<Verdict, Verdict> {
    let spec = if strict {
        "resolver.md C4: with every node's address, a resolution rides through the election"
    } else {
        "resolver.md C2-C4: during a failover a resolution gives the value or vault_unavailable, never another value"
    };
    let (cx, own, value, path) = cluster(&cx).await?;
    let addrs = own.cluster_addrs().await;
    let mut s = session(&cx, &addrs[0], &addrs[1..]).await?;
    let mut window = None;
    for job in 1..=10 {
        let killed = if job == 4 {
            own.kill_cluster_leader().await.map_err(Verdict::Error)?;
            Some(Instant::now())
        } else {
            None
        };
        let reply = resolve_token(&mut s, &path, &format!("job-ha-{job}")).await?;
        match outcome(&s, &reply, &value) {
            Ok(()) => {}
            Err(e) if e.contains("vault_unavailable") && !strict => {}
            Err(e) => {
                return Ok(fail(
                    spec,
                    "every resolution gives the value",
                    format!("job {job}: {e}"),
                ));
            }
        }
        if let Some(t) = killed {
            window = Some(t.elapsed());
        }
    }
    if let Some(w) = window {
        eprintln!(
            "{}: failover window seen by the implementation: {} ms",
            cx.prefix(),
            w.as_millis()
        );
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
        if let Err(e) = outcome(&s, &reply, &value) {
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
        if let Err(e) = outcome(&s, &reply, &value) {
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
async fn rotation(cx: Cx) -> Result<Verdict, Verdict> {
    let spec = "resolver.md C2: a version acknowledged before a failover is never read back as an older one";
    let (cx, own, old, path) = cluster(&cx).await?;
    let addrs = own.cluster_addrs().await;
    let mut s = session(&cx, &addrs[0], &addrs[1..]).await?;
    let reply = resolve_token(&mut s, &path, "job-rot-0").await?;
    if let Err(e) = outcome(&s, &reply, &old) {
        return Ok(fail(
            spec,
            "the first version resolves before the rotation",
            e,
        ));
    }
    let new = cx.fake_token();
    let leader = own.cluster_leader().await.map_err(Verdict::Error)?;
    let admin = own
        .cluster_admin(leader)
        .await
        .ok_or_else(|| Verdict::Error("no admin".into()))?;
    admin
        .kv_put(KV_MOUNT, &path, &[("token", &new)])
        .await
        .map_err(verr)?;
    own.kill_cluster_leader().await.map_err(Verdict::Error)?;
    let until = Instant::now() + Duration::from_secs(8);
    let mut got_new = false;
    let mut job = 0;
    while Instant::now() < until {
        job += 1;
        let reply = resolve_token(&mut s, &path, &format!("job-rot-{job}")).await?;
        if outcome(&s, &reply, &old).is_ok() {
            return Ok(fail(
                spec,
                "never the version before the acknowledged write",
                format!("resolution {job} after the leader was killed gave the old version"),
            ));
        }
        got_new |= outcome(&s, &reply, &new).is_ok();
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

type Body = fn(Cx) -> BoxFuture<Result<Verdict, Verdict>>;

/// Every `ha` scenario.
pub fn scenarios() -> Vec<Scenario> {
    let rows: [(&str, Level, &str, &str, Body); 5] = [
        (
            "ha.leader-killed-mid-queue",
            Level::Must,
            "resolver.md C2-C4",
            "The leader killed during the 4th of 10 resolutions: each gives the value or vault_unavailable",
            |cx| Box::pin(leader_killed(cx, false)),
        ),
        (
            "ha.no-failed-resolution",
            Level::Should,
            "resolver.md C4",
            "The same with every node's address: all 10 give the value",
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
