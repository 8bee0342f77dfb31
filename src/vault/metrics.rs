//! Resolution metrics in the Prometheus text exposition format (0.0.4).
//!
//! Counters are kept per outcome (`ok` or an error code) so an alert can
//! tell "Vault is down" (`vault_unavailable`) from "someone deleted a secret"
//! (`secret_version_deleted`). Latency is a fixed-bucket histogram: buckets
//! from 1 ms to 10 s cover a loopback read (about a millisecond) up to the
//! default 5 s timeout. Every series is pre-registered at zero so that
//! `rate()` works from the first scrape.
//!
//! No dependency: a few atomics and a mutex-protected map are enough for the
//! handful of series here, and the text format is simple to write.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::ErrorCode;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The codes a resolution can end with (pre-registered series).
const RESOLVE_CODES: [ErrorCode; 12] = [
    ErrorCode::VaultUnavailable,
    ErrorCode::VaultAuthFailed,
    ErrorCode::VaultPermissionDenied,
    ErrorCode::SecretNotFound,
    ErrorCode::SecretVersionDeleted,
    ErrorCode::SecretVersionDestroyed,
    ErrorCode::SecretFieldMissing,
    ErrorCode::VaultNotConfigured,
    ErrorCode::ConfigInvalid,
    ErrorCode::RefMountNotAllowed,
    ErrorCode::RefOutOfScope,
    ErrorCode::RefInvalidChar,
];

/// Counters and a latency histogram for one resolver.
#[derive(Debug)]
pub struct Metrics {
    resolutions: Mutex<BTreeMap<&'static str, u64>>,
    logins: Mutex<BTreeMap<&'static str, u64>>,
    renewals: Mutex<BTreeMap<&'static str, u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let zeroed = |codes: &[ErrorCode]| {
            let mut m: BTreeMap<&'static str, u64> =
                codes.iter().map(|c| (c.as_str(), 0)).collect();
            m.insert("ok", 0);
            m
        };
        Metrics {
            resolutions: Mutex::new(zeroed(&RESOLVE_CODES)),
            logins: Mutex::new(zeroed(&[
                ErrorCode::VaultAuthFailed,
                ErrorCode::VaultUnavailable,
            ])),
            renewals: Mutex::new(zeroed(&[
                ErrorCode::VaultAuthFailed,
                ErrorCode::VaultUnavailable,
            ])),
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, outcome: Option<ErrorCode>) {
    let key = outcome.map_or("ok", ErrorCode::as_str);
    // A poisoned lock only means another thread panicked mid-increment; the
    // counts are still usable.
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(key).or_insert(0) += 1;
}

impl Metrics {
    /// Records one resolution: its outcome (`None` = success) and latency.
    pub fn resolution(&self, outcome: Option<ErrorCode>, elapsed: Duration) {
        bump(&self.resolutions, outcome);
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Records one login attempt.
    pub fn login(&self, outcome: Option<ErrorCode>) {
        bump(&self.logins, outcome);
    }

    /// Records one renewal attempt.
    pub fn renewal(&self, outcome: Option<ErrorCode>) {
        bump(&self.renewals, outcome);
    }

    /// How many resolutions ended with `outcome` (`None` = success).
    pub fn resolutions(&self, outcome: Option<ErrorCode>) -> u64 {
        let m = self.resolutions.lock().unwrap_or_else(|p| p.into_inner());
        m.get(outcome.map_or("ok", ErrorCode::as_str))
            .copied()
            .unwrap_or(0)
    }

    /// How many logins ended with `outcome` (`None` = success).
    pub fn logins(&self, outcome: Option<ErrorCode>) -> u64 {
        let m = self.logins.lock().unwrap_or_else(|p| p.into_inner());
        m.get(outcome.map_or("ok", ErrorCode::as_str))
            .copied()
            .unwrap_or(0)
    }

    /// How many renewals ended with `outcome` (`None` = success).
    pub fn renewals(&self, outcome: Option<ErrorCode>) -> u64 {
        let m = self.renewals.lock().unwrap_or_else(|p| p.into_inner());
        m.get(outcome.map_or("ok", ErrorCode::as_str))
            .copied()
            .unwrap_or(0)
    }

    /// Renders every series in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter =
            |out: &mut String, name: &str, help: &str, map: &Mutex<BTreeMap<&'static str, u64>>| {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} counter");
                let m = map.lock().unwrap_or_else(|p| p.into_inner());
                for (outcome, n) in m.iter() {
                    let _ = writeln!(out, "{name}{{outcome=\"{outcome}\"}} {n}");
                }
            };
        counter(
            &mut out,
            "vaultref_resolutions_total",
            "Secret resolutions by outcome (ok or an error code).",
            &self.resolutions,
        );
        let name = "vaultref_resolution_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to resolve one ref, Vault round trips included."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
        counter(
            &mut out,
            "vaultref_vault_logins_total",
            "Vault logins by outcome.",
            &self.logins,
        );
        counter(
            &mut out,
            "vaultref_token_renewals_total",
            "Vault token renewals by outcome.",
            &self.renewals,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.resolution(None, Duration::from_micros(800));
        m.resolution(None, Duration::from_millis(30));
        m.resolution(Some(ErrorCode::SecretNotFound), Duration::from_millis(3));
        m.login(None);
        m.renewal(Some(ErrorCode::VaultUnavailable));
        assert_eq!(m.resolutions(None), 2);
        insta::assert_snapshot!(m.render());
    }
}
