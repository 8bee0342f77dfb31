//! The worker runtime: takes a validated `codex_exec` job, checks the queue
//! policy before touching Vault, resolves the job's refs at the moment of use,
//! runs git with transient credentials, and returns an [`Outcome`].
//!
//! # One job, step by step
//!
//! 1. **Queue policy** (job type, then repository, exact match). A refusal
//!    ends the job `failed` with `job_type_not_allowed` or
//!    `repository_not_allowed`, and *no Vault request is made*: the first half
//!    of the design's defence in depth. The second half is Vault's own policy.
//! 2. **Ref policy**: `repoAuthRef` (or, when the job has none, the worker's
//!    [`WorkerSettings::default_repo_auth_ref`] bound to the job) and (when
//!    publishing) `publishAuthRef` against the worker's [`RefPolicy`], with
//!    scopes bound to the job's repository and the worker id (`ref_*` codes,
//!    still no Vault request).
//! 3. **Degraded mode** ([`health`]): a job that needs a secret while Vault is
//!    known to be down is `declined` (it stays queued). A job that needs none
//!    runs anyway.
//! 4. **Resolve `repoAuthRef`** (bounded by [`WorkerSettings::resolve_timeout`]);
//!    a `vault_unavailable` failure ends this job `failed` and switches the
//!    worker into degraded mode. The value is registered with the job's
//!    redactor before anything else happens.
//! 5. **Prepare**: clone (or fetch, for `workdirMode: reuse`) and check out
//!    `ref`, detached ([`crate::git`]).
//! 6. **Job action** ([`JobAction`]), if any: edits the checkout. The
//!    worker's `.git/config` is put back afterwards, so nothing the action
//!    wrote there (a proxy, a filter, a helper) applies to the push; a `.git`
//!    made a symlink, or holding a planted `commondir`, `config.worktree` or
//!    `worktrees/`, fails the job (`action_failed`), and every later git
//!    command is pinned to `<work dir>/.git` (`GIT_DIR`, `GIT_COMMON_DIR`).
//! 7. **Publish** (`publish.mode` `branch` or `pr`): commit every change on
//!    `<branch_prefix><job id>`, resolve `publishAuthRef` (falling back to
//!    `repoAuthRef`, read again so a rotation in between is honoured; the same
//!    ref is not read twice), push. `pr` pushes the branch; opening the pull
//!    request is out of scope and said so in the outcome.
//! 8. **Outcome**: `completed`, `failed` with a code, or `declined`. Secrets
//!    are dropped (zeroized by `secrecy`) when the job ends; the job's
//!    private directory (git `HOME`, credential sockets) is removed.
//!
//! Everything the worker logs goes through the job's redactor ([`log`]),
//! including git's stderr and the action's output. Each outcome, and each
//! degraded-mode transition, is also an [`Event`] for alerting ([`events`]).
//!
//! Jobs may run concurrently; a lock per work dir makes jobs that share one
//! (`workdirMode: reuse` on the same repository) take turns.
//!
//! Trade-off: git and the action are blocking processes run on Tokio's
//! blocking pool, so a job holds one blocking thread while git runs; Vault
//! calls stay async so that degraded-mode timeouts are exact.

pub mod action;
pub mod events;
pub mod health;
pub mod log;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::error::ErrorCode;
use crate::git::{ActionError, Git, GitError, GitSettings, Published, Remote};
use crate::payload::{CodexExecJob, PublishMode, QueuePolicy, WorkdirMode};
use crate::vault::{Credential, Resolver, ShardStore};
use crate::{RefPolicy, RefTemplate, ScopeContext, SecretRef};

pub use action::{ActionContext, ActionFn, ActionUser, Isolation, IsolationStatus, JobAction};
pub use events::{Event, EventSink, HealthEvent, JobEvent};
pub use health::{Backoff, Health, HealthStatus};
pub use log::{JobLog, LogSink, SinkWriter, stderr_sink};

/// The `type` of the jobs this worker runs.
pub const JOB_TYPE: &str = "codex_exec";

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// The worker's id, bound to `{worker_id}` in ref scopes.
    pub worker_id: String,
    /// Which repositories and job types this worker may take.
    pub queue_policy: QueuePolicy,
    /// What refs a job may name (mounts, length, scopes).
    pub ref_policy: RefPolicy,
    /// Where work dirs are created: `jobs/<job id>` for fresh clones,
    /// `repos/<owner>__<repo>-<url hash>` for `workdirMode: reuse`
    /// ([`reuse_dir_name`]).
    pub work_root: PathBuf,
    /// The base URL for `owner/repo` slugs (default `https://github.com`).
    pub git_base_url: String,
    /// The git hosts (`host` or `host:port`) credentials may be sent to; a
    /// job whose remote is on another host fails `git_host_not_allowed`
    /// before any Vault request. Empty (the default): the host of
    /// `git_base_url` only (`spec/resolver.md` G10).
    pub allowed_git_hosts: Vec<String>,
    /// How git is run.
    pub git: GitSettings,
    /// Time limit for one resolution; past it the job fails with
    /// `vault_unavailable` (default 30 s).
    pub resolve_timeout: Duration,
    /// Degraded-mode probing.
    pub backoff: Backoff,
    /// Prefix of published branches (default `vaultref/`).
    pub branch_prefix: String,
    /// How command actions are isolated (default: a PID namespace, and
    /// command actions refused where it is unavailable; W9).
    pub action_isolation: Isolation,
    /// Who an isolated command action runs as (default `nobody`,
    /// 65534:65534); never the worker's own user (W9).
    pub action_user: ActionUser,
    /// The ref used when a job carries no `repoAuthRef`, e.g.
    /// `vault://kv/moonmind/workers/{worker_id}/github#token`: bound to the
    /// job like a scope and checked by `ref_policy` like a job's own ref
    /// (W10). Default none: such a job gets no credential.
    pub default_repo_auth_ref: Option<RefTemplate>,
    /// The Codex auth volume shard this worker's jobs use
    /// (`spec/codex-shards.md` §3): when set, a job runs only while the
    /// shard's record in Vault names this worker as owner with a live lease,
    /// and fails `codex_shard_not_owned` otherwise. Default none.
    pub codex_shard: Option<String>,
    /// Where shard records live (default `kv`, `moonmind/codex/shards`).
    pub codex_shard_store: ShardStore,
    /// Environment variables for the job action, each from a ref template
    /// (`CODEX_API_KEY` from `vault://kv/moonmind/codex/prod#api_key`):
    /// bound and checked like the default ref, resolved when the action is
    /// about to run, registered with the job's redactor, given to the
    /// action only, dropped when it ends (`spec/resolver.md` W12). Names are
    /// `[A-Z_][A-Z0-9_]*` and not `PATH`, `LC_ALL`, `HOME`, `VAULTREF_*`,
    /// `LD_*` or `GIT_*`. Default none.
    pub action_env: Vec<(String, RefTemplate)>,
}

impl WorkerSettings {
    /// Settings with defaults for everything but the id, the work root and git.
    pub fn new(worker_id: &str, work_root: impl Into<PathBuf>, git: GitSettings) -> WorkerSettings {
        WorkerSettings {
            worker_id: worker_id.to_owned(),
            queue_policy: QueuePolicy::default(),
            ref_policy: RefPolicy::default(),
            work_root: work_root.into(),
            git_base_url: "https://github.com".to_owned(),
            allowed_git_hosts: Vec::new(),
            git,
            resolve_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            branch_prefix: "vaultref/".to_owned(),
            action_isolation: Isolation::default(),
            action_user: ActionUser::default(),
            default_repo_auth_ref: None,
            codex_shard: None,
            codex_shard_store: ShardStore::default(),
            action_env: Vec::new(),
        }
    }
}

/// A job handed to the worker: the validated payload and the queue's job id.
#[derive(Clone, Debug)]
pub struct WorkerJob {
    /// The queue's job id (logged, sent to Vault as a header, names the branch).
    pub id: String,
    /// The validated payload (`crate::payload::validate`).
    pub job: CodexExecJob,
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The job ran to the end.
    Completed(Completion),
    /// The job failed; `code` says why. The message holds no secret.
    Failed {
        /// The error code.
        code: ErrorCode,
        /// A message for people.
        message: String,
    },
    /// The worker did not take the job (Vault is down and the job needs a
    /// secret); it stays queued.
    Declined {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// The error code of a failed job.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Outcome::Failed { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// `completed`, `failed` or `declined`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Completed(_) => "completed",
            Outcome::Failed { .. } => "failed",
            Outcome::Declined { .. } => "declined",
        }
    }
}

/// What a completed job did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The work dir.
    pub work_dir: PathBuf,
    /// The commit checked out before the action ran.
    pub checked_out: String,
    /// The branch pushed, if the job published and had changes.
    pub published: Option<Published>,
    /// Remarks (e.g. "nothing to publish", "pull request not opened").
    pub notes: Vec<String>,
}

/// A failure inside a job, turned into [`Outcome::Failed`] at the end.
struct Fail {
    code: ErrorCode,
    message: String,
}

impl From<GitError> for Fail {
    fn from(e: GitError) -> Fail {
        Fail {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

fn fail(code: ErrorCode, message: impl Into<String>) -> Fail {
    Fail {
        code,
        message: message.into(),
    }
}

/// The worker. Share it with `Arc`; jobs may run concurrently.
pub struct Worker {
    settings: WorkerSettings,
    resolver: Option<Arc<Resolver>>,
    git: Git,
    health: Arc<Health>,
    sink: LogSink,
    events: EventSink,
    /// What action isolation this machine gives (probed once, at start).
    isolation: IsolationStatus,
    /// One lock per work dir: two jobs never share a checkout at the same
    /// time (`workdirMode: reuse`, or a job id submitted twice).
    dir_locks: std::sync::Mutex<std::collections::HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("settings", &self.settings)
            .field("vault", &self.resolver.is_some())
            .field("health", &self.health.status())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker. `resolver` is `None` when no Vault is configured: jobs that
    /// carry a ref then fail with `vault_not_configured`. `sink` receives the
    /// (redacted) log.
    /// Probes action isolation once and says in the log what it found.
    pub fn new(settings: WorkerSettings, resolver: Option<Arc<Resolver>>, sink: LogSink) -> Worker {
        let isolation = IsolationStatus::probe(settings.action_isolation, settings.action_user);
        {
            let mut out = sink.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(
                out,
                "worker {}: {}",
                settings.worker_id,
                isolation.describe()
            );
        }
        Worker {
            git: Git::new(settings.git.clone()),
            settings,
            resolver,
            health: Arc::new(Health::default()),
            sink,
            events: EventSink::Off,
            isolation,
            dir_locks: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Sends this worker's job and degraded-mode events to `events`
    /// (`spec/events.md`). Call before the first job.
    pub fn with_events(mut self, events: EventSink) -> Worker {
        self.health = Arc::new(Health::with_events(
            &self.settings.worker_id,
            events.clone(),
        ));
        self.events = events;
        self
    }

    /// What action isolation this worker has (`spec/resolver.md` W9).
    pub fn isolation(&self) -> &IsolationStatus {
        &self.isolation
    }

    /// The settings.
    pub fn settings(&self) -> &WorkerSettings {
        &self.settings
    }

    /// Vault health as this worker sees it.
    pub fn health(&self) -> HealthStatus {
        self.health.status()
    }

    /// Whether a job needs a secret from Vault (and would be declined while
    /// the worker is degraded): it names a ref, or this worker has a
    /// default `repoAuthRef`.
    pub fn needs_secret(&self, job: &CodexExecJob) -> bool {
        job.repo_auth_ref().is_some()
            || (publishes(job) && job.publish_auth_ref().is_some())
            || self.settings.default_repo_auth_ref.is_some()
            || !self.settings.action_env.is_empty()
    }

    /// Runs one job to its outcome, with `action` editing the checkout, and
    /// sends its event.
    pub async fn run_job(&self, job: &WorkerJob, action: Option<&JobAction>) -> Outcome {
        let started = Instant::now();
        let mut log = JobLog::new(
            &job.id,
            Arc::clone(&self.sink),
            std::slice::from_ref(&self.settings.git.username),
        );
        let outcome = self.run_logged(job, action, &mut log).await;
        if !matches!(self.events, EventSink::Off) {
            self.events
                .emit(&Event::Job(self.job_event(job, &outcome, &log, started)));
        }
        outcome
    }

    /// The event of a job that ended with `outcome`. Every text a job
    /// submitter controls goes through the job's redactor.
    fn job_event(
        &self,
        job: &WorkerJob,
        outcome: &Outcome,
        log: &JobLog,
        started: Instant,
    ) -> JobEvent {
        let redactor = log.redactor();
        let (code, reason, published_branch) = match outcome {
            Outcome::Completed(c) => (None, None, c.published.as_ref().map(|p| p.branch.clone())),
            Outcome::Failed { code, message } => (Some(*code), Some(message.clone()), None),
            Outcome::Declined { reason } => (None, Some(reason.clone()), None),
        };
        JobEvent {
            format: events::EVENT_FORMAT,
            time: events::now_rfc3339(),
            worker_id: self.settings.worker_id.clone(),
            job_id: redactor.redact(&job.id),
            outcome: outcome.kind(),
            code,
            reason: reason.map(|r| redactor.redact(&r)),
            repository: redactor.redact(job.job.repository()),
            refs: log.refs.iter().map(|r| redactor.redact(r)).collect(),
            duration_ms: events::millis(started.elapsed()),
            vault_request_ids: log.request_ids.clone(),
            published_branch: published_branch.map(|b| redactor.redact(&b)),
        }
    }

    async fn run_logged(
        &self,
        job: &WorkerJob,
        action: Option<&JobAction>,
        log: &mut JobLog,
    ) -> Outcome {
        log.line(&format!("taken: repository {}", job.job.repository()));
        let outcome = match self.run_inner(job, action, log).await {
            Ok(done) => Ok(done),
            Err(JobEnd::Declined(reason)) => {
                log.line(&format!("declined: {reason}"));
                return Outcome::Declined { reason };
            }
            Err(JobEnd::Failed(f)) => Err(f),
        };
        let redactor = log.redactor();
        match outcome {
            Ok(c) => {
                log.line(&format!(
                    "completed at {}{}",
                    c.checked_out,
                    c.published
                        .as_ref()
                        .map(|p| format!(", pushed {} to {}", p.commit, p.branch))
                        .unwrap_or_default()
                ));
                Outcome::Completed(c)
            }
            Err(f) => {
                // Messages are built without secrets; redact anyway (defence
                // in depth: git stderr and action errors flow into them).
                let message = redactor.redact(&f.message);
                log.line(&format!("failed [{}]: {message}", f.code));
                Outcome::Failed {
                    code: f.code,
                    message,
                }
            }
        }
    }

    /// Admit, act, publish: the three stages of a job (`spec/resolver.md` §11).
    async fn run_inner(
        &self,
        wj: &WorkerJob,
        action: Option<&JobAction>,
        log: &mut JobLog,
    ) -> Result<Completion, JobEnd> {
        let admitted = self.admit(wj)?;
        self.check_shard(wj).await?;
        let acted = self.act(wj, &admitted, action, log).await?;
        self.publish(wj, &admitted, acted, log).await
    }

    /// A worker with a Codex shard runs a job only while it owns the shard
    /// (`spec/codex-shards.md` §3): read before any other Vault read for the
    /// job, and before the volume or git is touched.
    async fn check_shard(&self, wj: &WorkerJob) -> Result<(), JobEnd> {
        let Some(shard) = &self.settings.codex_shard else {
            return Ok(());
        };
        let Some(resolver) = &self.resolver else {
            return Err(fail(
                ErrorCode::VaultNotConfigured,
                format!(
                    "job {}: the worker has a Codex shard but no Vault settings",
                    wj.id
                ),
            )
            .into());
        };
        let me = &self.settings.worker_id;
        match resolver
            .shard_status(&self.settings.codex_shard_store, shard)
            .await
        {
            Ok(rec) if rec.owned_by(me) => Ok(()),
            Ok(rec) => {
                let holder = if rec.live {
                    format!("worker `{}` holds it", rec.owner_shown())
                } else {
                    "no live lease".to_owned()
                };
                Err(fail(
                    ErrorCode::CodexShardNotOwned,
                    format!(
                        "job {}: worker `{me}` does not own Codex shard `{shard}` ({holder}); claim it first (`vaultref codex claim`)",
                        wj.id
                    ),
                )
                .into())
            }
            Err(e) => Err(fail(
                e.code(),
                format!("job {}: Codex shard `{shard}`: {}", wj.id, e.message()),
            )
            .into()),
        }
    }

    /// Steps 1-3: queue policy, ref policy, degraded mode, remote. Nothing
    /// here touches Vault or git: a job refused here leaves no trace there.
    fn admit(&self, wj: &WorkerJob) -> Result<Admitted, JobEnd> {
        let job = &wj.job;
        let s = &self.settings;

        // 1. Queue policy, before anything touches Vault.
        if !s.queue_policy.allows_job_type(JOB_TYPE) {
            return Err(fail(
                ErrorCode::JobTypeNotAllowed,
                format!("job {}: this worker does not take {JOB_TYPE} jobs", wj.id),
            )
            .into());
        }
        if !s.queue_policy.allows_repository(job.repository()) {
            return Err(fail(
                ErrorCode::RepositoryNotAllowed,
                format!(
                    "job {}: repository {} is not in this worker's allowed repositories",
                    wj.id,
                    job.repository()
                ),
            )
            .into());
        }

        // 2. Ref policy, scopes bound to this job.
        let ctx = ScopeContext {
            repository: job.repository_slug(),
            worker_id: Some(s.worker_id.clone()),
        };
        let publishing = publishes(job);
        let repo_ref = match job.repo_auth_ref() {
            Some(r) => Some(r.clone()),
            None => self.default_repo_ref(&ctx, &wj.id)?,
        };
        let publish_ref = if publishing {
            job.publish_auth_ref().or(repo_ref.as_ref()).cloned()
        } else {
            None
        };
        let action_env = self.action_env_refs(&ctx, &wj.id)?;
        for r in repo_ref
            .iter()
            .chain(publish_ref.iter())
            .chain(action_env.iter().map(|(_, r)| r))
        {
            s.ref_policy
                .check_parsed(r, &ctx)
                .map_err(|e| fail(e.code(), format!("job {}: {r}: {}", wj.id, e.message())))?;
        }

        // 3. Degraded mode.
        if let Some(r) = repo_ref
            .as_ref()
            .or(publish_ref.as_ref())
            .or(action_env.first().map(|(_, r)| r))
        {
            if self.resolver.is_none() {
                return Err(fail(
                    ErrorCode::VaultNotConfigured,
                    crate::vault::ResolveError::not_configured(&r.to_string(), &wj.id).message(),
                )
                .into());
            }
            if self.health.is_degraded() {
                return Err(JobEnd::Declined(
                    "Vault is unavailable and this job needs a secret; it stays queued".into(),
                ));
            }
        }

        let remote = self
            .remote_for(job)
            .map_err(|m| fail(ErrorCode::GitFailed, m))?;
        // 4. The host: a credential goes only where the worker allows.
        if (repo_ref.is_some() || publish_ref.is_some()) && !self.host_allowed(&remote) {
            return Err(fail(
                ErrorCode::GitHostNotAllowed,
                format!(
                    "job {}: the repository is on {}, which is not one of this worker's git hosts",
                    wj.id,
                    remote.host()
                ),
            )
            .into());
        }
        Ok(Admitted {
            repo_ref,
            publish_ref,
            action_env,
            publishing,
            remote,
        })
    }

    /// Steps 4-7a: resolve `repoAuthRef` at the moment of use, then prepare,
    /// run the action (through [`crate::git::GitJob::run_action`]) and commit,
    /// on the blocking pool, holding the work dir's lock until the job ends.
    async fn act(
        &self,
        wj: &WorkerJob,
        admitted: &Admitted,
        action: Option<&JobAction>,
        log: &mut JobLog,
    ) -> Result<Acted, JobEnd> {
        let job = &wj.job;
        let read = match &admitted.repo_ref {
            Some(r) => Some(self.resolve(r, &wj.id, &admitted.remote, log).await?),
            None => None,
        };
        let work_dir = self.work_dir(wj, &admitted.remote)?;
        let dir_lock = {
            let mut locks = self.dir_locks.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(locks.entry(work_dir.clone()).or_default())
        };
        let dir_guard = dir_lock.lock_owned().await;
        let git_job = self.git.begin_job()?;
        let redactor = log.redactor();
        let git_job = git_job
            .with_stderr_filter(Arc::new(move |t: &str| redactor.redact(t)))
            .with_username(self.username_for(read.as_ref()))?;
        let read_token = read.map(|c| c.value);
        // W12: resolved now, for the action only; dropped (zeroized) with
        // the blocking task, when the action has ended.
        let mut action_env: Vec<(String, SecretString)> = Vec::new();
        if action.is_some() {
            for (name, r) in &admitted.action_env {
                let c = self.resolve(r, &wj.id, &admitted.remote, log).await?;
                action_env.push((name.clone(), c.value));
            }
        }
        let branch = format!("{}{}", self.settings.branch_prefix, sanitize(&wj.id));
        let fresh = job.workdir_mode() != Some(WorkdirMode::Reuse);
        let publishing = admitted.publishing;
        let remote = admitted.remote.clone();
        let dir = work_dir.clone();
        let action = action.cloned();
        let id = wj.id.clone();
        let instruction = job.instruction().to_owned();
        let git_ref = job.git_ref().map(str::to_owned);
        let action_log = log.clone();
        let isolation = self.isolation.clone();
        let commit_branch = branch.clone();
        let (git_job, checked_out, commit) =
            tokio::task::spawn_blocking(move || -> Result<_, Fail> {
                if fresh && dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| {
                        fail(
                            ErrorCode::GitFailed,
                            format!("cannot clear the work dir: {e}"),
                        )
                    })?;
                }
                let checkout =
                    git_job.prepare(&remote, &dir, git_ref.as_deref(), read_token.as_ref())?;
                drop(read_token);
                action_log.line(&format!(
                    "checked out {} ({})",
                    checkout.head,
                    if checkout.cloned { "cloned" } else { "fetched" }
                ));
                if let Some(action) = &action {
                    let ctx = ActionContext {
                        job_id: &id,
                        instruction: &instruction,
                        work_dir: &dir,
                        env: &action_env,
                    };
                    // A command action runs as another user (W9): the work
                    // dir is theirs for the action's time only.
                    let owner = match action {
                        JobAction::Command { .. } => isolation.action_user(),
                        JobAction::Callback(_) => None,
                    };
                    git_job
                        .run_action(&dir, owner.map(|u| (u.uid, u.gid)), || {
                            action.run(&ctx, &isolation, &action_log)
                        })
                        .map_err(|e| match e {
                            ActionError::Action(m) => fail(ErrorCode::ActionFailed, m),
                            ActionError::Git(e) => e.into(),
                        })?;
                }
                let commit = if publishing {
                    git_job.commit_all(&dir, &commit_branch, &format!("vaultref job {id}"))?
                } else {
                    None
                };
                Ok((git_job, checkout.head, commit))
            })
            .await
            .map_err(|e| fail(ErrorCode::GitFailed, format!("the git task failed: {e}")))??;
        Ok(Acted {
            git_job,
            work_dir,
            branch,
            checked_out,
            commit,
            _dir_guard: dir_guard,
        })
    }

    /// Step 7b: when publishing and the job changed files, resolve
    /// `publishAuthRef` (or `repoAuthRef`) now, at push time, and push.
    async fn publish(
        &self,
        wj: &WorkerJob,
        admitted: &Admitted,
        acted: Acted,
        log: &mut JobLog,
    ) -> Result<Completion, JobEnd> {
        let Acted {
            git_job,
            work_dir,
            branch,
            checked_out,
            commit,
            _dir_guard,
        } = acted;
        let mut done = Completion {
            work_dir,
            checked_out,
            published: None,
            notes: Vec::new(),
        };
        if !admitted.publishing {
            return Ok(done);
        }
        if commit.is_none() {
            done.notes
                .push("nothing to publish: the job changed no file".to_owned());
            return Ok(done);
        }
        let push = match &admitted.publish_ref {
            Some(r) => Some(self.resolve(r, &wj.id, &admitted.remote, log).await?),
            None => None,
        };
        let redactor = log.redactor();
        let git_job = git_job
            .with_stderr_filter(Arc::new(move |t: &str| redactor.redact(t)))
            .with_username(self.username_for(push.as_ref()))?;
        let push_token = push.map(|c| c.value);
        let remote = admitted.remote.clone();
        let work_dir = done.work_dir.clone();
        let published = tokio::task::spawn_blocking(move || {
            git_job.push(&work_dir, &remote, &branch, push_token.as_ref())
        })
        .await
        .map_err(|e| fail(ErrorCode::GitFailed, format!("the git task failed: {e}")))??;
        if wj.job.publish().mode() == PublishMode::Pr {
            done.notes.push(
                "publish.mode pr: branch pushed; opening the pull request is out of scope"
                    .to_owned(),
            );
        }
        done.published = Some(published);
        Ok(done)
    }

    /// The worker's default `repoAuthRef` bound to this job (W10): `None`
    /// when the worker has none; `ref_out_of_scope` when a variable it names
    /// cannot be bound for this job (fail closed: no credential is guessed).
    fn default_repo_ref(
        &self,
        ctx: &ScopeContext,
        job_id: &str,
    ) -> Result<Option<SecretRef>, Fail> {
        self.settings
            .default_repo_auth_ref
            .as_ref()
            .map(|t| bind_template(t, ctx, job_id, "the worker's default repoAuthRef"))
            .transpose()
    }

    /// The worker's `action_env`, bound to this job (W12): every name valid,
    /// every template bound, or the job fails before any Vault request.
    fn action_env_refs(
        &self,
        ctx: &ScopeContext,
        job_id: &str,
    ) -> Result<Vec<(String, SecretRef)>, Fail> {
        let mut out = Vec::new();
        for (name, template) in &self.settings.action_env {
            if !valid_action_env_name(name) {
                return Err(fail(
                    ErrorCode::ConfigInvalid,
                    format!(
                        "job {job_id}: action_env name `{}` is not allowed ([A-Z_][A-Z0-9_]*, not PATH, LC_ALL, HOME, VAULTREF_*, LD_* or GIT_*)",
                        name.escape_debug()
                    ),
                ));
            }
            let r = bind_template(template, ctx, job_id, &format!("action_env {name}"))?;
            out.push((name.clone(), r));
        }
        Ok(out)
    }

    /// Whether the worker's allowed git hosts include `remote`'s.
    fn host_allowed(&self, remote: &Remote) -> bool {
        if self.settings.allowed_git_hosts.is_empty() {
            return Remote::from_slug(&self.settings.git_base_url, "o/r", true)
                .is_ok_and(|base| crate::git::remote::host_matches(base.host(), remote));
        }
        self.settings
            .allowed_git_hosts
            .iter()
            .any(|h| crate::git::remote::host_matches(h, remote))
    }

    /// The user name git sends with a credential: the secret document's
    /// `username` when it has one, else the worker's.
    fn username_for(&self, c: Option<&Credential>) -> String {
        c.and_then(|c| c.username.clone())
            .unwrap_or_else(|| self.settings.git.username.clone())
    }

    /// Resolves one ref with the timeout, registering the value with the
    /// job's redactor, and checks the document's `host` against `remote`
    /// (G10). `vault_unavailable` switches on degraded mode.
    async fn resolve(
        &self,
        r: &SecretRef,
        job_id: &str,
        remote: &Remote,
        log: &mut JobLog,
    ) -> Result<Credential, Fail> {
        let resolver = self.resolver.as_ref().expect("checked by the caller");
        log.refs.push(r.to_string());
        let result = tokio::time::timeout(
            self.settings.resolve_timeout,
            resolver.resolve_credential(r, job_id),
        )
        .await;
        let value = match result {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                if e.code() == ErrorCode::VaultUnavailable {
                    self.health.mark_unavailable(
                        resolver,
                        self.settings.backoff,
                        &log.redactor().redact(e.message()),
                    );
                }
                return Err(fail(e.code(), e.message()));
            }
            Err(_) => {
                let message = format!(
                    "job {job_id}: {r}: Vault did not answer within {:?}",
                    self.settings.resolve_timeout
                );
                self.health.mark_unavailable(
                    resolver,
                    self.settings.backoff,
                    &log.redactor().redact(&message),
                );
                return Err(fail(ErrorCode::VaultUnavailable, message));
            }
        };
        if let Some(id) = &value.request_id {
            log.request_ids.push(id.clone());
        }
        if let Some(u) = &value.username {
            log.add_username(u);
        }
        log.register(&value.value)
            .map_err(|(code, m)| fail(code, format!("job {job_id}: {r}: {m}")))?;
        if let Some(host) = &value.host
            && !crate::git::remote::host_matches(host, remote)
        {
            return Err(fail(
                ErrorCode::GitHostNotAllowed,
                format!(
                    "job {job_id}: {r}: the secret is bound to another host than {}; it is not sent",
                    remote.host()
                ),
            ));
        }
        log.line(&format!("resolved {r}"));
        Ok(value)
    }

    fn remote_for(&self, job: &CodexExecJob) -> Result<Remote, String> {
        let repo = job.repository();
        let allow_http = self.settings.git.allow_http;
        let parsed = if repo.contains("://") {
            Remote::parse(repo, allow_http)
        } else {
            Remote::from_slug(&self.settings.git_base_url, repo, allow_http)
        };
        parsed.map_err(|e| format!("cannot use repository {repo}: {e}"))
    }

    fn work_dir(&self, wj: &WorkerJob, remote: &Remote) -> Result<PathBuf, Fail> {
        let s = &self.settings;
        let dir = if wj.job.workdir_mode() == Some(WorkdirMode::Reuse) {
            let slug = wj
                .job
                .repository_slug()
                .unwrap_or_else(|| wj.job.repository().to_owned());
            s.work_root
                .join("repos")
                .join(reuse_dir_name(&slug, &remote.url()))
        } else {
            s.work_root.join("jobs").join(sanitize(&wj.id))
        };
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                fail(
                    ErrorCode::GitFailed,
                    format!("cannot create {}: {e}", parent.display()),
                )
            })?;
        }
        Ok(dir)
    }
}

/// What admission decided: the refs to resolve and where git goes.
struct Admitted {
    repo_ref: Option<SecretRef>,
    publish_ref: Option<SecretRef>,
    /// `action_env` bound to this job (W12).
    action_env: Vec<(String, SecretRef)>,
    publishing: bool,
    remote: Remote,
}

/// What the act stage left: the checkout, the commit to publish, and the
/// work dir's lock (held until the job ends, push included).
struct Acted {
    git_job: crate::git::GitJob,
    work_dir: PathBuf,
    branch: String,
    checked_out: String,
    commit: Option<String>,
    _dir_guard: tokio::sync::OwnedMutexGuard<()>,
}

/// How `run_inner` ends early.
enum JobEnd {
    Failed(Fail),
    Declined(String),
}

impl From<Fail> for JobEnd {
    fn from(f: Fail) -> JobEnd {
        JobEnd::Failed(f)
    }
}

impl From<GitError> for JobEnd {
    fn from(e: GitError) -> JobEnd {
        JobEnd::Failed(e.into())
    }
}

/// The directory name of a `workdirMode: reuse` work dir: a readable prefix
/// (the slug, sanitized, at most 40 bytes) and the first 16 hex digits of the
/// SHA-256 of the full remote URL. The hash tells apart what sanitizing
/// merges (`Acme/my.repo` and `Acme/my_repo`) and the same slug on two hosts.
pub fn reuse_dir_name(slug: &str, remote_url: &str) -> String {
    use sha2::Digest;
    let prefix: String = sanitize(&slug.replace('/', "__"))
        .chars()
        .take(40)
        .collect();
    let digest = sha2::Sha256::digest(remote_url.as_bytes());
    format!("{prefix}-{}", &hex::encode(digest)[..16])
}

fn publishes(job: &CodexExecJob) -> bool {
    job.publish().mode() != PublishMode::None
}

/// A job id or slug as one safe path segment / ref component:
/// `[A-Za-z0-9_-]`, others replaced by `_` (so never `.` or `..`), at most 64 bytes.
pub fn sanitize(id: &str) -> String {
    let mut s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() {
        s.push_str("job");
    }
    s
}

/// `template` bound to the job of `ctx` (W10, W12): its bind error, or
/// `ref_out_of_scope` when it names a variable this job cannot bind (fail
/// closed: no credential is guessed). `what` names the setting in messages.
fn bind_template(
    template: &RefTemplate,
    ctx: &ScopeContext,
    job_id: &str,
    what: &str,
) -> Result<SecretRef, Fail> {
    match template.bind(ctx) {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(fail(
            e.code(),
            format!("job {job_id}: {what}: {}", e.message()),
        )),
        None => Err(fail(
            ErrorCode::RefOutOfScope,
            format!("job {job_id}: {what} `{template}` names a variable this job cannot bind"),
        )),
    }
}

/// An `action_env` name (W12): an environment variable name that does not
/// replace what the action's environment is made of or steer a loader or git.
fn valid_action_env_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_uppercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
        && !["PATH", "LC_ALL", "HOME"].contains(&name)
        && !["VAULTREF_", "LD_", "GIT_"]
            .iter()
            .any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_makes_one_safe_segment() {
        assert_eq!(sanitize("job-42_a"), "job-42_a");
        assert_eq!(sanitize("../../etc"), "______etc");
        assert_eq!(sanitize("a/b c.d"), "a_b_c_d");
        assert_eq!(sanitize(""), "job");
        assert_eq!(sanitize(&"x".repeat(100)).len(), 64);
        assert!(crate::git::check_ref_name(&format!("vaultref/{}", sanitize(".lock"))).is_ok());
    }

    #[test]
    fn reused_work_dirs_never_merge_two_remotes() {
        let root = tempfile::tempdir().unwrap();
        let mut settings = WorkerSettings::new(
            "w",
            root.path(),
            crate::git::GitSettings::new("/nonexistent"),
        );
        settings.git_base_url = "https://github.com".to_owned();
        let worker = Worker::new(settings, None, log::stderr_sink());
        let dir = |repo: &str, base: &str| {
            let bytes = serde_json::to_vec(&serde_json::json!({
                "type": "codex_exec",
                "payload": {"repository": repo, "instruction": "x", "workdirMode": "reuse"},
            }))
            .unwrap();
            let job = crate::payload::validate(&bytes, &Default::default()).unwrap();
            let remote = Remote::from_slug(base, repo, false).unwrap();
            let wj = WorkerJob {
                id: "j".to_owned(),
                job,
            };
            worker.work_dir(&wj, &remote).ok().unwrap()
        };
        let a = dir("Acme/my.repo", "https://github.com");
        assert_ne!(a, dir("Acme/my_repo", "https://github.com"));
        assert_ne!(a, dir("Acme/my.repo", "https://git.example.com"));
        assert_eq!(a, dir("Acme/my.repo", "https://github.com"));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("Acme__my_repo-"), "{name}");
        assert_eq!(name.len(), "Acme__my_repo-".len() + 16);
    }

    #[test]
    fn outcome_kinds() {
        let f = Outcome::Failed {
            code: ErrorCode::GitFailed,
            message: String::new(),
        };
        assert_eq!((f.kind(), f.code()), ("failed", Some(ErrorCode::GitFailed)));
        let d = Outcome::Declined {
            reason: String::new(),
        };
        assert_eq!((d.kind(), d.code()), ("declined", None));
    }
}
