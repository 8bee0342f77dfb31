//! What a scenario concluded.
//!
//! Statuses only ever come from a [`Verdict`] (what the scenario saw) combined
//! with the expectations file (what the user said it would see), so the
//! meaning of every status is decided in one place: [`Status::settle`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::scenario::Meta;

/// Why a scenario failed: the requirement, what was accepted, what happened.
/// None of the three may contain a secret value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The requirement that did not hold.
    pub requirement: String,
    /// The accepted outcome(s).
    pub expected: String,
    /// What the implementation did.
    pub actual: String,
}

impl Failure {
    /// Builds a failure from its three parts.
    pub fn new(
        requirement: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Failure {
        Failure {
            requirement: requirement.into(),
            expected: expected.into(),
            actual: actual.into(),
        }
    }
}

/// What running a scenario concluded, before expectations are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every check held.
    Pass,
    /// A check did not hold.
    Fail(Failure),
    /// Not run, and why.
    Skip(String),
    /// The implementation does not support it, and what it said.
    Unsupported(String),
    /// The harness or its infrastructure failed, and how.
    Error(String),
}

/// The final status of a scenario (`spec/protocol.md` §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every check held.
    Pass,
    /// A check did not hold.
    Fail,
    /// Not run, with a reason.
    Skip,
    /// Not supported by the implementation.
    Unsupported,
    /// Harness or infrastructure failure.
    Error,
    /// Failed, as the expectations file said.
    ExpectedFail,
    /// Passed, though the expectations file said it would fail.
    UnexpectedPass,
}

impl Status {
    /// Every status, in report order.
    pub const ALL: &'static [Status] = &[
        Status::Pass,
        Status::Fail,
        Status::ExpectedFail,
        Status::UnexpectedPass,
        Status::Skip,
        Status::Unsupported,
        Status::Error,
    ];

    /// Combines a verdict with whether the expectations file expects a failure.
    pub fn settle(verdict: &Verdict, expected_to_fail: bool) -> Status {
        match (verdict, expected_to_fail) {
            (Verdict::Pass, false) => Status::Pass,
            (Verdict::Pass, true) => Status::UnexpectedPass,
            (Verdict::Fail(_), false) => Status::Fail,
            (Verdict::Fail(_), true) => Status::ExpectedFail,
            (Verdict::Skip(_), _) => Status::Skip,
            (Verdict::Unsupported(_), _) => Status::Unsupported,
            (Verdict::Error(_), _) => Status::Error,
        }
    }

    /// Whether this status makes the run "not as expected" (exit code 1).
    pub fn is_bad(self) -> bool {
        matches!(self, Status::Fail | Status::Error | Status::UnexpectedPass)
    }

    /// The spelling used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Unsupported => "unsupported",
            Status::Error => "error",
            Status::ExpectedFail => "expected-fail",
            Status::UnexpectedPass => "unexpected-pass",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scenario's line in the reports.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// What was run.
    #[serde(flatten)]
    pub meta: Meta,
    /// The final status.
    pub status: Status,
    /// The failure, for `fail` and `expected-fail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The reason, for `skip`, `unsupported`, `error`, `expected-fail` (the
    /// expectation's reason) and `unexpected-pass`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wall-clock time in milliseconds.
    pub duration_ms: u64,
    /// What the scenario measured, by name (the unit ends the name, e.g.
    /// `failover_window_ms`); empty for most.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub measured: std::collections::BTreeMap<String, u64>,
}

impl ScenarioResult {
    /// Builds a result from a verdict and the matching expectation's reason, if any.
    pub fn new(meta: Meta, verdict: Verdict, expectation: Option<&str>, duration_ms: u64) -> Self {
        let status = Status::settle(&verdict, expectation.is_some());
        let (failure, reason) = match verdict {
            Verdict::Pass => (
                None,
                expectation.map(|r| format!("expected to fail ({r}) but passed")),
            ),
            Verdict::Fail(f) => (Some(f), expectation.map(str::to_string)),
            Verdict::Skip(r) | Verdict::Unsupported(r) | Verdict::Error(r) => (None, Some(r)),
        };
        ScenarioResult {
            meta,
            status,
            failure,
            reason,
            duration_ms,
            measured: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_covers_the_table() {
        let fail = Verdict::Fail(Failure::new("r", "e", "a"));
        assert_eq!(Status::settle(&Verdict::Pass, false), Status::Pass);
        assert_eq!(Status::settle(&Verdict::Pass, true), Status::UnexpectedPass);
        assert_eq!(Status::settle(&fail, false), Status::Fail);
        assert_eq!(Status::settle(&fail, true), Status::ExpectedFail);
        assert_eq!(
            Status::settle(&Verdict::Skip("x".into()), true),
            Status::Skip
        );
        assert!(Status::Fail.is_bad() && Status::Error.is_bad() && Status::UnexpectedPass.is_bad());
        assert!(!Status::ExpectedFail.is_bad() && !Status::Skip.is_bad());
    }
}
