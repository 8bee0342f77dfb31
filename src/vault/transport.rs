//! HTTP to Vault: `vaultrs` for the worker-level calls, `reqwest` for the
//! job-bound ones.
//!
//! # Why two clients
//!
//! Logins (AppRole, JWT, Kubernetes), token renewal and the health probe go
//! through `vaultrs` 0.8's typed API. The KV v2 read and the `lookup-self` that
//! may follow it do not, for three reasons found in vaultrs 0.8.0's source:
//!
//! 1. Per-request headers. Every request vaultrs makes is decorated by one
//!    `EndpointMiddleware` owned by the client (token, API version, namespace,
//!    wrap TTL; `src/api.rs`). It has no field for extra headers, and the
//!    high-level functions (`kv2::read`, `token::lookup_self`) take the client's
//!    middleware, so the job id (`X-Vaultref-Job-Id`) cannot be attached per
//!    call short of building a client per job.
//! 2. Error bodies. A KV v2 read of a deleted or destroyed version answers 404
//!    *with* version metadata; `kv2::read` turns every 404 into
//!    `ClientError::APIError { code: 404, errors: [] }` and drops the body, so
//!    `secret_version_deleted` / `_destroyed` could not be told from
//!    `secret_not_found`.
//! 3. Secret hygiene. vaultrs deserialises secret data into ordinary
//!    `String`s, and its error type keeps raw response bodies
//!    (`ResponseParseError { content }`), which a stray `{:?}` would print.
//!    Reading the body ourselves lets the value go straight into a
//!    `SecretString` and the buffers be zeroized.
//!
//! The health probe is also a plain request: vaultrs's `ReadHealthResponse`
//! requires a `performance_standby` field that OpenBao 2.7 does not send, so
//! `sys::health` fails to parse a healthy OpenBao's answer.
//!
//! vaultrs's middleware also `unwrap()`s `HeaderValue::from_str(token)`, so a
//! token with a byte that cannot go in a header would panic inside it: tokens
//! are checked by [`check_token`] before vaultrs ever sees one.
//!
//! Both clients share the configured timeout (default 5 s), which bounds every
//! request, connection included. Nothing here retries: retry policy lives in
//! the resolver (one retry after a re-login) and in the renewal task (backoff).

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use zeroize::Zeroizing;

use super::config::VaultConfig;
use super::error::ResolveError;
use super::job::JobId;
use crate::ErrorCode;

/// The largest answer accepted from Vault for a job-bound request.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The status and body of a job-bound request. The body is zeroized on drop:
/// it may hold secret data.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
}

/// Both HTTP clients, configured once.
pub(crate) struct Transport {
    http: reqwest::Client,
    addr: String,
    namespace: Option<HeaderValue>,
    job_header: HeaderName,
    timeout: Duration,
    ca_cert: Option<String>,
}

/// Accepts a token only if every byte is visible ASCII (what Vault issues:
/// `s.…`, `hvs.…`, `hvb.…`), 1 to 4096 bytes. Anything else could not be sent
/// in a header anyway.
pub(crate) fn check_token(token: &str) -> bool {
    (1..=4096).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic())
}

impl Transport {
    pub(crate) fn new(cfg: &VaultConfig) -> Result<Transport, ResolveError> {
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_rustls();
        if cfg.addr.starts_with("http://") {
            // Same workaround as vaultrs (reqwest#2988): plain HTTP needs no
            // certificate store, and loading the platform one can fail.
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
        Ok(Transport {
            http,
            addr: cfg.addr.clone(),
            namespace,
            job_header,
            timeout: cfg.timeout,
            ca_cert: cfg.ca_cert.as_ref().map(|p| p.display().to_string()),
        })
    }

    /// The configured Vault address.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
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
        let mut token_value = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
            ResolveError::new(
                ErrorCode::VaultAuthFailed,
                "the token is not a valid header value",
            )
        })?;
        token_value.set_sensitive(true);
        let job_value = HeaderValue::from_str(job.as_str())
            .map_err(|_| ResolveError::config("job id is not a valid header value"))?;
        let mut req = self
            .http
            .get(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", token_value)
            .header("X-Vault-Request", "true")
            .header(self.job_header.clone(), job_value);
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns.clone());
        }
        let mut resp = req.send().await.map_err(|e| self.send_error(&e))?;
        let status = resp.status().as_u16();
        // Read chunk by chunk into a zeroizing buffer, with a cap: a KV v2
        // answer is a few KiB, and a confused server must not make us
        // buffer without bound. (Each `Bytes` chunk itself cannot be
        // zeroized; best effort, see the module doc.)
        // Reserve up front so growth does not leave unzeroized copies behind.
        let hint = resp.content_length().unwrap_or(16 * 1024) as usize;
        let mut body = Zeroizing::new(Vec::with_capacity(hint.min(MAX_BODY)));
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.send_error(&e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ResolveError::new(
                    ErrorCode::VaultUnavailable,
                    format!(
                        "Vault at {} sent an answer larger than {} KiB",
                        self.addr,
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
        let mut req = self.http.get(format!("{}/v1/sys/health", self.addr));
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns.clone());
        }
        let resp = req.send().await.map_err(|e| self.send_error(&e))?;
        Ok(resp.status().as_u16())
    }

    fn send_error(&self, e: &reqwest::Error) -> ResolveError {
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
            format!("Vault at {} is unavailable: {what}", self.addr),
        )
    }

    /// A vaultrs client for worker-level calls, carrying `token` if given.
    /// Built per call: vaultrs keeps the token in a plain `String` inside the
    /// client, so a short-lived client keeps that copy short-lived too.
    pub(crate) fn vaultrs(
        &self,
        token: Option<&SecretString>,
    ) -> Result<VaultClient, ResolveError> {
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(&self.addr)
            .timeout(Some(self.timeout))
            // Never let vaultrs fall back to VAULT_TOKEN from the environment.
            .token(
                token
                    .map(|t| t.expose_secret().to_string())
                    .unwrap_or_default(),
            )
            .namespace(
                self.namespace
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            );
        if let Some(ca) = &self.ca_cert {
            settings.ca_certs(vec![ca.clone()]);
        }
        let settings = settings
            .build()
            .map_err(|e| ResolveError::config(format!("Vault client settings: {e}")))?;
        VaultClient::new(settings)
            .map_err(|e| ResolveError::config(format!("cannot build the Vault client: {e}")))
    }

    /// Classifies a vaultrs error from a login or renewal.
    ///
    /// - no answer (connection, timeout), 5xx and 429: `vault_unavailable`,
    ///   worth retrying later with backoff;
    /// - any other HTTP status, and an answer without a usable token (vaultrs
    ///   cannot parse it, or `auth` is empty, as OpenBao answers a renewal
    ///   in the last second of a token's max TTL): `vault_auth_failed`, so the
    ///   caller logs in again rather than waiting.
    ///
    /// Only the status and Vault's own error strings (never a body) go into
    /// the message.
    pub(crate) fn classify(&self, what: &str, e: &ClientError) -> ResolveError {
        use rustify::errors::ClientError as Rest;
        let detail = |errors: &[String]| {
            if errors.is_empty() {
                String::new()
            } else {
                // Vault's multi-error strings span lines; keep messages on one.
                let joined = errors.join("; ");
                format!(
                    " ({})",
                    joined.split_whitespace().collect::<Vec<_>>().join(" ")
                )
            }
        };
        let status = match e {
            ClientError::APIError { code, errors } => Some((*code, detail(errors))),
            ClientError::RestClientError {
                source: Rest::ServerResponseError { code, .. },
            } => Some((*code, String::new())),
            ClientError::ResponseEmptyError
            | ClientError::ResponseDataEmptyError
            | ClientError::JsonParseError { .. }
            | ClientError::RestClientError {
                source:
                    Rest::ResponseParseError { .. }
                    | Rest::ResponseConversionError { .. }
                    | Rest::DataParseError { .. },
            } => {
                return ResolveError::new(
                    ErrorCode::VaultAuthFailed,
                    format!("{what}: Vault answered without a usable token"),
                );
            }
            _ => None,
        };
        match status {
            None => ResolveError::new(
                ErrorCode::VaultUnavailable,
                format!("{what}: Vault at {} is unavailable ({e})", self.addr),
            ),
            Some((code, detail)) if code >= 500 || code == 429 => ResolveError::new(
                ErrorCode::VaultUnavailable,
                format!(
                    "{what}: Vault at {} answered HTTP {code}{detail}",
                    self.addr
                ),
            ),
            Some((code, detail)) => ResolveError::new(
                ErrorCode::VaultAuthFailed,
                format!("{what}: Vault answered HTTP {code}{detail}"),
            ),
        }
    }
}
