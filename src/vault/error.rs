//! [`ResolveError`]: what a failed resolution (or a refused configuration)
//! reports. A stable [`ErrorCode`] plus a message for people.
//!
//! Messages name the ref and the job id so that an operator can act on them
//! (runbook: check auth, check policy, check the field) and never carry a
//! secret value, a token or a raw Vault response body. Constructors in this
//! crate only ever interpolate refs, job ids, paths, HTTP statuses and counts.

use std::fmt;

use crate::error::ErrorCode;

/// A resolution or configuration failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveError {
    code: ErrorCode,
    message: String,
}

impl ResolveError {
    /// An error with a code from the catalogue and a message without secrets.
    /// The message passes through the token rules (it may quote a ref or
    /// Vault's own error strings, and either may carry what looks like a
    /// token).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ResolveError {
        ResolveError {
            code,
            message: crate::redact::redact(&message.into()),
        }
    }

    /// `config_invalid` with a message.
    pub(crate) fn config(message: impl Into<String>) -> ResolveError {
        ResolveError::new(ErrorCode::ConfigInvalid, message)
    }

    /// `vault_not_configured`: a job carries `secret_ref` but the worker has
    /// no Vault settings. Workers without a [`Resolver`](super::Resolver) use
    /// this to fail such jobs with the catalogue code.
    pub fn not_configured(secret_ref: &str, job_id: &str) -> ResolveError {
        ResolveError::new(
            ErrorCode::VaultNotConfigured,
            format!(
                "job {}: cannot resolve {secret_ref}: this worker has no Vault settings (set VAULT_ADDR and an auth method)",
                super::JobId::new(job_id)
            ),
        )
    }

    /// The stable error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// A message for people; never contains secret material.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with the ref and job it concerns.
    pub(crate) fn context(mut self, secret_ref: &str, job: &super::JobId) -> ResolveError {
        // The ref and the message are redacted apart (the message already
        // was, in `new`): side by side, a ref's field `#token` and the first
        // word of the message read as `token: <word>` to the
        // secret-assignment rule, which masked "unexpected".
        self.message = format!(
            "job {job}: {}: {}",
            crate::redact::redact(secret_ref),
            self.message
        );
        self
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ResolveError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_named_token_does_not_mask_the_message_after_it() {
        let e = ResolveError::new(
            ErrorCode::VaultUnavailable,
            "unexpected HTTP 400 from Vault for kv/data/ha/app",
        )
        .context(
            "vault://kv/ha/app#token",
            &super::super::JobId::new("job-1"),
        );
        assert_eq!(
            e.message(),
            "job job-1: vault://kv/ha/app#token: unexpected HTTP 400 from Vault for kv/data/ha/app"
        );
        // A token in the ref or in the message is still masked.
        let e = ResolveError::new(ErrorCode::SecretNotFound, "nothing here").context(
            "vault://kv/ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE#f",
            &super::super::JobId::new("j"),
        );
        assert!(!e.message().contains("ghp_FAKE"), "{}", e.message());
    }
}
