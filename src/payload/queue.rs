//! The queue policy: which repositories and job types a worker may take.
//!
//! This is the first half of the design's defence in depth (the second is the
//! worker's Vault policy). It predates Vault: queue-era worker tokens carried
//! an allow-list of repositories, compared exactly with `payload.repository`,
//! and an allow-list of job types. The worker runtime reuses this type when it
//! claims jobs; the payload validator applies it as step 4.
//!
//! Each list is optional, and the two states are kept apart on purpose:
//! `None` means "no restriction", `Some(vec![])` means "nothing is allowed".
//! An empty list never silently widens into "everything".

use serde::{Deserialize, Serialize};

/// Allow-lists of repositories and job types, each exact-match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuePolicy {
    /// Repositories a job may name, compared byte for byte with
    /// `payload.repository` (no normalisation). `None`: any repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_repositories: Option<Vec<String>>,
    /// Job types (`type`) a worker may take. `None`: any type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_job_types: Option<Vec<String>>,
}

impl QueuePolicy {
    /// Whether `repository` (as written in the payload) is allowed.
    pub fn allows_repository(&self, repository: &str) -> bool {
        allows(&self.allowed_repositories, repository)
    }

    /// Whether the job type `job_type` is allowed.
    pub fn allows_job_type(&self, job_type: &str) -> bool {
        allows(&self.allowed_job_types, job_type)
    }
}

fn allows(list: &Option<Vec<String>>, value: &str) -> bool {
    list.as_ref().is_none_or(|l| l.iter().any(|x| x == value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_allows_all_and_empty_allows_nothing() {
        let open = QueuePolicy::default();
        assert!(open.allows_repository("a/b") && open.allows_job_type("x"));
        let closed = QueuePolicy {
            allowed_repositories: Some(vec![]),
            allowed_job_types: Some(vec![]),
        };
        assert!(!closed.allows_repository("a/b") && !closed.allows_job_type("codex_exec"));
    }

    #[test]
    fn matching_is_exact() {
        let p = QueuePolicy {
            allowed_repositories: Some(vec!["Acme/Api".into()]),
            allowed_job_types: Some(vec!["codex_exec".into()]),
        };
        assert!(p.allows_repository("Acme/Api"));
        assert!(!p.allows_repository("acme/api"));
        assert!(!p.allows_repository("https://github.com/Acme/Api"));
        assert!(p.allows_job_type("codex_exec"));
        assert!(!p.allows_job_type("codex_exec "));
    }
}
