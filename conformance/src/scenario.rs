//! What a scenario is: a stable id, a profile, a level, the spec section it
//! checks ([`Meta`]), and how it runs ([`Body`]): one request on the shared
//! process (a vector), or a body of its own with its own processes and Vault
//! state (live). What it concluded is [`crate::verdict`]'s business.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cx::Cx;
use crate::verdict::Verdict;

/// A group of scenarios an implementation claims as a whole in `hello`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Ref vectors through `check_ref`.
    Refs,
    /// Payload vectors through `check_payload`.
    Payload,
    /// `resolve` against a real Vault.
    Resolve,
    /// Authentication methods and refreshed credentials.
    Auth,
    /// Token renewal, re-login and revocation.
    Lifecycle,
    /// `run_job`: git, publishing, defence in depth, rotation.
    Worker,
    /// Vault stopped and restarted mid-queue.
    Degraded,
    /// A Vault address, a job or an input that behaves like an adversary.
    Hostile,
    /// Codex auth volumes: shard ownership and encrypted backups.
    Codex,
    /// A 3-node raft cluster: failover, standbys, sealed nodes.
    Ha,
    /// Checks over the whole run (hygiene of all output).
    Suite,
}

impl Profile {
    /// Every profile, in report order.
    pub const ALL: &'static [Profile] = &[
        Profile::Refs,
        Profile::Payload,
        Profile::Resolve,
        Profile::Auth,
        Profile::Lifecycle,
        Profile::Worker,
        Profile::Degraded,
        Profile::Hostile,
        Profile::Codex,
        Profile::Ha,
        Profile::Suite,
    ];

    /// The name used in `hello`, on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Refs => "refs",
            Profile::Payload => "payload",
            Profile::Resolve => "resolve",
            Profile::Auth => "auth",
            Profile::Lifecycle => "lifecycle",
            Profile::Worker => "worker",
            Profile::Degraded => "degraded",
            Profile::Hostile => "hostile",
            Profile::Codex => "codex",
            Profile::Ha => "ha",
            Profile::Suite => "suite",
        }
    }

    /// Looks a profile up by name.
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.iter().copied().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 2119 strength of the requirement a scenario checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    /// An absolute requirement.
    #[serde(rename = "MUST")]
    Must,
    /// A recommendation; its failure is still reported as a failure.
    #[serde(rename = "SHOULD")]
    Should,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        })
    }
}

/// The description of a scenario, independent of how it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Meta {
    /// Stable dotted id, e.g. `resolve.secret-missing`.
    pub id: String,
    /// The profile it belongs to.
    pub profile: Profile,
    /// MUST or SHOULD.
    pub level: Level,
    /// The spec section it checks, e.g. `errors.md secret_not_found`.
    pub spec: String,
    /// One line for people.
    pub title: String,
}

/// A boxed future, for scenario bodies.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a live scenario needs from the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// A Vault server.
    pub vault: bool,
    /// Reading Vault's audit log.
    pub audit: bool,
}

/// The body of a live scenario.
pub type LiveFn = Arc<dyn Fn(Cx) -> BoxFuture<Verdict> + Send + Sync>;

/// A check of one reply, for vector scenarios.
pub type Check = Box<dyn Fn(&Map<String, Value>) -> Verdict + Send + Sync>;

/// How a scenario runs.
pub enum Body {
    /// One request on the shared process, and a check of its reply.
    Vector {
        /// The operation.
        op: &'static str,
        /// The request's fields.
        request: Value,
        /// The check.
        check: Check,
        /// Secrets the request carries (tokens planted in a payload vector):
        /// the reply's strings must not contain them (H1), nor any output (H3).
        secrets: Vec<SecretString>,
    },
    /// A scenario with its own processes and Vault state.
    Live {
        /// What it needs.
        needs: Needs,
        /// The scenario.
        run: LiveFn,
    },
}

/// A scenario: its description and its body.
pub struct Scenario {
    /// Id, profile, level, spec section, title.
    pub meta: Meta,
    /// How it runs.
    pub body: Body,
}

impl Scenario {
    /// A live scenario.
    pub fn live(
        id: &str,
        profile: Profile,
        level: Level,
        spec: &str,
        title: &str,
        needs: Needs,
        run: LiveFn,
    ) -> Scenario {
        Scenario {
            meta: Meta {
                id: id.into(),
                profile,
                level,
                spec: spec.into(),
                title: title.into(),
            },
            body: Body::Live { needs, run },
        }
    }
}

/// Wraps a scenario body (an `async` block returning `Result<Verdict, Verdict>`,
/// where `Err` is an early verdict from `?`) as a [`LiveFn`].
#[macro_export]
#[doc(hidden)]
macro_rules! live_scenario {
    ($cx:ident, $body:block) => {
        std::sync::Arc::new(
            move |$cx: $crate::cx::Cx| -> $crate::scenario::BoxFuture<$crate::verdict::Verdict> {
                Box::pin(async move {
                    let r: Result<$crate::verdict::Verdict, $crate::verdict::Verdict> =
                        async { $body }.await;
                    r.unwrap_or_else(|v| v)
                })
            },
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_round_trip() {
        for &p in Profile::ALL {
            assert_eq!(Profile::from_name(p.as_str()), Some(p));
        }
        assert_eq!(Profile::from_name("nope"), None);
    }
}
