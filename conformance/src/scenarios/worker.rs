//! `worker` scenarios: `run_job` against a real Vault and a real git HTTP
//! server (see [`super::rig`]): clone and push with transient credentials,
//! `publishAuthRef`, the queue policy before Vault, rotation mid-queue.

use serde_json::{Value, json};
use vaultref::testing::git_server::Access;

use super::rig::{
    REPO, describe, expect_completed, expect_no_token_left, job, outcome, put_token, rig, run_job,
};
use super::support::{AUDIT, VAULT, and, expect_no_vault_request};
use crate::cx::Cx;
use crate::live_scenario;
use crate::scenario::{Level, Profile, Scenario};
use crate::verdict::{Failure, Verdict};

/// Every worker scenario.
pub fn scenarios() -> Vec<Scenario> {
    use Level::Must;
    use Profile::Worker;
    vec![
        Scenario::live(
            "worker.clone-and-push",
            Worker,
            Must,
            "resolver.md W4, G1; protocol.md §3.6",
            "Clone, and push falling back to repoAuthRef; no token in argv, .git/config, work dir or TMPDIR",
            VAULT,
            live_scenario!(cx, {
                let token = cx.fake_token();
                let r = put_token(&cx, "github", &token).await?;
                let mut rig = rig(&cx, None, None).await?;
                rig.git.set_tokens(REPO, &token);
                let reply = run_job(&mut rig.s, "job-push-1", job(Some(&r), None, true)).await?;
                let done = expect_completed(
                    "resolver.md W4: clone and push with the resolved token",
                    &reply,
                    &rig.git,
                    "job-push-1",
                    true,
                );
                let dirs = rig.s.dirs.clone();
                let argv = rig.argv_log.clone();
                let _ = rig.s.iut.shutdown().await;
                Ok(and(done, expect_no_token_left(&[&token], &argv, &dirs)))
            }),
        ),
        Scenario::live(
            "worker.publish-auth-ref",
            Worker,
            Must,
            "resolver.md G7, W5 (publishAuthRef)",
            "Pushes with publishAuthRef when it differs from repoAuthRef",
            VAULT,
            live_scenario!(cx, {
                let (read, push) = (cx.fake_token(), cx.fake_token());
                let read_ref = put_token(&cx, "read", &read).await?;
                let push_ref = put_token(&cx, "push", &push).await?;
                let mut rig = rig(&cx, None, None).await?;
                rig.git.set_token(REPO, Access::Read, &read);
                rig.git.set_token(REPO, Access::Push, &push);
                let reply = run_job(
                    &mut rig.s,
                    "job-publish-1",
                    job(Some(&read_ref), Some(&push_ref), true),
                )
                .await?;
                let done = expect_completed(
                    "resolver.md G7: publish uses publishAuthRef",
                    &reply,
                    &rig.git,
                    "job-publish-1",
                    true,
                );
                let dirs = rig.s.dirs.clone();
                let argv = rig.argv_log.clone();
                let _ = rig.s.iut.shutdown().await;
                Ok(and(
                    done,
                    expect_no_token_left(&[&read, &push], &argv, &dirs),
                ))
            }),
        ),
        Scenario::live(
            "worker.repository-not-allowed",
            Worker,
            Must,
            "resolver.md W1 (queue policy before Vault)",
            "A repository outside the queue policy fails without reading Vault",
            AUDIT,
            live_scenario!(cx, {
                refused_by_queue_policy(
                    &cx,
                    json!({"allowed_repositories": ["Acme/Other"]}),
                    "repository_not_allowed",
                )
                .await
            }),
        ),
        Scenario::live(
            "worker.job-type-not-allowed",
            Worker,
            Must,
            "resolver.md W1 (queue policy before Vault)",
            "A job type outside the queue policy fails without reading Vault",
            AUDIT,
            live_scenario!(cx, {
                refused_by_queue_policy(
                    &cx,
                    json!({"allowed_job_types": ["some_other_type"]}),
                    "job_type_not_allowed",
                )
                .await
            }),
        ),
        Scenario::live(
            "worker.rotation-mid-queue",
            Worker,
            Must,
            "resolver.md W4, V5 (rotation picked up by queued jobs)",
            "Secret rotated and the git server switched between two queued jobs: every later job succeeds",
            VAULT,
            live_scenario!(cx, {
                let (old, new) = (cx.fake_token(), cx.fake_token());
                let r = put_token(&cx, "github", &old).await?;
                let mut rig = rig(&cx, None, None).await?;
                rig.git.set_tokens(REPO, &old);
                let first = run_job(&mut rig.s, "job-rot-1", job(Some(&r), None, true)).await?;
                let v = expect_completed(
                    "the first job, before rotation",
                    &first,
                    &rig.git,
                    "job-rot-1",
                    true,
                );
                if v != Verdict::Pass {
                    return Ok(v);
                }
                put_token(&cx, "github", &new).await?;
                rig.git.set_tokens(REPO, &new);
                for id in ["job-rot-2", "job-rot-3"] {
                    let reply = run_job(&mut rig.s, id, job(Some(&r), None, true)).await?;
                    let v = expect_completed(
                        "resolver.md W4: jobs queued before a rotation use the new secret",
                        &reply,
                        &rig.git,
                        id,
                        true,
                    );
                    if v != Verdict::Pass {
                        return Ok(v);
                    }
                }
                let dirs = rig.s.dirs.clone();
                let argv = rig.argv_log.clone();
                let _ = rig.s.iut.shutdown().await;
                Ok(expect_no_token_left(&[&old, &new], &argv, &dirs))
            }),
        ),
    ]
}

/// A job the queue policy refuses (W1): failed with `code`, and no Vault
/// read under the scenario's prefix, though the job's ref is readable.
async fn refused_by_queue_policy(
    cx: &Cx,
    queue_policy: Value,
    code: &str,
) -> Result<Verdict, Verdict> {
    let token = cx.fake_token();
    let r = put_token(cx, "github", &token).await?;
    let mut rig = rig(cx, Some(queue_policy), None).await?;
    rig.git.set_tokens(REPO, &token);
    let reply = run_job(&mut rig.s, "job-refused-1", job(Some(&r), None, false)).await?;
    let refused = if outcome(&reply) == ("failed", code) {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            "resolver.md W1: the queue policy refuses the job",
            format!("failed with code \"{code}\""),
            describe(&reply),
        ))
    };
    Ok(and(
        refused,
        expect_no_vault_request(
            cx,
            "resolver.md W1: the queue policy is checked before any Vault read",
        ),
    ))
}
