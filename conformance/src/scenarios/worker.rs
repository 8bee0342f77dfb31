//! `worker` scenarios: `run_job` against a real Vault and a real git HTTP
//! server (see [`super::rig`]): clone and push with transient credentials,
//! `publishAuthRef`, the queue policy before Vault, rotation mid-queue.

use secrecy::SecretString;
use serde_json::{Value, json};
use vaultref::testing::git_server::Access;

use super::rig::{
    REPO, describe, expect_completed, expect_no_token_left, job, outcome, put_token, rig, run_job,
    run_pushing_jobs,
};
use super::support::{AUDIT, VAULT, and, expect_no_vault_request};
use crate::backend::KV_MOUNT;
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
                let v = run_pushing_jobs(
                    &mut rig,
                    &["job-rot-2", "job-rot-3"],
                    &r,
                    "resolver.md W4: jobs queued before a rotation use the new secret",
                )
                .await?;
                if v != Verdict::Pass {
                    return Ok(v);
                }
                let dirs = rig.s.dirs.clone();
                let argv = rig.argv_log.clone();
                let _ = rig.s.iut.shutdown().await;
                Ok(expect_no_token_left(&[&old, &new], &argv, &dirs))
            }),
        ),
        Scenario::live(
            "worker.publish-none",
            Worker,
            Must,
            "codex-exec.md publish; protocol.md §3.6",
            "publish.mode none: the job completes with no commit reported and nothing is pushed",
            VAULT,
            live_scenario!(cx, { publish_none(&cx).await }),
        ),
        Scenario::live(
            "worker.ref-out-of-scope",
            Worker,
            Must,
            "resolver.md W2; secret-ref.md §4 scopes",
            "A job whose repoAuthRef names another repository's secret fails ref_out_of_scope without reading Vault",
            AUDIT,
            live_scenario!(cx, { ref_out_of_scope(&cx).await }),
        ),
        Scenario::live(
            "worker.publish-ref-at-push",
            Worker,
            Must,
            "resolver.md W4 (publishAuthRef resolved just before the push)",
            "publishAuthRef is read from Vault after the job action ran, not at job start (audit log order)",
            AUDIT,
            live_scenario!(cx, { publish_ref_at_push(&cx).await }),
        ),
        Scenario::live(
            "worker.approle-one-login",
            Worker,
            Must,
            "resolver.md T1 (one token for all jobs)",
            "A worker logging in with AppRole runs three jobs on one login",
            AUDIT,
            live_scenario!(cx, { approle_one_login(&cx).await }),
        ),
        Scenario::live(
            "worker.shutdown-clean",
            Worker,
            Must,
            "protocol.md §3.7",
            "After a pushed job, shutdown: the IUT exits 0 within 5 s and its temp_dir is empty",
            VAULT,
            live_scenario!(cx, { shutdown_clean(&cx).await }),
        ),
    ]
}

/// `publish: {"mode": "none"}`: completed, `commit` null, no push request
/// reached the git server, no branch there.
async fn publish_none(cx: &Cx) -> Result<Verdict, Verdict> {
    let spec = "protocol.md §3.6: with publish.mode none nothing is committed or pushed";
    let token = cx.fake_token();
    let r = put_token(cx, "github", &token).await?;
    let mut rig = rig(cx, None, None).await?;
    rig.git.set_tokens(REPO, &token);
    let mut none = job(Some(&r), None, false);
    none["payload"]["publish"] = json!({"mode": "none"});
    let reply = run_job(&mut rig.s, "job-none-1", none).await?;
    let _ = rig.s.iut.shutdown().await;
    let pushes = rig
        .git
        .requests()
        .iter()
        .filter(|q| q.service.as_deref() == Some("git-receive-pack"))
        .count();
    let branch = rig.git.rev_parse(REPO, "refs/heads/vaultref/job-none-1");
    Ok(
        if outcome(&reply).0 == "completed"
            && reply.get("commit").is_some_and(Value::is_null)
            && pushes == 0
            && branch.is_none()
        {
            Verdict::Pass
        } else {
            Verdict::Fail(Failure::new(
                spec,
                "completed, commit null, no git-receive-pack request, no branch",
                format!(
                    "{}; commit {}; {pushes} push request(s); branch {}",
                    describe(&reply),
                    reply.get("commit").unwrap_or(&Value::Null),
                    if branch.is_some() { "pushed" } else { "absent" }
                ),
            ))
        },
    )
}

/// The job is for `Acme/Api` and its ref names `Acme/Other`'s secret, which
/// exists and which the IUT's token may read: the ref policy's scope (bound
/// to the job's repository) must refuse it before any Vault request.
async fn ref_out_of_scope(cx: &Cx) -> Result<Verdict, Verdict> {
    let token = cx.fake_token();
    let path = format!("{}/repos/Acme/Other/github", cx.prefix());
    cx.vault()?
        .admin
        .kv_put(crate::backend::KV_MOUNT, &path, &[("token", &token)])
        .await
        .map_err(super::support::verr)?;
    let other = format!("vault://{}/{path}#token", crate::backend::KV_MOUNT);
    let mut rig = rig(cx, None, None).await?;
    rig.git.set_tokens(REPO, &token);
    let reply = run_job(&mut rig.s, "job-scope-1", job(Some(&other), None, false)).await?;
    let _ = rig.s.iut.shutdown().await;
    let refused = if outcome(&reply) == ("failed", "ref_out_of_scope") {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            "resolver.md W2: a worker job's refs pass the ref policy, scopes bound to the job",
            "failed with code \"ref_out_of_scope\"",
            describe(&reply),
        ))
    };
    Ok(and(
        refused,
        expect_no_vault_request(
            cx,
            "resolver.md W2: the ref policy is applied before any Vault read",
        ),
    ))
}

/// A pushed job, then `shutdown`: exit status 0 in time, `temp_dir` empty.
async fn shutdown_clean(cx: &Cx) -> Result<Verdict, Verdict> {
    let spec =
        "protocol.md §3.7: shutdown exits 0 within 5 s and removes what the IUT wrote to temp_dir";
    let token = cx.fake_token();
    let r = put_token(cx, "github", &token).await?;
    let mut rig = rig(cx, None, None).await?;
    rig.git.set_tokens(REPO, &token);
    let reply = run_job(&mut rig.s, "job-down-1", job(Some(&r), None, true)).await?;
    let done = expect_completed(spec, &reply, &rig.git, "job-down-1", true);
    let tmp = rig.s.dirs.tmp.clone();
    let problem = rig.s.iut.shutdown().await;
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let clean = match (problem, left.is_empty()) {
        (None, true) => Verdict::Pass,
        (problem, _) => Verdict::Fail(Failure::new(
            spec,
            "exit status 0 within 5 s, and an empty temp_dir",
            format!(
                "{}; temp_dir holds {} entr{}{}",
                problem.unwrap_or_else(|| "exited 0".into()),
                left.len(),
                if left.len() == 1 { "y" } else { "ies" },
                left.first()
                    .map(|n| format!(" (e.g. {n})"))
                    .unwrap_or_default()
            ),
        )),
    };
    Ok(and(done, clean))
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

/// The job's action waits until the harness has written a marker secret
/// (one audit entry), then ends; every read of `publishAuthRef`'s path must
/// come after the marker in the audit log (W4: resolved at push time, so a
/// credential rotated while the job ran is the one pushed with).
async fn publish_ref_at_push(cx: &Cx) -> Result<Verdict, Verdict> {
    let spec = "resolver.md W4: publishAuthRef is resolved just before the push";
    let (read, push) = (cx.fake_token(), cx.fake_token());
    let read_ref = put_token(cx, "read", &read).await?;
    let push_ref = put_token(cx, "push", &push).await?;
    let mut rig = rig(cx, None, None).await?;
    rig.git.set_token(REPO, Access::Read, &read);
    rig.git.set_token(REPO, Access::Push, &push);
    let open = cx.open_dir()?;
    let (started, go) = (open.join("started"), open.join("go"));
    let job_id = "job-late-push-1";
    let script = format!(
        "printf '%s' '{job_id}' > VAULTREF_CONFORMANCE; : > '{s}'; n=0; \
         while [ ! -e '{g}' ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done",
        s = started.display(),
        g = go.display()
    );
    // While the action waits: the marker, then the go.
    let marker_path = format!("{}/marker", cx.prefix());
    let admin = cx.vault()?.admin.clone();
    let marker = tokio::spawn({
        let marker_path = marker_path.clone();
        async move {
            for _ in 0..400 {
                if started.exists() {
                    let value = SecretString::from("marker".to_string());
                    let ok = admin
                        .kv_put(KV_MOUNT, &marker_path, &[("note", &value)])
                        .await
                        .is_ok();
                    let _ = std::fs::write(&go, "");
                    return ok;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            false
        }
    });
    let reply = rig
        .s
        .iut
        .request(
            "run_job",
            json!({"job_id": job_id, "job": job(Some(&read_ref), Some(&push_ref), true),
                   "action": {"argv": ["sh", "-c", script], "timeout_ms": 25000}}),
        )
        .await?;
    let marked = marker.await.unwrap_or(false);
    let _ = rig.s.iut.shutdown().await;
    let done = expect_completed(spec, &reply, &rig.git, job_id, true);
    if done != Verdict::Pass {
        return Ok(done);
    }
    if !marked {
        return Ok(Verdict::Error(
            "the action never signalled that it started, or the marker write failed".into(),
        ));
    }
    let push_path = push_ref
        .trim_start_matches("vault://")
        .split('#')
        .next()
        .unwrap_or("")
        .replacen(&format!("{KV_MOUNT}/"), "", 1);
    let entries = cx.vault()?.audit_requests("").unwrap_or_default();
    let at = |pred: &dyn Fn(&vaultref::testing::audit::AuditEntry) -> bool| -> Vec<usize> {
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| pred(e))
            .map(|(i, _)| i)
            .collect()
    };
    let marks = at(&|e| e.is_write() && e.path().ends_with(&marker_path));
    let reads = at(&|e| !e.is_write() && e.path().ends_with(&push_path));
    Ok(match (marks.first(), reads.first()) {
        (Some(m), Some(r)) if r > m => Verdict::Pass,
        (Some(_), Some(_)) => Verdict::Fail(Failure::new(
            spec,
            "every read of the publishAuthRef path after the action started",
            "publishAuthRef was read before the job's action ran (at job start)",
        )),
        (m, r) => Verdict::Error(format!(
            "the audit log lacks the marker ({}) or any read of the publish path ({})",
            m.is_some(),
            r.is_some()
        )),
    })
}

/// AppRole: three jobs, one login (T1). Logins are counted in the audit log
/// by their role id, which the harness's servers log in clear.
async fn approle_one_login(cx: &Cx) -> Result<Verdict, Verdict> {
    let token = cx.fake_token();
    let r = put_token(cx, "github", &token).await?;
    let auth = super::support::Auth::AppRole {
        ttl: "10m",
        max_ttl: "20m",
        bad_secret_id: false,
    };
    let mut rig = super::rig::rig_with(cx, None, serde_json::json!({}), auth).await?;
    rig.git.set_tokens(REPO, &token);
    let v = run_pushing_jobs(
        &mut rig,
        &["job-role-1", "job-role-2", "job-role-3"],
        &r,
        "resolver.md T1: AppRole worker jobs",
    )
    .await?;
    if v != Verdict::Pass {
        return Ok(v);
    }
    let role_id = std::fs::read_to_string(rig.s.dirs.creds.join("role_id"))
        .map_err(|e| Verdict::Error(format!("role id file: {e}")))?;
    let _ = rig.s.iut.shutdown().await;
    let logins = cx
        .vault()?
        .audit_requests("/login")
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["request"]["data"]["role_id"].as_str() == Some(role_id.trim()))
        .count();
    Ok(if logins == 1 {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            "resolver.md T1: one token for all jobs of a worker, not a login per job",
            "1 login for 3 jobs",
            format!("{logins} logins"),
        ))
    })
}
