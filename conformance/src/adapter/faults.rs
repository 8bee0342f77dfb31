//! The deliberate defects of `vaultref-broken-adapter --fault NAME`, kept
//! apart from the shim (as rustls keeps BoGo's quirks out of its shim).
//!
//! Each [`Fault`] is one small, named deviation of the kind resolver authors
//! make, applied at the protocol boundary by two hooks:
//! [`Faults::before`] may rewrite a request (or do something extra first, or
//! answer it itself), and [`Faults::after`] may rewrite the reply. The shim
//! calls them around every request and knows nothing of any fault, so
//! `conformance/tests/broken.rs` can say exactly which scenarios each fault
//! must fail.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use vaultref::policy::PolicySettings;
use vaultref::vault::{AuthConfig, Resolver, VaultConfig};
use vaultref::{RefPolicy, SecretRef};

use vaultref::worker::{Worker, stderr_sink};

use super::{State, failed, invalid, ref_input, resolve_checked, scope_context};

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
    /// Lets a job's credential go to whatever host its repository URL names
    /// (no host binding, G10): the same slug on another host gets the token.
    TrustAnyHost,
    /// Logs in and reads with an HTTP client that follows redirects, as
    /// common Vault clients do: credentials and token go where a `307` says.
    FollowRedirects,
    /// Reads the KV answer whole, with no timeout and no size cap, and takes
    /// a body that is not JSON for "not found".
    UnboundedRead,
    /// Quotes the input in `check_ref` error messages ("… in `<input>`").
    EchoRefInput,
    /// Honours `VAULT_SKIP_VERIFY` as other Vault clients do: logs in with
    /// certificate checks off when it is set.
    HonourSkipVerify,
    /// Runs job actions without isolation (a process group only), so a
    /// `setsid` child outlives the action.
    NoActionIsolation,
    /// Names every lint finding after one generic rule.
    WrongRuleId,
    /// Logs the first characters of every resolved value ("to help
    /// debugging"), as a truncated print does.
    LeakPrefix,
    /// Reports the repository as written instead of its `owner/repo` slug.
    SlugAsWritten,
    /// Isolates job actions in a PID namespace but runs them as the
    /// worker's own user, as the reference once did: the action cannot
    /// outlive itself, yet reads the worker's token file.
    PidNamespaceOnly,
    /// After an AppRole `configure`, logs in once more by hand and prints
    /// the token it got, in hex ("debug: session token ..."): a token the
    /// implementation obtained itself, which the harness never handed out.
    LeakLoginToken,
    /// Caches every resolved value in a file in `TMPDIR` and never removes it.
    TempFileCache,
    /// Caches every resolved value in a fixed file under `/var/tmp`, outside
    /// the directories the implementation was given.
    StrayFileCache,
    /// Tries a resolution twice more when it ends `vault_unavailable` ("Vault
    /// had a hiccup"), which V6 leaves to the worker.
    RetryUnavailable,
    /// A credential helper that answers any request (host, path, protocol)
    /// with the job's credential: a shim in front of the reference helper
    /// that rewrites every request to the job's remote.
    HelperAnyRemote,
    /// Pushes even when `publish.mode` is `none` ("always publish the work").
    PushWhenNone,
    /// Checks a worker job's refs against the allowed mounts only: the
    /// scopes bound to the job's repository are left out.
    WorkerIgnoresScopes,
    /// Leaves a state file per job in `temp_dir`.
    LeaveTempFiles,
    /// Reads the secret-id file once, at `configure` (a copy is logged in
    /// with ever after).
    StaleSecretId,
    /// Reports a dead token as a policy denial (every 403 is "denied").
    DeadTokenAsDenied,
    /// Answers `unsupported` to an auth method it does not know (P7 read
    /// for every method, not only the listed ones).
    UnknownMethodUnsupported,
    /// Accepts a token file that does not exist yet at `configure` (it is
    /// read at the first resolve).
    LazyCredentialFiles,
    /// Resolves `publishAuthRef` when the job starts ("fetch all of a job's
    /// secrets up front"), not just before the push.
    PublishRefAtStart,
    /// A new resolver, so a new login, for every worker job.
    LoginPerJob,
    /// Looks fields up without case ("normalise the field name"): `#Token`
    /// reads `token`.
    FieldCaseInsensitive,
    /// Fails secret jobs with `vault_unavailable` while Vault is down
    /// instead of declining them (no degraded mode: the queue loses them).
    FailInsteadOfDecline,
    /// Claims a Codex shard by reading the record and writing it without
    /// check-and-set (check-then-act).
    ClaimWithoutCas,
    /// Stores a Codex volume backup as a plain tar and restores it unchecked.
    BackupPlaintext,
    /// Answers `codex_rewrap` without rewrapping anything.
    RewrapNoop,
    /// Rewraps without honouring the store's rewrap lock (moves the lock
    /// file aside, so the library locks a fresh one).
    RewrapUnlocked,
    /// Keeps a copy of each backed-up volume in its temp dir and restores
    /// from it when Vault refuses to unwrap the key.
    RestoreFromCache,
    /// Ignores `cluster_addrs`: the first node's death is an outage.
    FirstNodeOnly,
    /// Tries the cluster's nodes in order, each on its own, and takes the
    /// first answer (standbys' own reads included).
    ReadAnyNode,
    /// Checks `sys/health` before a resolution and takes a standby's 429
    /// for "down".
    StandbyAsDown,
    /// One address, and a resolution or a job retried until Vault answers,
    /// unbounded.
    RetryForever,
    /// Sends each resolution to the `leader_address` the first node's
    /// `sys/leader` names, wherever that is.
    FollowLeaderAddress,
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
        ("trust-any-host", Fault::TrustAnyHost),
        ("follow-redirects", Fault::FollowRedirects),
        ("unbounded-read", Fault::UnboundedRead),
        ("echo-ref-input", Fault::EchoRefInput),
        ("honour-skip-verify", Fault::HonourSkipVerify),
        ("no-action-isolation", Fault::NoActionIsolation),
        ("wrong-rule-id", Fault::WrongRuleId),
        ("leak-prefix", Fault::LeakPrefix),
        ("slug-as-written", Fault::SlugAsWritten),
        ("pid-namespace-only", Fault::PidNamespaceOnly),
        ("leak-login-token", Fault::LeakLoginToken),
        ("temp-file-cache", Fault::TempFileCache),
        ("stray-file-cache", Fault::StrayFileCache),
        ("retry-unavailable", Fault::RetryUnavailable),
        ("helper-any-remote", Fault::HelperAnyRemote),
        ("push-when-none", Fault::PushWhenNone),
        ("worker-ignores-scopes", Fault::WorkerIgnoresScopes),
        ("leave-temp-files", Fault::LeaveTempFiles),
        ("stale-secret-id", Fault::StaleSecretId),
        ("dead-token-as-denied", Fault::DeadTokenAsDenied),
        (
            "unknown-method-unsupported",
            Fault::UnknownMethodUnsupported,
        ),
        ("lazy-credential-files", Fault::LazyCredentialFiles),
        ("publish-ref-at-start", Fault::PublishRefAtStart),
        ("login-per-job", Fault::LoginPerJob),
        ("field-case-insensitive", Fault::FieldCaseInsensitive),
        ("fail-instead-of-decline", Fault::FailInsteadOfDecline),
        ("claim-without-cas", Fault::ClaimWithoutCas),
        ("backup-plaintext", Fault::BackupPlaintext),
        ("rewrap-noop", Fault::RewrapNoop),
        ("rewrap-unlocked", Fault::RewrapUnlocked),
        ("restore-from-cache", Fault::RestoreFromCache),
        ("first-node-only", Fault::FirstNodeOnly),
        ("read-any-node", Fault::ReadAnyNode),
        ("standby-as-down", Fault::StandbyAsDown),
        ("retry-forever", Fault::RetryForever),
        ("follow-leader-address", Fault::FollowLeaderAddress),
    ];

    /// Looks a fault up by name.
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }
}

/// One fault, hooked around the shim's request handling.
pub struct Faults {
    fault: Fault,
    /// `configure`'s `vault` member and `temp_dir`, for the codex faults.
    vault: Option<Value>,
    temp_dir: Option<std::path::PathBuf>,
    ha: super::ha_faults::HaFaultState,
}

impl Faults {
    /// The hooks of `fault`.
    pub fn new(fault: Fault) -> Faults {
        Faults {
            fault,
            vault: None,
            temp_dir: None,
            ha: Default::default(),
        }
    }

    /// Called before the shim handles `op`: may rewrite `req`, act first, or
    /// answer the request itself (`Some(reply)`).
    pub(crate) fn before(
        &mut self,
        op: &str,
        req: &mut Map<String, Value>,
        state: &mut State,
    ) -> Option<Value> {
        match op {
            "check_ref" => self.before_check_ref(req),
            "check_payload" => self.before_check_payload(req),
            "configure" => {
                self.vault = req.get("vault").cloned();
                self.temp_dir = req
                    .get("temp_dir")
                    .and_then(Value::as_str)
                    .map(std::path::PathBuf::from);
                if let Some(Value::Object(vault)) = req.get_mut("vault") {
                    super::ha_faults::before_configure(self.fault, vault, state, &mut self.ha);
                }
                self.before_configure(req, state)
            }
            op if op.starts_with("codex_") => super::codex_faults::before(
                self.fault,
                op,
                req,
                state,
                self.vault.as_ref(),
                self.temp_dir.as_deref(),
            ),
            "resolve" => super::ha_faults::before_resolve(self.fault, req, state, &self.ha)
                .or_else(|| self.before_resolve(req, state)),
            "run_job" => {
                if self.fault == Fault::WorkerIgnoresScopes
                    && let Some(worker) = &state.worker
                {
                    // The mounts stay; the scopes go, in the payload check
                    // and in the worker.
                    let settings = PolicySettings {
                        allowed_mounts: Some(state.policy.allowed_mounts().to_vec()),
                        ..PolicySettings::default()
                    };
                    if let Ok(lax) = RefPolicy::try_from(settings) {
                        state.policy = lax.clone();
                        let mut ws = worker.settings().clone();
                        ws.ref_policy = lax;
                        state.worker = Some(Worker::new(ws, state.resolver.clone(), stderr_sink()));
                    }
                }
                if let Some(worker) = self.before_run_job(req, state) {
                    state.worker = Some(worker);
                }
                None
            }
            _ => None,
        }
    }

    /// Called with the reply to `op` (the shim's or [`Faults::before`]'s).
    pub(crate) fn after(
        &mut self,
        op: &str,
        req: &Map<String, Value>,
        state: &mut State,
        reply: &mut Value,
    ) {
        match (self.fault, op) {
            (_, "hello") => {
                reply["implementation"]["name"] = json!("vaultref-broken-adapter");
            }
            (Fault::NoUnsupported, _) if reply["reply"] == "unsupported" => {
                *reply = json!({"reply": "error", "message": format!("unknown op `{op}`")});
            }
            (Fault::EchoRefInput, "check_ref") if reply["valid"] == false => {
                let input = req.get("input").and_then(Value::as_str).unwrap_or("");
                let message = format!("{} in `{input}`", reply["message"].as_str().unwrap_or(""));
                reply["message"] = json!(message);
            }
            (Fault::OffByOne, "check_ref") => {
                if let Some(o) = reply["offset"].as_u64() {
                    reply["offset"] = json!(o + 1);
                }
            }
            (Fault::Kv2DataPath, "check_ref") => {
                if let Some(p) = reply["ref"]["path"].as_str() {
                    reply["ref"]["path"] = json!(format!("data/{p}"));
                }
            }
            (Fault::WrongRuleId, "check_payload") => {
                for e in reply["errors"].as_array_mut().into_iter().flatten() {
                    if e.get("rule").is_some() {
                        e["rule"] = json!("generic-secret");
                    }
                }
            }
            (Fault::SlugAsWritten, "check_payload") if reply["valid"] == true => {
                let written = req
                    .get("job")
                    .and_then(|j| j.pointer("/payload/repository"))
                    .cloned()
                    .unwrap_or(Value::Null);
                reply["summary"]["repository_slug"] = written;
            }
            (Fault::SkipPayloadLint, "check_payload") => {
                if let Some(errors) = reply["errors"].as_array_mut() {
                    errors.retain(|e| e["code"] != "payload_contains_secret");
                    if errors.is_empty() {
                        *reply = json!({"reply": "check_payload", "valid": true});
                    }
                }
            }
            (Fault::EchoPayloadSecret, "check_payload") => {
                let job = req.get("job");
                for e in reply["errors"].as_array_mut().into_iter().flatten() {
                    if e["code"] == "payload_contains_secret"
                        && let Some(found) = job.and_then(|j| j.pointer(e["pointer"].as_str()?))
                    {
                        let message =
                            format!("{} (found: {found})", e["message"].as_str().unwrap_or(""));
                        e["message"] = json!(message);
                    }
                }
            }
            (Fault::LoginPerResolve, "configure" | "resolve") => {
                // No resolver (so no token) outlives one resolution.
                if let Some(r) = state
                    .resolver
                    .take()
                    .and_then(|r| std::sync::Arc::try_unwrap(r).ok())
                {
                    state.rt.block_on(r.shutdown());
                }
            }
            (Fault::LeakLoginToken, "configure") if reply["outcome"] == "configured" => {
                if let Some(vault) = req.get("vault").and_then(Value::as_object)
                    && vault["auth"]["method"] == "approle"
                    && let Some(token) = state.rt.block_on(approle_login_once(vault))
                {
                    eprintln!("debug: session token {}", hex::encode(token));
                }
            }
            (Fault::TempFileCache | Fault::StrayFileCache, "resolve")
                if reply["outcome"] == "resolved" =>
            {
                let value = read_again(req, state, "cache");
                if let Some(value) = value {
                    let file = if self.fault == Fault::TempFileCache {
                        std::env::temp_dir().join(format!("vaultref-cache-{}", std::process::id()))
                    } else {
                        std::path::PathBuf::from("/var/tmp/vaultref-broken-adapter-cache")
                    };
                    let _ = std::fs::write(file, value.expose_secret());
                }
            }
            (Fault::LeakBase64 | Fault::LeakPrefix, "resolve")
                if reply["outcome"] == "resolved" =>
            {
                // "Debug logging" of the value: read it once more and print it.
                let value = read_again(req, state, "debug");
                if let Some(value) = value {
                    use base64::Engine;
                    let v = value.expose_secret();
                    if self.fault == Fault::LeakPrefix {
                        let head: String = v.chars().take(v.chars().count() / 2 + 2).collect();
                        eprintln!("debug: resolved {head}...");
                    } else {
                        let encoded = base64::engine::general_purpose::STANDARD.encode(v);
                        eprintln!("debug: resolved {encoded}");
                    }
                }
            }
            (Fault::MissingAsEmpty, "resolve") if reply["code"] == "secret_not_found" => {
                if let Some(key) = &state.key {
                    let empty = SecretString::from(String::new());
                    *reply = json!({"reply": "resolve", "outcome": "resolved", "fingerprint": key.fingerprint(&empty)});
                }
            }
            (Fault::DeadTokenAsDenied, "resolve") if reply["code"] == "vault_auth_failed" => {
                *reply = failed("resolve", "vault_permission_denied", "permission denied");
            }
            (Fault::FailInsteadOfDecline, "run_job") if reply["outcome"] == "declined" => {
                *reply = failed("run_job", "vault_unavailable", "Vault is unavailable");
            }
            (Fault::RetryForever, "run_job") => {
                // The job is run again until Vault answers, with no bound:
                // the queue stalls behind it.
                while reply["outcome"] == "declined" || reply["code"] == "vault_unavailable" {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    *reply = super::run_job(req, state);
                }
            }
            (Fault::LeaveTempFiles, "run_job") => {
                let id = req.get("job_id").and_then(Value::as_str).unwrap_or("job");
                let file = std::env::temp_dir().join(format!("{id}.state"));
                let _ = std::fs::write(file, format!("{{\"job\": \"{id}\"}}"));
            }
            (Fault::RetryUnavailable, "resolve") if reply["code"] == "vault_unavailable" => {
                let parsed = req
                    .get("ref")
                    .and_then(Value::as_str)
                    .and_then(|r| SecretRef::parse(r).ok());
                if let (Some(r), Some(resolver), Some(key)) =
                    (parsed, state.resolver.as_ref(), state.key.as_ref())
                {
                    for _ in 0..2 {
                        if let Ok(v) = state.rt.block_on(resolver.resolve(&r, "retry")) {
                            *reply = json!({"reply": "resolve", "outcome": "resolved",
                                            "fingerprint": key.fingerprint(&v)});
                            break;
                        }
                    }
                }
            }
            (Fault::OneNotFound, "resolve")
                if reply["outcome"] == "failed"
                    && !reply["code"].as_str().unwrap_or("").starts_with("ref_") =>
            {
                *reply = failed("resolve", "secret_not_found", "not found");
            }
            _ => {}
        }
    }

    fn before_check_ref(&self, req: &mut Map<String, Value>) -> Option<Value> {
        let input = ref_input(req).ok()?;
        match self.fault {
            Fault::HangOnQuery if input.windows(8).any(|w| w == b"version=") => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
            Fault::LenientPolicyConfig => {
                let usable = req.get("policy").is_none_or(|p| {
                    serde_json::from_value::<PolicySettings>(p.clone())
                        .ok()
                        .is_some_and(|s| RefPolicy::try_from(s).is_ok())
                });
                if !usable {
                    req.remove("policy");
                }
            }
            Fault::EmptyAsBadScheme if input.is_empty() => {
                return Some(invalid(
                    "ref_bad_scheme",
                    Some(0),
                    "the ref does not start with vault://",
                ));
            }
            Fault::AcceptTraversal => {
                req.remove("input");
                req.insert(
                    "input_hex".into(),
                    json!(hex::encode(disguise_dots(&input))),
                );
            }
            Fault::SkipMountCheck => {
                let max = req
                    .get("policy")
                    .and_then(|p| p.get("max_length"))
                    .and_then(Value::as_u64)
                    .map_or(512, |m| m as usize);
                if let Ok(parsed) = SecretRef::parse_bytes(&input, max) {
                    let policy = req.entry("policy").or_insert_with(|| json!({}));
                    if policy.is_null() {
                        *policy = json!({});
                    }
                    policy["allowed_mounts"] = json!([parsed.mount()]);
                }
            }
            _ => {}
        }
        None
    }

    fn before_check_payload(&self, req: &Map<String, Value>) -> Option<Value> {
        match self.fault {
            Fault::SchemaNotLoaded => Some(json!({"reply": "check_payload", "valid": false,
                "errors": [{"code": "payload_schema", "pointer": "", "message": "the payload schema could not be loaded"}]})),
            Fault::SkipPayloadSchema => {
                let bytes = super::payload_bytes(req).ok()?;
                Some(match serde_json::from_slice::<Value>(&bytes) {
                    Ok(_) => json!({"reply": "check_payload", "valid": true}),
                    Err(_) => json!({"reply": "check_payload", "valid": false,
                        "errors": [{"code": "payload_not_json", "pointer": "", "message": "not JSON"}]}),
                })
            }
            _ => None,
        }
    }

    fn before_configure(&self, req: &mut Map<String, Value>, state: &State) -> Option<Value> {
        let vault = req.get_mut("vault")?.as_object_mut()?;
        match self.fault {
            Fault::WrongJobHeader => {
                vault.insert("job_id_header".into(), json!("X-Request-Tag"));
            }
            Fault::StaleTokenFile => {
                if let Some(f) = vault["auth"]["token_file"].as_str()
                    && let Ok(token) = std::fs::read(f)
                    && let Some(copy) = unnamed_copy(&token)
                {
                    vault["auth"]["token_file"] = json!(copy);
                }
            }
            Fault::UnknownMethodUnsupported
                if !matches!(vault["auth"]["method"].as_str(), Some("token" | "approle")) =>
            {
                return Some(json!({"reply": "unsupported", "op": "configure",
                                   "message": "this auth method is not implemented"}));
            }
            Fault::LazyCredentialFiles
                if vault["auth"]["token_file"]
                    .as_str()
                    .is_some_and(|f| !std::path::Path::new(f).exists()) =>
            {
                return Some(json!({"reply": "configure", "outcome": "configured"}));
            }
            Fault::StaleSecretId => {
                if let Some(f) = vault["auth"]["secret_id_file"].as_str()
                    && let Ok(id) = std::fs::read(f)
                    && let Some(copy) = unnamed_copy(&id)
                {
                    vault["auth"]["secret_id_file"] = json!(copy);
                }
            }
            Fault::HonourSkipVerify
                if vault["auth"]["method"] == "approle"
                    && std::env::var_os("VAULT_SKIP_VERIFY").is_some() =>
            {
                state.rt.block_on(login_without_verification(vault));
            }
            Fault::ApproleDefaultMount if vault["auth"]["method"] == "approle" => {
                vault["auth"]["mount"] = json!("approle");
            }
            Fault::RawTokenFile if vault["auth"]["method"] == "token" => {
                if let Err(m) = state.rt.block_on(raw_token_lookup(vault)) {
                    return Some(failed("configure", "vault_auth_failed", &m));
                }
            }
            Fault::StaticToken if vault["auth"]["method"] == "approle" => {
                if let Some(token) = state.rt.block_on(approle_login_once(vault))
                    && let Some(file) = unnamed_copy(token.as_bytes())
                {
                    vault["auth"] = json!({"method": "token", "token_file": file});
                }
            }
            _ => {}
        }
        None
    }

    fn before_resolve(&self, req: &mut Map<String, Value>, state: &mut State) -> Option<Value> {
        let input = req.get("ref").and_then(Value::as_str)?.to_string();
        let job_id = req.get("job_id").and_then(Value::as_str)?.to_string();
        match self.fault {
            Fault::IgnoreVersion => {
                if let Some((head, rest)) = input.split_once('?') {
                    let field = rest.split_once('#').map_or("", |(_, f)| f);
                    req.insert("ref".into(), json!(format!("{head}#{field}")));
                }
            }
            Fault::CacheForever if !input.contains('?') => {
                req.insert("ref".into(), json!(input.replacen('#', "?version=1#", 1)));
            }
            Fault::FieldCaseInsensitive => {
                if let Some((head, field)) = input.rsplit_once('#') {
                    req.insert(
                        "ref".into(),
                        json!(format!("{head}#{}", field.to_ascii_lowercase())),
                    );
                }
            }
            Fault::ResolveBeforeParse => {
                if let Some(config) = &state.vault_config {
                    state.rt.block_on(raw_read(config, &input));
                }
            }
            Fault::SkipResolvePolicy => {
                return Some(match SecretRef::parse(&input) {
                    Ok(parsed) => resolve_checked(&parsed, &job_id, state),
                    Err(e) => failed("resolve", e.code().as_str(), e.message()),
                });
            }
            Fault::ReadParent => {
                if let Ok(parsed) = state.policy.check(&input, &scope_context(req, state))
                    && let Some((parent, _)) = parsed.path().rsplit_once('/')
                    && let Ok(up) = SecretRef::parse(&format!(
                        "vault://{}/{parent}#{}",
                        parsed.mount(),
                        parsed.field()
                    ))
                    && let Some(resolver) = &state.resolver
                {
                    let _ = state.rt.block_on(resolver.resolve(&up, &job_id));
                }
            }
            Fault::FollowRedirects | Fault::UnboundedRead => {
                let config = state.vault_config.clone()?;
                let key = state.key.as_ref()?;
                let parsed = SecretRef::parse(&input).ok()?;
                let reply = state.rt.block_on(naive_read(&config, &parsed, self.fault));
                return Some(match reply {
                    NaiveRead::Value(v) => json!({"reply": "resolve", "outcome": "resolved",
                        "fingerprint": key.fingerprint(&v)}),
                    NaiveRead::Failed(code) => failed("resolve", code, "naive read failed"),
                });
            }
            Fault::LoginPerResolve => {
                // A new resolver, so a new login, for this one resolution.
                let fresh = state
                    .vault_config
                    .clone()
                    .and_then(|c| state.rt.block_on(Resolver::new(c)).ok());
                state.resolver = fresh.map(std::sync::Arc::new);
            }
            _ => {}
        }
        None
    }

    /// May return a replacement worker (for [`Fault::TrustAnyHost`]).
    fn before_run_job(&self, req: &mut Map<String, Value>, state: &State) -> Option<Worker> {
        let job_id = req
            .get("job_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let payload = req
            .get_mut("job")
            .and_then(|j| j.get_mut("payload"))
            .and_then(Value::as_object_mut)?;
        let repo_ref = payload
            .get("repoAuthRef")
            .and_then(Value::as_str)
            .and_then(|r| SecretRef::parse(r).ok());
        match self.fault {
            Fault::IgnorePublishAuthRef => {
                payload.remove("publishAuthRef");
            }
            Fault::PidNamespaceOnly => {
                // The harness's action, wrapped in `unshare` by hand, as
                // the worker's user; the worker's own isolation off.
                let argv = req
                    .get_mut("action")
                    .and_then(|a| a.get_mut("argv"))
                    .and_then(Value::as_array_mut)?;
                let mut wrapped: Vec<Value> = [
                    "unshare",
                    "--pid",
                    "--fork",
                    "--mount-proc",
                    "--kill-child",
                    "--",
                ]
                .map(Value::from)
                .into();
                wrapped.append(argv);
                *argv = wrapped;
                let worker = state.worker.as_ref()?;
                let mut settings = worker.settings().clone();
                settings.action_isolation = vaultref::worker::Isolation::Off;
                return Some(Worker::new(settings, state.resolver.clone(), stderr_sink()));
            }
            Fault::PublishRefAtStart => {
                let publish = payload
                    .get("publishAuthRef")
                    .and_then(Value::as_str)
                    .and_then(|r| SecretRef::parse(r).ok());
                if let (Some(r), Some(resolver)) = (publish, &state.resolver) {
                    let _ = state.rt.block_on(resolver.resolve(&r, &job_id));
                }
            }
            Fault::LoginPerJob => {
                let fresh = state
                    .vault_config
                    .clone()
                    .and_then(|c| state.rt.block_on(Resolver::new(c)).ok())
                    .map(std::sync::Arc::new);
                let worker = state.worker.as_ref()?;
                return Some(Worker::new(worker.settings().clone(), fresh, stderr_sink()));
            }
            Fault::PushWhenNone
                if payload.get("publish").and_then(|p| p.get("mode")) == Some(&json!("none")) =>
            {
                payload.insert("publish".into(), json!({"mode": "branch"}));
            }
            Fault::HelperAnyRemote => {
                let worker = state.worker.as_ref()?;
                let mut settings = worker.settings().clone();
                let repo = payload.get("repository").and_then(Value::as_str)?;
                let remote = vaultref::git::Remote::parse(repo, true)
                    .or_else(|_| {
                        vaultref::git::Remote::from_slug(&settings.git_base_url, repo, true)
                    })
                    .ok()?;
                // The real helper: the one the shim replaced the first time.
                let real = match settings.git.helper.file_name() {
                    Some(n) if n == "helper-any-remote.sh" => {
                        std::fs::read_link(settings.git.helper.with_file_name("real-helper"))
                            .ok()?
                    }
                    _ => settings.git.helper.clone(),
                };
                let _ = std::fs::remove_file(std::env::temp_dir().join("real-helper"));
                std::os::unix::fs::symlink(&real, std::env::temp_dir().join("real-helper")).ok()?;
                let shim = std::env::temp_dir().join("helper-any-remote.sh");
                let script = format!(
                    "#!/bin/sh\nsed -e 's|^protocol=.*|protocol={}|' -e 's|^host=.*|host={}|' -e 's|^path=.*|path={}|' | exec '{}' \"$@\"\n",
                    remote.scheme(),
                    remote.host(),
                    remote.path(),
                    real.display()
                );
                std::fs::write(&shim, script).ok()?;
                std::fs::set_permissions(
                    &shim,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
                .ok()?;
                settings.git.helper = shim;
                return Some(Worker::new(settings, state.resolver.clone(), stderr_sink()));
            }
            Fault::NoActionIsolation => {
                if let Some(worker) = &state.worker
                    && worker.settings().action_isolation != vaultref::worker::Isolation::Off
                {
                    let mut settings = worker.settings().clone();
                    settings.action_isolation = vaultref::worker::Isolation::Off;
                    return Some(Worker::new(settings, state.resolver.clone(), stderr_sink()));
                }
            }
            Fault::TrustAnyHost => {
                // Whatever host the job names joins the allowed hosts.
                let host = payload
                    .get("repository")
                    .and_then(Value::as_str)
                    .and_then(|u| vaultref::git::Remote::parse(u, true).ok())
                    .map(|r| r.host().to_string());
                if let (Some(host), Some(worker)) = (host, &state.worker) {
                    let mut settings = worker.settings().clone();
                    let base =
                        vaultref::git::Remote::from_slug(&settings.git_base_url, "o/r", true)
                            .map(|r| r.host().to_string())
                            .unwrap_or_default();
                    settings.allowed_git_hosts = vec![base, host];
                    return Some(Worker::new(settings, state.resolver.clone(), stderr_sink()));
                }
            }
            Fault::CacheForever => {
                for k in ["repoAuthRef", "publishAuthRef"] {
                    if let Some(Value::String(r)) = payload.get_mut(k)
                        && !r.contains('?')
                    {
                        *r = r.replacen('#', "?version=1#", 1);
                    }
                }
            }
            Fault::VaultBeforeQueuePolicy => {
                if let (Some(r), Some(resolver)) = (repo_ref, &state.resolver) {
                    let _ = state.rt.block_on(resolver.resolve(&r, &job_id));
                }
            }
            Fault::HangWhenVaultDown => {
                if payload.contains_key("repoAuthRef")
                    && let Some(resolver) = &state.resolver
                    && state.rt.block_on(resolver.probe()).is_err()
                {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            }
            Fault::TokenInArgv => {
                let repo = payload
                    .get("repository")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let base = state
                    .worker
                    .as_ref()
                    .map(|w| w.settings().git_base_url.clone());
                if let (Some(r), Some(resolver), Some(base)) = (repo_ref, &state.resolver, base)
                    && let Ok(token) = state.rt.block_on(resolver.resolve(&r, &job_id))
                {
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
        None
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

/// A plain client for the faults' own requests, trusting the CA the
/// harness handed over (`vault.ca_cert`), as the shim's resolver does.
fn fault_client(ca_cert: Option<&std::path::Path>) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder();
    if let Some(pem) = ca_cert.and_then(|p| std::fs::read(p).ok())
        && let Ok(certs) = reqwest::Certificate::from_pem_bundle(&pem)
    {
        builder = builder.tls_certs_merge(certs);
    }
    builder
}

/// The `vault.ca_cert` of a `configure` request's vault object.
fn ca_of(vault: &Map<String, Value>) -> Option<&std::path::Path> {
    vault
        .get("ca_cert")
        .and_then(Value::as_str)
        .map(std::path::Path::new)
}

/// The value a `resolve` request named, read once more (for the faults that
/// do something careless with it), or `None`.
fn read_again(req: &Map<String, Value>, state: &State, job_id: &str) -> Option<SecretString> {
    let r = req
        .get("ref")
        .and_then(Value::as_str)
        .and_then(|r| SecretRef::parse(r).ok())?;
    let resolver = state.resolver.as_ref()?;
    state.rt.block_on(resolver.resolve(&r, job_id)).ok()
}

/// A copy of `bytes` in a file with no name (`O_TMPFILE`), kept open for
/// the life of the process and reached as `/proc/self/fd/N`: the faults
/// that read a credential file once must not also leave it on disk, or
/// hygiene (H4) would fail them for that instead of for reading it once.
fn unnamed_copy(bytes: &[u8]) -> Option<std::path::PathBuf> {
    use std::io::Write;
    use std::os::fd::IntoRawFd;
    let mut file = tempfile::tempfile().ok()?;
    file.write_all(bytes).ok()?;
    Some(format!("/proc/self/fd/{}", file.into_raw_fd()).into())
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
    let resp = fault_client(ca_of(vault))
        .build()
        .ok()?
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
    let resp = fault_client(ca_of(vault))
        .build()
        .map_err(|e| e.to_string())?
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
async fn raw_read(config: &VaultConfig, input: &str) {
    let AuthConfig::TokenFile { path } = &config.auth else {
        return;
    };
    let Ok(token) = std::fs::read_to_string(path).map(zeroize::Zeroizing::new) else {
        return;
    };
    let rest = input.strip_prefix("vault://").unwrap_or(input);
    let rest = rest.split(['#', '?']).next().unwrap_or("");
    let Some((mount, path)) = rest.split_once('/') else {
        return;
    };
    let Ok(client) = fault_client(config.ca_cert.as_deref()).build() else {
        return;
    };
    let _ = client
        .get(format!("{}/v1/{mount}/data/{path}", config.addr))
        .header("X-Vault-Token", token.trim())
        .send()
        .await;
}

/// What [`naive_read`] concluded.
enum NaiveRead {
    Value(SecretString),
    Failed(&'static str),
}

/// For [`Fault::FollowRedirects`] and [`Fault::UnboundedRead`]: an AppRole
/// login and a KV v2 read the way a first-draft resolver does them, with an
/// HTTP client's defaults (redirects followed; for `UnboundedRead`, no
/// timeout and the whole body read, whatever its size).
async fn naive_read(config: &VaultConfig, r: &SecretRef, fault: Fault) -> NaiveRead {
    let AuthConfig::AppRole {
        mount,
        role_id_file,
        secret_id_file,
    } = &config.auth
    else {
        return NaiveRead::Failed("vault_auth_failed");
    };
    let mut builder = fault_client(config.ca_cert.as_deref());
    if fault == Fault::FollowRedirects {
        builder = builder.timeout(std::time::Duration::from_secs(5));
    }
    let Ok(client) = builder.build() else {
        return NaiveRead::Failed("vault_unavailable");
    };
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let body =
        json!({"role_id": read(role_id_file).trim(), "secret_id": read(secret_id_file).trim()});
    let Ok(resp) = client
        .post(format!("{}/v1/auth/{mount}/login", config.addr))
        .body(body.to_string())
        .send()
        .await
    else {
        return NaiveRead::Failed("vault_unavailable");
    };
    let answer: Value =
        serde_json::from_slice(&resp.bytes().await.unwrap_or_default()).unwrap_or(Value::Null);
    let Some(token) = answer["auth"]["client_token"].as_str() else {
        return NaiveRead::Failed("vault_unavailable");
    };
    let Ok(resp) = client
        .get(format!("{}/v1/{}", config.addr, r.kv2_data_path()))
        .header("X-Vault-Token", token)
        .send()
        .await
    else {
        return NaiveRead::Failed("vault_unavailable");
    };
    let Ok(bytes) = resp.bytes().await else {
        return NaiveRead::Failed("vault_unavailable");
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(doc) => match doc
            .pointer(&format!("/data/data/{}", r.field()))
            .and_then(Value::as_str)
        {
            Some(v) => NaiveRead::Value(SecretString::from(v.to_string())),
            None => NaiveRead::Failed("secret_not_found"),
        },
        Err(_) => NaiveRead::Failed("secret_not_found"),
    }
}

/// For [`Fault::HonourSkipVerify`]: an AppRole login with certificate
/// checks off.
async fn login_without_verification(vault: &Map<String, Value>) {
    let auth = &vault["auth"];
    let read = |k: &str| {
        auth[k]
            .as_str()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .unwrap_or_default()
    };
    let (Some(addr), Some(mount)) = (vault["addr"].as_str(), auth["mount"].as_str()) else {
        return;
    };
    let Ok(client) = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(std::time::Duration::from_secs(5))
        .build()
    else {
        return;
    };
    let body =
        json!({"role_id": read("role_id_file").trim(), "secret_id": read("secret_id_file").trim()});
    let _ = client
        .post(format!("{addr}/v1/auth/{mount}/login"))
        .body(body.to_string())
        .send()
        .await;
}
