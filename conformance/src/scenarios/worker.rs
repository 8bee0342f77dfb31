//! `worker` scenarios: `run_job` against a real Vault and a real git HTTP
//! server ([`vaultref::testing::git_server`]) that accepts, per repository
//! and per operation (read or push), only the token currently valid, and logs
//! every request.
//!
//! The implementation runs with a recording `git` wrapper first on `PATH`, so
//! every git argv is kept; after the job, the argv log, the work dir and the
//! temp dir are searched for every form of every token.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde_json::{Map, Value, json};
use vaultref::testing::git_server::{Access, GitServer, scan_for_needles, token_forms};

use std::time::Duration;

use super::resolve::{
    AUDIT, Auth, Session, VAULT, and, expect_no_vault_request, session_with, verr,
};
use crate::live_scenario;
use crate::runner::{Cx, Dirs, Scenario};
use crate::scenario::{Failure, Level, Profile, Verdict};
use crate::vault::KV_MOUNT;
use crate::vault::proxy::Proxy;

/// The repository every worker scenario uses (each scenario has its own server).
const REPO: &str = "Acme/Api";
/// A public repository, for jobs without refs.
const PUBLIC_REPO: &str = "Acme/Public";

/// A started git server, the IUT session, and where the argv log is.
struct Rig {
    git: GitServer,
    s: Session,
    argv_log: PathBuf,
}

fn real_git() -> Result<PathBuf, Verdict> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("git"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Verdict::Error("no `git` on PATH: install git (Debian: apt-get install git)".into())
        })
}

/// Writes `bin/git`, a wrapper that appends its argv to `argv.log` and runs
/// the real git; returns `(PATH with bin first, argv log)`.
fn recording_git(dirs: &Dirs) -> Result<(OsString, PathBuf), Verdict> {
    use std::os::unix::fs::PermissionsExt;
    let real = real_git()?;
    let bin = dirs.root.join("bin");
    let log = dirs.root.join("argv.log");
    let io = |e: std::io::Error| Verdict::Error(format!("git wrapper: {e}"));
    std::fs::create_dir_all(&bin).map_err(io)?;
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        real.display()
    );
    let wrapper = bin.join("git");
    std::fs::write(&wrapper, script).map_err(io)?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(paths).map_err(|e| Verdict::Error(e.to_string()))?;
    Ok((path, log))
}

/// Starts a git server with `REPO`, and an implementation configured for it.
async fn rig(
    cx: &Cx,
    queue_policy: Option<Value>,
    vault_addr: Option<String>,
) -> Result<Rig, Verdict> {
    let git = GitServer::start().map_err(|e| Verdict::Error(format!("git server: {e}")))?;
    git.create_repo(REPO)
        .map_err(|e| Verdict::Error(format!("git server: {e}")))?;
    let dirs_probe = cx.dirs()?;
    let (path, argv_log) = recording_git(&dirs_probe)?;
    let mut extra = json!({
        "git": {"base_url": format!("http://{}/", git.addr())},
        "ref_policy": {"allowed_mounts": [KV_MOUNT], "scopes": [format!("{}/repos/{{repository}}/**", cx.prefix())]},
    });
    if let Some(q) = queue_policy {
        extra["queue_policy"] = q;
    }
    if let Some(a) = vault_addr {
        extra["vault_addr"] = json!(a);
    }
    let s = session_with(
        cx,
        &[
            format!("{}/*", cx.prefix()),
            format!("{}/repos/*/*/*", cx.prefix()),
        ],
        Auth::Token { ttl: "10m" },
        extra,
        &[("PATH".to_string(), path)],
    )
    .await?;
    Ok(Rig { git, s, argv_log })
}

/// Writes a token at `<prefix>/repos/Acme/Api/<name>#token`; returns the ref.
async fn put_token(cx: &Cx, name: &str, value: &SecretString) -> Result<String, Verdict> {
    let path = format!("{}/repos/{REPO}/{name}", cx.prefix());
    cx.vault()?
        .admin
        .kv_put(KV_MOUNT, &path, &[("token", value)])
        .await
        .map_err(verr)?;
    Ok(format!("vault://{KV_MOUNT}/{path}#token"))
}

fn job(repo_ref: Option<&str>, publish_ref: Option<&str>, publish: bool) -> Value {
    let mut payload =
        json!({"repository": REPO, "instruction": "conformance stub: write VAULTREF_CONFORMANCE"});
    if let Some(r) = repo_ref {
        payload["repoAuthRef"] = json!(r);
    }
    if let Some(r) = publish_ref {
        payload["publishAuthRef"] = json!(r);
    }
    if publish {
        payload["publish"] = json!({"mode": "branch"});
    }
    json!({"type": "codex_exec", "payload": payload})
}

async fn run_job(s: &mut Session, job_id: &str, job: Value) -> Result<Map<String, Value>, Verdict> {
    Ok(s.iut
        .request("run_job", json!({"job_id": job_id, "job": job}))
        .await?)
}

fn describe(r: &Map<String, Value>) -> String {
    match r.get("outcome").and_then(Value::as_str) {
        Some("completed") => format!(
            "completed (commit {})",
            r.get("commit").unwrap_or(&Value::Null)
        ),
        Some(o) => format!("{o} with code {}", r.get("code").unwrap_or(&Value::Null)),
        None => "no outcome".into(),
    }
}

/// The job completed and, when publishing, pushed `vaultref/<job id>` with
/// the stub file.
fn expect_completed(
    spec: &str,
    r: &Map<String, Value>,
    git: &GitServer,
    job_id: &str,
    publish: bool,
) -> Verdict {
    if r.get("outcome").and_then(Value::as_str) != Some("completed") {
        return Verdict::Fail(Failure::new(spec, "completed", describe(r)));
    }
    if !publish {
        return Verdict::Pass;
    }
    let branch = format!("vaultref/{job_id}");
    let on_server = git.rev_parse(REPO, &format!("refs/heads/{branch}"));
    let reported = r.get("commit").and_then(Value::as_str);
    if on_server.is_none() || on_server.as_deref() != reported {
        return Verdict::Fail(Failure::new(
            spec,
            format!("branch {branch} pushed, at the commit reported"),
            format!("server has {on_server:?}, reply says {reported:?}"),
        ));
    }
    match git.read_file(REPO, &branch, "VAULTREF_CONFORMANCE") {
        Some(t) if t.trim() == job_id => Verdict::Pass,
        other => Verdict::Fail(Failure::new(
            "protocol.md §3.6: the pushed commit holds VAULTREF_CONFORMANCE with the job id",
            "VAULTREF_CONFORMANCE = job id",
            format!("{:?}", other.map(|_| "other content")),
        )),
    }
}

/// No form of any `tokens` in the git argv log, nor in any file under `dirs`.
fn expect_no_token_left(tokens: &[&SecretString], argv_log: &Path, dirs: &Dirs) -> Verdict {
    let needles: Vec<Vec<u8>> = tokens
        .iter()
        .flat_map(|t| token_forms(t, &["x-access-token"]))
        .collect();
    let argv = std::fs::read(argv_log).unwrap_or_default();
    if needles
        .iter()
        .any(|n| argv.windows(n.len()).any(|w| w == n.as_slice()))
    {
        return Verdict::Fail(Failure::new(
            "SecretStore.md: never put a token in command args (no token-in-URL clone)",
            "no token in any git argv",
            "a token (or an encoding of one) appeared in a git command line",
        ));
    }
    for (what, root) in [("work dir", &dirs.work), ("temp dir", &dirs.tmp)] {
        let hits = scan_for_needles(root, &needles);
        if let Some((file, _)) = hits.first() {
            return Verdict::Fail(Failure::new(
                "SecretStore.md: no token left on disk (.git/config, work dir, TMPDIR)",
                format!("no token in the {what}"),
                format!(
                    "a token form in {}",
                    file.strip_prefix(root).unwrap_or(file).display()
                ),
            ));
        }
    }
    Verdict::Pass
}

/// How long a job may take to be declined or failed while Vault is down.
const DEGRADED_BOUND: Duration = Duration::from_secs(15);

fn outcome(r: &Map<String, Value>) -> (&str, &str) {
    (
        r.get("outcome").and_then(Value::as_str).unwrap_or(""),
        r.get("code").and_then(Value::as_str).unwrap_or(""),
    )
}

/// How the degraded scenario takes Vault away: a real stop where the harness
/// owns a server it can stop, else a network cut in front of the shared one.
enum Outage {
    /// A server of the scenario's own, killed and started again (storage kept).
    Stop(std::sync::Arc<crate::vault::Vault>),
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

/// Vault stopped mid-queue (`SecretStore.md` "When Vault is degraded").
async fn degraded(cx: Cx) -> Result<Verdict, Verdict> {
    let spec =
        "SecretStore.md degraded mode: stop claiming secret jobs, keep the others, resume after";
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
    // Secret jobs while Vault is down: declined, or failed with vault_unavailable, in time.
    let mut queue: Vec<String> = Vec::new();
    for id in ["job-deg-2", "job-deg-3"] {
        let started = std::time::Instant::now();
        let reply = run_job(&mut rig.s, id, job(Some(&r), None, true)).await?;
        let took = started.elapsed();
        match outcome(&reply) {
            ("declined", _) => queue.push(id.to_string()),
            ("failed", "vault_unavailable") => {}
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
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
                    "declined jobs complete once Vault is back (within 30 s)",
                    format!("{id}: {}", describe(&reply)),
                )));
            }
        }
    }
    Ok(Verdict::Pass)
}

/// Every worker scenario.
pub fn scenarios() -> Vec<Scenario> {
    use Level::Must;
    use Profile::Worker;
    vec![
        Scenario::live(
            "degraded.vault-stopped-mid-queue",
            Profile::Degraded,
            Must,
            "SecretStore.md \"When Vault is degraded\"",
            "Vault stopped mid-queue: secret jobs declined or failed in time, others complete, declined ones complete after",
            VAULT,
            std::sync::Arc::new(|cx: Cx| -> crate::runner::BoxFuture<Verdict> {
                Box::pin(async move { degraded(cx).await.unwrap_or_else(|v| v) })
            }),
        ),
        Scenario::live(
            "worker.clone-and-push",
            Worker,
            Must,
            "SecretStore.md worker flow; protocol.md §3.6",
            "Clone, and push falling back to repoAuthRef; no token in argv, .git/config, work dir or TMPDIR",
            VAULT,
            live_scenario!(cx, {
                let token = cx.fake_token();
                let r = put_token(&cx, "github", &token).await?;
                let mut rig = rig(&cx, None, None).await?;
                rig.git.set_tokens(REPO, &token);
                let reply = run_job(&mut rig.s, "job-push-1", job(Some(&r), None, true)).await?;
                let done = expect_completed(
                    "SecretStore.md: clone and push with the resolved token",
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
            "SecretStore.md publishAuthRef",
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
                    "SecretStore.md: publish uses publishAuthRef",
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
            "SecretStore.md defence in depth; codex-exec.md queue policy",
            "A repository outside the queue policy fails without reading Vault",
            AUDIT,
            live_scenario!(cx, {
                let token = cx.fake_token();
                let r = put_token(&cx, "github", &token).await?;
                let mut rig = rig(
                    &cx,
                    Some(json!({"allowed_repositories": ["Acme/Other"]})),
                    None,
                )
                .await?;
                rig.git.set_tokens(REPO, &token);
                let reply = run_job(&mut rig.s, "job-denied-1", job(Some(&r), None, false)).await?;
                let code = if reply.get("outcome").and_then(Value::as_str) == Some("failed")
                    && reply.get("code").and_then(Value::as_str) == Some("repository_not_allowed")
                {
                    Verdict::Pass
                } else {
                    Verdict::Fail(Failure::new(
                        "SecretStore.md: queue claim eligibility is required",
                        "failed with code \"repository_not_allowed\"",
                        describe(&reply),
                    ))
                };
                Ok(and(
                    code,
                    expect_no_vault_request(
                        &cx,
                        "SecretStore.md defence in depth: the queue policy is checked before any Vault read",
                    ),
                ))
            }),
        ),
        Scenario::live(
            "worker.job-type-not-allowed",
            Worker,
            Must,
            "SecretStore.md defence in depth; codex-exec.md queue policy",
            "A job type outside the queue policy fails without reading Vault",
            AUDIT,
            live_scenario!(cx, {
                let token = cx.fake_token();
                let r = put_token(&cx, "github", &token).await?;
                let mut rig = rig(
                    &cx,
                    Some(json!({"allowed_job_types": ["some_other_type"]})),
                    None,
                )
                .await?;
                rig.git.set_tokens(REPO, &token);
                let reply = run_job(&mut rig.s, "job-type-1", job(Some(&r), None, false)).await?;
                let code = if reply.get("outcome").and_then(Value::as_str) == Some("failed")
                    && reply.get("code").and_then(Value::as_str) == Some("job_type_not_allowed")
                {
                    Verdict::Pass
                } else {
                    Verdict::Fail(Failure::new(
                        "SecretStore.md: queue policy on job types",
                        "failed with code \"job_type_not_allowed\"",
                        describe(&reply),
                    ))
                };
                Ok(and(
                    code,
                    expect_no_vault_request(
                        &cx,
                        "SecretStore.md defence in depth: the queue policy is checked before any Vault read",
                    ),
                ))
            }),
        ),
        Scenario::live(
            "worker.rotation-mid-queue",
            Worker,
            Must,
            "SecretStore.md goal 4 (rotation without changing queued jobs)",
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
                        "SecretStore.md: jobs queued before a rotation use the new secret",
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
