//! Running a selection of scenarios against one implementation.
//!
//! Two kinds of scenario, run differently:
//!
//! - *vector* scenarios (one `check_ref` or `check_payload` request each) are
//!   stateless, so they share one implementation process and run one after the
//!   other: hundreds of vectors cost one process start;
//! - *live* scenarios (Vault, git, worker) each start their own processes,
//!   provision their own paths, policies and roles, and run concurrently, a few
//!   at a time.
//!
//! Every scenario is then checked for hygiene (`protocol.md` §6) over exactly
//! the output of the processes it started, with exactly the secrets it
//! provisioned; a last pass scans all output for all secrets (H3).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::Value;

use crate::backend::{BackendSpec, Vault};
use crate::cx::{Cx, Env};
use crate::expect::Expectations;
use crate::hygiene::{StraySnapshot, dir_leak, output_leak, reply_leak};
use crate::iut::{Iut, IutCommand};
use crate::scenario::{Body, Level, LiveFn, Meta, Needs, Profile, Scenario};
use crate::verdict::{ScenarioResult, Status, Verdict};

/// Settings of one run.
pub struct RunConfig {
    /// How to start the implementation.
    pub iut: IutCommand,
    /// Where Vault comes from.
    pub backend: BackendSpec,
    /// Profiles to run (empty: all).
    pub profiles: Vec<Profile>,
    /// Id globs to run (empty: all).
    pub filters: Vec<String>,
    /// Expected failures.
    pub expectations: Expectations,
    /// Live scenarios run at once.
    pub concurrency: usize,
    /// Show a live progress line on stderr.
    pub progress: bool,
    /// Where to look for stray files (H5; `StraySnapshot::default_roots`);
    /// empty: no stray-file scan.
    pub stray_roots: Vec<PathBuf>,
}

/// What a run produced, for the reports.
pub struct RunOutcome {
    /// One result per selected scenario, in catalogue order, then `hygiene.all-output`.
    pub results: Vec<ScenarioResult>,
    /// The implementation's `hello` reply.
    pub hello: Value,
    /// `process`, `container` or `external`, or `none` when no scenario used Vault.
    pub backend: String,
    /// The Vault server's version, if one was used.
    pub vault_version: Option<String>,
    /// Expectation entries that matched no scenario.
    pub unmatched_expectations: Vec<String>,
    /// Wall-clock time of the run.
    pub duration: Duration,
}

fn selected(meta: &Meta, config: &RunConfig) -> bool {
    (config.profiles.is_empty() || config.profiles.contains(&meta.profile))
        && (config.filters.is_empty()
            || config
                .filters
                .iter()
                .any(|f| crate::expect::glob_match(f, &meta.id)))
}

/// The live progress line: redrawn in place on a terminal; on a pipe (CI
/// logs), one plain line at most every 2 s, so logs stay short.
struct Progress {
    on: bool,
    tty: bool,
    total: usize,
    done: usize,
    bad: usize,
    last_line: Instant,
}

impl Progress {
    fn tick(&mut self, result: &ScenarioResult) {
        self.done += 1;
        if result.status.is_bad() {
            self.bad += 1;
        }
        if self.on && self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K[{}/{}] {} not as expected | {} {}",
                self.done, self.total, self.bad, result.status, result.meta.id
            );
            let _ = err.flush();
        } else if self.on && self.last_line.elapsed() >= Duration::from_secs(2) {
            self.last_line = Instant::now();
            eprintln!(
                "[{}/{}] {} not as expected (last: {} {})",
                self.done, self.total, self.bad, result.status, result.meta.id
            );
        }
    }

    fn finish(&self) {
        if self.on {
            eprintln!(
                "{}[{}/{}] done, {} not as expected",
                if self.tty { "\r\x1b[2K" } else { "" },
                self.done,
                self.total,
                self.bad
            );
        }
    }
}

/// Runs the selected scenarios. `Err` when the harness cannot run at all
/// (exit code 2): the implementation cannot be started or fails `hello`.
pub async fn run(catalogue: Vec<Scenario>, config: RunConfig) -> Result<RunOutcome, String> {
    let started = Instant::now();
    let stray =
        (!config.stray_roots.is_empty()).then(|| StraySnapshot::take(config.stray_roots.clone()));
    let scenarios: Vec<Scenario> = catalogue
        .into_iter()
        .filter(|s| selected(&s.meta, &config))
        .collect();
    if scenarios.is_empty() {
        return Err("no scenario matches the selected profiles and filters".into());
    }

    // The probe process: hello (to learn the claimed profiles), then it serves
    // every vector scenario.
    let probe_dir = tempfile::Builder::new()
        .prefix("vaultref-conf-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let mut vector_iut = Iut::start(&config.iut, probe_dir.path(), probe_dir.path())
        .await
        .map_err(|v| match v {
            Verdict::Error(m) => m,
            Verdict::Fail(f) => format!("the implementation failed `hello`: {}", f.actual),
            Verdict::Unsupported(m) => {
                format!("the implementation answered `hello` unsupported: {m}")
            }
            other => format!("{other:?}"),
        })?;
    let hello = Value::Object(vector_iut.hello.clone());
    let claimed = vector_iut.profiles();
    let claims = |p: Profile| p == Profile::Suite || claimed.iter().any(|c| c == p.as_str());

    let wants_vault = scenarios.iter().any(|s| {
        claims(s.meta.profile) && matches!(s.body, Body::Live { needs, .. } if needs.vault)
    });
    let (vault, vault_error) = if wants_vault {
        match Vault::start(&config.backend).await {
            Ok(v) => (Some(v), None),
            Err(e) => (
                None,
                Some(format!(
                    "Vault ({:?}) unavailable: {e}",
                    backend_name(&config.backend)
                )),
            ),
        }
    } else {
        (None, None)
    };
    let backend = vault
        .as_ref()
        .map_or("none".to_string(), |v| v.backend.to_string());
    let vault_version = vault.as_ref().map(|v| v.version.clone());
    let env = Arc::new(Env {
        iut: config.iut.clone(),
        backend: config.backend.clone(),
        vault,
        vault_error,
        run_id: crate::backend::random_hex(3),
        all_secrets: Mutex::new(Vec::new()),
        all_outputs: Mutex::new(vec![vector_iut.out.clone(), vector_iut.err.clone()]),
    });

    let total = scenarios.len() + 1;
    let progress = Arc::new(Mutex::new(Progress {
        on: config.progress,
        tty: std::io::stderr().is_terminal(),
        total,
        done: 0,
        bad: 0,
        last_line: Instant::now(),
    }));
    let expectations = Arc::new(config.expectations);
    let mut slots: Vec<Option<ScenarioResult>> = (0..scenarios.len()).map(|_| None).collect();
    // Kept to report a scenario whose task panicked (a harness bug), which
    // would otherwise vanish from the results.
    let metas: Vec<Meta> = scenarios.iter().map(|s| s.meta.clone()).collect();
    let settle = {
        let expectations = expectations.clone();
        let progress = progress.clone();
        move |meta: Meta, verdict: Verdict, took: Duration| {
            let reason = expectations.lookup(&meta.id).map(str::to_string);
            let r = ScenarioResult::new(meta, verdict, reason.as_deref(), took.as_millis() as u64);
            progress.lock().unwrap_or_else(|e| e.into_inner()).tick(&r);
            r
        }
    };

    // Live scenarios, concurrently.
    let semaphore = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut vectors = Vec::new();
    // The vectors' planted tokens are fixed strings, the same in every run:
    // another run's files on a shared machine hold them too, so the
    // stray-file scan (H5) looks only for this run's own secrets.
    let mut planted = std::collections::HashSet::new();
    for (index, scenario) in scenarios.into_iter().enumerate() {
        let Scenario { meta, body } = scenario;
        if !claims(meta.profile) {
            let why = format!(
                "the implementation does not claim profile `{}`",
                meta.profile
            );
            slots[index] = Some(settle(meta, Verdict::Unsupported(why), Duration::ZERO));
            continue;
        }
        match body {
            Body::Vector {
                op,
                request,
                check,
                secrets,
            } => {
                env.all_secrets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(secrets.iter().cloned());
                {
                    use secrecy::ExposeSecret;
                    planted.extend(secrets.iter().map(|s| s.expose_secret().to_owned()));
                }
                vectors.push((index, meta, op, request, check, secrets))
            }
            Body::Live { needs, run } => {
                let env = env.clone();
                let semaphore = semaphore.clone();
                let settle = settle.clone();
                tasks.spawn(async move {
                    let _permit = semaphore.acquire_owned().await.expect("semaphore open");
                    let t = Instant::now();
                    let (verdict, measured) = run_live(&env, &meta, needs, run).await;
                    let mut result = settle(meta, verdict, t.elapsed());
                    result.measured = measured;
                    (index, result)
                });
            }
        }
    }

    // Vector scenarios, one after the other on the probe process.
    for (index, meta, op, request, check, secrets) in vectors {
        let t = Instant::now();
        if vector_iut.is_dead() {
            match Iut::start(&env.iut, probe_dir.path(), probe_dir.path()).await {
                Ok(fresh) => {
                    env.all_outputs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend([fresh.out.clone(), fresh.err.clone()]);
                    vector_iut = fresh;
                }
                Err(v) => {
                    slots[index] = Some(settle(meta, v, t.elapsed()));
                    continue;
                }
            }
        }
        let verdict = match vector_iut.request(op, request).await {
            Ok(reply) => match reply_leak(&reply, &secrets) {
                Some(f) => Verdict::Fail(f),
                None => check(&reply),
            },
            Err(e) => e.into(),
        };
        slots[index] = Some(settle(meta, verdict, t.elapsed()));
    }
    let _ = vector_iut.shutdown().await;

    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => slots[index] = Some(result),
            Err(e) => eprintln!("a scenario task panicked: {e}"),
        }
    }
    let mut results: Vec<ScenarioResult> = slots
        .into_iter()
        .zip(metas)
        .map(|(slot, meta)| {
            slot.unwrap_or_else(|| {
                let why = "the harness panicked running this scenario (a harness bug; see stderr)";
                settle(meta, Verdict::Error(why.into()), Duration::ZERO)
            })
        })
        .collect();

    // H3: all output of all processes, all secrets of the run.
    let t = Instant::now();
    let outputs = env
        .all_outputs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut secrets = env
        .all_secrets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(v) = &env.vault {
        secrets.extend(v.issued_tokens());
    }
    {
        use secrecy::ExposeSecret;
        let mut seen = std::collections::HashSet::new();
        secrets.retain(|s| seen.insert(s.expose_secret().to_owned()));
    }
    let own: Vec<SecretString> = {
        use secrecy::ExposeSecret;
        secrets
            .iter()
            .filter(|s| !planted.contains(s.expose_secret()))
            .cloned()
            .collect()
    };
    let verdict = match output_leak(&outputs, &secrets)
        .or_else(|| stray.as_ref().and_then(|s| s.leak(&own)))
    {
        Some(f) => Verdict::Fail(f),
        None => Verdict::Pass,
    };
    let meta = all_output_meta();
    results.push(settle(meta, verdict, t.elapsed()));
    progress.lock().unwrap_or_else(|e| e.into_inner()).finish();

    let ids: Vec<&str> = results.iter().map(|r| r.meta.id.as_str()).collect();
    let unmatched_expectations = expectations
        .unmatched(&ids)
        .into_iter()
        .map(|e| e.id.clone())
        .collect();
    if let Ok(env) = Arc::try_unwrap(env)
        && let Some(v) = env.vault
    {
        v.stop();
    }
    Ok(RunOutcome {
        results,
        hello,
        backend,
        vault_version,
        unmatched_expectations,
        duration: started.elapsed(),
    })
}

fn backend_name(spec: &BackendSpec) -> &'static str {
    match spec {
        BackendSpec::Process { .. } => "process",
        BackendSpec::Container { .. } => "container",
        BackendSpec::External { .. } => "external",
    }
}

/// Runs a live scenario and checks hygiene over what it produced; the
/// verdict and what it measured.
async fn run_live(
    env: &Arc<Env>,
    meta: &Meta,
    needs: Needs,
    run: LiveFn,
) -> (Verdict, std::collections::BTreeMap<String, u64>) {
    if needs.vault {
        match &env.vault {
            None => {
                let why = env.vault_error.clone().unwrap_or_else(|| "no Vault".into());
                return (Verdict::Error(why), Default::default());
            }
            Some(v) if needs.audit => {
                if let Some(why) = v.audit_unavailable() {
                    return (Verdict::Skip(why), Default::default());
                }
            }
            Some(_) => {}
        }
    }
    let cx = Cx {
        env: env.clone(),
        id: meta.id.clone(),
        state: Arc::default(),
        own_vault: None,
    };
    let verdict = run(cx.clone()).await;
    // Give stderr drains a moment, then check hygiene over this scenario's output.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let state = cx.lock();
    // Tokens the servers issued (the implementation's own logins among
    // them) are secrets too: learned now, from the shared server's audit log
    // so far and from the scenario's own server, which is gone by the end.
    let mut secrets = state.secrets.clone();
    for v in &state.own_vaults {
        secrets.extend(v.issued_tokens());
    }
    // The shared server's tokens join the run's secrets once, at the end.
    env.all_secrets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(secrets.iter().cloned());
    if let Some(v) = &env.vault {
        secrets.extend(v.issued_tokens());
    }
    env.all_outputs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(state.outputs.iter().cloned());
    let verdict = match output_leak(&state.outputs, &secrets)
        .or_else(|| dir_leak(&state.iut_dirs, &secrets))
    {
        Some(f) => Verdict::Fail(f),
        None => verdict,
    };
    (verdict, state.measured.clone())
}

/// Whether the run was as expected: no `fail`, `error` or `unexpected-pass`.
pub fn as_expected(results: &[ScenarioResult]) -> bool {
    !results.iter().any(|r| r.status.is_bad())
}

/// Counts of each status.
pub fn tally(results: &[ScenarioResult]) -> Vec<(Status, usize)> {
    Status::ALL
        .iter()
        .map(|&s| (s, results.iter().filter(|r| r.status == s).count()))
        .collect()
}

/// The run-wide check every run ends with (not in the catalogue: it has no
/// body of its own, it reads every other scenario's output).
pub fn all_output_meta() -> Meta {
    Meta {
        id: "hygiene.all-output".into(),
        profile: Profile::Suite,
        level: Level::Must,
        spec: "protocol.md §6 H3".into(),
        title: "No secret of the run in any output of any implementation process".into(),
    }
}
