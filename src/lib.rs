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
//! See `ARCHITECTURE.md` for the map of the whole project.

pub mod error;
pub mod git;
pub mod payload;
pub mod policy;
mod proc_group;
pub mod redact;
pub mod secret_ref;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vault;
pub mod worker;

pub use error::ErrorCode;
pub use policy::{RefPolicy, RefTemplate, ScopeContext};
pub use secret_ref::{RefError, SecretRef};
