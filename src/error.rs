//! The error-code catalogue.
//!
//! Every failure vaultref reports, from any module, carries one [`ErrorCode`].
//! Codes are the stable, machine-readable contract: callers (and other
//! implementations checked by the conformance suite) classify failures by code,
//! never by message text. The list here is mirrored, row for row, by the table
//! in `spec/errors.md`; a test keeps the two in step.
//!
//! Messages are for people. They may name a ref, a JSON pointer, a rule id or a
//! job id, and they never contain secret material.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $code:literal,)*) => {
        /// A stable error code from the catalogue in `spec/errors.md`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in catalogue order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as written in the catalogue, e.g. `ref_traversal`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// Looks a code up by its catalogue spelling.
            pub fn from_name(name: &str) -> Option<ErrorCode> {
                match name {
                    $($code => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// The ref is the empty string.
    RefEmpty => "ref_empty",
    /// The ref is longer than the policy's maximum length.
    RefTooLong => "ref_too_long",
    /// The ref does not start with `vault://`.
    RefBadScheme => "ref_bad_scheme",
    /// No mount between `vault://` and the first `/`.
    RefMissingMount => "ref_missing_mount",
    /// No path after the mount.
    RefMissingPath => "ref_missing_path",
    /// No `#field`, or an empty one.
    RefMissingField => "ref_missing_field",
    /// A byte that the grammar does not allow where it stands.
    RefInvalidChar => "ref_invalid_char",
    /// An empty path segment (`a//b`, trailing `/`).
    RefEmptySegment => "ref_empty_segment",
    /// A mount or path segment that is `.` or `..`.
    RefTraversal => "ref_traversal",
    /// A query other than `?version=<n>`.
    RefBadQuery => "ref_bad_query",
    /// The mount is not in the policy's allow-list.
    RefMountNotAllowed => "ref_mount_not_allowed",
    /// The path matches none of the policy's scopes for this job.
    RefOutOfScope => "ref_out_of_scope",
    /// The job is not JSON, or not a JSON object.
    PayloadNotJson => "payload_not_json",
    /// The job violates `spec/codex-exec.schema.json`.
    PayloadSchema => "payload_schema",
    /// A string in the job matches a token rule.
    PayloadContainsSecret => "payload_contains_secret",
    /// The queue policy does not allow the job's repository.
    RepositoryNotAllowed => "repository_not_allowed",
    /// The queue policy does not allow the job's type.
    JobTypeNotAllowed => "job_type_not_allowed",
    /// A secret registered with the redactor is shorter than the minimum length.
    SecretTooShort => "secret_too_short",
    /// Vault could not be reached, timed out, answered 5xx or is sealed.
    VaultUnavailable => "vault_unavailable",
    /// Logging in to Vault failed and no valid token is left.
    VaultAuthFailed => "vault_auth_failed",
    /// Vault denied the read with a live token (policy).
    VaultPermissionDenied => "vault_permission_denied",
    /// No secret at the ref's path.
    SecretNotFound => "secret_not_found",
    /// The requested version was soft-deleted.
    SecretVersionDeleted => "secret_version_deleted",
    /// The requested version was destroyed.
    SecretVersionDestroyed => "secret_version_destroyed",
    /// The secret exists but has no such field, or the field is not a string.
    SecretFieldMissing => "secret_field_missing",
    /// A job carries a ref but no Vault settings were given.
    VaultNotConfigured => "vault_not_configured",
    /// The Vault settings are incomplete or contradictory (including a refused `VAULT_TOKEN`).
    ConfigInvalid => "config_invalid",
    /// A git operation failed.
    GitFailed => "git_failed",
    /// The job action that edits the checkout failed or timed out.
    ActionFailed => "action_failed",
    /// A credential would go to a git host it is not bound to (the worker's
    /// allowed hosts, or the secret document's `host`).
    GitHostNotAllowed => "git_host_not_allowed",
    /// A Codex auth volume shard is owned by another worker (or by nobody)
    /// where this worker must own it.
    CodexShardNotOwned => "codex_shard_not_owned",
    /// A Codex volume backup failed verification: altered, truncated,
    /// reordered, from another shard or version, its data key not unwrapped,
    /// or an archive entry that would escape the restore target.
    CodexBackupCorrupt => "codex_backup_corrupt",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(ErrorCode::from_name("nope"), None);
    }

    /// `spec/errors.md` lists exactly the codes of this enum, in this order.
    #[test]
    fn spec_catalogue_mirrors_the_enum() {
        let spec = include_str!("../spec/errors.md");
        let in_spec: Vec<&str> = spec
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let in_code: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(in_spec, in_code, "spec/errors.md and ErrorCode differ");
    }
}
