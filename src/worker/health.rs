//! Degraded mode: whether the worker believes Vault is reachable, and the
//! background prober that finds out when it is back.
//!
//! The runbook says: when Vault is degraded, stop claiming jobs that need a
//! secret, keep processing the others, and take secret jobs again when Vault
//! is back. The state is one flag. It is set by the first resolution that
//! fails with `vault_unavailable` (that job itself ends failed: it was
//! already taken) and cleared only by a successful probe, so a flapping Vault
//! never lets a job through on a guess. While the flag is set, a single
//! prober task calls `probe()` with exponential backoff (initial delay,
//! doubled after each failure, capped).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::events::{self, Event, EventSink, HealthEvent};
use crate::vault::Resolver;

/// Probe timing for degraded mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first probe.
    pub initial: Duration,
    /// Longest delay between probes.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay after `delay`: doubled, capped at `max`.
    pub fn next(&self, delay: Duration) -> Duration {
        delay.saturating_mul(2).min(self.max).max(self.initial)
    }
}

/// The worker's view of Vault's health. Cheap to clone and share.
#[derive(Debug, Default)]
pub struct Health {
    degraded: AtomicBool,
    prober_running: AtomicBool,
    probes: AtomicU64,
    failed_probes: AtomicU64,
    /// Where transitions are reported, and for which worker.
    events: EventSink,
    worker_id: String,
    /// When the current degraded episode began.
    since: Mutex<Option<Instant>>,
}

/// A snapshot of [`Health`], for status reports and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthStatus {
    /// Secret jobs are being declined.
    pub degraded: bool,
    /// Probes sent since the worker started.
    pub probes: u64,
    /// Probes that failed.
    pub failed_probes: u64,
}

impl Health {
    /// A healthy state whose transitions are sent to `events` as
    /// `vault_health` events of worker `worker_id`.
    pub fn with_events(worker_id: &str, events: EventSink) -> Health {
        Health {
            events,
            worker_id: worker_id.to_owned(),
            ..Health::default()
        }
    }

    /// Whether secret jobs are declined right now.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::SeqCst)
    }

    /// A snapshot.
    pub fn status(&self) -> HealthStatus {
        HealthStatus {
            degraded: self.is_degraded(),
            probes: self.probes.load(Ordering::SeqCst),
            failed_probes: self.failed_probes.load(Ordering::SeqCst),
        }
    }

    /// Marks Vault unavailable (because of `reason`, a message without
    /// secrets) and makes sure one prober runs. Must be called within a
    /// Tokio runtime.
    pub fn mark_unavailable(
        self: &Arc<Self>,
        resolver: &Arc<Resolver>,
        backoff: Backoff,
        reason: &str,
    ) {
        {
            // Transitions happen under `since`'s lock, so a failure racing
            // with the prober's recovery is either before it (and ended by
            // it) or after it (a new episode): events always pair up.
            let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
            if since.is_none() {
                *since = Some(Instant::now());
                self.degraded.store(true, Ordering::SeqCst);
                self.emit("degraded", reason.to_owned(), None);
            }
        }
        if self
            .prober_running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            let health = Arc::clone(self);
            let resolver = Arc::clone(resolver);
            tokio::spawn(async move { Health::probe_until_up(health, &resolver, backoff).await });
        }
    }

    async fn probe_until_up(self: Arc<Self>, resolver: &Resolver, backoff: Backoff) {
        let mut delay = backoff.initial;
        loop {
            tokio::time::sleep(delay).await;
            if Arc::strong_count(&self) == 1 {
                // The worker is gone: nobody is waiting for Vault any more.
                return;
            }
            self.probes.fetch_add(1, Ordering::SeqCst);
            if resolver.probe().await.is_ok() {
                let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
                // Cleared under the lock: a failure after this starts a fresh
                // episode and a fresh prober instead of being lost.
                self.prober_running.store(false, Ordering::SeqCst);
                let took = since.take().map(|t| events::millis(t.elapsed()));
                self.degraded.store(false, Ordering::SeqCst);
                let probes = self.probes.load(Ordering::SeqCst);
                self.emit(
                    "healthy",
                    format!("Vault answered a health probe ({probes} probes so far)"),
                    took,
                );
                drop(since);
                return;
            }
            self.failed_probes.fetch_add(1, Ordering::SeqCst);
            delay = backoff.next(delay);
        }
    }
}

impl Health {
    fn emit(&self, state: &'static str, reason: String, degraded_ms: Option<u64>) {
        self.events.emit(&Event::VaultHealth(HealthEvent {
            format: events::EVENT_FORMAT,
            time: events::now_rfc3339(),
            worker_id: self.worker_id.clone(),
            state,
            reason,
            degraded_ms,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(350),
        };
        let mut d = b.initial;
        let mut seen = vec![d];
        for _ in 0..4 {
            d = b.next(d);
            seen.push(d);
        }
        let ms: Vec<u128> = seen.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [100, 200, 350, 350, 350]);
    }
}
