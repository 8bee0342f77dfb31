//! [`Resolver`]: resolves refs to values at the moment of use.
//!
//! One resolver per worker process. It owns the token (see `token.rs`), the
//! HTTP clients and the metrics, and is shared by reference (`Arc`) between
//! jobs. Each [`Resolver::resolve`] reads the latest KV v2 version (or the
//! pinned one) from Vault, so a rotated secret is used by the next job with
//! nothing restarted and nothing cached.

use std::sync::Arc;
use std::time::Instant;

use secrecy::SecretString;
use tokio::task::JoinHandle;

use super::config::VaultConfig;
use super::error::ResolveError;
use super::job::JobId;
use super::kv2::{self, Credential};
use super::metrics::Metrics;
use super::token::TokenManager;
use super::transport::Transport;
use crate::{ErrorCode, RefPolicy, ScopeContext, SecretRef};

/// Resolves refs against one Vault. Needs a Tokio runtime: [`Resolver::new`]
/// spawns the token-renewal task, which is stopped when the resolver is
/// dropped.
pub struct Resolver {
    config: VaultConfig,
    policy: RefPolicy,
    pub(super) transport: Arc<Transport>,
    pub(super) tokens: Arc<TokenManager>,
    metrics: Arc<Metrics>,
    renewal: JoinHandle<()>,
}

impl Resolver {
    /// Builds a resolver and starts background token renewal.
    ///
    /// Vault need not be reachable: the first login happens in the
    /// background and again on first use, so a worker can start (and serve
    /// jobs that need no secret) while Vault is down. Fails only on settings
    /// (`config_invalid`).
    pub async fn new(config: VaultConfig) -> Result<Resolver, ResolveError> {
        let policy =
            RefPolicy::default().with_allowed_mounts(config.allowed_mounts.iter().cloned());
        let transport = Arc::new(Transport::new(&config)?);
        let metrics = Arc::new(Metrics::default());
        let tokens = Arc::new(TokenManager::new(
            transport.clone(),
            config.auth.clone(),
            metrics.clone(),
        ));
        let renewal = tokio::spawn(tokens.clone().run_renewal());
        Ok(Resolver {
            config,
            policy,
            transport,
            tokens,
            metrics,
            renewal,
        })
    }

    /// The settings this resolver was built with.
    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// The ref policy implied by the settings (allowed mounts, no scopes).
    pub fn policy(&self) -> &RefPolicy {
        &self.policy
    }

    /// Obtains a token now (log in, or read the token file) instead of on
    /// first use; for callers that want to report bad credentials at start.
    pub async fn login(&self) -> Result<(), ResolveError> {
        self.tokens.current().await.map(|_| ())
    }

    /// Resolves `secret_ref` for job `job_id`: the field's value, or an
    /// error naming the ref and the job.
    ///
    /// The caller has already applied its own [`RefPolicy`] (scopes bound to
    /// the job); the resolver re-checks the mount allow-list before any
    /// request, as defence in depth.
    pub async fn resolve(
        &self,
        secret_ref: &SecretRef,
        job_id: &str,
    ) -> Result<SecretString, ResolveError> {
        self.resolve_credential(secret_ref, job_id)
            .await
            .map(|c| c.value)
    }

    /// [`Resolver::resolve`], with the secret document's `host` and
    /// `username` fields (for a git credential, `spec/resolver.md` G10).
    pub async fn resolve_credential(
        &self,
        secret_ref: &SecretRef,
        job_id: &str,
    ) -> Result<Credential, ResolveError> {
        let started = Instant::now();
        let job = JobId::new(job_id);
        let result = self.resolve_inner(secret_ref, &job).await;
        self.metrics
            .resolution(result.as_ref().err().map(|e| e.code()), started.elapsed());
        result.map_err(|e| e.context(&secret_ref.to_string(), &job))
    }

    /// Parses `input` with this resolver's policy (and `ctx` for scopes,
    /// none by default), then resolves it. Syntax and policy errors carry
    /// their `ref_*` code and cause no Vault request.
    pub async fn resolve_str(
        &self,
        input: &str,
        ctx: &ScopeContext,
        job_id: &str,
    ) -> Result<SecretString, ResolveError> {
        let parsed = self.policy.check(input, ctx).map_err(|e| {
            let started = Instant::now();
            self.metrics.resolution(Some(e.code()), started.elapsed());
            ResolveError::new(
                e.code(),
                format!("job {}: invalid ref: {}", JobId::new(job_id), e.message()),
            )
        })?;
        self.resolve(&parsed, job_id).await
    }

    pub(super) async fn resolve_inner(
        &self,
        r: &SecretRef,
        job: &JobId,
    ) -> Result<Credential, ResolveError> {
        if let Err(e) = self.policy.check_parsed(r, &ScopeContext::default()) {
            return Err(ResolveError::new(e.code(), e.message()));
        }
        let path = kv2::data_path(r);
        let mut held = self.tokens.current().await?;
        let mut relogged = false;
        loop {
            let reply = self.transport.get(&path, held.token(), job).await?;
            match reply.status {
                200 | 404 => return kv2::interpret(reply.status, &reply.body, r),
                401 | 403 => {}
                503 => {
                    return Err(ResolveError::new(
                        ErrorCode::VaultUnavailable,
                        format!(
                            "Vault at {} is sealed or in standby (HTTP 503)",
                            self.transport.addr()
                        ),
                    ));
                }
                s if s >= 500 || s == 429 => {
                    return Err(ResolveError::new(
                        ErrorCode::VaultUnavailable,
                        format!("Vault at {} answered HTTP {s}", self.transport.addr()),
                    ));
                }
                s => {
                    return Err(ResolveError::new(
                        ErrorCode::VaultUnavailable,
                        format!("unexpected HTTP {s} from Vault for {}", r.kv2_data_path()),
                    ));
                }
            }
            // 403: a policy denial or a dead token. Ask the token itself.
            let lookup = self
                .transport
                .get("auth/token/lookup-self", held.token(), job)
                .await?;
            match lookup.status {
                200 => {
                    return Err(ResolveError::new(
                        ErrorCode::VaultPermissionDenied,
                        format!(
                            "the worker's Vault policy does not allow reading {} (the token is valid; check the policy)",
                            r.kv2_data_path()
                        ),
                    ));
                }
                401 | 403 if !relogged => {
                    // Dead token: replace it (log in again, or re-read the
                    // file) and retry once.
                    held = self.tokens.replace(Some(held.generation)).await?;
                    relogged = true;
                }
                401 | 403 => {
                    return Err(ResolveError::new(
                        ErrorCode::VaultAuthFailed,
                        "a freshly obtained token was refused by Vault",
                    ));
                }
                s => {
                    return Err(ResolveError::new(
                        ErrorCode::VaultUnavailable,
                        format!("Vault answered HTTP {s} to a token lookup"),
                    ));
                }
            }
        }
    }

    /// Is Vault reachable, initialised and unsealed? For degraded mode: a
    /// worker stops claiming jobs that need secrets while this fails.
    pub async fn probe(&self) -> Result<(), ResolveError> {
        let what = match self.transport.health().await? {
            200 | 429 | 472 | 473 => return Ok(()),
            501 => "is not initialised".to_string(),
            503 => "is sealed".to_string(),
            s => format!("answered HTTP {s} to a health check"),
        };
        Err(ResolveError::new(
            ErrorCode::VaultUnavailable,
            format!("Vault at {} {what}", self.transport.addr()),
        ))
    }

    /// The metrics in Prometheus text format.
    pub fn metrics(&self) -> String {
        self.metrics.render()
    }

    /// The metrics as counters, for tests and embedding.
    pub fn metrics_handle(&self) -> &Metrics {
        &self.metrics
    }

    /// Stops renewal, revokes a token obtained by logging in, and drops it.
    /// Dropping the resolver without calling this also stops renewal and
    /// zeroizes the token, but leaves the token to expire on its own.
    pub async fn shutdown(self) {
        self.renewal.abort();
        self.tokens.revoke().await;
        self.tokens.clear().await;
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}
