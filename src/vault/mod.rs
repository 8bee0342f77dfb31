//! The Vault resolver: turns a [`SecretRef`](crate::SecretRef) into the value
//! it names, at the moment of use, without the value ever being logged,
//! printed or written to disk. Normative text: `spec/resolver.md`.
//!
//! # API
//!
//! ```no_run
//! # async fn demo() -> Result<(), vaultref::vault::ResolveError> {
//! use vaultref::vault::{Resolver, VaultConfig};
//! let config = VaultConfig::from_env()?.expect("VAULT_ADDR is set");
//! let resolver = Resolver::new(config).await?; // starts token renewal
//! let r = vaultref::SecretRef::parse("vault://kv/moonmind/repos/Acme/Api#github_token").unwrap();
//! let token = resolver.resolve(&r, "job-42").await?; // SecretString, zeroized on drop
//! # drop(token);
//! resolver.probe().await?;                     // reachable and unsealed?
//! println!("{}", resolver.metrics());          // Prometheus text
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! - `config`: settings from the environment or a JSON file, validated once;
//! - `auth`: one login function per method, credential files re-read each time;
//! - `token`: the shared token, background renewal, re-login, fail secure;
//! - `transport`: the one HTTP client for every request (no redirects, no
//!   proxy, TLS trust only from vaultref's settings; why not vaultrs: see
//!   that module);
//! - `kv2`: the KV v2 read's answers mapped to error codes;
//! - `metrics`: Prometheus counters and latency histogram, and a tiny listener;
//! - `shards`, `backup`: Codex auth volumes: one owner per shard by KV v2
//!   check-and-set, Transit-enveloped backups (`spec/codex-shards.md`,
//!   `spec/codex-backups.md`);
//! - `fingerprint`: `hmac-sha256:<hex>` of a value, for checking without showing;
//! - `job`: job ids made safe for headers and messages;
//! - `inspect`: what the worker's token may do (capabilities, policies), for
//!   operators; `acl`: Vault policies rendered from the queue policy and ref
//!   scopes, and checked against a live token (`vaultref policy`).
//!
//! # Invariants
//!
//! - Values and tokens live in `secrecy` types; response buffers holding
//!   secret data are zeroized. Nothing here implements `Debug` or `Display`
//!   over a value.
//! - Every error has a code from `spec/errors.md` and a message naming the ref
//!   and job id, built only from refs, paths, statuses and Vault's error
//!   strings, never from a response body or a credential.
//! - Every request is bounded by the timeout (default 5 s); a resolution makes
//!   at most two reads (one retry after replacing a dead token).
//! - Nothing is cached but the token: each resolution reads Vault.

pub mod acl;
mod auth;
mod backup;
mod config;
pub mod doctor;
mod error;
mod fingerprint;
mod inspect;
mod job;
mod kv2;
mod metrics;
mod resolver;
mod serve;
mod shards;
mod token;
mod transport;

pub use backup::{BackupInfo, REWRAP_LOCK, RewrapReport, TransitKey};
pub use config::{
    AuthConfig, DEFAULT_FAILOVER, DEFAULT_JOB_ID_HEADER, DEFAULT_K8S_TOKEN_FILE, DEFAULT_TIMEOUT,
    VaultConfig,
};
pub use error::ResolveError;
pub use fingerprint::{FingerprintKey, MIN_KEY_BYTES, PREFIX as FINGERPRINT_PREFIX};
pub use job::JobId;
pub use shards::{CAS_ATTEMPTS, ShardRecord, ShardStore, valid_shard_id};

/// Entry points for the `fuzz/` targets only (cargo fuzz compiles with
/// `--cfg fuzzing`); not part of the API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// The KV v2 answer parser.
    pub fn kv2_interpret(
        status: u16,
        body: &[u8],
        r: &crate::SecretRef,
    ) -> Result<super::Credential, super::ResolveError> {
        super::kv2::interpret(status, body, r)
    }
}
pub use kv2::Credential;
pub use metrics::Metrics;
pub use resolver::Resolver;
pub use serve::serve_metrics;
