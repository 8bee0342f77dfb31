//! The reference adapter: protocol plumbing over the vaultref library, and
//! nothing else (like rustls' BoGo shim). Every verdict comes from the
//! library; this module only translates JSON lines to calls and back.
//!
//! The deliberately broken implementations that prove the suite can fail
//! (binary `vaultref-broken-adapter --fault NAME`) are this same loop with a
//! [`faults::Faults`] hooked in: it may rewrite a request before the shim
//! sees it, answer it itself, or rewrite the reply. The faults live apart in
//! [`faults`], so this file stays the plain translation a second
//! implementation can read as a model.
//!
//! `check_ref` is [`RefPolicy::check_bytes`], `check_payload` is
//! [`vaultref::payload::validate`], `resolve` is the ref policy then
//! [`vaultref::vault::Resolver::resolve`] and a [`FingerprintKey`]. `run_job`
//! is [`Worker::run_job`] with a job action that writes the file
//! `VAULTREF_CONFORMANCE` (the protocol's instruction stub). The worker's git
//! credential helper is the `vaultref` binary next to this one (or
//! `VAULTREF_BIN`). The `codex_*` operations are in `codex`.

mod codex;
mod codex_faults;
pub mod faults;
mod ha_faults;

use std::io::{BufRead, Write};

use serde_json::{Map, Value, json};
use vaultref::git::GitSettings;
use vaultref::payload::QueuePolicy;
use vaultref::payload::{ValidationOptions, validate};
use vaultref::policy::PolicySettings;
use vaultref::vault::{FingerprintKey, Resolver, VaultConfig};
use vaultref::worker::{JobAction, Outcome, Worker, WorkerJob, WorkerSettings, stderr_sink};
use vaultref::{RefPolicy, ScopeContext, SecretRef};

pub use faults::{Fault, Faults};

/// What `configure` set up.
pub(crate) struct State {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) resolver: Option<std::sync::Arc<Resolver>>,
    pub(crate) key: Option<FingerprintKey>,
    pub(crate) policy: RefPolicy,
    pub(crate) worker_id: Option<String>,
    pub(crate) worker: Option<Worker>,
    pub(crate) queue_policy: QueuePolicy,
    pub(crate) vault_config: Option<VaultConfig>,
    pub(crate) codex: Option<codex::CodexSettings>,
}

/// Serves the protocol on stdin/stdout until `shutdown` or end of input;
/// with `fault`, as the broken implementation of that name.
pub fn serve(fault: Option<Fault>) -> std::io::Result<()> {
    let mut faults = fault.map(Faults::new);
    let mut state = State {
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?,
        resolver: None,
        key: None,
        policy: RefPolicy::default(),
        worker_id: None,
        worker: None,
        queue_policy: QueuePolicy::default(),
        vault_config: None,
        codex: None,
    };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (reply, last) = handle(&line, faults.as_mut(), &mut state);
        serde_json::to_writer(&mut stdout, &reply)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
        if last {
            break;
        }
    }
    state.worker = None;
    if let Some(r) = state
        .resolver
        .take()
        .and_then(|r| std::sync::Arc::try_unwrap(r).ok())
    {
        state.rt.block_on(r.shutdown());
    }
    Ok(())
}

fn handle(line: &str, mut faults: Option<&mut Faults>, state: &mut State) -> (Value, bool) {
    let mut req: Map<String, Value> = match serde_json::from_str(line) {
        Ok(Value::Object(m)) => m,
        _ => {
            return (
                json!({"id": 0, "reply": "error", "message": "the request is not a JSON object"}),
                false,
            );
        }
    };
    let id = req.get("id").cloned().unwrap_or(json!(0));
    let op = req
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let early = faults
        .as_deref_mut()
        .and_then(|f| f.before(&op, &mut req, state));
    let mut reply = early.unwrap_or_else(|| dispatch(&op, &req, state));
    if let Some(f) = faults {
        f.after(&op, &req, state, &mut reply);
    }
    reply["id"] = id;
    (reply, op == "shutdown")
}

fn dispatch(op: &str, req: &Map<String, Value>, state: &mut State) -> Value {
    match op {
        "hello" => json!({
            "reply": "hello",
            "protocol": 1,
            "implementation": {
                "name": "vaultref-adapter",
                "version": env!("CARGO_PKG_VERSION"),
                "language": "rust",
                "notes": "reference adapter over the vaultref library",
            },
            "profiles": ["refs", "payload", "resolve", "auth", "lifecycle", "worker", "degraded", "hostile", "codex", "ha"],
        }),
        "check_ref" => check_ref(req),
        "check_payload" => check_payload(req),
        "configure" => configure(req, state),
        "resolve" => resolve(req, state),
        "run_job" => run_job(req, state),
        "codex_claim" | "codex_backup" | "codex_restore" | "codex_rewrap" => {
            codex::handle(op, req, state)
        }
        "shutdown" => json!({"reply": "shutdown"}),
        other => json!({"reply": "unsupported", "op": other,
                        "message": "the vaultref library does not offer this operation yet"}),
    }
}

fn check_ref(req: &Map<String, Value>) -> Value {
    let input = match ref_input(req) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let settings: PolicySettings = match req.get("policy") {
        None | Some(Value::Null) => PolicySettings::default(),
        Some(p) => match serde_json::from_value(p.clone()) {
            Ok(s) => s,
            Err(e) => return invalid("config_invalid", None, &format!("policy: {e}")),
        },
    };
    let policy = match RefPolicy::try_from(settings) {
        Ok(p) => p,
        Err(e) => return invalid(e.code().as_str(), None, e.message()),
    };
    let context: ScopeContext = match req.get("context") {
        None | Some(Value::Null) => ScopeContext::default(),
        Some(c) => match serde_json::from_value(c.clone()) {
            Ok(c) => c,
            Err(e) => return json!({"reply": "error", "message": format!("context: {e}")}),
        },
    };
    match policy.check_bytes(&input, &context) {
        Ok(r) => json!({
            "reply": "check_ref", "valid": true,
            "ref": {"mount": r.mount(), "path": r.path(), "version": r.version(), "field": r.field()},
        }),
        Err(e) => invalid(e.code().as_str(), e.offset(), e.message()),
    }
}

/// The bytes of a `check_ref` request (`input`, or `input_hex` for bytes
/// JSON cannot carry), or the `error` reply.
pub(crate) fn ref_input(req: &Map<String, Value>) -> Result<Vec<u8>, Value> {
    match (req.get("input"), req.get("input_hex")) {
        (Some(Value::String(s)), _) => Ok(s.clone().into_bytes()),
        (None, Some(Value::String(h))) => {
            hex::decode(h).map_err(|_| json!({"reply": "error", "message": "input_hex is not hex"}))
        }
        _ => Err(json!({"reply": "error", "message": "check_ref needs input or input_hex"})),
    }
}

pub(crate) fn invalid(code: &str, offset: Option<usize>, message: &str) -> Value {
    json!({"reply": "check_ref", "valid": false, "code": code, "offset": offset, "message": message})
}

/// The job bytes of a `check_payload` request (`job`, or `job_text` for
/// text that is not JSON), or the `error` reply.
pub(crate) fn payload_bytes(req: &Map<String, Value>) -> Result<Vec<u8>, Value> {
    match (req.get("job"), req.get("job_text")) {
        (Some(j), _) => Ok(serde_json::to_vec(j).expect("JSON")),
        (None, Some(Value::String(t))) => Ok(t.clone().into_bytes()),
        _ => Err(json!({"reply": "error", "message": "check_payload needs job or job_text"})),
    }
}

fn check_payload(req: &Map<String, Value>) -> Value {
    let bytes = match payload_bytes(req) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let options: ValidationOptions = match req.get("options") {
        None | Some(Value::Null) => ValidationOptions::default(),
        Some(o) => match serde_json::from_value(o.clone()) {
            Ok(o) => o,
            Err(e) => {
                return json!({"reply": "check_payload", "valid": false,
                    "errors": [{"code": "config_invalid", "pointer": "", "message": format!("options: {e}")}]});
            }
        },
    };
    match validate(&bytes, &options) {
        Ok(job) => json!({"reply": "check_payload", "valid": true, "summary": {
            "repository_slug": job.repository_slug(),
            "publish_auth_ref": job.publish_auth_ref().map(|r| r.to_string()),
        }}),
        Err(errors) => json!({
            "reply": "check_payload", "valid": false,
            "errors": errors.iter().map(|e| {
                let mut err = json!({"code": e.code, "pointer": e.pointer, "message": e.message});
                if let Some(rule) = &e.rule_id {
                    err["rule"] = json!(rule);
                }
                err
            }).collect::<Vec<_>>(),
        }),
    }
}

pub(crate) fn failed(op: &str, code: &str, message: &str) -> Value {
    json!({"reply": op, "outcome": "failed", "code": code, "message": message})
}

fn configure(req: &Map<String, Value>, state: &mut State) -> Value {
    if let Some(p) = req.get("ref_policy").filter(|p| !p.is_null()) {
        let built = serde_json::from_value::<PolicySettings>(p.clone())
            .map_err(|e| e.to_string())
            .and_then(|s| RefPolicy::try_from(s).map_err(|e| e.message().to_string()));
        match built {
            Ok(p) => state.policy = p,
            Err(m) => return failed("configure", "config_invalid", &format!("ref_policy: {m}")),
        }
    }
    state.worker_id = req
        .get("worker_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(k) = req.get("fingerprint_key").and_then(Value::as_str) {
        match FingerprintKey::from_hex(k) {
            Ok(k) => state.key = Some(k),
            Err(e) => return failed("configure", e.code().as_str(), e.message()),
        }
    }
    if let Some(Value::Object(vault)) = req.get("vault") {
        let mut vault = vault.clone();
        vault
            .entry("allowed_mounts")
            .or_insert_with(|| json!(state.policy.allowed_mounts()));
        let config = match VaultConfig::from_json(&Value::Object(vault).to_string()) {
            Ok(c) => c,
            Err(e) => return failed("configure", e.code().as_str(), e.message()),
        };
        match state.rt.block_on(Resolver::new(config.clone())) {
            Ok(r) => state.resolver = Some(std::sync::Arc::new(r)),
            Err(e) => return failed("configure", e.code().as_str(), e.message()),
        }
        state.vault_config = Some(config);
    }
    match codex::settings(req) {
        Ok(c) => state.codex = c,
        Err(m) => return failed("configure", "config_invalid", &m),
    }
    if let Some(q) = req.get("queue_policy").filter(|q| !q.is_null()) {
        match serde_json::from_value(q.clone()) {
            Ok(q) => state.queue_policy = q,
            Err(e) => return failed("configure", "config_invalid", &format!("queue_policy: {e}")),
        }
    }
    if let Some(base) = req
        .get("git")
        .and_then(|g| g.get("base_url"))
        .and_then(Value::as_str)
    {
        let helper = std::env::var_os("VAULTREF_BIN")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::current_exe()
                    .ok()
                    .map(|p| p.with_file_name("vaultref"))
            })
            .filter(|p| p.is_file());
        let Some(helper) = helper else {
            return failed(
                "configure",
                "config_invalid",
                "no `vaultref` binary next to the adapter (the git credential helper); set VAULTREF_BIN",
            );
        };
        let dir = |k: &str| {
            req.get(k)
                .and_then(Value::as_str)
                .map(std::path::PathBuf::from)
        };
        let Some(work) = dir("work_dir") else {
            return failed("configure", "config_invalid", "run_job needs work_dir");
        };
        let mut git = GitSettings::new(helper);
        git.allow_http = base.starts_with("http://");
        git.tmp_dir = dir("temp_dir");
        let mut settings = WorkerSettings::new(
            state.worker_id.as_deref().unwrap_or("conformance"),
            work,
            git,
        );
        settings.queue_policy = state.queue_policy.clone();
        settings.ref_policy = state.policy.clone();
        settings.git_base_url = base.trim_end_matches('/').to_string();
        settings.resolve_timeout = std::time::Duration::from_secs(10);
        state.worker = Some(Worker::new(settings, state.resolver.clone(), stderr_sink()));
    }
    json!({"reply": "configure", "outcome": "configured"})
}

/// The scope context of a `resolve` request: its `repository` and the
/// configured worker id.
pub(crate) fn scope_context(req: &Map<String, Value>, state: &State) -> ScopeContext {
    ScopeContext {
        repository: req
            .get("repository")
            .and_then(Value::as_str)
            .map(str::to_string),
        worker_id: state.worker_id.clone(),
    }
}

fn resolve(req: &Map<String, Value>, state: &mut State) -> Value {
    let (Some(input), Some(job_id)) = (
        req.get("ref").and_then(Value::as_str),
        req.get("job_id").and_then(Value::as_str),
    ) else {
        return json!({"reply": "error", "message": "resolve needs ref and job_id"});
    };
    match state.policy.check(input, &scope_context(req, state)) {
        Ok(parsed) => resolve_checked(&parsed, job_id, state),
        Err(e) => failed("resolve", e.code().as_str(), e.message()),
    }
}

/// Resolves a ref that passed the policy; replies with its fingerprint.
pub(crate) fn resolve_checked(parsed: &SecretRef, job_id: &str, state: &State) -> Value {
    let (Some(resolver), Some(key)) = (&state.resolver, &state.key) else {
        return failed(
            "resolve",
            "vault_not_configured",
            "configure gave no Vault settings or no fingerprint key",
        );
    };
    match state.rt.block_on(resolver.resolve(parsed, job_id)) {
        Ok(value) => {
            json!({"reply": "resolve", "outcome": "resolved", "fingerprint": key.fingerprint(&value)})
        }
        Err(e) => failed("resolve", e.code().as_str(), e.message()),
    }
}

fn run_job(req: &Map<String, Value>, state: &mut State) -> Value {
    let (Some(job_id), Some(job)) = (req.get("job_id").and_then(Value::as_str), req.get("job"))
    else {
        return json!({"reply": "error", "message": "run_job needs job_id and job"});
    };
    let Some(worker) = &state.worker else {
        return failed(
            "run_job",
            "config_invalid",
            "configure gave no git settings",
        );
    };
    let options = ValidationOptions {
        ref_policy: state.policy.clone(),
        worker_id: state.worker_id.clone(),
        queue_policy: None,
    };
    let parsed = match validate(&serde_json::to_vec(job).expect("JSON"), &options) {
        Ok(j) => j,
        Err(errors) => {
            let first = &errors[0];
            return failed("run_job", first.code.as_str(), &first.message);
        }
    };
    // The harness's own action (`protocol.md` §3.6 `action`) runs as a
    // command action, with the worker's isolation; otherwise the stub.
    let action = match req
        .get("action")
        .and_then(|a| a.get("argv"))
        .and_then(Value::as_array)
    {
        Some(argv) if !argv.is_empty() => {
            let argv: Vec<String> = argv
                .iter()
                .map(|a| a.as_str().unwrap_or_default().to_string())
                .collect();
            JobAction::Command {
                program: std::path::PathBuf::from(&argv[0]),
                args: argv[1..].to_vec(),
                timeout: std::time::Duration::from_millis(
                    req["action"]["timeout_ms"].as_u64().unwrap_or(30_000),
                ),
            }
        }
        _ => JobAction::Callback(std::sync::Arc::new(
            |ctx: &vaultref::worker::ActionContext<'_>| {
                std::fs::write(ctx.work_dir.join("VAULTREF_CONFORMANCE"), ctx.job_id)
                    .map_err(|e| e.to_string())
            },
        )),
    };
    let wj = WorkerJob {
        id: job_id.to_string(),
        job: parsed,
    };
    match state.rt.block_on(worker.run_job(&wj, Some(&action))) {
        Outcome::Completed(c) => json!({
            "reply": "run_job", "outcome": "completed",
            "commit": c.published.map(|p| p.commit),
        }),
        Outcome::Failed { code, message } => failed("run_job", code.as_str(), &message),
        Outcome::Declined { reason } => json!({
            "reply": "run_job", "outcome": "declined",
            "code": "vault_unavailable", "message": reason,
        }),
    }
}
