//! git with transient credentials, against a real git HTTP server
//! (`vaultref::testing::git_server`, `git http-backend` behind Basic auth).
//!
//! After every operation each test checks that the token (and its base64
//! forms) is nowhere: not in the work dir (`.git/config` included), not in the
//! per-test TMPDIR, not in the server's repositories, not in the argv or
//! environment of any git process (a recording `git` wrapper is first on
//! PATH), and that the job's private directory is gone.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use vaultref::ErrorCode;
use vaultref::git::{Git, GitOp, GitSettings, Remote};
use vaultref::testing::git_server::{Access, AuthOutcome, GitServer};
use vaultref::testing::leak::{scan_tree, token_forms};

const REPO: &str = "Owner/Repo";

/// One test's world: a server, a per-test TMPDIR, a work dir, a recording
/// git wrapper.
struct World {
    server: GitServer,
    root: tempfile::TempDir,
    git: Git,
}

impl World {
    fn new() -> World {
        let server = GitServer::start().expect(
            "the git HTTP test server needs `git` with `git http-backend` (Debian: apt-get install git)",
        );
        server.create_repo(REPO).unwrap();
        let root = tempfile::Builder::new()
            .prefix("vaultref-gittest-")
            .tempdir()
            .unwrap();
        for d in ["bin", "tmp", "work"] {
            std::fs::create_dir(root.path().join(d)).unwrap();
        }
        let real_git = which_git();
        let wrapper = root.path().join("bin/git");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{log}/argv.log'\nenv >> '{log}/env.log'\nexec '{git}' \"$@\"\n",
                log = root.path().display(),
                git = real_git.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The credential helper is wrapped too: its argv is logged, which
        // also proves git really asked it.
        let helper = root.path().join("bin/vaultref");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\nprintf 'helper %s\\n' \"$*\" >> '{log}/argv.log'\nexec '{bin}' \"$@\"\n",
                log = root.path().display(),
                bin = env!("CARGO_BIN_EXE_vaultref")
            ),
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut settings = GitSettings::new(helper);
        settings.program = wrapper;
        settings.path_prepend = vec![root.path().join("bin")];
        settings.tmp_dir = Some(root.path().join("tmp"));
        settings.allow_http = true;
        World {
            server,
            root,
            git: Git::new(settings),
        }
    }

    fn remote(&self) -> Remote {
        Remote::parse(&self.server.url(REPO), true).unwrap()
    }

    fn work(&self, name: &str) -> PathBuf {
        self.root.path().join("work").join(name)
    }

    /// Asserts that none of `tokens` left a trace anywhere we can look.
    fn assert_no_leak(&self, tokens: &[&SecretString]) {
        let mut needles = Vec::new();
        for t in tokens {
            needles.extend(token_forms(t, &["x-access-token"]));
        }
        let argv = std::fs::read_to_string(self.root.path().join("argv.log")).unwrap_or_default();
        assert!(!argv.is_empty(), "the recording git wrapper was never run");
        for dir in [self.root.path(), self.server.git_dir(REPO).as_path()] {
            let scan = scan_tree(dir, &needles);
            assert!(scan.hits.is_empty(), "token found on disk: {:?}", scan.hits);
            assert!(scan.files > 0, "the leak scan read no file under {dir:?}");
        }
        // Nothing is left in the per-test TMPDIR: the job dir (HOME, sockets) is gone.
        let leftovers: Vec<_> = std::fs::read_dir(self.root.path().join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(leftovers.is_empty(), "left in TMPDIR: {leftovers:?}");
    }
}

fn which_git() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("git"))
        .find(|p| p.is_file())
        .expect("git not on PATH: install git")
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn config_of(dest: &Path) -> String {
    std::fs::read_to_string(dest.join(".git/config")).unwrap()
}

#[test]
fn clone_then_fetch_follows_the_remote() {
    let w = World::new();
    let token = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0001");
    w.server.set_token(REPO, Access::Read, &token);
    let dest = w.work("clone");
    let main1 = w.server.rev_parse(REPO, "refs/heads/main").unwrap();
    {
        let job = w.git.begin_job().unwrap();
        let c = job.prepare(&w.remote(), &dest, None, Some(&token)).unwrap();
        assert!(c.cloned);
        assert_eq!(c.head, main1);
        assert!(dest.join("README.md").is_file());
    }
    w.assert_no_leak(&[&token]);
    assert!(config_of(&dest).contains(&w.server.url(REPO)));
    let argv = std::fs::read_to_string(w.root.path().join("argv.log")).unwrap();
    assert!(argv.contains("helper git-credential get"), "{argv}");

    let main2 = w
        .server
        .commit_files(REPO, "main", &[("new.txt", "hello\n")], "second")
        .unwrap();
    {
        let job = w.git.begin_job().unwrap();
        let c = job.prepare(&w.remote(), &dest, None, Some(&token)).unwrap();
        assert!(!c.cloned, "an existing clone is fetched, not re-cloned");
        assert_eq!(c.head, main2);
        assert_eq!(
            std::fs::read_to_string(dest.join("new.txt")).unwrap(),
            "hello\n"
        );
    }
    w.assert_no_leak(&[&token]);
    let log = w.server.requests();
    assert!(log.iter().any(|r| r.auth == AuthOutcome::Accepted));
    assert!(log.iter().all(|r| r.access == Access::Read));
}

#[test]
fn checks_out_branch_tag_and_commit() {
    let w = World::new();
    let token = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0002");
    w.server.set_token(REPO, Access::Read, &token);
    let first = w.server.rev_parse(REPO, "refs/heads/main").unwrap();
    let feature = w
        .server
        .commit_files(REPO, "feature/x", &[("feature.txt", "f\n")], "feature")
        .unwrap();
    w.server.create_tag(REPO, "v1.0", &first).unwrap();
    let main2 = w
        .server
        .commit_files(REPO, "main", &[("m.txt", "m\n")], "m")
        .unwrap();

    let job = w.git.begin_job().unwrap();
    let dest = w.work("refs");
    let c = job
        .prepare(&w.remote(), &dest, Some("feature/x"), Some(&token))
        .unwrap();
    assert_eq!(c.head, feature);
    assert!(dest.join("feature.txt").is_file());

    let c = job
        .prepare(&w.remote(), &dest, Some("v1.0"), Some(&token))
        .unwrap();
    assert_eq!(c.head, first);
    assert!(!dest.join("feature.txt").exists());

    let c = job
        .prepare(&w.remote(), &dest, Some(&main2), Some(&token))
        .unwrap();
    assert_eq!(c.head, main2);
    assert!(dest.join("m.txt").is_file());

    let err = job
        .prepare(&w.remote(), &dest, Some("no-such-branch"), Some(&token))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::GitFailed);
    let err = job
        .prepare(&w.remote(), &dest, Some("--upload-pack=evil"), Some(&token))
        .unwrap_err();
    assert_eq!(
        (err.code(), err.op()),
        (ErrorCode::GitFailed, GitOp::Checkout)
    );
    drop(job);
    w.assert_no_leak(&[&token]);
}

#[test]
fn publish_commits_and_pushes_with_the_push_token() {
    let w = World::new();
    let read = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0003");
    let push = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0004");
    w.server.set_token(REPO, Access::Read, &read);
    w.server.set_token(REPO, Access::Push, &push);
    let dest = w.work("publish");
    {
        let job = w.git.begin_job().unwrap();
        job.prepare(&w.remote(), &dest, None, Some(&read)).unwrap();
        assert_eq!(
            job.commit_all(&dest, "vaultref/job-1", "nothing").unwrap(),
            None
        );
        std::fs::write(dest.join("result.txt"), "done\n").unwrap();
        let commit = job
            .commit_all(&dest, "vaultref/job-1", "Job 1 result")
            .unwrap()
            .unwrap();

        // The read token cannot push.
        w.server.clear_requests();
        let err = job
            .push(&dest, &w.remote(), "vaultref/job-1", Some(&read))
            .unwrap_err();
        assert_eq!((err.code(), err.op()), (ErrorCode::GitFailed, GitOp::Push));
        assert!(
            w.server
                .requests()
                .iter()
                .any(|r| r.access == Access::Push && r.auth == AuthOutcome::Rejected)
        );

        let published = job
            .push(&dest, &w.remote(), "vaultref/job-1", Some(&push))
            .unwrap();
        assert_eq!(published.commit, commit);
        assert_eq!(
            w.server
                .rev_parse(REPO, "refs/heads/vaultref/job-1")
                .as_deref(),
            Some(commit.as_str())
        );
        assert_eq!(
            w.server
                .read_file(REPO, "refs/heads/vaultref/job-1", "result.txt")
                .as_deref(),
            Some("done\n")
        );
    }
    assert!(
        w.server
            .requests()
            .iter()
            .any(|r| r.access == Access::Push && r.auth == AuthOutcome::Accepted)
    );
    w.assert_no_leak(&[&read, &push]);
}

#[test]
fn wrong_token_fails_with_git_failed_and_no_prompt() {
    let w = World::new();
    let good = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0005");
    let wrong = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0006");
    w.server.set_token(REPO, Access::Read, &good);
    let dest = w.work("wrong");
    {
        let job = w.git.begin_job().unwrap();
        let err = job
            .prepare(&w.remote(), &dest, None, Some(&wrong))
            .unwrap_err();
        assert_eq!((err.code(), err.op()), (ErrorCode::GitFailed, GitOp::Clone));
        assert!(!err.to_string().contains("FAKE"), "{err}");
        // No token at all: git must fail, not prompt.
        let err = job.prepare(&w.remote(), &dest, None, None).unwrap_err();
        assert_eq!(err.code(), ErrorCode::GitFailed);
    }
    let log = w.server.requests();
    assert!(log.iter().any(|r| r.auth == AuthOutcome::Rejected));
    assert!(log.iter().all(|r| r.auth != AuthOutcome::Accepted));
    w.assert_no_leak(&[&good, &wrong]);
}

#[test]
fn rotation_takes_effect_on_the_next_operation() {
    let w = World::new();
    let old = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0007");
    let new = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0008");
    w.server.set_token(REPO, Access::Read, &old);
    let dest = w.work("rotate");
    let job = w.git.begin_job().unwrap();
    job.prepare(&w.remote(), &dest, None, Some(&old)).unwrap();
    w.server.set_token(REPO, Access::Read, &new);
    let err = job
        .prepare(&w.remote(), &dest, None, Some(&old))
        .unwrap_err();
    assert_eq!((err.code(), err.op()), (ErrorCode::GitFailed, GitOp::Fetch));
    job.prepare(&w.remote(), &dest, None, Some(&new)).unwrap();
    drop(job);
    w.assert_no_leak(&[&old, &new]);
}

#[test]
fn the_work_dir_cannot_redirect_the_credential() {
    // A job action may rewrite .git/config; the credential still only goes to
    // the job's remote, and hooks never run.
    let w = World::new();
    let token = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0009");
    w.server.set_tokens(REPO, &token);
    let dest = w.work("hostile");
    let job = w.git.begin_job().unwrap();
    job.prepare(&w.remote(), &dest, None, Some(&token)).unwrap();
    let marker = w.root.path().join("hook-ran");
    let hook = dest.join(".git/hooks/pre-push");
    std::fs::write(&hook, format!("#!/bin/sh\ntouch '{}'\n", marker.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cfg = config_of(&dest);
    cfg.push_str("[credential]\n\thelper = store\n[remote \"origin\"]\n\tpushurl = http://127.0.0.1:1/evil.git\n");
    std::fs::write(dest.join(".git/config"), cfg).unwrap();
    std::fs::write(dest.join("x.txt"), "x\n").unwrap();
    job.commit_all(&dest, "b", "x").unwrap().unwrap();
    job.push(&dest, &w.remote(), "b", Some(&token)).unwrap();
    assert!(!marker.exists(), "a pre-push hook ran");
    drop(job);
    w.assert_no_leak(&[&token]);
}

#[test]
fn git_stderr_reaches_messages_only_through_the_filter() {
    let mut w = World::new();
    let good = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0010");
    let wrong = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0011");
    w.server.set_token(REPO, Access::Read, &good);
    let mut builder = vaultref::redact::RedactorBuilder::new();
    builder.add_secret(&wrong).unwrap();
    let redactor = builder.build().unwrap();
    let mut settings = w.git.settings().clone();
    settings.stderr_filter = Some(std::sync::Arc::new(move |t: &str| redactor.redact(t)));
    w.git = Git::new(settings);
    let job = w.git.begin_job().unwrap();
    let err = job
        .prepare(&w.remote(), &w.work("stderr"), None, Some(&wrong))
        .unwrap_err();
    // git's own words are there (through the redactor), the token is not.
    assert!(err.message().contains("Authentication failed"), "{err}");
    assert!(!err.message().contains("FAKE"), "{err}");
    drop(job);
    w.assert_no_leak(&[&good, &wrong]);
}

#[test]
fn the_helper_outside_a_worker_fails_clearly_and_store_is_a_no_op() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let run = |op: &str, input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vaultref"))
            .args(["git-credential", op])
            .env_remove("VAULTREF_GIT_CREDENTIAL_SOCKET")
            .env_remove("VAULTREF_GIT_CREDENTIAL_NONCE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run("get", "protocol=https\nhost=github.com\n\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("VAULTREF_GIT_CREDENTIAL_SOCKET"));
    let out = run(
        "store",
        "protocol=https\nhost=github.com\nusername=u\npassword=ghp_FAKEFAKEFAKEFAKE\n\n",
    );
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

/// Processes (not zombies) whose command line mentions `needle`.
fn live_processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = e.path();
        let Ok(cmdline) = std::fs::read(p.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(p.join("stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('Z')))
            .unwrap_or(true);
        if cmdline.contains(needle) && !zombie {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn a_git_timeout_kills_git_s_children_and_ends_the_session() {
    // A server that accepts and never answers: git-remote-http blocks on it,
    // holding git's stderr open after git itself is killed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let w = World::new();
    let mut settings = w.git.settings().clone();
    settings.timeout = std::time::Duration::from_secs(2);
    let git = Git::new(settings);
    let remote = Remote::parse(&format!("http://{addr}/Owner/Hang.git"), true).unwrap();
    let job = git.begin_job().unwrap();
    let t = secret("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE3003");
    let (tx, rx) = std::sync::mpsc::channel();
    let dest = w.root.path().join("work/hang");
    let private = job.private_dir().to_owned();
    std::thread::spawn(move || {
        let r = job.prepare(&remote, &dest, None, Some(&t));
        // The job (and its private directory) ends before the test looks.
        drop(job);
        let _ = tx.send(r.map(|_| ()));
    });
    let r = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("git's timeout did not end the command: a child held its pipes");
    let e = r.expect_err("a server that never answers cannot be cloned");
    assert!(e.message().contains("timed out"), "{e}");
    let left = live_processes_mentioning(&addr.to_string());
    assert!(left.is_empty(), "git's children survived: {left:?}");
    assert!(!private.exists(), "the job's private directory is left");
}
