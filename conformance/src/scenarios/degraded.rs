//! `degraded` scenarios: Vault stopped mid-queue (`resolver.md` W7).
//!
//! "Stopped" is a real stop where the harness owns a server it can stop (a
//! server of the scenario's own, so that no other scenario loses Vault), and
//! a TCP proxy switched off in front of the shared server on the external
//! backend.

use std::time::Duration;

use serde_json::json;

use super::rig::{
    PUBLIC_REPO, REPO, describe, expect_completed, job, outcome, put_token, rig, run_job,
};
use super::support::VAULT;
use crate::backend::proxy::Proxy;
use crate::cx::Cx;
use crate::scenario::{BoxFuture, Level, Profile, Scenario};
use crate::verdict::{Failure, Verdict};

/// How long a job may take to be declined or failed while Vault is down.
const DEGRADED_BOUND: Duration = Duration::from_secs(15);

/// How the degraded scenario takes Vault away: a real stop where the harness
/// owns a server it can stop, else a network cut in front of the shared one.
enum Outage {
    /// A server of the scenario's own, killed and started again (storage kept).
    Stop(std::sync::Arc<crate::backend::Vault>),
    /// A proxy switched off and on (external backend).
    Proxy(Proxy),
}

impl Outage {
    async fn down(&self) -> Result<(), Verdict> {
        match self {
            Outage::Stop(v) => v
                .stop_server()
                .await
                .map_err(|e| Verdict::Error(format!("stopping Vault: {e}"))),
            Outage::Proxy(p) => {
                p.down();
                Ok(())
            }
        }
    }

    async fn up(&self) -> Result<(), Verdict> {
        match self {
            Outage::Stop(v) => v
                .start_server()
                .await
                .map_err(|e| Verdict::Error(format!("starting Vault again: {e}"))),
            Outage::Proxy(p) => p
                .up()
                .await
                .map_err(|e| Verdict::Error(format!("proxy: {e}"))),
        }
    }
}

/// Vault stopped mid-queue.
async fn degraded(cx: Cx) -> Result<Verdict, Verdict> {
    let spec = "resolver.md W7: stop claiming secret jobs, keep the others, resume after";
    // A real stop needs a server of the scenario's own: stopping the shared
    // one would fail every scenario running beside this one.
    let (cx, outage, vault_addr) = match cx.stoppable_vault().await? {
        Some(own) => (cx.with_own_vault(own.clone()), Outage::Stop(own), None),
        None => {
            let target: std::net::SocketAddr = cx
                .vault()?
                .addr()
                .trim_start_matches("http://")
                .parse()
                .map_err(|e| Verdict::Error(format!("Vault address: {e}")))?;
            let proxy = Proxy::start(target)
                .await
                .map_err(|e| Verdict::Error(format!("proxy: {e}")))?;
            let url = proxy.url();
            (cx, Outage::Proxy(proxy), Some(url))
        }
    };
    let token = cx.fake_token();
    let r = put_token(&cx, "github", &token).await?;
    let mut rig = rig(&cx, None, vault_addr).await?;
    rig.git.set_tokens(REPO, &token);
    rig.git
        .create_repo(PUBLIC_REPO)
        .map_err(|e| Verdict::Error(format!("git server: {e}")))?;
    rig.git.set_public(PUBLIC_REPO, true);
    let first = run_job(&mut rig.s, "job-deg-1", job(Some(&r), None, true)).await?;
    let v = expect_completed("before the outage", &first, &rig.git, "job-deg-1", true);
    if v != Verdict::Pass {
        return Ok(v);
    }
    outage.down().await?;
    // Secret jobs while Vault is down, in time: the job that finds Vault down
    // may fail with vault_unavailable; once in degraded mode, every later one
    // MUST be declined (W7), not failed: a failed job is lost to the queue.
    let mut queue: Vec<String> = Vec::new();
    let mut failed_before = false;
    for id in ["job-deg-2", "job-deg-3", "job-deg-4"] {
        let started = std::time::Instant::now();
        let reply = run_job(&mut rig.s, id, job(Some(&r), None, true)).await?;
        let took = started.elapsed();
        match outcome(&reply) {
            ("declined", _) => queue.push(id.to_string()),
            ("failed", "vault_unavailable") if !failed_before => failed_before = true,
            ("failed", "vault_unavailable") => {
                return Ok(Verdict::Fail(Failure::new(
                    "resolver.md W7: in degraded mode a worker declines secret jobs",
                    "declined (only the job that found Vault down may fail)",
                    format!("{id}: {}", describe(&reply)),
                )));
            }
            _ => {
                return Ok(Verdict::Fail(Failure::new(
                    spec,
                    "declined, or failed with vault_unavailable",
                    format!("{id}: {}", describe(&reply)),
                )));
            }
        }
        if took > DEGRADED_BOUND {
            return Ok(Verdict::Fail(Failure::new(
                spec,
                format!("an answer within {} s", DEGRADED_BOUND.as_secs()),
                format!("{id} took {:.1} s", took.as_secs_f32()),
            )));
        }
    }
    // A job without refs still completes.
    let mut plain = job(None, None, false);
    plain["payload"]["repository"] = json!(PUBLIC_REPO);
    let reply = run_job(&mut rig.s, "job-deg-plain", plain).await?;
    if outcome(&reply).0 != "completed" {
        return Ok(Verdict::Fail(Failure::new(
            spec,
            "a job without refs completes while Vault is down",
            describe(&reply),
        )));
    }
    outage.up().await?;
    // Declined jobs are offered again until they complete (nothing lost).
    // 45 s: more than W7's 30 s backoff cap plus a probe, so a worker whose
    // backoff reached the cap while Vault was down is not failed for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    while let Some(id) = queue.first().cloned() {
        let reply = run_job(&mut rig.s, &id, job(Some(&r), None, true)).await?;
        match outcome(&reply) {
            ("completed", _) => {
                let v = expect_completed(spec, &reply, &rig.git, &id, true);
                if v != Verdict::Pass {
                    return Ok(v);
                }
                queue.remove(0);
            }
            ("declined", _) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            _ => {
                return Ok(Verdict::Fail(Failure::new(
                    spec,
                    "declined jobs complete once Vault is back (within 45 s)",
                    format!("{id}: {}", describe(&reply)),
                )));
            }
        }
    }
    Ok(Verdict::Pass)
}

/// Every `degraded` scenario.
pub fn scenarios() -> Vec<Scenario> {
    vec![Scenario::live(
        "degraded.vault-stopped-mid-queue",
        Profile::Degraded,
        Level::Must,
        "resolver.md W7",
        "Vault stopped mid-queue: secret jobs declined or failed in time, others complete, declined ones complete after",
        VAULT,
        std::sync::Arc::new(|cx: Cx| -> BoxFuture<Verdict> {
            Box::pin(async move { degraded(cx).await.unwrap_or_else(|v| v) })
        }),
    )]
}
