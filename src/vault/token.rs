//! The token lifecycle: one token shared by all jobs, renewed in the
//! background, replaced when it dies.
//!
//! - **One login, many jobs.** Peers that log in per reference (ESO, CSI)
//!   explode leases and exhaust use-limited tokens. Here a single token is
//!   shared, and replacing it is serialised by `login_lock`, so a burst of
//!   jobs that all see a dead token causes one login, not one each (the
//!   others find a newer generation when they get the lock).
//! - **Renew before expiry.** A login method's token is renewed at 2/3 of its
//!   TTL, asking for the TTL it was issued with. When Vault grants less, the
//!   max TTL is near: log in again right away, while the old token still works.
//!   A token that is not renewable is replaced at the same point.
//! - **No retry storms.** When renewal or login fails because Vault is
//!   unavailable, the task waits 1 s, then 2, 4, ... up to 30 s; a failed
//!   resolution never retries by itself more than once (after a re-login).
//! - **Token files.** With the `token` method the file is re-read at every use
//!   (a few hundred bytes), so Vault Agent's renewals and re-logins are seen at
//!   once. Renewal is the agent's job. A dead token whose file was not
//!   rewritten cannot be replaced: `vault_auth_failed`, fail secure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, Notify, RwLock};

use super::auth::{self, Issued};
use super::config::AuthConfig;
use super::error::ResolveError;
use super::metrics::Metrics;
use super::transport::Transport;
use crate::ErrorCode;

/// The token in use, with a generation number that changes on replacement
/// (not on renewal).
pub(crate) struct Held {
    pub issued: Issued,
    pub generation: u64,
    /// The TTL granted at login: what renewals ask for.
    pub full_ttl: Option<Duration>,
}

impl Held {
    fn expired(&self) -> bool {
        self.issued
            .expires_at()
            .is_some_and(|at| at <= Instant::now())
    }

    pub fn token(&self) -> &SecretString {
        &self.issued.token
    }
}

pub(crate) struct TokenManager {
    transport: Arc<Transport>,
    auth: AuthConfig,
    state: RwLock<Option<Arc<Held>>>,
    login_lock: Mutex<()>,
    generation: AtomicU64,
    changed: Arc<Notify>,
    metrics: Arc<Metrics>,
}

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

impl TokenManager {
    pub(crate) fn new(transport: Arc<Transport>, auth: AuthConfig, metrics: Arc<Metrics>) -> Self {
        TokenManager {
            transport,
            auth,
            state: RwLock::new(None),
            login_lock: Mutex::new(()),
            generation: AtomicU64::new(0),
            changed: Arc::new(Notify::new()),
            metrics,
        }
    }

    /// The token to use now, obtaining one if there is none or it expired.
    pub(crate) async fn current(&self) -> Result<Arc<Held>, ResolveError> {
        let held = self.state.read().await.clone();
        if let AuthConfig::TokenFile { path } = &self.auth {
            let token = auth::read_token_file(path)?;
            if let Some(h) = held.filter(|h| h.token().expose_secret() == token.expose_secret()) {
                return Ok(h);
            }
            let _guard = self.login_lock.lock().await;
            return Ok(self.install(file_token(token), None).await);
        }
        match held {
            Some(h) if !h.expired() => Ok(h),
            other => self.replace(other.map(|h| h.generation)).await,
        }
    }

    /// Replaces the token of generation `stale` (dead, expired or absent)
    /// and returns its successor, or fails secure when none can be had.
    pub(crate) async fn replace(&self, stale: Option<u64>) -> Result<Arc<Held>, ResolveError> {
        let _guard = self.login_lock.lock().await;
        let held = self.state.read().await.clone();
        if let Some(h) = held
            .as_ref()
            .filter(|h| Some(h.generation) != stale && !h.expired())
        {
            // Someone else replaced it while we waited for the lock.
            return Ok(h.clone());
        }
        match &self.auth {
            AuthConfig::TokenFile { path } => {
                let token = auth::read_token_file(path)?;
                if held
                    .as_ref()
                    .is_some_and(|h| h.token().expose_secret() == token.expose_secret())
                {
                    return Err(ResolveError::new(
                        ErrorCode::VaultAuthFailed,
                        format!(
                            "the token in {} is no longer valid and the file has not been rewritten (is Vault Agent running?)",
                            path.display()
                        ),
                    ));
                }
                Ok(self.install(file_token(token), None).await)
            }
            AuthConfig::EnvToken { token } => {
                if held.is_some() {
                    return Err(ResolveError::new(
                        ErrorCode::VaultAuthFailed,
                        "the VAULT_TOKEN token is no longer valid and there is no way to log in again",
                    ));
                }
                Ok(self.install(file_token(token.clone()), None).await)
            }
            _ => {
                let result = auth::login(&self.transport, &self.auth).await;
                self.metrics.login(result.as_ref().err().map(|e| e.code()));
                let issued = result?;
                let full_ttl = issued.ttl;
                Ok(self.install(issued, full_ttl).await)
            }
        }
    }

    async fn install(&self, issued: Issued, full_ttl: Option<Duration>) -> Arc<Held> {
        let held = Arc::new(Held {
            issued,
            generation: self.generation.fetch_add(1, Ordering::SeqCst) + 1,
            full_ttl,
        });
        *self.state.write().await = Some(held.clone());
        self.changed.notify_waiters();
        held
    }

    /// Drops the token (it is zeroized with its `SecretString`).
    pub(crate) async fn clear(&self) {
        *self.state.write().await = None;
    }

    /// Revokes the current token if this manager obtained it by logging in.
    pub(crate) async fn revoke(&self) {
        if !self.auth.can_login() {
            return;
        }
        let held = self.state.write().await.take();
        if let Some(h) = held {
            auth::revoke(&self.transport, h.token()).await;
        }
    }

    /// The background renewal loop; runs until the task is aborted.
    pub(crate) async fn run_renewal(self: Arc<Self>) {
        if !self.auth.can_login() {
            return;
        }
        let mut backoff = BACKOFF_START;
        loop {
            let held = self.state.read().await.clone();
            let Some(held) = held else {
                // No token yet (Vault was down at start): try to log in.
                match self.replace(None).await {
                    Ok(_) => backoff = BACKOFF_START,
                    Err(_) => backoff = self.pause(backoff).await,
                }
                continue;
            };
            let Some(renew_at) = held.issued.renew_at() else {
                // Never expires (or not within any representable time): wait
                // until the token is replaced.
                self.changed.notified().await;
                continue;
            };
            let changed = self.changed.clone();
            let notified = changed.notified();
            tokio::select! {
                _ = tokio::time::sleep_until(renew_at.into()) => {}
                _ = notified => continue,
            }
            if self.state.read().await.as_ref().map(|h| h.generation) != Some(held.generation) {
                continue;
            }
            match self.renew_or_replace(&held).await {
                Ok(()) => backoff = BACKOFF_START,
                Err(_) => backoff = self.pause(backoff).await,
            }
        }
    }

    async fn renew_or_replace(&self, held: &Held) -> Result<(), ResolveError> {
        let full = held.full_ttl.unwrap_or_default();
        if held.issued.renewable && !full.is_zero() {
            let result = auth::renew(&self.transport, held.token(), full).await;
            self.metrics
                .renewal(result.as_ref().err().map(|e| e.code()));
            match result {
                Ok(renewed) if renewed.ttl.is_some_and(|t| t >= full) => {
                    let _guard = self.login_lock.lock().await;
                    let mut state = self.state.write().await;
                    if state.as_ref().map(|h| h.generation) == Some(held.generation) {
                        *state = Some(Arc::new(Held {
                            issued: renewed,
                            generation: held.generation,
                            full_ttl: held.full_ttl,
                        }));
                    }
                    return Ok(());
                }
                // Granted less than asked: the max TTL is near. Log in again.
                Ok(_) => {}
                // Renewal failed: refused, past the max TTL (OpenBao answers
                // 500 "past the max TTL, cannot renew" in the last second),
                // or Vault is down. Log in again; if that fails too, the
                // caller backs off, so a dead Vault sees one renewal and one
                // login per backoff step.
                Err(_) => {}
            }
        }
        self.replace(Some(held.generation)).await.map(|_| ())
    }

    /// Sleeps for `backoff` and returns the next, doubled, capped value.
    async fn pause(&self, backoff: Duration) -> Duration {
        tokio::time::sleep(backoff).await;
        (backoff * 2).min(BACKOFF_MAX)
    }
}

fn file_token(token: SecretString) -> Issued {
    Issued {
        token,
        ttl: None,
        renewable: false,
        obtained: Instant::now(),
    }
}
