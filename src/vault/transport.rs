//! HTTP to Vault: one `reqwest` client whose rules vaultref sets, for every
//! request (logins of every method, renewal, revocation, lookup-self, KV
//! reads, health).
//!
//! # Why one client, and why not vaultrs
//!
//! An address that answers like an adversary must not be able to move a
//! credential elsewhere, and nothing outside vaultref's own settings may
//! weaken TLS. vaultrs 0.8 builds its reqwest client with the default
//! redirect policy (a `307` on `auth/approle/login` re-POSTs the role id and
//! secret id to the redirect target; on `revoke-self` the `X-Vault-Token`
//! header follows, since reqwest drops only `Authorization` across hosts) and
//! reads `VAULT_SKIP_VERIFY` from the environment itself; neither can be
//! turned off through its settings (field notes §7). It also could not carry a
//! per-request job-id header, dropped 404 bodies (deleted vs destroyed vs
//! missing) and kept raw bodies in its errors. So every request goes through
//! [`Transport`]:
//!
//! - redirects are never followed (`Policy::none()`): a `3xx` is an answer
//!   like any other, classified `vault_unavailable` with the status named;
//! - no proxy from the environment (`no_proxy()`): `HTTPS_PROXY` and friends
//!   are ignored, as `spec/resolver.md` S6 says;
//! - TLS trust is the platform's roots plus `VAULT_CACERT` / `ca_cert`, and
//!   nothing else; [`check_tls_environment`] refuses the variables other Vault
//!   clients read implicitly (`VAULT_SKIP_VERIFY`, `VAULT_CAPATH`,
//!   `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY`, `VAULT_TLS_SERVER_NAME`) so that
//!   a setting the user believes in is never silently dropped;
//! - every answer is read into a zeroizing buffer with a 4 MiB cap, so a huge
//!   or endless body is `vault_unavailable`, not memory growth;
//! - every request is bounded by the configured timeout (default 5 s),
//!   connection included. With one address nothing here retries: retry
//!   policy lives in the resolver (one retry after a re-login) and in the
//!   renewal task (backoff).
//!
//! # Clusters (`spec/resolver.md` §13)
//!
//! With the cluster's other nodes configured (`cluster_addrs`), a request
//! goes only to the node that says it is active (`sys/leader` answering
//! `is_self: true`), looked up at first use, after any failure and when
//! its word is more than a second old: a
//! standby's answer is never used, because during an election standbys
//! serve reads of their own that can be stale (seen here: an acknowledged
//! write read back as the previous version for most of a second after the
//! leader was killed). A redirect is never followed. When no node says it
//! is active, or the active one fails, the lookup is repeated with backoff
//! from 100 ms to 1 s until the failover window (default 15 s) runs out;
//! then the request is `vault_unavailable` like a single server's.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::config::VaultConfig;
use super::error::ResolveError;
use super::job::JobId;
use crate::ErrorCode;

/// How long a node's word that it is the active one is trusted before it is
/// asked again (`resolver.md` C2): a leader that steps down but stays
/// reachable serves reads of its own for at most about this long.
const LEADER_TRUST: Duration = Duration::from_secs(1);

/// `fut`, or `None` once `deadline` has passed.
async fn within<T>(deadline: Instant, fut: impl std::future::Future<Output = T>) -> Option<T> {
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(left, fut).await.ok()
}

/// Environment variables other Vault clients read to change TLS; vaultref
/// refuses them rather than ignore them (`spec/resolver.md` S6).
pub const REFUSED_TLS_VARIABLES: &[&str] = &[
    "VAULT_SKIP_VERIFY",
    "VAULT_CAPATH",
    "VAULT_CLIENT_CERT",
    "VAULT_CLIENT_KEY",
    "VAULT_TLS_SERVER_NAME",
];

/// Refuses (`config_invalid`, naming the variable) an environment that asks
/// for TLS behaviour vaultref does not take from the environment.
/// `VAULT_SKIP_VERIFY` set to an empty value, `0`, `f` or `false` asks for
/// nothing and is accepted.
pub fn check_tls_environment() -> Result<(), ResolveError> {
    for name in REFUSED_TLS_VARIABLES {
        let Some(value) = std::env::var_os(name) else {
            continue;
        };
        let v = value.to_string_lossy().trim().to_ascii_lowercase();
        if *name == "VAULT_SKIP_VERIFY" && matches!(v.as_str(), "" | "0" | "f" | "false") {
            continue;
        }
        if v.is_empty() {
            continue;
        }
        return Err(ResolveError::config(format!(
            "{name} is set; vaultref never takes TLS settings from that variable \
             (certificate checks cannot be turned off; trust a CA with VAULT_CACERT): unset it"
        )));
    }
    Ok(())
}

/// The largest answer accepted from Vault.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The status and body of a job-bound request. The body is zeroized on drop:
/// it may hold secret data.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
}

/// The one HTTP client, configured once.
pub(crate) struct Transport {
    http: reqwest::Client,
    /// `VAULT_ADDR` first, then the cluster's other nodes.
    nodes: Vec<String>,
    /// The node requests go to first.
    active: AtomicUsize,
    /// Whether `active` was found through `sys/leader` since the last
    /// failover (clusters only).
    leader_known: AtomicBool,
    /// When `active` last said it was active.
    leader_checked: std::sync::Mutex<Instant>,
    failover: Duration,
    namespace: Option<HeaderValue>,
    job_header: HeaderName,
    timeout: Duration,
}

/// Accepts a token only if every byte is visible ASCII (what Vault issues:
/// `s.…`, `hvs.…`, `hvb.…`), 1 to 4096 bytes. Anything else could not be sent
/// in a header anyway.
pub(crate) fn check_token(token: &str) -> bool {
    (1..=4096).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic())
}

impl Transport {
    pub(crate) fn new(cfg: &VaultConfig) -> Result<Transport, ResolveError> {
        check_tls_environment()?;
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tls_backend_rustls();
        if cfg.addr.starts_with("http://") {
            // Plain HTTP needs no certificate store, and loading the platform
            // one can fail (reqwest#2988).
            builder = builder.tls_certs_only(Vec::new());
        } else if let Some(ca) = &cfg.ca_cert {
            let pem = std::fs::read(ca).map_err(|e| {
                ResolveError::config(format!("cannot read CA bundle {}: {e}", ca.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
                ResolveError::config(format!("CA bundle {} is not PEM", ca.display()))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| ResolveError::config(format!("cannot build the HTTP client: {e}")))?;
        let namespace = match &cfg.namespace {
            Some(ns) => Some(HeaderValue::from_str(ns).map_err(|_| {
                ResolveError::config("VAULT_NAMESPACE is not a valid header value")
            })?),
            None => None,
        };
        let job_header = HeaderName::from_bytes(cfg.job_id_header.as_bytes())
            .map_err(|_| ResolveError::config("the job id header is not a valid header name"))?;
        let mut nodes = vec![cfg.addr.clone()];
        nodes.extend(cfg.cluster_addrs.iter().cloned());
        Ok(Transport {
            http,
            nodes,
            active: AtomicUsize::new(0),
            leader_known: AtomicBool::new(false),
            leader_checked: std::sync::Mutex::new(Instant::now()),
            failover: cfg.failover,
            namespace,
            job_header,
            timeout: cfg.timeout,
        })
    }

    /// The address requests go to first (`VAULT_ADDR`, or the cluster node
    /// believed active).
    pub(crate) fn addr(&self) -> &str {
        &self.nodes[self.active.load(Ordering::Relaxed) % self.nodes.len()]
    }

    /// Whether the cluster's other nodes are configured.
    pub(crate) fn is_cluster(&self) -> bool {
        self.nodes.len() > 1
    }

    /// `GET /v1/<path>` with the token and the job id. `path` is built by the
    /// resolver from a validated ref (segchars and `/` only) plus an optional
    /// `?version=N`, so it needs no escaping.
    pub(crate) async fn get(
        &self,
        path: &str,
        token: &SecretString,
        job: &JobId,
    ) -> Result<Reply, ResolveError> {
        self.send(reqwest::Method::GET, path, Some(token), Some(job), None)
            .await
    }

    /// `GET /v1/<path>` with the token and no job id: worker-level calls
    /// (`lookup-self` for an operator's check, a policy's text).
    pub(crate) async fn get_worker(
        &self,
        path: &str,
        token: &SecretString,
    ) -> Result<Reply, ResolveError> {
        self.send(reqwest::Method::GET, path, Some(token), None, None)
            .await
    }

    /// `GET /v1/<path>` with no token and no job id: the unauthenticated
    /// status endpoints (`sys/health`, `sys/leader`).
    pub(crate) async fn get_public(&self, path: &str) -> Result<Reply, ResolveError> {
        self.send(reqwest::Method::GET, path, None, None, None)
            .await
    }

    /// `POST /v1/<path>` with a JSON body (zeroized after sending, best
    /// effort: reqwest owns a copy while it sends), for worker-level calls:
    /// logins, renewal, revocation. No job id (`spec/resolver.md` V8).
    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&SecretString>,
        body: Zeroizing<Vec<u8>>,
    ) -> Result<Reply, ResolveError> {
        self.send(reqwest::Method::POST, path, token, None, Some(body))
            .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&SecretString>,
        job: Option<&JobId>,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Reply, ResolveError> {
        if !self.is_cluster() {
            return self.send_to(0, method, path, token, job, body).await;
        }
        let deadline = Instant::now() + self.failover;
        let mut backoff = Duration::from_millis(100);
        let mut last = None;
        // The first failure is followed at once by a leader lookup and a
        // second try (a leader that moved); waits start after that.
        let mut waited_yet = false;
        // A node that stepped down but still answers serves its own reads:
        // what it said is trusted for LEADER_TRUST only.
        if self
            .leader_checked
            .lock()
            .map_or(true, |t| t.elapsed() > LEADER_TRUST)
        {
            self.leader_known.store(false, Ordering::Relaxed);
        }
        loop {
            if !self.leader_known.load(Ordering::Relaxed) {
                match within(deadline, self.find_leader()).await.flatten() {
                    Some(i) => {
                        self.active.store(i, Ordering::Relaxed);
                        self.leader_known.store(true, Ordering::Relaxed);
                        if let Ok(mut t) = self.leader_checked.lock() {
                            *t = Instant::now();
                        }
                    }
                    None => {
                        last = Some(ResolveError::new(
                            ErrorCode::VaultUnavailable,
                            "no node of the Vault cluster says it is the active one (an election?)",
                        ));
                    }
                }
            }
            if self.leader_known.load(Ordering::Relaxed) {
                let i = self.active.load(Ordering::Relaxed) % self.nodes.len();
                let reply = within(
                    deadline,
                    self.send_to(i, method.clone(), path, token, job, body.clone()),
                )
                .await
                .unwrap_or_else(|| Err(self.node_error(i, "nothing within the failover window")));
                match reply {
                    // Not (or no longer) the active node, or not serving:
                    // look the leader up again. A redirect is never
                    // followed: only a node that says it is active is used.
                    Ok(r) if r.status >= 500 || (300..400).contains(&r.status) => {
                        self.leader_known.store(false, Ordering::Relaxed);
                        last = Some(self.node_error(i, &format!("HTTP {}", r.status)));
                        if !std::mem::replace(&mut waited_yet, true) {
                            continue;
                        }
                    }
                    Ok(r) => return Ok(r),
                    // A local error (a token or job id that cannot be sent):
                    // no node would take it.
                    Err(e) if e.code() != ErrorCode::VaultUnavailable => return Err(e),
                    Err(e) => {
                        self.leader_known.store(false, Ordering::Relaxed);
                        last = Some(e);
                        if !std::mem::replace(&mut waited_yet, true) {
                            continue;
                        }
                    }
                }
            }
            let last = last
                .take()
                .unwrap_or_else(|| self.node_error(0, "no answer"));
            if Instant::now() + backoff > deadline {
                return Err(ResolveError::new(
                    ErrorCode::VaultUnavailable,
                    format!(
                        "no node of the Vault cluster served the request within {} ms (last: {})",
                        self.failover.as_millis(),
                        last.message()
                    ),
                ));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// The node that says it is the active one (`sys/leader` answering
    /// `is_self: true`), asked of each configured node from the one after
    /// the last active. A standby's word is not taken: during an election
    /// standbys still name the dead leader, and they serve reads of their
    /// own that can be stale.
    async fn find_leader(&self) -> Option<usize> {
        let n = self.nodes.len();
        let first = self.active.load(Ordering::Relaxed) + 1;
        for k in 0..n {
            let i = (first + k) % n;
            let Ok(r) = self
                .send_to(i, reqwest::Method::GET, "sys/leader", None, None, None)
                .await
            else {
                continue;
            };
            if r.status != 200 {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if v["is_self"] == true {
                return Some(i);
            }
        }
        None
    }

    fn node_error(&self, i: usize, what: &str) -> ResolveError {
        ResolveError::new(
            ErrorCode::VaultUnavailable,
            format!("Vault at {} answered {what}", self.nodes[i]),
        )
    }

    /// One request to node `i`.
    async fn send_to(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        token: Option<&SecretString>,
        job: Option<&JobId>,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Reply, ResolveError> {
        let addr = &self.nodes[i];
        let mut req = self
            .http
            .request(method, format!("{addr}/v1/{path}"))
            .header("X-Vault-Request", "true");
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                ResolveError::new(
                    ErrorCode::VaultAuthFailed,
                    "the token is not a valid header value",
                )
            })?;
            value.set_sensitive(true);
            req = req.header("X-Vault-Token", value);
        }
        if let Some(job) = job {
            let value = HeaderValue::from_str(job.as_str())
                .map_err(|_| ResolveError::config("job id is not a valid header value"))?;
            req = req.header(self.job_header.clone(), value);
        }
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns.clone());
        }
        if let Some(mut body) = body {
            // Handed over, not copied: reqwest owns the only other copy.
            req = req
                .header("Content-Type", "application/json")
                .body(std::mem::take(&mut *body));
        }
        let mut resp = req.send().await.map_err(|e| self.send_error(addr, &e))?;
        let status = resp.status().as_u16();
        // Read chunk by chunk into a zeroizing buffer, with a cap: a Vault
        // answer is a few KiB, and a confused or hostile server must not make
        // us buffer without bound. (Each `Bytes` chunk itself cannot be
        // zeroized; best effort.) Reserve up front so growth does not leave
        // unzeroized copies behind.
        let hint = resp.content_length().unwrap_or(16 * 1024) as usize;
        let mut body = Zeroizing::new(Vec::with_capacity(hint.min(MAX_BODY)));
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.send_error(addr, &e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ResolveError::new(
                    ErrorCode::VaultUnavailable,
                    format!(
                        "Vault at {addr} sent an answer larger than {} KiB",
                        MAX_BODY / 1024
                    ),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply { status, body })
    }

    /// `GET /v1/sys/health`: the HTTP status (200 active, 429 standby,
    /// 501 not initialised, 503 sealed). No token, no job.
    pub(crate) async fn health(&self) -> Result<u16, ResolveError> {
        if !self.is_cluster() {
            return self.health_of(0).await;
        }
        // A cluster serves when its active node answers 200. A standby's
        // 429 says nothing about a leader (OpenBao answers it with none).
        let mut last = Err(self.node_error(0, "no answer"));
        for i in 0..self.nodes.len() {
            match self.health_of(i).await {
                Ok(200) => {
                    self.active.store(i, Ordering::Relaxed);
                    return Ok(200);
                }
                other => last = other,
            }
        }
        match last {
            Ok(s) => Err(ResolveError::new(
                ErrorCode::VaultUnavailable,
                format!(
                    "no node of the Vault cluster is active (no leader; the last answered HTTP {s} to a health check)"
                ),
            )),
            Err(e) => Err(e),
        }
    }

    async fn health_of(&self, i: usize) -> Result<u16, ResolveError> {
        let addr = &self.nodes[i];
        let mut req = self.http.get(format!("{addr}/v1/sys/health"));
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns.clone());
        }
        let resp = req.send().await.map_err(|e| self.send_error(addr, &e))?;
        Ok(resp.status().as_u16())
    }

    fn send_error(&self, addr: &str, e: &reqwest::Error) -> ResolveError {
        // reqwest's Display carries the URL (address and secret path, no
        // values); keep the message to the kind of failure.
        let what = if e.is_timeout() {
            format!("no answer within {} ms", self.timeout.as_millis())
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            "the request failed".to_string()
        };
        ResolveError::new(
            ErrorCode::VaultUnavailable,
            format!("Vault at {addr} is unavailable: {what}"),
        )
    }

    /// Classifies the answer to a login or a renewal (`what`), returning
    /// the answer's `auth` block when it holds a usable token.
    ///
    /// - a redirect (3xx, never followed), 429 and 5xx: `vault_unavailable`,
    ///   worth retrying later with backoff;
    /// - any other status, and a 2xx without a usable token (OpenBao answers
    ///   a renewal in the last second of a token's max TTL with an empty
    ///   `auth`): `vault_auth_failed`, so the caller logs in again rather
    ///   than waiting.
    ///
    /// Only the status and Vault's own error strings (never a body) go into
    /// the message.
    pub(crate) fn classify_auth(
        &self,
        what: &str,
        reply: &Reply,
    ) -> Result<AuthBlock, ResolveError> {
        let code = reply.status;
        if (200..300).contains(&code) {
            let answer: Result<AuthAnswer, _> = serde_json::from_slice(&reply.body);
            return match answer {
                Ok(AuthAnswer { auth: Some(auth) }) => Ok(auth),
                _ => Err(ResolveError::new(
                    ErrorCode::VaultAuthFailed,
                    format!("{what}: Vault answered without a usable token"),
                )),
            };
        }
        let detail = vault_errors(&reply.body);
        if (300..400).contains(&code) {
            return Err(ResolveError::new(
                ErrorCode::VaultUnavailable,
                format!(
                    "{what}: Vault at {} answered a redirect (HTTP {code}), which vaultref never follows",
                    self.addr()
                ),
            ));
        }
        if code >= 500 || code == 429 {
            return Err(ResolveError::new(
                ErrorCode::VaultUnavailable,
                format!(
                    "{what}: Vault at {} answered HTTP {code}{detail}",
                    self.addr()
                ),
            ));
        }
        Err(ResolveError::new(
            ErrorCode::VaultAuthFailed,
            format!("{what}: Vault answered HTTP {code}{detail}"),
        ))
    }
}

/// The part of a login or renewal answer vaultref reads.
#[derive(serde::Deserialize)]
struct AuthAnswer {
    auth: Option<AuthBlock>,
}

/// A token as Vault issues it. `client_token` is zeroized on drop.
#[derive(serde::Deserialize)]
pub(crate) struct AuthBlock {
    pub client_token: Zeroizing<String>,
    #[serde(default)]
    pub lease_duration: u64,
    #[serde(default)]
    pub renewable: bool,
}

/// Vault's own error strings (`{"errors": [...]}`) as ` (a; b)`, on one line,
/// at most 200 characters; empty when there are none. Never the body itself.
fn vault_errors(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let Ok(Errors { errors }) = serde_json::from_slice::<Errors>(body) else {
        return String::new();
    };
    if errors.is_empty() {
        return String::new();
    }
    let joined = errors.join("; ");
    let one_line: String = joined
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    format!(" ({one_line})")
}
