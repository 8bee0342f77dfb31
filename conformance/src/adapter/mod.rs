//! The reference adapter: protocol plumbing over the vaultref library, and
//! nothing else (like rustls' BoGo shim). Every verdict comes from the
//! library; this module only translates JSON lines to calls and back.
//!
//! The same loop, given a [`Fault`], becomes one of the deliberately broken
//! implementations that prove the suite can fail (binary
//! `vaultref-broken-adapter --fault NAME`). Each fault is one small, named
//! deviation at the boundary, so the test can say exactly which scenarios it
//! must fail.
//!
//! `check_ref` is [`RefPolicy::check_bytes`], `check_payload` is
//! [`vaultref::payload::validate`], `resolve` is the ref policy then
//! [`vaultref::vault::Resolver::resolve`] and a [`FingerprintKey`]. `run_job`
//! is [`Worker::run_job`] with a job action that writes the file
//! `VAULTREF_CONFORMANCE` (the protocol's instruction stub). The worker's git
//! credential helper is the `vaultref` binary next to this one (or
//! `VAULTREF_BIN`).

use std::io::{BufRead, Write};

use serde_json::{Map, Value, json};
use vaultref::git::GitSettings;
use vaultref::payload::QueuePolicy;
use vaultref::payload::{ValidationOptions, validate};
use vaultref::policy::PolicySettings;
use vaultref::vault::{FingerprintKey, Resolver, VaultConfig};
use vaultref::worker::{JobAction, Outcome, Worker, WorkerJob, WorkerSettings, stderr_sink};
use vaultref::{RefPolicy, ScopeContext};

/// A deliberate defect, for the broken implementations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Checks refs without the mount allow-list.
    SkipMountCheck,
    /// Accepts `.` and `..` segments as names.
    AcceptTraversal,
    /// Reports offsets one byte late.
    OffByOne,
    /// Answers unknown operations with `error` instead of `unsupported`.
    NoUnsupported,
    /// Never answers `check_ref` for refs containing `version=`.
    HangOnQuery,
    /// Writes the base64 of every resolved value to stderr ("debug logging").
    LeakBase64,
    /// Resolves without the ref policy's mount and scope checks (only the
    /// resolver's own mount re-check is left).
    SkipResolvePolicy,
    /// Drops `publishAuthRef` from jobs, so pushes use `repoAuthRef`.
    IgnorePublishAuthRef,
    /// Reads a job's `repoAuthRef` from Vault before the worker checks the
    /// queue policy ("prefetch").
    VaultBeforeQueuePolicy,
    /// Pins every ref of a job to version 1: a secret cached forever.
    CacheForever,
    /// Checks the repository first with `git ls-remote` on a URL carrying the
    /// token (the classic token-in-clone-URL mistake).
    TokenInArgv,
    /// Waits forever for Vault, instead of declining, when it is down.
    HangWhenVaultDown,
    /// Builds a new resolver (a new login) for every resolution, so no token
    /// lives long enough to be renewed.
    LoginPerResolve,
    /// Quotes the offending value in `payload_contains_secret` messages.
    EchoPayloadSecret,
    /// Also reads the parent path of every ref ("look for a default one
    /// level up"): more than the job needs.
    ReadParent,
    /// Reports every Vault failure as `secret_not_found` (403, 404, deleted,
    /// destroyed and failed logins look alike).
    OneNotFound,
    /// Copies the token file once at start and never sees it rewritten.
    StaleTokenFile,
    /// Logs in with AppRole once, at start, and keeps that token as a static
    /// one: no renewal, no new login.
    StaticToken,
    /// Drops `?version=N` from refs: pins are ignored.
    IgnoreVersion,
    /// Sends the job id under another header name than the one configured.
    WrongJobHeader,
    /// Answers a missing secret as resolved to the empty value (a lookup
    /// that defaults instead of failing).
    MissingAsEmpty,
    /// Reads Vault at the raw ref string (mount and path split by hand)
    /// before parsing it: traversal and over-length refs reach Vault.
    ResolveBeforeParse,
    /// Checks the token file's token at `configure` with the file's bytes as
    /// they are, trailing newline included.
    RawTokenFile,
    /// Logs in with AppRole at the default mount `approle`, ignoring the
    /// configured `mount`.
    ApproleDefaultMount,
    /// Reports a valid ref's path as the KV v2 API path (`data/<path>`).
    Kv2DataPath,
    /// The payload schema "failed to load" and the check fails closed: every
    /// job is answered invalid with one `payload_schema` error at the root.
    SchemaNotLoaded,
    /// Checks only that the job is JSON: no schema, no refs, no lint, no
    /// queue policy.
    SkipPayloadSchema,
    /// Leaves out the token lint (`payload_contains_secret`).
    SkipPayloadLint,
    /// Replaces a ref policy whose settings are invalid by the default
    /// policy, silently, instead of refusing it.
    LenientPolicyConfig,
    /// Has no empty-ref rule: the empty ref fails the scheme check
    /// (`ref_bad_scheme` at offset 0).
    EmptyAsBadScheme,
}

impl Fault {
    /// Every fault, with its command-line name.
    pub const ALL: &'static [(&'static str, Fault)] = &[
        ("skip-mount-check", Fault::SkipMountCheck),
        ("accept-traversal", Fault::AcceptTraversal),
        ("off-by-one", Fault::OffByOne),
        ("no-unsupported", Fault::NoUnsupported),
        ("hang-on-query", Fault::HangOnQuery),
        ("leak-base64", Fault::LeakBase64),
        ("skip-resolve-policy", Fault::SkipResolvePolicy),
        ("ignore-publish-auth-ref", Fault::IgnorePublishAuthRef),
        ("vault-before-queue-policy", Fault::VaultBeforeQueuePolicy),
        ("cache-forever", Fault::CacheForever),
        ("token-in-argv", Fault::TokenInArgv),
        ("hang-when-vault-down", Fault::HangWhenVaultDown),
        ("login-per-resolve", Fault::LoginPerResolve),
        ("echo-payload-secret", Fault::EchoPayloadSecret),
        ("read-parent", Fault::ReadParent),
        ("one-not-found", Fault::OneNotFound),
        ("stale-token-file", Fault::StaleTokenFile),
        ("static-token", Fault::StaticToken),
        ("ignore-version", Fault::IgnoreVersion),
        ("wrong-job-header", Fault::WrongJobHeader),
        ("missing-as-empty", Fault::MissingAsEmpty),
        ("resolve-before-parse", Fault::ResolveBeforeParse),
        ("raw-token-file", Fault::RawTokenFile),
        ("approle-default-mount", Fault::ApproleDefaultMount),
        ("kv2-data-path", Fault::Kv2DataPath),
        ("schema-not-loaded", Fault::SchemaNotLoaded),
        ("skip-payload-schema", Fault::SkipPayloadSchema),
        ("skip-payload-lint", Fault::SkipPayloadLint),
        ("lenient-policy-config", Fault::LenientPolicyConfig),
        ("empty-as-bad-scheme", Fault::EmptyAsBadScheme),
    ];

    /// Looks a fault up by name.
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }
}

/// What `configure` set up.
struct State {
    rt: tokio::runtime::Runtime,
    resolver: Option<std::sync::Arc<Resolver>>,
    key: Option<FingerprintKey>,
    policy: RefPolicy,
    worker_id: Option<String>,
    worker: Option<Worker>,
    queue_policy: QueuePolicy,
    git_base_url: Option<String>,
    vault_settings: Option<String>,
}

/// Serves the protocol on stdin/stdout until `shutdown` or end of input.
pub fn serve(fault: Option<Fault>) -> std::io::Result<()> {
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
        git_base_url: None,
        vault_settings: None,
    };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (reply, last) = handle(&line, fault, &mut state);
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

fn handle(line: &str, fault: Option<Fault>, state: &mut State) -> (Value, bool) {
    let req: Map<String, Value> = match serde_json::from_str(line) {
        Ok(Value::Object(m)) => m,
        _ => {
            return (
                json!({"id": 0, "reply": "error", "message": "the request is not a JSON object"}),
                false,
            );
        }
    };
    let id = req.get("id").cloned().unwrap_or(json!(0));
    let op = req.get("op").and_then(Value::as_str).unwrap_or("");
    let mut reply = match op {
        "hello" => json!({
            "reply": "hello",
            "protocol": 1,
            "implementation": {
                "name": if fault.is_some() { "vaultref-broken-adapter" } else { "vaultref-adapter" },
                "version": env!("CARGO_PKG_VERSION"),
                "language": "rust",
                "notes": "reference adapter over the vaultref library",
            },
            "profiles": ["refs", "payload", "resolve", "auth", "lifecycle", "worker", "degraded"],
        }),
        "check_ref" => check_ref(&req, fault),
        "check_payload" => check_payload(&req, fault),
        "configure" => configure(&req, state, fault),
        "resolve" => resolve(&req, state, fault),
        "run_job" => run_job(&req, state, fault),
        "shutdown" => json!({"reply": "shutdown"}),
        other if fault == Some(Fault::NoUnsupported) => {
            json!({"reply": "error", "message": format!("unknown op `{other}`")})
        }
        other => json!({"reply": "unsupported", "op": other,
                        "message": "the vaultref library does not offer this operation yet"}),
    };
    reply["id"] = id;
    (reply, op == "shutdown")
}

fn check_ref(req: &Map<String, Value>, fault: Option<Fault>) -> Value {
    let input: Vec<u8> = match (req.get("input"), req.get("input_hex")) {
        (Some(Value::String(s)), _) => s.clone().into_bytes(),
        (None, Some(Value::String(h))) => match hex::decode(h) {
            Ok(b) => b,
            Err(_) => return json!({"reply": "error", "message": "input_hex is not hex"}),
        },
        _ => return json!({"reply": "error", "message": "check_ref needs input or input_hex"}),
    };
    if fault == Some(Fault::HangOnQuery) && input.windows(8).any(|w| w == b"version=") {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
    let settings: PolicySettings = match req.get("policy") {
        None | Some(Value::Null) => PolicySettings::default(),
        Some(p) => match serde_json::from_value(p.clone()) {
            Ok(s) => s,
            Err(e) => return invalid("config_invalid", None, &format!("policy: {e}")),
        },
    };
    let mut policy = match RefPolicy::try_from(settings) {
        Ok(p) => p,
        Err(_) if fault == Some(Fault::LenientPolicyConfig) => RefPolicy::default(),
        Err(e) => return invalid(e.code().as_str(), None, e.message()),
    };
    if fault == Some(Fault::EmptyAsBadScheme) && input.is_empty() {
        return invalid(
            "ref_bad_scheme",
            Some(0),
            "the ref does not start with vault://",
        );
    }
    let context: ScopeContext = match req.get("context") {
        None | Some(Value::Null) => ScopeContext::default(),
        Some(c) => match serde_json::from_value(c.clone()) {
            Ok(c) => c,
            Err(e) => return json!({"reply": "error", "message": format!("context: {e}")}),
        },
    };
    let input = match fault {
        Some(Fault::AcceptTraversal) => disguise_dots(&input),
        _ => input,
    };
    if fault == Some(Fault::SkipMountCheck)
        && let Ok(parsed) = vaultref::SecretRef::parse_bytes(&input, policy.max_length())
    {
        policy = policy.with_allowed_mounts([parsed.mount().to_string()]);
    }
    match policy.check_bytes(&input, &context) {
        Ok(r) => {
            let path = match fault {
                Some(Fault::Kv2DataPath) => format!("data/{}", r.path()),
                _ => r.path().to_string(),
            };
            json!({
                "reply": "check_ref", "valid": true,
                "ref": {"mount": r.mount(), "path": path, "version": r.version(), "field": r.field()},
            })
        }
        Err(e) => {
            let offset = e.offset().map(|o| {
                if fault == Some(Fault::OffByOne) {
                    o + 1
                } else {
                    o
                }
            });
            invalid(e.code().as_str(), offset, e.message())
        }
    }
}

/// For [`Fault::AcceptTraversal`]: turns `.`/`..` segments into `_`/`__` so the
/// parser accepts them (and then reports the disguised path).
fn disguise_dots(input: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(input).into_owned();
    let parts: Vec<String> = text
        .split('/')
        .map(|seg| {
            let (name, rest) = match seg.find(['?', '#']) {
                Some(i) => seg.split_at(i),
                None => (seg, ""),
            };
            match name {
                "." => format!("_{rest}"),
                ".." => format!("__{rest}"),
                _ => seg.to_string(),
            }
        })
        .collect();
    parts.join("/").into_bytes()
}

fn invalid(code: &str, offset: Option<usize>, message: &str) -> Value {
    json!({"reply": "check_ref", "valid": false, "code": code, "offset": offset, "message": message})
}

fn check_payload(req: &Map<String, Value>, fault: Option<Fault>) -> Value {
    let bytes = match (req.get("job"), req.get("job_text")) {
        (Some(j), _) => serde_json::to_vec(j).expect("JSON"),
        (None, Some(Value::String(t))) => t.clone().into_bytes(),
        _ => return json!({"reply": "error", "message": "check_payload needs job or job_text"}),
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
    match fault {
        Some(Fault::SchemaNotLoaded) => {
            return json!({"reply": "check_payload", "valid": false,
                "errors": [{"code": "payload_schema", "pointer": "", "message": "the payload schema could not be loaded"}]});
        }
        Some(Fault::SkipPayloadSchema) => {
            return match serde_json::from_slice::<Value>(&bytes) {
                Ok(_) => json!({"reply": "check_payload", "valid": true}),
                Err(_) => json!({"reply": "check_payload", "valid": false,
                    "errors": [{"code": "payload_not_json", "pointer": "", "message": "not JSON"}]}),
            };
        }
        _ => {}
    }
    let result = match (fault, validate(&bytes, &options)) {
        (Some(Fault::SkipPayloadLint), Err(errors)) => {
            let kept: Vec<_> = errors
                .into_iter()
                .filter(|e| e.code != vaultref::ErrorCode::PayloadContainsSecret)
                .collect();
            if kept.is_empty() { Ok(()) } else { Err(kept) }
        }
        (_, r) => r.map(|_| ()),
    };
    match result {
        Ok(()) => json!({"reply": "check_payload", "valid": true}),
        Err(errors) => json!({
            "reply": "check_payload", "valid": false,
            "errors": errors.iter().map(|e| {
                let mut message = e.message.clone();
                if fault == Some(Fault::EchoPayloadSecret)
                    && e.code == vaultref::ErrorCode::PayloadContainsSecret
                    && let Some(found) = req.get("job").and_then(|j| j.pointer(&e.pointer))
                {
                    message.push_str(&format!(" (found: {found})"));
                }
                json!({"code": e.code, "pointer": e.pointer, "message": message})
            }).collect::<Vec<_>>(),
        }),
    }
}

fn failed(op: &str, code: &str, message: &str) -> Value {
    json!({"reply": op, "outcome": "failed", "code": code, "message": message})
}

fn configure(req: &Map<String, Value>, state: &mut State, fault: Option<Fault>) -> Value {
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
        let tmp = req
            .get("temp_dir")
            .and_then(Value::as_str)
            .unwrap_or("/tmp");
        match fault {
            Some(Fault::WrongJobHeader) => {
                vault.insert("job_id_header".into(), json!("X-Request-Tag"));
            }
            Some(Fault::StaleTokenFile) => {
                if let Some(f) = vault["auth"]["token_file"].as_str()
                    && let Ok(token) = std::fs::read(f)
                {
                    let copy = std::path::Path::new(tmp).join("token-copy");
                    if std::fs::write(&copy, token).is_ok() {
                        vault["auth"]["token_file"] = json!(copy);
                    }
                }
            }
            Some(Fault::ApproleDefaultMount) if vault["auth"]["method"] == "approle" => {
                vault["auth"]["mount"] = json!("approle");
            }
            Some(Fault::RawTokenFile) if vault["auth"]["method"] == "token" => {
                if let Err(m) = state.rt.block_on(raw_token_lookup(&vault)) {
                    return failed("configure", "vault_auth_failed", &m);
                }
            }
            Some(Fault::StaticToken) if vault["auth"]["method"] == "approle" => {
                if let Some(token) = state.rt.block_on(approle_login_once(&vault)) {
                    let file = std::path::Path::new(tmp).join("static-token");
                    if std::fs::write(&file, token).is_ok() {
                        vault["auth"] = json!({"method": "token", "token_file": file});
                    }
                }
            }
            _ => {}
        }
        state.vault_settings = Some(Value::Object(vault.clone()).to_string());
        let config = match VaultConfig::from_json(&Value::Object(vault).to_string()) {
            Ok(c) => c,
            Err(e) => return failed("configure", e.code().as_str(), e.message()),
        };
        match state.rt.block_on(Resolver::new(config)) {
            // The broken variant keeps no resolver (and so no token) between resolutions.
            Ok(r) if fault == Some(Fault::LoginPerResolve) => {
                state.rt.block_on(r.shutdown());
            }
            Ok(r) => state.resolver = Some(std::sync::Arc::new(r)),
            Err(e) => return failed("configure", e.code().as_str(), e.message()),
        }
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
        state.git_base_url = Some(settings.git_base_url.clone());
        settings.resolve_timeout = std::time::Duration::from_secs(10);
        state.worker = Some(Worker::new(settings, state.resolver.clone(), stderr_sink()));
    }
    json!({"reply": "configure", "outcome": "configured"})
}

fn resolve(req: &Map<String, Value>, state: &mut State, fault: Option<Fault>) -> Value {
    let (Some(input), Some(job_id)) = (
        req.get("ref").and_then(Value::as_str),
        req.get("job_id").and_then(Value::as_str),
    ) else {
        return json!({"reply": "error", "message": "resolve needs ref and job_id"});
    };
    let ctx = ScopeContext {
        repository: req
            .get("repository")
            .and_then(Value::as_str)
            .map(str::to_string),
        worker_id: state.worker_id.clone(),
    };
    let rewritten;
    let input = match (fault, input.split_once('?')) {
        (Some(Fault::IgnoreVersion), Some((head, rest))) => {
            rewritten = format!("{head}#{}", rest.split_once('#').map_or("", |(_, f)| f));
            rewritten.as_str()
        }
        (Some(Fault::CacheForever), None) => {
            rewritten = input.replacen('#', "?version=1#", 1);
            rewritten.as_str()
        }
        _ => input,
    };
    if fault == Some(Fault::ResolveBeforeParse)
        && let Some(settings) = &state.vault_settings
    {
        state.rt.block_on(raw_read(settings, input));
    }
    let checked = match fault {
        Some(Fault::SkipResolvePolicy) => vaultref::SecretRef::parse(input),
        _ => state.policy.check(input, &ctx),
    };
    let parsed = match checked {
        Ok(p) => p,
        Err(e) => return failed("resolve", e.code().as_str(), e.message()),
    };
    let fresh = match (fault, &state.vault_settings) {
        (Some(Fault::LoginPerResolve), Some(settings)) => VaultConfig::from_json(settings)
            .ok()
            .and_then(|c| state.rt.block_on(Resolver::new(c)).ok()),
        _ => None,
    };
    let (Some(resolver), Some(key)) = (fresh.as_ref().or(state.resolver.as_deref()), &state.key)
    else {
        return failed(
            "resolve",
            "vault_not_configured",
            "configure gave no Vault settings or no fingerprint key",
        );
    };
    if fault == Some(Fault::ReadParent)
        && let Some((parent, _)) = parsed.path().rsplit_once('/')
        && let Ok(up) = vaultref::SecretRef::parse(&format!(
            "vault://{}/{parent}#{}",
            parsed.mount(),
            parsed.field()
        ))
    {
        let _ = state.rt.block_on(resolver.resolve(&up, job_id));
    }
    let result = state.rt.block_on(resolver.resolve(&parsed, job_id));
    if let Some(r) = fresh {
        state.rt.block_on(r.shutdown());
    }
    match result {
        Ok(value) => {
            if fault == Some(Fault::LeakBase64) {
                use base64::Engine;
                use secrecy::ExposeSecret;
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(value.expose_secret());
                eprintln!("debug: resolved {encoded}");
            }
            json!({"reply": "resolve", "outcome": "resolved", "fingerprint": key.fingerprint(&value)})
        }
        Err(e)
            if fault == Some(Fault::MissingAsEmpty)
                && e.code() == vaultref::ErrorCode::SecretNotFound =>
        {
            let empty = secrecy::SecretString::from(String::new());
            json!({"reply": "resolve", "outcome": "resolved", "fingerprint": key.fingerprint(&empty)})
        }
        Err(e) if fault == Some(Fault::OneNotFound) && !e.code().as_str().starts_with("ref_") => {
            failed("resolve", "secret_not_found", "not found")
        }
        Err(e) => failed("resolve", e.code().as_str(), e.message()),
    }
}

fn run_job(req: &Map<String, Value>, state: &mut State, fault: Option<Fault>) -> Value {
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
    let mut job = job.clone();
    match fault {
        Some(Fault::IgnorePublishAuthRef) => {
            if let Some(p) = job.get_mut("payload").and_then(Value::as_object_mut) {
                p.remove("publishAuthRef");
            }
        }
        Some(Fault::CacheForever) => {
            if let Some(p) = job.get_mut("payload").and_then(Value::as_object_mut) {
                for k in ["repoAuthRef", "publishAuthRef"] {
                    if let Some(Value::String(r)) = p.get_mut(k)
                        && !r.contains('?')
                    {
                        *r = r.replacen('#', "?version=1#", 1);
                    }
                }
            }
        }
        Some(Fault::VaultBeforeQueuePolicy) => {
            let prefetch = job["payload"]["repoAuthRef"]
                .as_str()
                .and_then(|r| vaultref::SecretRef::parse(r).ok());
            if let (Some(r), Some(resolver)) = (prefetch, &state.resolver) {
                let _ = state.rt.block_on(resolver.resolve(&r, job_id));
            }
        }
        Some(Fault::HangWhenVaultDown) => {
            if job["payload"].get("repoAuthRef").is_some()
                && let Some(resolver) = &state.resolver
                && state.rt.block_on(resolver.probe()).is_err()
            {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        Some(Fault::TokenInArgv) => {
            let r = job["payload"]["repoAuthRef"]
                .as_str()
                .and_then(|r| vaultref::SecretRef::parse(r).ok());
            let repo = job["payload"]["repository"].as_str().unwrap_or("");
            if let (Some(r), Some(resolver), Some(base)) = (r, &state.resolver, &state.git_base_url)
                && let Ok(token) = state.rt.block_on(resolver.resolve(&r, job_id))
            {
                use secrecy::ExposeSecret;
                let url = base.replacen(
                    "://",
                    &format!("://x-access-token:{}@", token.expose_secret()),
                    1,
                );
                let _ = std::process::Command::new("git")
                    .args(["ls-remote", &format!("{url}/{repo}.git")])
                    .output();
            }
        }
        _ => {}
    }
    let options = ValidationOptions {
        ref_policy: state.policy.clone(),
        worker_id: state.worker_id.clone(),
        queue_policy: None,
    };
    let parsed = match validate(&serde_json::to_vec(&job).expect("JSON"), &options) {
        Ok(j) => j,
        Err(errors) => {
            let first = &errors[0];
            return failed("run_job", first.code.as_str(), &first.message);
        }
    };
    let action = JobAction::Callback(std::sync::Arc::new(
        |ctx: &vaultref::worker::ActionContext<'_>| {
            std::fs::write(ctx.work_dir.join("VAULTREF_CONFORMANCE"), ctx.job_id)
                .map_err(|e| e.to_string())
        },
    ));
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

/// For [`Fault::StaticToken`]: one AppRole login by hand.
async fn approle_login_once(vault: &Map<String, Value>) -> Option<String> {
    let auth = &vault["auth"];
    let read = |k: &str| {
        auth[k]
            .as_str()
            .and_then(|f| std::fs::read_to_string(f).ok())
    };
    let body = json!({"role_id": read("role_id_file")?, "secret_id": read("secret_id_file")?});
    let url = format!(
        "{}/v1/auth/{}/login",
        vault["addr"].as_str()?,
        auth["mount"].as_str().unwrap_or("approle")
    );
    let resp = reqwest::Client::new()
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .ok()?;
    let answer: Value = serde_json::from_slice(&resp.bytes().await.ok()?).ok()?;
    answer["auth"]["client_token"].as_str().map(str::to_string)
}

/// For [`Fault::RawTokenFile`]: `lookup-self` with the token file's bytes
/// exactly as they are on disk.
async fn raw_token_lookup(vault: &Map<String, Value>) -> Result<(), String> {
    let file = vault["auth"]["token_file"]
        .as_str()
        .ok_or("no token_file")?;
    let raw = zeroize::Zeroizing::new(std::fs::read(file).map_err(|e| e.to_string())?);
    let addr = vault["addr"].as_str().ok_or("no addr")?;
    let token = reqwest::header::HeaderValue::from_bytes(&raw)
        .map_err(|_| "the token file is not a valid header value".to_string())?;
    let resp = reqwest::Client::new()
        .get(format!("{addr}/v1/auth/token/lookup-self"))
        .header("X-Vault-Token", token)
        .send()
        .await
        .map_err(|_| "lookup-self failed".to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("lookup-self answered {}", resp.status()))
    }
}

/// For [`Fault::ResolveBeforeParse`]: a KV v2 read at the raw ref, mount
/// and path split by hand, with the token file's token (token auth only).
async fn raw_read(settings: &str, input: &str) {
    let Ok(vault) = serde_json::from_str::<Value>(settings) else {
        return;
    };
    let (Some(addr), Some(file)) = (vault["addr"].as_str(), vault["auth"]["token_file"].as_str())
    else {
        return;
    };
    let Ok(token) = std::fs::read_to_string(file).map(zeroize::Zeroizing::new) else {
        return;
    };
    let rest = input.strip_prefix("vault://").unwrap_or(input);
    let rest = rest.split(['#', '?']).next().unwrap_or("");
    let Some((mount, path)) = rest.split_once('/') else {
        return;
    };
    let _ = reqwest::Client::new()
        .get(format!("{addr}/v1/{mount}/data/{path}"))
        .header("X-Vault-Token", token.trim())
        .send()
        .await;
}
