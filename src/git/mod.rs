//! Clone, fetch, check out, commit and push with the `git` CLI, where the
//! token reaches git only through a credential helper and is left nowhere.
//!
//! # Design
//!
//! The token must never be in argv (visible in `ps`), in a URL (echoed in
//! errors, stored as `remote.origin.url`), in `.git/config`, or in any file
//! that outlives the job. The design in `spec/resolver.md` ("Git credentials")
//! meets that with three pieces:
//!
//! - [`credential::CredentialSession`]: for each git command that talks to the
//!   network, the worker serves the token on a Unix socket inside a private
//!   per-job directory (mode 0700) and gives git the socket path and a random
//!   nonce in its environment. The session answers only the exact remote
//!   (protocol, host, path) it was opened for.
//! - `vaultref git-credential` ([`credential::helper`]): the only credential
//!   helper git may use. git runs with `-c credential.helper=` (which empties
//!   the helper list, so no `store` or `cache` helper configured anywhere can
//!   receive the token through `credential approve`) followed by
//!   `-c credential.helper=!'<vaultref>' git-credential`.
//! - A hardened environment for every git process ([`GitJob`]): the
//!   environment is cleared; `HOME` is a job-private directory;
//!   `GIT_CONFIG_NOSYSTEM=1` and `GIT_CONFIG_GLOBAL=/dev/null` keep system and
//!   user configuration out; `GIT_TERMINAL_PROMPT=0` and empty
//!   `GIT_ASKPASS`/`SSH_ASKPASS`/`core.askPass` make a missing or wrong
//!   credential a failure, never a prompt; `credential.useHttpPath=true`
//!   scopes the credential to one repository.
//!
//! The work dir is untrusted once a job action has run in it (it may have
//! edited `.git/config` or planted hooks), so every command also gets
//! `core.hooksPath=/dev/null`, `core.fsmonitor=false`, an empty `http.proxy`,
//! `http.sslVerify=true` and `protocol.allow=never` with only `https` (and
//! `http` for test servers) allowed; pushes name the remote URL explicitly,
//! never `origin`, and only clone/fetch/push get a credential session at all.
//! ([`GitJob::run_action`], in [`workdir`], puts back the worker's own
//! `.git/config` after the action, since a URL-specific `http.<url>.proxy`
//! would override the plain `http.proxy=`, and refuses a config holding such
//! keys.) Every
//! command run in a work dir is pinned to `<work dir>/.git` (`GIT_DIR`,
//! `GIT_COMMON_DIR`, `GIT_WORK_TREE`) after [`check_git_dir`] has made sure it
//! is a real directory without `commondir`, `config.worktree` or `worktrees`,
//! so a planted pointer to another repository's config is never followed.
//!
//! git runs in its own process group: a timeout kills git together with its
//! remote helper and credential helper, and the credential session is closed
//! before git's output is collected (with a deadline).
//!
//! git's stderr can echo URLs and server messages; it reaches a [`GitError`]
//! message only through the [`StderrFilter`] (the redactor, with the job's
//! secrets registered). Without a filter, stderr is left out of messages.
//!
//! Trade-off: a Unix socket served by the worker means the helper is a
//! separate process that must find the worker: the socket path and nonce in
//! the environment. A file with the token (the design document's alternative)
//! would be simpler but is a file holding the token, exactly what we rule out.

pub mod credential;
pub mod remote;
pub mod workdir;

pub use workdir::{ActionError, check_git_dir};

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::error::ErrorCode;
pub use credential::CredentialSession;
pub use remote::{Remote, RemoteError};

/// Filters git's stderr before it goes into an error message (the redactor,
/// with the job's secrets registered).
pub type StderrFilter = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Environment variables passed through to git from the worker's environment:
/// TLS trust and proxies, which a deployment may need. Everything else is
/// cleared.
const PASS_THROUGH_ENV: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
];

/// How long git's output is still read after git ended (a process that left
/// its group may hold the pipes open forever).
const PUMP_GRACE: Duration = Duration::from_secs(2);

/// How much of git's stderr is kept for an error message.
const STDERR_LIMIT: usize = 1 << 20;

/// The part of a stderr capture that ends on a line terminator, when the
/// capture hit [`STDERR_LIMIT`]: a token cut in two at the limit would leave
/// its prefix too short for the redactor to recognise, and a token never
/// spans lines (a PEM block does, but the redactor masks an unterminated
/// block to the end).
fn whole_lines(captured: &[u8]) -> &[u8] {
    if captured.len() < STDERR_LIMIT {
        return captured;
    }
    match captured.iter().rposition(|&b| b == b'\n') {
        Some(i) => &captured[..=i],
        None => &[],
    }
}

/// How git is run.
#[derive(Clone)]
pub struct GitSettings {
    /// The git program (default `git`, looked up on `PATH`).
    pub program: PathBuf,
    /// The `vaultref` executable git runs as its credential helper.
    pub helper: PathBuf,
    /// Directories put in front of `PATH` for git (tests put a recording
    /// `git` wrapper there).
    pub path_prepend: Vec<PathBuf>,
    /// Where job-private directories are created, and git's `TMPDIR`
    /// (default: the worker's `TMPDIR`).
    pub tmp_dir: Option<PathBuf>,
    /// The username sent with the token (default `x-access-token`, which
    /// GitHub accepts with any token kind).
    pub username: String,
    /// Allow `http://` remotes. For local test servers only.
    pub allow_http: bool,
    /// Time limit for each git command (default 10 minutes).
    pub timeout: Duration,
    /// Author and committer name for published commits.
    pub author_name: String,
    /// Author and committer email for published commits.
    pub author_email: String,
    /// Applied to git's stderr before it enters an error message; `None`
    /// leaves stderr out entirely.
    pub stderr_filter: Option<StderrFilter>,
}

impl fmt::Debug for GitSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitSettings")
            .field("program", &self.program)
            .field("helper", &self.helper)
            .field("path_prepend", &self.path_prepend)
            .field("tmp_dir", &self.tmp_dir)
            .field("username", &self.username)
            .field("allow_http", &self.allow_http)
            .field("timeout", &self.timeout)
            .field("stderr_filter", &self.stderr_filter.is_some())
            .finish_non_exhaustive()
    }
}

impl GitSettings {
    /// Settings with the defaults, using `helper` as the credential helper.
    pub fn new(helper: impl Into<PathBuf>) -> GitSettings {
        GitSettings {
            program: PathBuf::from("git"),
            helper: helper.into(),
            path_prepend: Vec::new(),
            tmp_dir: None,
            username: "x-access-token".to_owned(),
            allow_http: false,
            timeout: Duration::from_secs(600),
            author_name: "vaultref worker".to_owned(),
            author_email: "worker@vaultref.invalid".to_owned(),
            stderr_filter: None,
        }
    }
}

/// Which git step failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GitOp {
    /// Setting up the job's private directory or credential session.
    Setup,
    /// `git clone`.
    Clone,
    /// `git fetch`.
    Fetch,
    /// Resolving and checking out the job's ref.
    Checkout,
    /// `git add` / `git commit`.
    Commit,
    /// `git push`.
    Push,
}

impl fmt::Display for GitOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GitOp::Setup => "setup",
            GitOp::Clone => "clone",
            GitOp::Fetch => "fetch",
            GitOp::Checkout => "checkout",
            GitOp::Commit => "commit",
            GitOp::Push => "push",
        })
    }
}

/// A git failure (code `git_failed`, or `config_invalid` for settings that
/// cannot work). The message holds no secret: stderr only through the filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitError {
    code: ErrorCode,
    op: GitOp,
    message: String,
}

impl GitError {
    fn new(op: GitOp, message: impl Into<String>) -> GitError {
        GitError {
            code: ErrorCode::GitFailed,
            op,
            message: message.into(),
        }
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The step that failed.
    pub fn op(&self) -> GitOp {
        self.op
    }

    /// A human-readable message without secret material.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for GitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "git {} failed: {}", self.op, self.message)
    }
}

impl std::error::Error for GitError {}

/// Runs git for jobs.
#[derive(Clone, Debug)]
pub struct Git {
    settings: GitSettings,
}

impl Git {
    /// A git runner with these settings.
    pub fn new(settings: GitSettings) -> Git {
        Git { settings }
    }

    /// The settings.
    pub fn settings(&self) -> &GitSettings {
        &self.settings
    }

    /// Starts a job: creates its private directory (mode 0700: job `HOME`,
    /// credential sockets). Everything in it is removed when the [`GitJob`]
    /// is dropped.
    pub fn begin_job(&self) -> Result<GitJob, GitError> {
        if !self.settings.helper.is_file() {
            return Err(GitError {
                code: ErrorCode::ConfigInvalid,
                op: GitOp::Setup,
                message: format!(
                    "credential helper {} does not exist",
                    self.settings.helper.display()
                ),
            });
        }
        let mut builder = tempfile::Builder::new();
        builder
            .prefix("vaultref-job-")
            .permissions(std::fs::Permissions::from_mode(0o700));
        let private = match &self.settings.tmp_dir {
            Some(dir) => builder.tempdir_in(dir),
            None => builder.tempdir(),
        }
        .map_err(|e| {
            GitError::new(
                GitOp::Setup,
                format!("cannot create the job directory: {e}"),
            )
        })?;
        let home = private.path().join("home");
        std::fs::create_dir(&home)
            .map_err(|e| GitError::new(GitOp::Setup, format!("cannot create the job HOME: {e}")))?;
        Ok(GitJob {
            settings: self.settings.clone(),
            private,
            home,
            sessions: AtomicUsize::new(0),
        })
    }
}

/// One job's git context. Dropping it removes the job's private directory.
#[derive(Debug)]
pub struct GitJob {
    settings: GitSettings,
    private: tempfile::TempDir,
    home: PathBuf,
    sessions: AtomicUsize,
}

/// The state of a prepared checkout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    /// The commit checked out (`HEAD`).
    pub head: String,
    /// Whether the work dir was cloned (`true`) or fetched (`false`).
    pub cloned: bool,
}

/// What a publish did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The branch pushed.
    pub branch: String,
    /// The commit pushed.
    pub commit: String,
}

impl GitJob {
    /// Sets the user name sent with the token for this job's later commands
    /// (a secret document's `username`, `spec/resolver.md` G10). It must be 1
    /// to 256 visible ASCII characters: it goes into git's credential
    /// protocol, where a newline would inject an attribute.
    pub fn with_username(mut self, username: String) -> Result<GitJob, GitError> {
        if username.is_empty()
            || username.len() > 256
            || !username.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(GitError::new(
                GitOp::Fetch,
                "the credential's user name is not 1 to 256 visible ASCII characters",
            ));
        }
        self.settings.username = username;
        Ok(self)
    }

    /// Replaces the stderr filter for this job's later commands (the worker
    /// passes its redactor, rebuilt as secrets are resolved).
    pub fn with_stderr_filter(mut self, filter: StderrFilter) -> GitJob {
        self.settings.stderr_filter = Some(filter);
        self
    }

    /// The job-private directory (removed at job end).
    pub fn private_dir(&self) -> &Path {
        self.private.path()
    }

    /// Clones `remote` into `dest` (or, if `dest` already holds a clone of
    /// `remote`, fetches), then checks out `git_ref` (a branch, tag or commit
    /// id; default: the remote's default branch) detached.
    pub fn prepare(
        &self,
        remote: &Remote,
        dest: &Path,
        git_ref: Option<&str>,
        token: Option<&SecretString>,
    ) -> Result<Checkout, GitError> {
        if let Some(r) = git_ref {
            check_ref_name(r).map_err(|m| GitError::new(GitOp::Checkout, m))?;
        }
        let url = remote.url();
        let cloned = if dest.join(".git").is_dir() {
            let origin = self
                .run(
                    GitOp::Fetch,
                    Some(dest),
                    &["config", "--get", "remote.origin.url"],
                    None,
                    None,
                )
                .map(|o| o.trim().to_owned())
                .unwrap_or_default();
            if origin != url {
                return Err(GitError::new(
                    GitOp::Fetch,
                    format!(
                        "{} is a clone of another remote; refusing to reuse it",
                        dest.display()
                    ),
                ));
            }
            self.run(
                GitOp::Fetch,
                Some(dest),
                &[
                    "fetch",
                    "--quiet",
                    "--prune",
                    "--tags",
                    "--end-of-options",
                    &url,
                    "+refs/heads/*:refs/remotes/origin/*",
                ],
                Some(remote),
                token,
            )?;
            false
        } else {
            let dest_s = dest
                .as_os_str()
                .to_str()
                .ok_or_else(|| GitError::new(GitOp::Clone, "the work dir path is not UTF-8"))?;
            self.run(
                GitOp::Clone,
                None,
                &[
                    "clone",
                    "--quiet",
                    "--no-checkout",
                    "--end-of-options",
                    &url,
                    dest_s,
                ],
                Some(remote),
                token,
            )?;
            true
        };
        let target = match git_ref {
            None => self.default_branch_commit(dest)?,
            Some(r) => match self.resolve_local(dest, r) {
                Some(c) => c,
                None => {
                    // Not a branch, tag or known commit: ask the server for it.
                    self.run(
                        GitOp::Fetch,
                        Some(dest),
                        &["fetch", "--quiet", "--end-of-options", &url, r],
                        Some(remote),
                        token,
                    )?;
                    self.rev_parse(dest, "FETCH_HEAD").ok_or_else(|| {
                        GitError::new(GitOp::Checkout, format!("ref {r:?} not found"))
                    })?
                }
            },
        };
        self.run(
            GitOp::Checkout,
            Some(dest),
            &["checkout", "--quiet", "--force", "--detach", &target],
            None,
            None,
        )?;
        // A reused work dir starts clean: no leftovers of an earlier job.
        self.run(
            GitOp::Checkout,
            Some(dest),
            &["clean", "--quiet", "-ffdx"],
            None,
            None,
        )?;
        Ok(Checkout {
            head: target,
            cloned,
        })
    }

    /// Commits every change in `dest` (including new files) on a new local
    /// branch `branch`. Returns `None` when there was nothing to commit.
    pub fn commit_all(
        &self,
        dest: &Path,
        branch: &str,
        message: &str,
    ) -> Result<Option<String>, GitError> {
        check_ref_name(branch).map_err(|m| GitError::new(GitOp::Commit, m))?;
        self.run(
            GitOp::Commit,
            Some(dest),
            &["checkout", "--quiet", "-B", branch],
            None,
            None,
        )?;
        self.run(GitOp::Commit, Some(dest), &["add", "--all"], None, None)?;
        let status = self.run(
            GitOp::Commit,
            Some(dest),
            &["status", "--porcelain"],
            None,
            None,
        )?;
        if status.trim().is_empty() {
            return Ok(None);
        }
        self.run(
            GitOp::Commit,
            Some(dest),
            &["commit", "--quiet", "--no-verify", "-m", message],
            None,
            None,
        )?;
        Ok(self.rev_parse(dest, "HEAD"))
    }

    /// Pushes `HEAD` of `dest` to `refs/heads/<branch>` on `remote`.
    pub fn push(
        &self,
        dest: &Path,
        remote: &Remote,
        branch: &str,
        token: Option<&SecretString>,
    ) -> Result<Published, GitError> {
        check_ref_name(branch).map_err(|m| GitError::new(GitOp::Push, m))?;
        let commit = self
            .rev_parse(dest, "HEAD")
            .ok_or_else(|| GitError::new(GitOp::Push, "nothing checked out"))?;
        let refspec = format!("{commit}:refs/heads/{branch}");
        self.run(
            GitOp::Push,
            Some(dest),
            &[
                "push",
                "--quiet",
                "--no-verify",
                "--end-of-options",
                &remote.url(),
                &refspec,
            ],
            Some(remote),
            token,
        )?;
        Ok(Published {
            branch: branch.to_owned(),
            commit,
        })
    }

    fn default_branch_commit(&self, dest: &Path) -> Result<String, GitError> {
        self.rev_parse(dest, "refs/remotes/origin/HEAD")
            .or_else(|| self.rev_parse(dest, "refs/remotes/origin/main"))
            .or_else(|| self.rev_parse(dest, "refs/remotes/origin/master"))
            .ok_or_else(|| GitError::new(GitOp::Checkout, "the remote has no default branch"))
    }

    /// The job's ref as a branch of the remote, a tag, or a full commit id
    /// known locally, in that order.
    fn resolve_local(&self, dest: &Path, r: &str) -> Option<String> {
        let is_full_id = r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit());
        self.rev_parse(dest, &format!("refs/remotes/origin/{r}"))
            .or_else(|| self.rev_parse(dest, &format!("refs/tags/{r}")))
            .or_else(|| {
                if is_full_id {
                    self.rev_parse(dest, r)
                } else {
                    None
                }
            })
    }

    /// `git rev-parse --verify <rev>^{commit}`.
    fn rev_parse(&self, dest: &Path, rev: &str) -> Option<String> {
        let spec = format!("{rev}^{{commit}}");
        self.run(
            GitOp::Checkout,
            Some(dest),
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ],
            None,
            None,
        )
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    }

    /// Runs one git command with the hardened environment; with a remote and
    /// a token, under a fresh credential session for that remote. Returns
    /// stdout.
    fn run(
        &self,
        op: GitOp,
        cwd: Option<&Path>,
        args: &[&str],
        remote: Option<&Remote>,
        token: Option<&SecretString>,
    ) -> Result<String, GitError> {
        let s = &self.settings;
        let session = match (remote, token) {
            (Some(remote), Some(token)) => {
                let n = self.sessions.fetch_add(1, Ordering::SeqCst);
                Some(
                    CredentialSession::open(
                        self.private.path(),
                        &format!("cred-{n}.sock"),
                        remote,
                        &s.username,
                        token,
                    )
                    .map_err(|e| {
                        GitError::new(
                            GitOp::Setup,
                            format!("cannot open the credential session: {e}"),
                        )
                    })?,
                )
            }
            _ => None,
        };
        let mut cmd = Command::new(&s.program);
        cmd.args(self.config_args()).args(args);
        self.set_env(&mut cmd);
        if let Some(dir) = cwd {
            // The work dir may have been edited by a job action: a `.git`
            // symlink, a planted `commondir` or `config.worktree` would make
            // git read configuration the worker never saw. Refuse those, and
            // pin git to the work dir's own `.git` for everything else.
            check_git_dir(dir).map_err(|m| GitError::new(op, m))?;
            let dir = std::path::absolute(dir)
                .map_err(|e| GitError::new(op, format!("cannot resolve {}: {e}", dir.display())))?;
            let git_dir = dir.join(".git");
            cmd.current_dir(&dir)
                .env("GIT_DIR", &git_dir)
                .env("GIT_COMMON_DIR", &git_dir)
                .env("GIT_WORK_TREE", &dir);
        }
        if let Some(session) = &session {
            cmd.env(credential::SOCKET_ENV, session.socket())
                .env(credential::NONCE_ENV, session.nonce());
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group: on timeout `git-remote-https` and the
        // credential helper must die with git (they hold the pipes open).
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .map_err(|e| GitError::new(op, format!("cannot run {}: {e}", s.program.display())))?;
        let mut stdout = child.stdout.take().expect("stdout was piped");
        let mut stderr = child.stderr.take().expect("stderr was piped");
        let out_thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let err_thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut stderr)
                .take(STDERR_LIMIT as u64)
                .read_to_end(&mut buf);
            // Drain the rest so git never blocks on a full pipe.
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            buf
        });
        // Nothing git started may outlive it, and the credential (held by the
        // session) goes away before anything else can wait.
        let status =
            crate::proc_group::wait_then_kill_group(&mut child, Instant::now() + s.timeout)
                .map_err(|e| GitError::new(op, format!("waiting for git: {e}")))?;
        drop(session);
        let pump_deadline = Instant::now() + PUMP_GRACE;
        let stdout = crate::proc_group::join_within(out_thread, pump_deadline);
        let stderr = crate::proc_group::join_within(err_thread, pump_deadline).unwrap_or_default();
        let Some(status) = status else {
            return Err(GitError::new(
                op,
                format!("timed out after {:?}", s.timeout),
            ));
        };
        if status.success() {
            let stdout = stdout.ok_or_else(|| {
                GitError::new(op, "git's output did not end (a process held it open)")
            })?;
            return Ok(String::from_utf8_lossy(&stdout).into_owned());
        }
        let what = match status.code() {
            Some(c) => format!("git {} exited with status {c}", args[0]),
            None => format!("git {} was killed by a signal", args[0]),
        };
        let message = match &s.stderr_filter {
            Some(filter) => {
                let text = String::from_utf8_lossy(whole_lines(&stderr));
                format!("{what}: {}", filter(text.trim()))
            }
            None => format!("{what} (stderr withheld: no redactor configured)"),
        };
        Err(GitError::new(op, message))
    }

    /// The `-c` options every git command gets. None holds a secret.
    fn config_args(&self) -> Vec<OsString> {
        let s = &self.settings;
        let mut helper = OsString::from("credential.helper=!");
        helper.push(shell_quote(s.helper.as_os_str()));
        helper.push(" git-credential");
        let mut pairs: Vec<OsString> = vec![
            // Empty first: resets the helper list from every config file.
            "credential.helper=".into(),
            helper,
            "credential.useHttpPath=true".into(),
            "core.askPass=".into(),
            "core.hooksPath=/dev/null".into(),
            "core.fsmonitor=false".into(),
            "http.proxy=".into(),
            "http.sslVerify=true".into(),
            "protocol.allow=never".into(),
            "protocol.https.allow=always".into(),
        ];
        if s.allow_http {
            pairs.push("protocol.http.allow=always".into());
        }
        let mut args = Vec::with_capacity(pairs.len() * 2);
        for p in pairs {
            args.push(OsString::from("-c"));
            args.push(p);
        }
        args
    }

    fn set_env(&self, cmd: &mut Command) {
        let s = &self.settings;
        cmd.env_clear();
        let mut path: Vec<PathBuf> = s.path_prepend.clone();
        if let Some(p) = std::env::var_os("PATH") {
            path.extend(std::env::split_paths(&p));
        }
        if let Ok(joined) = std::env::join_paths(path) {
            cmd.env("PATH", joined);
        }
        for name in PASS_THROUGH_ENV {
            if let Some(v) = std::env::var_os(name) {
                cmd.env(name, v);
            }
        }
        let tmp = s.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
        cmd.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("TMPDIR", tmp)
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "")
            .env("SSH_ASKPASS", "")
            .env("GIT_AUTHOR_NAME", &s.author_name)
            .env("GIT_AUTHOR_EMAIL", &s.author_email)
            .env("GIT_COMMITTER_NAME", &s.author_name)
            .env("GIT_COMMITTER_EMAIL", &s.author_email);
    }
}

/// Quotes a path for the shell git uses to run `!`-helpers.
fn shell_quote(s: &OsStr) -> OsString {
    let text = s.to_string_lossy();
    OsString::from(format!("'{}'", text.replace('\'', r"'\''")))
}

/// The git ref names a job may use (`ref`, branch names): exactly the rules of
/// `spec/codex-exec.md` §2.1, so the worker accepts every `ref` the payload
/// validator accepts. git's own `check-ref-format --allow-onelevel` rules, plus:
/// never starting with `-` (it could be taken for an option) and at most 255
/// characters.
pub fn check_ref_name(r: &str) -> Result<(), String> {
    let bad_byte = r
        .bytes()
        .any(|b| b < 0x21 || b == 0x7f || b"~^:?*[\\".contains(&b));
    let bad_component = r
        .split('/')
        .any(|c| c.starts_with('.') || c.ends_with(".lock"));
    let ok = !r.is_empty()
        && r.chars().count() <= 255
        && !r.starts_with('-')
        && !bad_byte
        && !r.starts_with('/')
        && !r.ends_with('/')
        && !r.contains("//")
        && !bad_component
        && !r.contains("..")
        && !r.contains("@{")
        && r != "@"
        && !r.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not an acceptable git ref name",
            r.escape_debug().to_string()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        for good in [
            "main",
            "feature/x-1",
            "v1.2.3",
            "0123abcd",
            "vaultref/job-42",
        ] {
            assert!(check_ref_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-x",
            "--upload-pack=evil",
            "a..b",
            "a//b",
            "/a",
            "a/",
            "a.lock",
            "a b",
            "a~1",
            "a^",
            "a:b",
            ".hidden",
            "a/.b",
            "HEAD@{1}",
        ] {
            assert!(check_ref_name(bad).is_err(), "{bad}");
        }
    }

    /// A token straddling the stderr limit: git (a stand-in printing 1 MiB
    /// minus 10 bytes, then a token) fails, and the message must not hold
    /// the token's first bytes, which the redactor cannot recognise alone.
    #[test]
    fn a_token_at_the_stderr_limit_is_not_cut_in_two() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake_git = dir.path().join("git");
        std::fs::write(
            &fake_git,
            format!(
                "#!/bin/sh\n{{ head -c {} /dev/zero | tr '\\0' 'a'; echo; \
                 echo 'ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE6006'; }} >&2\nexit 1\n",
                STDERR_LIMIT - 11
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake_git, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut settings = GitSettings::new(&fake_git);
        settings.program = fake_git.clone();
        settings.tmp_dir = Some(dir.path().to_owned());
        settings.stderr_filter = Some(Arc::new(|t: &str| crate::redact::redact(t)));
        let job = Git::new(settings).begin_job().unwrap();
        let e = job.check_config(dir.path()).unwrap_err();
        assert!(
            e.message().contains("exited with status 1"),
            "{}",
            &e.message()[..80]
        );
        assert!(!e.message().contains("ghp_"), "a token prefix leaked");
    }

    #[test]
    fn helper_path_is_shell_quoted() {
        assert_eq!(
            shell_quote(OsStr::new("/a b/it's")),
            OsString::from(r"'/a b/it'\''s'")
        );
    }
}
