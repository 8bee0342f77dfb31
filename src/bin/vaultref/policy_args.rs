//! The ref-policy flags `ref check` and `payload check` share (flattened into
//! both with clap), so the two commands cannot drift apart.

use clap::Args;
use vaultref::RefPolicy;
use vaultref::policy::PolicyError;

#[derive(Args)]
pub struct PolicyArgs {
    /// A mount refs may name (repeatable; default: kv).
    #[arg(long = "allowed-mount", value_name = "M")]
    pub allowed_mounts: Vec<String>,
    /// Maximum ref length in bytes (1 to 512).
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,
    /// A path scope template, e.g. `moonmind/repos/{repository}` (repeatable).
    #[arg(long = "scope", value_name = "TEMPLATE")]
    pub scopes: Vec<String>,
    /// The worker's id, bound to `{worker_id}` in scopes.
    #[arg(long, value_name = "ID")]
    pub worker_id: Option<String>,
}

impl PolicyArgs {
    /// The ref policy these flags describe (a usage error when they cannot
    /// make one: a bad length or scope template).
    pub fn policy(&self) -> Result<RefPolicy, PolicyError> {
        let mut policy = RefPolicy::default();
        if !self.allowed_mounts.is_empty() {
            policy = policy.with_allowed_mounts(self.allowed_mounts.iter().cloned());
        }
        if let Some(n) = self.max_length {
            policy = policy.with_max_length(n)?;
        }
        policy.with_scopes(&self.scopes)
    }
}
