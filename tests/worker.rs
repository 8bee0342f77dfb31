//! The worker runtime against a real OpenBao (`vaultref::testing::vault`) and
//! the real git HTTP server (`vaultref::testing::git_server`).
//!
//! Covers: rotation between two jobs, publish with `publishAuthRef` and with
//! the fallback to `repoAuthRef`, defence in depth (a repository outside the
//! queue policy fails without any Vault request, checked in the audit log),
//! degraded mode down and back up, and redaction of everything logged. After
//! each job the work root, the per-test TMPDIR and the log are scanned for
//! every token and its base64 forms.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::json;
use vaultref::ErrorCode;
use vaultref::git::GitSettings;
use vaultref::payload::{QueuePolicy, ValidationOptions, validate};
use vaultref::testing::git_server::{Access, AuthOutcome, GitServer};
use vaultref::testing::leak::{GIT_USERNAME, scan_tree, token_forms};
use vaultref::testing::vault::TestVault;
use vaultref::vault::{AuthConfig, Resolver, VaultConfig};
use vaultref::worker::{
    Backoff, Event, EventSink, IsolationStatus, JobAction, Outcome, Worker, WorkerJob,
    WorkerSettings,
};

const REPO: &str = "Owner/Repo";
const REPO_PATH: &str = "moonmind/repos/Owner/Repo";

/// A log sink the test can read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct World {
    vault: TestVault,
    server: GitServer,
    root: tempfile::TempDir,
    log: Captured,
    /// Every event the worker sent (`spec/events.md`).
    events: Arc<Mutex<Vec<Event>>>,
    worker: Worker,
}

async fn world(persistent: bool, tweak: impl FnOnce(&mut WorkerSettings)) -> World {
    let vault = if persistent {
        TestVault::persistent().await
    } else {
        TestVault::dev().await
    }
    .expect("OpenBao test server (see vaultref::testing::vault for how to get `bao`)");
    let server = GitServer::start().expect("git HTTP test server needs git with http-backend");
    server.create_repo(REPO).unwrap();
    let root = tempfile::Builder::new()
        .prefix("vaultref-worker-")
        .tempdir()
        .unwrap();
    for d in ["tmp", "work"] {
        std::fs::create_dir(root.path().join(d)).unwrap();
    }
    vault
        .admin()
        .put_policy(
            "worker",
            r#"path "kv/data/moonmind/repos/*" { capabilities = ["read"] }
path "kv/data/moonmind/codex/shards/*" { capabilities = ["read"] }
path "kv/data/moonmind/codex/prod" { capabilities = ["read"] }"#,
        )
        .await
        .unwrap();
    let token = vault
        .admin()
        .create_token(&["worker"], "1h", true)
        .await
        .unwrap();
    let token_file = vault
        .write_file("worker-token", secrecy::ExposeSecret::expose_secret(&token))
        .unwrap();
    let config =
        VaultConfig::new(vault.addr(), AuthConfig::TokenFile { path: token_file }).unwrap();
    let resolver = Arc::new(Resolver::new(config).await.unwrap());

    let mut git = GitSettings::new(env!("CARGO_BIN_EXE_vaultref"));
    git.allow_http = true;
    git.tmp_dir = Some(root.path().join("tmp"));
    // A recording `git` first on PATH: the argv and environment of every git
    // process land in the test root, which the leak scan reads.
    git.program = recording_git(root.path());
    git.path_prepend = vec![root.path().join("bin")];
    let mut settings = WorkerSettings::new("executor-01", root.path().join("work"), git);
    settings.git_base_url = format!("http://{}", server.addr());
    settings.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(800),
    };
    settings.resolve_timeout = Duration::from_secs(5);
    tweak(&mut settings);
    let log = Captured::default();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::clone(&events);
    let worker = Worker::new(settings, Some(resolver), Arc::new(Mutex::new(log.clone())))
        .with_events(EventSink::callback(move |e| {
            sent.lock().unwrap().push(e.clone())
        }));
    World {
        vault,
        server,
        root,
        log,
        events,
        worker,
    }
}

fn recording_git(root: &std::path::Path) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let real = std::env::split_paths(&path)
        .map(|d| d.join("git"))
        .find(|p| p.is_file())
        .expect("git not on PATH: install git");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let wrapper = root.join("bin/git");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{log}/argv.log'\nenv >> '{log}/env.log'\nexec '{git}' \"$@\"\n",
            log = root.display(),
            git = real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

fn job(id: &str, payload: serde_json::Value) -> WorkerJob {
    let bytes = serde_json::to_vec(&json!({"type": "codex_exec", "payload": payload})).unwrap();
    let job = validate(&bytes, &ValidationOptions::default()).expect("a valid test job");
    WorkerJob {
        id: id.to_owned(),
        job,
    }
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// An action that writes `result.txt` in the checkout.
fn write_file_action(content: &'static str) -> JobAction {
    JobAction::Callback(Arc::new(move |ctx| {
        std::fs::write(ctx.work_dir.join("result.txt"), content).map_err(|e| e.to_string())
    }))
}

impl World {
    /// Writes `token` as the repository's `github_token` (a new version).
    async fn put_token(&self, token: &SecretString) {
        self.vault
            .admin()
            .kv_write(
                "kv",
                REPO_PATH,
                json!({"github_token": secrecy::ExposeSecret::expose_secret(token)}),
            )
            .await
            .unwrap();
    }

    fn assert_no_leak(&self, tokens: &[&SecretString]) {
        let mut needles = Vec::new();
        for t in tokens {
            needles.extend(token_forms(t, &[GIT_USERNAME]));
        }
        let argv = std::fs::read_to_string(self.root.path().join("argv.log")).unwrap_or_default();
        assert!(
            argv.contains("clone"),
            "the recording git wrapper saw no clone"
        );
        for dir in [self.root.path(), self.server.git_dir(REPO).as_path()] {
            let scan = scan_tree(dir, &needles);
            assert!(scan.hits.is_empty(), "token on disk: {:?}", scan.hits);
            assert!(scan.files > 0, "the leak scan read no file under {dir:?}");
        }
        let log = self.log.text().into_bytes();
        let events = self.events_json();
        for (i, n) in needles.iter().enumerate() {
            assert!(
                !log.windows(n.len()).any(|w| w == n.as_slice()),
                "token form {i} in the worker log"
            );
            for e in &events {
                let text = e.to_string();
                assert!(
                    !text.as_bytes().windows(n.len()).any(|w| w == n.as_slice()),
                    "token form {i} in an event: {}",
                    e["event"]
                );
            }
        }
        let tmp: Vec<PathBuf> = std::fs::read_dir(self.root.path().join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(tmp.is_empty(), "left in TMPDIR: {tmp:?}");
    }

    /// The events sent so far, as JSON, each checked against
    /// `spec/events.schema.json`.
    fn events_json(&self) -> Vec<serde_json::Value> {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../spec/events.schema.json")).unwrap();
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let events: Vec<serde_json::Value> = self
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect();
        for e in &events {
            let errors: Vec<String> = validator.iter_errors(e).map(|x| x.to_string()).collect();
            assert!(errors.is_empty(), "{e}: {errors:?}");
        }
        events
    }

    /// `(event, outcome or state, code)` of each event, in order.
    fn event_summary(&self) -> Vec<(String, String, String)> {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
        self.events_json()
            .iter()
            .map(|e| {
                let what = if e["event"] == "job" {
                    &e["outcome"]
                } else {
                    &e["state"]
                };
                (text(&e["event"]), text(what), text(&e["code"]))
            })
            .collect()
    }

    fn vault_reads_of(&self, path_part: &str) -> usize {
        self.vault
            .audit_entries()
            .unwrap()
            .iter()
            .filter(|e| e.is_request() && !e.is_write() && e.path().contains(path_part))
            .count()
    }
}

/// [`read_job`], publishing a branch (`vaultref/<id>`).
fn push_job(id: &str) -> WorkerJob {
    repo_job(id, true)
}

/// A job on [`REPO`] whose `repoAuthRef` is the repository's token, no
/// publishing.
fn read_job(id: &str) -> WorkerJob {
    repo_job(id, false)
}

fn repo_job(id: &str, publish: bool) -> WorkerJob {
    let mut payload = json!({
        "repository": REPO,
        "instruction": "x",
        "repoAuthRef": format!("vault://kv/{REPO_PATH}#github_token"),
    });
    if publish {
        payload["publish"] = json!({"mode": "branch"});
    }
    job(id, payload)
}

fn completed(outcome: &Outcome) -> &vaultref::worker::Completion {
    match outcome {
        Outcome::Completed(c) => c,
        other => panic!("expected completed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_between_two_jobs() {
    let w = world(false, |_| {}).await;
    let t1 = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE1001");
    let t2 = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE1002");
    let payload = json!({
        "repository": REPO,
        "instruction": "look around",
        "repoAuthRef": format!("vault://kv/{REPO_PATH}#github_token"),
    });

    w.put_token(&t1).await;
    w.server.set_token(REPO, Access::Read, &t1);
    let o1 = w.worker.run_job(&job("job-1", payload.clone()), None).await;
    completed(&o1);

    // Rotate in Vault and on the git server: the queued job picks up t2.
    w.put_token(&t2).await;
    w.server.set_token(REPO, Access::Read, &t2);
    w.server.clear_requests();
    let o2 = w.worker.run_job(&job("job-2", payload), None).await;
    completed(&o2);
    let log = w.server.requests();
    assert!(log.iter().any(|r| r.auth == AuthOutcome::Accepted));
    assert!(
        log.iter().all(|r| r.auth != AuthOutcome::Rejected),
        "{log:?}"
    );
    assert!(w.vault_reads_of(&format!("kv/data/{REPO_PATH}")) >= 2);
    w.assert_no_leak(&[&t1, &t2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_uses_publish_auth_ref_then_falls_back_to_repo_auth_ref() {
    let w = world(false, |_| {}).await;
    let read = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE2001");
    let push = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE2002");
    w.vault
        .admin()
        .kv_write(
            "kv",
            REPO_PATH,
            json!({
                "github_token": secrecy::ExposeSecret::expose_secret(&read),
                "publish_token": secrecy::ExposeSecret::expose_secret(&push),
            }),
        )
        .await
        .unwrap();
    w.server.set_token(REPO, Access::Read, &read);
    w.server.set_token(REPO, Access::Push, &push);

    let with_publish_ref = json!({
        "repository": REPO,
        "instruction": "write a file",
        "repoAuthRef": format!("vault://kv/{REPO_PATH}#github_token"),
        "publishAuthRef": format!("vault://kv/{REPO_PATH}#publish_token"),
        "publish": {"mode": "branch"},
    });
    let o = w
        .worker
        .run_job(
            &job("pub-1", with_publish_ref),
            Some(&write_file_action("one\n")),
        )
        .await;
    let c = completed(&o);
    let p = c.published.as_ref().expect("published");
    assert_eq!(p.branch, "vaultref/pub-1");
    assert_eq!(
        w.server
            .read_file(REPO, "refs/heads/vaultref/pub-1", "result.txt")
            .as_deref(),
        Some("one\n")
    );

    // Without publishAuthRef the push uses repoAuthRef's token, which the
    // server refuses for pushing while the push token differs...
    let fallback = json!({
        "repository": REPO,
        "instruction": "write a file",
        "repoAuthRef": format!("vault://kv/{REPO_PATH}#github_token"),
        "publish": {"mode": "branch"},
    });
    let o = w
        .worker
        .run_job(
            &job("pub-2", fallback.clone()),
            Some(&write_file_action("two\n")),
        )
        .await;
    assert_eq!(o.code(), Some(ErrorCode::GitFailed), "{o:?}");
    assert!(
        w.server
            .requests()
            .iter()
            .any(|r| r.access == Access::Push && r.auth == AuthOutcome::Rejected)
    );
    // ...and accepts once the read token may push.
    w.server.set_token(REPO, Access::Push, &read);
    let o = w
        .worker
        .run_job(&job("pub-3", fallback), Some(&write_file_action("three\n")))
        .await;
    completed(&o);
    assert_eq!(
        w.server
            .read_file(REPO, "refs/heads/vaultref/pub-3", "result.txt")
            .as_deref(),
        Some("three\n")
    );
    w.assert_no_leak(&[&read, &push]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_not_allowed_fails_without_any_vault_request() {
    let w = world(false, |s| {
        s.queue_policy = QueuePolicy {
            allowed_repositories: Some(vec!["Other/Repo".to_owned()]),
            allowed_job_types: None,
        };
    })
    .await;
    let t = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE3001");
    w.put_token(&t).await;
    let before = w.vault_reads_of(&format!("kv/data/{REPO_PATH}"));
    let o = w.worker.run_job(&read_job("denied-1"), None).await;
    assert_eq!(o.code(), Some(ErrorCode::RepositoryNotAllowed), "{o:?}");
    // Give the audit device a moment: it writes synchronously, but be fair.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.vault_reads_of(&format!("kv/data/{REPO_PATH}")), before);
    let job_header_seen = w
        .vault
        .audit_entries()
        .unwrap()
        .iter()
        .any(|e| e.to_string().contains("denied-1"));
    assert!(!job_header_seen, "the audit log mentions the refused job");
    assert!(w.server.requests().is_empty(), "git was contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_mode_down_and_back_up() {
    let mut w = world(true, |_| {}).await;
    let t = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE4001");
    w.put_token(&t).await;
    w.server.set_token(REPO, Access::Read, &t);
    w.server.create_repo("Public/Repo").unwrap();
    w.server.set_public("Public/Repo", true);
    let secret_job = json!({
        "repository": REPO,
        "instruction": "x",
        "repoAuthRef": format!("vault://kv/{REPO_PATH}#github_token"),
    });
    let plain_job = json!({"repository": "Public/Repo", "instruction": "x"});

    completed(
        &w.worker
            .run_job(&job("up-1", secret_job.clone()), None)
            .await,
    );

    w.vault.stop();
    // Taken before the worker knew: fails with vault_unavailable, in time.
    let started = Instant::now();
    let o = w
        .worker
        .run_job(&job("down-1", secret_job.clone()), None)
        .await;
    assert_eq!(o.code(), Some(ErrorCode::VaultUnavailable), "{o:?}");
    assert!(started.elapsed() < w.worker.settings().resolve_timeout + Duration::from_secs(1));
    assert!(w.worker.health().degraded);

    // New secret jobs are declined; jobs without secrets still run.
    let o = w
        .worker
        .run_job(&job("down-2", secret_job.clone()), None)
        .await;
    assert!(matches!(o, Outcome::Declined { .. }), "{o:?}");
    completed(&w.worker.run_job(&job("down-3", plain_job), None).await);

    // The prober keeps trying with backoff...
    tokio::time::sleep(Duration::from_millis(600)).await;
    let status = w.worker.health();
    assert!(status.degraded && status.failed_probes >= 1, "{status:?}");

    // ...and Vault coming back ends degraded mode.
    w.vault.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.worker.health().degraded {
        assert!(
            Instant::now() < deadline,
            "still degraded 20 s after Vault came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    completed(&w.worker.run_job(&job("down-2", secret_job), None).await);
    w.assert_no_leak(&[&t]);

    // One event per outcome, one per transition, in order (spec/events.md).
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        w.event_summary(),
        [
            s("job", "completed", ""),
            s("vault_health", "degraded", ""),
            s("job", "failed", "vault_unavailable"),
            s("job", "declined", ""),
            s("job", "completed", ""),
            s("vault_health", "healthy", ""),
            s("job", "completed", ""),
        ]
    );
    let events = w.events_json();
    let ref_text = format!("vault://kv/{REPO_PATH}#github_token");
    assert_eq!(events[0]["job_id"], "up-1");
    assert_eq!(events[0]["refs"], json!([ref_text]));
    assert_eq!(events[0]["vault_request_ids"].as_array().unwrap().len(), 1);
    // The request id is the audit log's: the event leads to the entry.
    let id = events[0]["vault_request_ids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        w.vault
            .audit_entries()
            .unwrap()
            .iter()
            .any(|e| e.request_id() == Some(id.as_str()) && e.path().contains(REPO_PATH)),
        "request id {id} not in the audit log"
    );
    assert_eq!(events[2]["job_id"], "down-1");
    assert_eq!(events[2]["refs"], json!([ref_text]));
    assert!(events[1]["reason"].as_str().unwrap().contains("down-1"));
    assert_eq!(
        events[3]["refs"],
        json!([]),
        "a declined job resolved nothing"
    );
    assert_eq!(events[4]["repository"], "Public/Repo");
    assert!(events[5]["degraded_ms"].as_u64().unwrap() >= 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_output_and_errors_are_redacted() {
    let w = world(false, |_| {}).await;
    // A value no built-in rule knows: only registration can mask it.
    let t = secret("plain-looking-credential-5001-FAKE");
    w.put_token(&t).await;
    w.server.set_token(REPO, Access::Read, &t);
    // The repository itself leaks the token (a committed .env file).
    w.server
        .commit_files(
            REPO,
            "main",
            &[(
                ".env",
                &format!("TOKEN={}\n", secrecy::ExposeSecret::expose_secret(&t)),
            )],
            "oops",
        )
        .unwrap();
    let action = JobAction::Command {
        program: PathBuf::from("sh"),
        args: vec!["-c".into(), "cat .env; cat .env >&2; exit 3".into()],
        timeout: Duration::from_secs(30),
    };
    let o = w.worker.run_job(&read_job("redact-1"), Some(&action)).await;
    assert_eq!(o.code(), Some(ErrorCode::ActionFailed), "{o:?}");
    let log = w.log.text();
    assert!(log.contains("TOKEN=[REDACTED]"), "{log}");
    assert!(!log.contains("plain-looking-credential"), "{log}");
    assert!(!format!("{o:?}").contains("plain-looking-credential"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_type_and_scope_refusals_make_no_vault_request() {
    let w = world(false, |s| {
        s.ref_policy = vaultref::RefPolicy::default()
            .with_scopes(["moonmind/repos/{repository}"])
            .unwrap();
    })
    .await;
    // A ref naming another repository's credential: out of this job's scope.
    let o = w
        .worker
        .run_job(
            &job(
                "scope-1",
                json!({
                    "repository": REPO,
                    "instruction": "x",
                    "repoAuthRef": "vault://kv/moonmind/repos/Other/Repo#github_token",
                }),
            ),
            None,
        )
        .await;
    assert_eq!(o.code(), Some(ErrorCode::RefOutOfScope), "{o:?}");
    assert_eq!(w.vault_reads_of("kv/data/moonmind/repos"), 0);

    let w = world(false, |s| {
        s.queue_policy = QueuePolicy {
            allowed_repositories: None,
            allowed_job_types: Some(vec!["other_type".to_owned()]),
        };
    })
    .await;
    let o = w.worker.run_job(&read_job("type-1"), None).await;
    assert_eq!(o.code(), Some(ErrorCode::JobTypeNotAllowed), "{o:?}");
    assert_eq!(w.vault_reads_of("kv/data/moonmind/repos"), 0);
    assert!(w.server.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_vault_fails_secret_jobs_and_runs_the_others() {
    let server = GitServer::start().unwrap();
    server.create_repo("Public/Repo").unwrap();
    server.set_public("Public/Repo", true);
    let root = tempfile::tempdir().unwrap();
    let mut git = GitSettings::new(env!("CARGO_BIN_EXE_vaultref"));
    git.allow_http = true;
    git.tmp_dir = Some(root.path().to_owned());
    let mut settings = WorkerSettings::new("executor-02", root.path().join("work"), git);
    settings.git_base_url = format!("http://{}", server.addr());
    let log = Captured::default();
    let worker = Worker::new(settings, None, Arc::new(Mutex::new(log.clone())));
    let o = worker
        .run_job(
            &job(
                "nv-1",
                json!({
                    "repository": "Public/Repo",
                    "instruction": "x",
                    "repoAuthRef": "vault://kv/moonmind/repos/Public/Repo#github_token",
                }),
            ),
            None,
        )
        .await;
    assert_eq!(o.code(), Some(ErrorCode::VaultNotConfigured), "{o:?}");
    let o = worker
        .run_job(
            &job(
                "nv-2",
                json!({"repository": "Public/Repo", "instruction": "x"}),
            ),
            Some(&write_file_action("local\n")),
        )
        .await;
    let c = completed(&o);
    assert_eq!(
        std::fs::read_to_string(c.work_dir.join("result.txt")).unwrap(),
        "local\n"
    );
    assert!(log.text().contains("job nv-2: completed"), "{}", log.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_on_a_reused_work_dir_take_turns() {
    let w = world(false, |_| {}).await;
    let t = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE6001");
    w.put_token(&t).await;
    w.server.set_tokens(REPO, &t);
    let payload = json!({
        "repository": REPO,
        "instruction": "x",
        "workdirMode": "reuse",
        "repoAuthRef": format!("vault://kv/{REPO_PATH}#github_token"),
        "publish": {"mode": "branch"},
    });
    let (a, b) = (job("reuse-a", payload.clone()), job("reuse-b", payload));
    let (act_a, act_b) = (write_file_action("a\n"), write_file_action("b\n"));
    let (oa, ob) = tokio::join!(
        w.worker.run_job(&a, Some(&act_a)),
        w.worker.run_job(&b, Some(&act_b))
    );
    let (ca, cb) = (completed(&oa), completed(&ob));
    assert_eq!(ca.work_dir, cb.work_dir, "reuse shares one work dir");
    for (branch, content) in [("vaultref/reuse-a", "a\n"), ("vaultref/reuse-b", "b\n")] {
        assert_eq!(
            w.server
                .read_file(REPO, &format!("refs/heads/{branch}"), "result.txt")
                .as_deref(),
            Some(content)
        );
    }
    w.assert_no_leak(&[&t]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_cannot_reconfigure_git_for_the_push() {
    let w = world(false, |_| {}).await;
    let t = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE7001");
    w.put_token(&t).await;
    w.server.set_tokens(REPO, &t);
    let base = format!("http://{}/", w.server.addr());
    // A hostile action: a URL-specific proxy (overrides a plain http.proxy),
    // a storing helper, and a clean filter that would run at `git add`.
    let hostile = JobAction::Callback(Arc::new(move |ctx| {
        let cfg = ctx.work_dir.join(".git/config");
        let mut text = std::fs::read_to_string(&cfg).map_err(|e| e.to_string())?;
        text.push_str(&format!(
            "[http \"{base}\"]\n\tproxy = http://127.0.0.1:9\n[credential]\n\thelper = store\n\
             [filter \"x\"]\n\tclean = touch filter-ran && cat\n"
        ));
        std::fs::write(&cfg, text).map_err(|e| e.to_string())?;
        std::fs::write(ctx.work_dir.join(".gitattributes"), "*.txt filter=x\n")
            .map_err(|e| e.to_string())?;
        std::fs::write(ctx.work_dir.join("result.txt"), "r\n").map_err(|e| e.to_string())
    }));
    let o = w
        .worker
        .run_job(&push_job("hostile-1"), Some(&hostile))
        .await;
    let c = completed(&o);
    assert!(
        !c.work_dir.join("filter-ran").exists(),
        "the action's filter ran"
    );
    assert_eq!(
        w.server
            .read_file(REPO, "refs/heads/vaultref/hostile-1", "result.txt")
            .as_deref(),
        Some("r\n")
    );
    w.assert_no_leak(&[&t]);
}

/// Vault that accepts connections and never answers (a hung server or a
/// black-holed network): the job must still end, failed with
/// `vault_unavailable`, within the worker's resolve timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_vault_fails_the_job_within_the_resolve_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and hold every connection, never writing a byte.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let root = tempfile::tempdir().unwrap();
    let token_file = root.path().join("token");
    std::fs::write(&token_file, "s.FAKEFAKEFAKEFAKEFAKEFAKE").unwrap();
    let config = VaultConfig::new(
        format!("http://{addr}"),
        AuthConfig::TokenFile { path: token_file },
    )
    .unwrap();
    let resolver = Arc::new(Resolver::new(config).await.unwrap());
    let server = GitServer::start().unwrap();
    server.create_repo(REPO).unwrap();
    let mut git = GitSettings::new(env!("CARGO_BIN_EXE_vaultref"));
    git.allow_http = true;
    git.tmp_dir = Some(root.path().to_owned());
    let mut settings = WorkerSettings::new("executor-03", root.path().join("work"), git);
    settings.git_base_url = format!("http://{}", server.addr());
    settings.resolve_timeout = Duration::from_millis(1500);
    settings.backoff = Backoff {
        initial: Duration::from_secs(60),
        max: Duration::from_secs(60),
    };
    let worker = Worker::new(
        settings,
        Some(resolver),
        Arc::new(Mutex::new(Captured::default())),
    );
    let started = Instant::now();
    let o = worker.run_job(&read_job("hang-1"), None).await;
    let took = started.elapsed();
    assert_eq!(o.code(), Some(ErrorCode::VaultUnavailable), "{o:?}");
    assert!(
        took < Duration::from_millis(1500) + Duration::from_secs(1),
        "took {took:?}"
    );
    assert!(worker.health().degraded);
    assert!(server.requests().is_empty(), "git was contacted");
}

/// Counts the connections a TCP listener gets: the "proxy" a hostile action
/// points git at. It must never be contacted.
fn counting_listener() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for c in listener.incoming() {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(c);
        }
    });
    (format!("http://{addr}"), count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_cannot_redirect_git_through_commondir_or_a_symlinked_git_dir() {
    let w = world(false, |_| {}).await;
    let t = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE7002");
    w.put_token(&t).await;
    w.server.set_tokens(REPO, &t);
    let (proxy, contacted) = counting_listener();
    let base = format!("http://{}/", w.server.addr());
    let evil_root = tempfile::tempdir().unwrap();
    for (id, symlink) in [("hostile-commondir", false), ("hostile-symlink", true)] {
        let evil = evil_root.path().join(id);
        let (base, proxy) = (base.clone(), proxy.clone());
        let hostile = JobAction::Callback(Arc::new(move |ctx| {
            // A copy of `.git` the action controls, with URL-specific keys
            // that beat the worker's generic `-c http.proxy=`.
            let ok = std::process::Command::new("cp")
                .arg("-a")
                .arg(ctx.work_dir.join(".git"))
                .arg(&evil)
                .status()
                .map_err(|e| e.to_string())?
                .success();
            if !ok {
                return Err("cp failed".into());
            }
            let cfg = evil.join("config");
            let mut text = std::fs::read_to_string(&cfg).map_err(|e| e.to_string())?;
            text.push_str(&format!(
                "[http \"{base}\"]\n\tproxy = {proxy}\n\tsslVerify = false\n"
            ));
            std::fs::write(&cfg, text).map_err(|e| e.to_string())?;
            let git_dir = ctx.work_dir.join(".git");
            if symlink {
                std::fs::remove_dir_all(&git_dir).map_err(|e| e.to_string())?;
                std::os::unix::fs::symlink(&evil, &git_dir).map_err(|e| e.to_string())?;
            } else {
                std::fs::write(git_dir.join("commondir"), format!("{}\n", evil.display()))
                    .map_err(|e| e.to_string())?;
            }
            std::fs::write(ctx.work_dir.join("result.txt"), "r\n").map_err(|e| e.to_string())
        }));
        let o = w.worker.run_job(&push_job(id), Some(&hostile)).await;
        assert_eq!(o.code(), Some(ErrorCode::ActionFailed), "{id}: {o:?}");
        assert_eq!(
            contacted.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "{id}: git contacted the action's proxy"
        );
        assert!(
            w.server
                .read_file(REPO, &format!("refs/heads/vaultref/{id}"), "result.txt")
                .is_none(),
            "{id}: something was pushed"
        );
    }
    // The broken checkouts are removed (the symlink, not what it points at),
    // and the action's copies of .git hold no token either.
    for id in ["hostile-commondir", "hostile-symlink"] {
        let dir = w.root.path().join("work/jobs").join(id);
        assert!(
            std::fs::symlink_metadata(&dir).is_err(),
            "{id}: work dir left"
        );
    }
    let forms = token_forms(&t, &["x-access-token"]);
    let scan = scan_tree(evil_root.path(), &forms);
    assert!(scan.hits.is_empty() && scan.files > 0, "{scan:?}");
    assert!(evil_root.path().join("hostile-symlink/config").is_file());
    w.assert_no_leak(&[&t]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_s_background_children_die_with_it() {
    let w = world(false, |_| {}).await;
    w.server.set_public(REPO, true);
    // (job id, script, expected code): one that times out with a background
    // child holding its pipes, one that exits at once leaving one behind.
    // The child carries a marker in its command line (PIDs inside the
    // action's PID namespace mean nothing out here).
    let cases = [
        (
            "bg-timeout",
            "sh -c 'sleep 1000' {marker} & sleep 1000",
            Some(ErrorCode::ActionFailed),
        ),
        (
            "bg-exit",
            "sh -c 'sleep 1000' {marker} & echo r > result.txt",
            None,
        ),
    ];
    for (id, script, code) in cases {
        let marker = format!("vaultref-bg-{id}-{}", std::process::id());
        let action = JobAction::Command {
            program: PathBuf::from("sh"),
            args: vec!["-c".into(), script.replace("{marker}", &marker)],
            timeout: Duration::from_secs(2),
        };
        let started = Instant::now();
        let o = tokio::time::timeout(
            Duration::from_secs(30),
            w.worker.run_job(
                &job(id, json!({"repository": REPO, "instruction": "x"})),
                Some(&action),
            ),
        )
        .await
        .unwrap_or_else(|_| {
            // A panic would unwind into the runtime's drop, which waits for
            // the hung blocking task: end the test binary instead.
            eprintln!("{id}: the job hung on the action's background child");
            std::process::exit(101)
        });
        assert_eq!(o.code(), code, "{id}: {o:?}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{id}: took {:?}",
            started.elapsed()
        );
        assert!(
            !process_alive(&marker),
            "{id}: the background child survived the action"
        );
    }
}

/// A credential goes only to its host (G10): a job naming the repository on
/// another git server (same slug, so the ref scope passes) is refused before
/// any Vault read, and no request reaches that server. Found against an
/// earlier vaultref, which handed Acme's token to the other host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_is_never_sent_to_another_host() {
    let w = world(false, |_| {}).await;
    let t = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE8001");
    w.put_token(&t).await;
    let other = GitServer::start().unwrap();
    other.create_repo(REPO).unwrap();
    let before = w.vault_reads_of(&format!("kv/data/{REPO_PATH}"));
    let o = w
        .worker
        .run_job(
            &job(
                "foreign-1",
                json!({
                    "repository": format!("https://{}/{REPO}", other.addr()),
                    "instruction": "x",
                    "repoAuthRef": format!("vault://kv/{REPO_PATH}#github_token"),
                }),
            ),
            None,
        )
        .await;
    assert_eq!(o.code(), Some(ErrorCode::GitHostNotAllowed), "{o:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.vault_reads_of(&format!("kv/data/{REPO_PATH}")), before);
    assert!(other.requests().is_empty(), "the other host was contacted");
    // The worker's own host still works.
    w.server.set_tokens(REPO, &t);
    completed(&w.worker.run_job(&read_job("home-1"), None).await);
}

/// The secret document's `host` binds the credential: a document naming
/// another host is resolved but never sent; one naming the job's host (any
/// case, default port) is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_host_binds_the_credential() {
    let w = world(false, |_| {}).await;
    let t = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE8002");
    w.server.set_tokens(REPO, &t);
    let write = |host: String| {
        let admin = w.vault.admin();
        let t = secrecy::ExposeSecret::expose_secret(&t).to_string();
        async move {
            admin
                .kv_write(
                    "kv",
                    REPO_PATH,
                    json!({"github_token": t, "host": host, "username": "x-access-token"}),
                )
                .await
                .unwrap();
        }
    };
    write("github.com".into()).await;
    let o = w.worker.run_job(&read_job("bound-1"), None).await;
    assert_eq!(o.code(), Some(ErrorCode::GitHostNotAllowed), "{o:?}");
    assert!(
        w.server.requests().is_empty(),
        "a request reached the git server with a credential bound elsewhere"
    );
    write(w.server.addr().to_string().to_uppercase()).await;
    completed(&w.worker.run_job(&read_job("bound-2"), None).await);
    w.assert_no_leak(&[&t]);
}

/// Whether a process whose command line contains `marker` is running.
fn process_alive(marker: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .map(|o| !o.stdout.is_empty())
        .expect("pgrep (procps) is needed")
}

/// A job action that means harm: a `setsid` grandchild outlives the action,
/// waits for the push and scrapes every process's environment for git's
/// credential socket and nonce. Found against an earlier vaultref (the
/// process-group kill missed it). In a PID namespace (the default) it dies
/// with the action and sees no process but the action's; with isolation
/// off the same scraper reads the environment of processes outside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escaped_action_child_dies_with_the_action_and_never_sees_git() {
    for isolated in [true, false] {
        let w = world(false, |s| {
            if !isolated {
                s.action_isolation = vaultref::worker::Isolation::Off;
            }
        })
        .await;
        if isolated {
            assert!(
                matches!(w.worker.isolation(), IsolationStatus::Namespaced { .. }),
                "this test needs `unshare` and namespaces (root): {:?}",
                w.worker.isolation()
            );
        }
        let t = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE9001");
        w.put_token(&t).await;
        w.server.set_tokens(REPO, &t);
        // The isolated action runs as another user: its scraper and loot
        // are in a directory anyone may use.
        let open = open_dir();
        let loot = open.path().join("loot");
        let scraper = open.path().join("scraper.sh");
        std::fs::write(
            &scraper,
            format!(
                "while true; do for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < \"$f\"; done >> '{}' 2>/dev/null; sleep 0.05; done\n",
                loot.display()
            ),
        )
        .unwrap();
        let marker = format!("vaultref-escape-{}-{isolated}", std::process::id());
        let action = JobAction::Command {
            program: PathBuf::from("sh"),
            args: vec![
                "-c".into(),
                format!(
                    "echo change > file.txt; setsid sh '{}' {marker} </dev/null >/dev/null 2>&1 & sleep 0.3",
                    scraper.display()
                ),
            ],
            timeout: Duration::from_secs(30),
        };
        let o = w
            .worker
            .run_job(&push_job(&format!("escape-{isolated}")), Some(&action))
            .await;
        completed(&o);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let alive = process_alive(&marker);
        let _ = std::process::Command::new("pkill")
            .args(["-f", &marker])
            .status();
        let scraped = std::fs::read_to_string(&loot).unwrap_or_default();
        assert!(scraped.contains("PATH="), "the scraper never ran");
        assert!(!scraped.contains(secrecy::ExposeSecret::expose_secret(&t)));
        if isolated {
            assert!(!alive, "the action's setsid grandchild outlived the action");
            assert!(
                !scraped.contains(vaultref::git::credential::NONCE_ENV),
                "the escaped child read git's credential nonce"
            );
            assert!(
                !scraped.contains("CARGO_MANIFEST_DIR"),
                "the isolated action saw a process outside its namespace"
            );
        } else {
            // The attack is real: without isolation the scraper outlives the
            // action and reads other processes' environments.
            assert!(alive, "without isolation the setsid child should survive");
            assert!(
                scraped.contains("CARGO_MANIFEST_DIR"),
                "the scraper read nothing"
            );
        }
    }
}

/// A directory any user may write to (mode 1777), for what an action that
/// runs as another user leaves behind.
fn open_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// An isolated action runs as `nobody`: it cannot read a file of the
/// worker's (a token file) or list the job-private directories; it can edit
/// its work dir, which is the worker's again before git commits and pushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_action_runs_as_another_user_and_cannot_read_the_worker_files() {
    use std::os::unix::fs::MetadataExt;
    let w = world(false, |_| {}).await;
    assert!(
        matches!(w.worker.isolation(), IsolationStatus::Namespaced { .. }),
        "this test needs `unshare` and root: {:?}",
        w.worker.isolation()
    );
    let t = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE9002");
    w.put_token(&t).await;
    w.server.set_tokens(REPO, &t);
    // A token file as a worker keeps one: 0600, the worker's.
    let worker_file = w.root.path().join("worker-token");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&worker_file)
            .unwrap();
        std::io::Write::write_all(&mut f, b"hvs.FAKEFAKEFAKEWORKERTOKEN").unwrap();
    }
    let open = open_dir();
    let report = open.path().join("report");
    let action = JobAction::Command {
        program: PathBuf::from("sh"),
        args: vec![
            "-c".into(),
            format!(
                "{{ echo uid=$(id -u) groups=$(id -G); cat '{f}'; ls '{tmp}'/*/; }} > '{r}' 2>&1; \
                 echo change > file.txt; mkdir -p sub && echo x > sub/made",
                f = worker_file.display(),
                tmp = w.root.path().join("tmp").display(),
                r = report.display(),
            ),
        ],
        timeout: Duration::from_secs(30),
    };
    let o = w
        .worker
        .run_job(&push_job("as-nobody"), Some(&action))
        .await;
    let c = completed(&o);
    let got = std::fs::read_to_string(&report).expect("the action wrote its report");
    assert!(got.contains("uid=65534 groups=65534\n"), "{got}");
    assert!(
        !got.contains("FAKEWORKERTOKEN"),
        "the action read the worker's file: {got}"
    );
    // Both the token file and the job-private directories are refused.
    assert_eq!(got.matches("Permission denied").count(), 2, "{got}");
    for p in ["", "file.txt", "sub", "sub/made", ".git", ".git/index"] {
        let m = std::fs::symlink_metadata(c.work_dir.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{p} was not taken back");
    }
    let pushed = w
        .server
        .read_file(REPO, "vaultref/as-nobody", "sub/made")
        .expect("the action's file was pushed");
    assert_eq!(pushed, "x\n");
}

/// The worker's credential document (`{"token", "host"}`, the design's
/// worker-level shape) at `moonmind/workers/executor-01/github`, readable by
/// the worker's policy beside the repositories.
async fn put_worker_credential(w: &World, token: &SecretString) {
    w.vault
        .admin()
        .put_policy(
            "worker",
            r#"path "kv/data/moonmind/repos/*" { capabilities = ["read"] }
path "kv/data/moonmind/workers/executor-01/*" { capabilities = ["read"] }"#,
        )
        .await
        .unwrap();
    w.vault
        .admin()
        .kv_write(
            "kv",
            "moonmind/workers/executor-01/github",
            json!({"token": secrecy::ExposeSecret::expose_secret(token),
                   "host": w.server.addr().to_string()}),
        )
        .await
        .unwrap();
}

fn default_ref(template: &str) -> Option<vaultref::RefTemplate> {
    Some(vaultref::RefTemplate::parse(template).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_repo_auth_ref_uses_the_workers_default_ref() {
    let w = world(false, |s| {
        s.default_repo_auth_ref =
            default_ref("vault://kv/moonmind/workers/{worker_id}/github#token");
        s.ref_policy = vaultref::RefPolicy::default()
            .with_scopes([
                "moonmind/repos/{repository}",
                "moonmind/workers/{worker_id}/**",
            ])
            .unwrap();
    })
    .await;
    let worker_token = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE5001");
    let repo_token = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE5002");
    put_worker_credential(&w, &worker_token).await;
    w.server.set_tokens(REPO, &worker_token);
    assert!(
        w.worker
            .needs_secret(&job("n", json!({"repository": REPO, "instruction": "x"})).job)
    );

    // No repoAuthRef: clone and push with the worker's credential.
    let pushing = job(
        "default-1",
        json!({"repository": REPO, "instruction": "x", "publish": {"mode": "branch"}}),
    );
    let o = w
        .worker
        .run_job(&pushing, Some(&write_file_action("by default")))
        .await;
    let pushed = completed(&o).published.clone().expect("pushed");
    assert_eq!(
        w.server
            .read_file(REPO, &pushed.branch, "result.txt")
            .as_deref(),
        Some("by default")
    );
    let bound = "vault://kv/moonmind/workers/executor-01/github#token";
    let events = w.events_json();
    let refs = events[0]["refs"].as_array().unwrap();
    assert!(
        !refs.is_empty() && refs.iter().all(|r| r == bound),
        "{refs:?}"
    );

    // A job's own repoAuthRef wins over the default.
    w.put_token(&repo_token).await;
    w.server.set_token(REPO, Access::Read, &repo_token);
    completed(&w.worker.run_job(&read_job("own-1"), None).await);
    assert_eq!(
        w.events_json()[1]["refs"],
        json!([format!("vault://kv/{REPO_PATH}#github_token")])
    );
    w.assert_no_leak(&[&worker_token, &repo_token]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_ref_outside_the_scopes_or_unbindable_fails_closed_without_vault() {
    // The scopes allow repositories only: the worker-level default is out.
    let w = world(false, |s| {
        s.default_repo_auth_ref =
            default_ref("vault://kv/moonmind/workers/{worker_id}/github#token");
        s.ref_policy = vaultref::RefPolicy::default()
            .with_scopes(["moonmind/repos/{repository}"])
            .unwrap();
    })
    .await;
    let t = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE5003");
    put_worker_credential(&w, &t).await;
    let o = w
        .worker
        .run_job(
            &job("scoped-1", json!({"repository": REPO, "instruction": "x"})),
            None,
        )
        .await;
    assert_eq!(o.code(), Some(ErrorCode::RefOutOfScope), "{o:?}");
    assert_eq!(w.vault_reads_of("moonmind/workers"), 0);

    // `{repository}` cannot be bound for a repository URL whose path is not owner/repo.
    let w2 = world(false, |s| {
        s.default_repo_auth_ref =
            default_ref("vault://kv/moonmind/repos/{repository}#github_token");
    })
    .await;
    let url = format!("https://{}/group/sub/Repo.git", w2.server.addr());
    let o = w2
        .worker
        .run_job(
            &job("url-1", json!({"repository": url, "instruction": "x"})),
            None,
        )
        .await;
    assert_eq!(o.code(), Some(ErrorCode::RefOutOfScope), "{o:?}");
    match &o {
        Outcome::Failed { message, .. } => assert!(message.contains("cannot bind"), "{message}"),
        _ => unreachable!(),
    }
    assert_eq!(w2.vault_reads_of("kv/data/moonmind"), 0);
    let events = w2.events_json();
    assert_eq!(events[0]["code"], "ref_out_of_scope");
    assert_eq!(events[0]["refs"], json!([]));
}

/// The status of `GET /<repo>.git/info/refs?service=git-upload-pack` with
/// `token` as the Basic-auth password: what the git host says to it.
fn git_host_answer(server: &GitServer, token: &SecretString) -> u16 {
    use base64::Engine as _;
    use std::io::{BufRead, BufReader};
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{GIT_USERNAME}:{}",
        secrecy::ExposeSecret::expose_secret(token)
    ));
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "GET /{REPO}.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Basic {auth}\r\nConnection: close\r\n\r\n",
        server.addr()
    )
    .unwrap();
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).unwrap();
    status.split(' ').nth(1).unwrap().parse().unwrap()
}

/// The rotation playbook of the README ("Rotating a repository
/// credential") run while a queue of publishing jobs is being worked on by
/// three concurrent slots: every job completes, no git request is refused
/// during the rotation, the jobs that start after the write use the new
/// version, and the old credential is refused at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotation_playbook_while_jobs_are_queued() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const JOBS: usize = 12;
    let w = world(false, |_| {}).await;
    let old = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE7001");
    let new = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE7002");
    w.put_token(&old).await;
    w.server.set_tokens(REPO, &old);
    let slow = JobAction::Callback(Arc::new(|ctx| {
        std::thread::sleep(Duration::from_millis(150));
        std::fs::write(ctx.work_dir.join("result.txt"), ctx.job_id).map_err(|e| e.to_string())
    }));
    let next = AtomicUsize::new(0);
    let slot = || async {
        let mut outcomes = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= JOBS {
                return outcomes;
            }
            let o = w
                .worker
                .run_job(&push_job(&format!("rot-{i:02}")), Some(&slow))
                .await;
            outcomes.push((i, o));
        }
    };
    let ended = || w.events.lock().unwrap().len();
    let playbook = async {
        while ended() < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // 1. A new credential at the git host; the old one still works.
        w.server.add_token(REPO, Access::Read, &new);
        w.server.add_token(REPO, Access::Push, &new);
        // 2. The new version in Vault: every resolution from now on reads it.
        w.put_token(&new).await;
        let started_before = next.load(Ordering::SeqCst).min(JOBS);
        // 3. Wait for the jobs in flight at the write (a job holds a value
        //    only for one git command, but which one is not known outside).
        while ended() < started_before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // 4. Revoke the old credential at the git host.
        w.server.revoke_token(REPO, Access::Read, &old);
        w.server.revoke_token(REPO, Access::Push, &old);
        started_before
    };
    let ((a, b, c), started_before) =
        tokio::join!(async { tokio::join!(slot(), slot(), slot()) }, playbook);
    let outcomes: Vec<(usize, Outcome)> = a.into_iter().chain(b).chain(c).collect();
    assert_eq!(outcomes.len(), JOBS);
    for (i, o) in &outcomes {
        let pushed = completed(o)
            .published
            .clone()
            .unwrap_or_else(|| panic!("rot-{i:02} pushed nothing"));
        assert_eq!(
            w.server
                .read_file(REPO, &pushed.branch, "result.txt")
                .as_deref(),
            Some(format!("rot-{i:02}").as_str())
        );
    }
    assert!(
        started_before < JOBS,
        "the rotation happened after the queue was empty: nothing was tested"
    );
    let refused: Vec<_> = w
        .server
        .requests()
        .into_iter()
        .filter(|r| r.auth == AuthOutcome::Rejected)
        .collect();
    assert!(
        refused.is_empty(),
        "refused during the rotation: {refused:?}"
    );
    // Jobs that started after the write read version 2 only.
    let reads: Vec<u64> = w
        .vault
        .audit_entries()
        .unwrap()
        .iter()
        .filter(|e| !e.is_request() && e.path() == format!("kv/data/{REPO_PATH}"))
        .filter_map(|e| e["response"]["data"]["metadata"]["version"].as_u64())
        .collect();
    assert_eq!(
        reads.len(),
        2 * JOBS,
        "one read to clone, one to push, per job"
    );
    let first_new = reads
        .iter()
        .position(|&v| v == 2)
        .expect("version 2 was read");
    assert!(reads[first_new..].iter().all(|&v| v == 2), "{reads:?}");
    // The old credential is refused, the new one accepted.
    assert_eq!(git_host_answer(&w.server, &old), 401);
    assert_eq!(git_host_answer(&w.server, &new), 200);
    w.assert_no_leak(&[&old, &new]);
}

/// `spec/codex-shards.md` §3: a worker with a Codex shard runs a job only
/// while the shard's record names it owner with a live lease; otherwise the
/// job fails `codex_shard_not_owned` before the job's secret is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codex_job_runs_only_on_a_shard_the_worker_owns() {
    let w = world(false, |s| s.codex_shard = Some("codex-9".to_owned())).await;
    let token = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE9001");
    w.put_token(&token).await;
    w.server.set_tokens(REPO, &token);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let shard = |owner: &str, expires: u64| {
        w.vault.admin().kv_write(
            "kv",
            "moonmind/codex/shards/codex-9",
            json!({"owner": owner, "epoch": 1, "lease_expires_ms": expires}),
        )
    };
    // No record, another owner, this worker with an expired lease: refused,
    // and the repository's secret is never read.
    let reads_before = w.vault_reads_of("kv/data/moonmind/repos");
    let o = w.worker.run_job(&read_job("shard-1"), None).await;
    assert_eq!(o.code(), Some(ErrorCode::CodexShardNotOwned), "{o:?}");
    shard("executor-02", now + 600_000).await.unwrap();
    let o = w.worker.run_job(&read_job("shard-2"), None).await;
    assert_eq!(o.code(), Some(ErrorCode::CodexShardNotOwned), "{o:?}");
    match &o {
        Outcome::Failed { message, .. } => {
            assert!(
                message.contains("worker `executor-02` holds it"),
                "{message}"
            )
        }
        _ => unreachable!(),
    }
    shard("executor-01", now - 1).await.unwrap();
    let o = w.worker.run_job(&read_job("shard-3"), None).await;
    assert_eq!(o.code(), Some(ErrorCode::CodexShardNotOwned), "{o:?}");
    assert_eq!(w.vault_reads_of("kv/data/moonmind/repos"), reads_before);
    // Owned, live: the job runs.
    shard("executor-01", now + 600_000).await.unwrap();
    completed(&w.worker.run_job(&read_job("shard-4"), None).await);
    assert_eq!(w.events_json()[0]["code"], "codex_shard_not_owned");
    w.assert_no_leak(&[&token]);
}

/// W12: `action_env` resolves an API key for the action at job start: the
/// action's processes see it in their environment, its output has it masked,
/// git never sees it, nothing on disk holds it, and a job without an action
/// does not read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_env_gives_the_action_its_api_key_and_nothing_else() {
    let w = world(false, |s| {
        s.action_env = vec![(
            "CODEX_API_KEY".to_owned(),
            vaultref::RefTemplate::parse("vault://kv/moonmind/codex/prod#api_key").unwrap(),
        )];
    })
    .await;
    let token = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE9101");
    let api_key = secret("sk-FAKE-codex-api-key-0000000000000000");
    w.put_token(&token).await;
    w.server.set_tokens(REPO, &token);
    w.vault
        .admin()
        .kv_write(
            "kv",
            "moonmind/codex/prod",
            json!({"api_key": secrecy::ExposeSecret::expose_secret(&api_key)}),
        )
        .await
        .unwrap();
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        secrecy::ExposeSecret::expose_secret(&api_key).as_bytes(),
    );
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    // The action proves it has the key (by its hash, so the key is in no
    // argv), prints it (the log must mask it) and publishes the proof.
    let action = JobAction::Command {
        program: PathBuf::from("sh"),
        args: vec![
            "-c".into(),
            format!(
                "[ \"$(printf %s \"$CODEX_API_KEY\" | sha256sum | cut -c1-64)\" = {hex} ] && echo has-key > result.txt; echo \"key: $CODEX_API_KEY\""
            ),
        ],
        timeout: Duration::from_secs(30),
    };
    let o = w.worker.run_job(&push_job("env-1"), Some(&action)).await;
    let pushed = completed(&o).published.clone().expect("pushed");
    assert_eq!(
        w.server
            .read_file(REPO, &pushed.branch, "result.txt")
            .as_deref(),
        Some("has-key\n")
    );
    let log = w.log.text();
    assert!(log.contains("key: [REDACTED]"), "{log}");
    assert_eq!(w.vault_reads_of("kv/data/moonmind/codex/prod"), 1);
    let refs = &w.events_json()[0]["refs"];
    assert!(
        refs.as_array()
            .unwrap()
            .contains(&json!("vault://kv/moonmind/codex/prod#api_key")),
        "{refs}"
    );
    // No action, no key read.
    completed(&w.worker.run_job(&read_job("env-2"), None).await);
    assert_eq!(w.vault_reads_of("kv/data/moonmind/codex/prod"), 1);
    // git's argv and environment (recorded) and every file: no key.
    w.assert_no_leak(&[&token, &api_key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_env_name_that_steers_the_action_is_refused_before_vault() {
    for name in [
        "PATH",
        "LD_PRELOAD",
        "GIT_SSH_COMMAND",
        "VAULTREF_WORKDIR",
        "lower",
        "A-B",
    ] {
        let w = world(false, |s| {
            s.action_env = vec![(
                name.to_owned(),
                vaultref::RefTemplate::parse("vault://kv/moonmind/codex/prod#api_key").unwrap(),
            )];
        })
        .await;
        let o = w.worker.run_job(&read_job("env-bad"), None).await;
        assert_eq!(o.code(), Some(ErrorCode::ConfigInvalid), "{name}: {o:?}");
        assert_eq!(w.vault_reads_of("kv/data/moonmind"), 0, "{name}");
    }
}
