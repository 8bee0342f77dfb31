//! vaultref: resolve job secrets from HashiCorp Vault or OpenBao without ever
//! exposing them.
//!
//! Jobs carry *references* (`vault://kv/moonmind/repos/Owner/Repo#github_token`)
//! instead of secret values. This crate is the reference implementation of the
//! specification in `spec/`:
//!
//! - [`secret_ref`]: the ref grammar, a canonical `nom` parser ([`SecretRef`]);
//! - [`policy`]: what a given job may name ([`RefPolicy`]: mounts, length, scopes);
//! - [`payload`]: the `codex_exec` job: schema, typed model, raw-secret lint ([`payload::validate`]);
//! - [`redact`]: the streaming redactor and the token rule table;
//! - [`vault`]: the resolver on Vault/OpenBao ([`vault::Resolver`]);
//! - [`error`]: the error-code catalogue ([`ErrorCode`]) shared by every module;
//! - [`git`]: git with transient credentials (helper over a per-job socket);
//! - [`worker`]: the worker runtime (queue policy, degraded mode, outcomes);
//! - `testing` (feature `testing`): real OpenBao and git HTTP servers for tests.
//!
//! # Features
//!
//! `default = ["vault", "worker", "cli"]`. With `default-features = false` only
//! the core builds (`secret_ref`, `policy`, `payload`, `redact`, `error`): no
//! tokio, no HTTP client, no git. That is what the Python package links
//! (`bindings/python`). `vault` adds the resolver, `worker` git and the worker
//! runtime, `cli` the `vaultref` binary, `tokio` the async redacting writer.
//!
//! See `ARCHITECTURE.md` for the map of the whole project.

pub mod error;
#[cfg(feature = "worker")]
pub mod git;
pub mod payload;
pub mod policy;
#[cfg(feature = "worker")]
mod proc_group;
pub mod redact;
pub mod secret_ref;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "vault")]
pub mod vault;
#[cfg(feature = "worker")]
pub mod worker;

pub use error::ErrorCode;
pub use policy::{RefPolicy, RefTemplate, ScopeContext};
pub use secret_ref::{RefError, SecretRef};
