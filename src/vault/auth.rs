//! Obtaining a token: one function per auth method, each returning an
//! [`Issued`] token with what Vault said about its lifetime.
//!
//! Credential files are read at every login, never cached: AppRole secret ids
//! get rotated, JWTs and Kubernetes service-account tokens are re-issued, and
//! Vault Agent rewrites its sink. Contents go straight into `Zeroizing`
//! buffers and are trimmed of surrounding whitespace (a trailing newline from
//! `echo` is the common case).

use std::path::Path;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use vaultrs::api::AuthInfo;
use zeroize::{Zeroize, Zeroizing};

use super::config::AuthConfig;
use super::error::ResolveError;
use super::transport::{Transport, check_token};
use crate::ErrorCode;

/// A token and what is known of its lifetime.
pub(crate) struct Issued {
    pub token: SecretString,
    /// The TTL Vault granted; `None` when unknown or unlimited (root tokens,
    /// tokens read from a file, which the agent looks after).
    pub ttl: Option<Duration>,
    pub renewable: bool,
    pub obtained: Instant,
}

impl Issued {
    /// When the token stops working, if known.
    pub fn expires_at(&self) -> Option<Instant> {
        // Overflow (a TTL no clock can represent) means no known expiry.
        self.ttl.and_then(|t| self.obtained.checked_add(t))
    }

    /// When the token should be renewed: two thirds into its TTL, if known.
    pub fn renew_at(&self) -> Option<Instant> {
        self.ttl.and_then(|t| self.obtained.checked_add(t / 3 * 2))
    }
}

/// The longest TTL taken from Vault at face value; a larger
/// `lease_duration` (a misconfigured or hostile server) is clamped to it.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A `lease_duration` in seconds as a TTL: `None` for 0 (unlimited),
/// clamped to [`MAX_TTL`].
pub(crate) fn ttl_from_lease(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds).min(MAX_TTL))
}

/// Reads a credential file: trimmed, non-empty, zeroized when dropped.
pub(crate) fn read_credential(path: &Path, what: &str) -> Result<Zeroizing<String>, ResolveError> {
    let raw = Zeroizing::new(std::fs::read(path).map_err(|e| {
        ResolveError::new(
            ErrorCode::VaultAuthFailed,
            format!(
                "cannot read the {what} file {}: {}",
                path.display(),
                e.kind()
            ),
        )
    })?);
    let text = std::str::from_utf8(&raw).map_err(|_| {
        ResolveError::new(
            ErrorCode::VaultAuthFailed,
            format!("the {what} file {} is not UTF-8", path.display()),
        )
    })?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ResolveError::new(
            ErrorCode::VaultAuthFailed,
            format!("the {what} file {} is empty", path.display()),
        ));
    }
    Ok(Zeroizing::new(trimmed.to_string()))
}

/// Reads a token file (Vault Agent sink).
pub(crate) fn read_token_file(path: &Path) -> Result<SecretString, ResolveError> {
    let token = read_credential(path, "token")?;
    if !check_token(&token) {
        return Err(ResolveError::new(
            ErrorCode::VaultAuthFailed,
            format!(
                "the token file {} does not hold a Vault token (unexpected characters)",
                path.display()
            ),
        ));
    }
    Ok(SecretString::from(token.as_str()))
}

/// Logs in with a method that can log in (`approle`, `jwt`, `kubernetes`).
pub(crate) async fn login(
    transport: &Transport,
    auth: &AuthConfig,
) -> Result<Issued, ResolveError> {
    let client = transport.vaultrs(None)?;
    let what = format!("{} login", auth.method());
    let result = match auth {
        AuthConfig::AppRole {
            mount,
            role_id_file,
            secret_id_file,
        } => {
            let role_id = read_credential(role_id_file, "role id")?;
            let secret_id = read_credential(secret_id_file, "secret id")?;
            vaultrs::auth::approle::login(&client, mount, &role_id, &secret_id).await
        }
        AuthConfig::Jwt {
            mount,
            role,
            jwt_file,
        } => {
            let jwt = read_credential(jwt_file, "JWT")?;
            vaultrs::auth::oidc::login(&client, mount, &jwt, Some(role.clone())).await
        }
        AuthConfig::Kubernetes {
            mount,
            role,
            jwt_file,
        } => {
            let jwt = read_credential(jwt_file, "service-account token")?;
            vaultrs::auth::kubernetes::login(&client, mount, role, &jwt).await
        }
        AuthConfig::TokenFile { .. } | AuthConfig::EnvToken { .. } => {
            return Err(ResolveError::new(
                ErrorCode::VaultAuthFailed,
                "the token auth method cannot log in",
            ));
        }
    };
    let info = result.map_err(|e| transport.classify(&what, &e))?;
    issued_from(info, &what)
}

fn issued_from(mut info: AuthInfo, what: &str) -> Result<Issued, ResolveError> {
    let obtained = Instant::now();
    let ok = check_token(&info.client_token);
    let token = SecretString::from(info.client_token.as_str());
    info.client_token.zeroize();
    if !ok {
        return Err(ResolveError::new(
            ErrorCode::VaultAuthFailed,
            format!("{what}: Vault returned no usable token"),
        ));
    }
    Ok(Issued {
        token,
        ttl: ttl_from_lease(info.lease_duration),
        renewable: info.renewable,
        obtained,
    })
}

/// Renews `token` by `increment`. Returns the token with its new TTL.
pub(crate) async fn renew(
    transport: &Transport,
    token: &SecretString,
    increment: Duration,
) -> Result<Issued, ResolveError> {
    let client = transport.vaultrs(Some(token))?;
    let inc = format!("{}s", increment.as_secs().max(1));
    let info = vaultrs::token::renew_self(&client, Some(&inc))
        .await
        .map_err(|e| transport.classify("token renewal", &e))?;
    let mut issued = issued_from(info, "token renewal")?;
    // Vault answers with the same token; keep ours (same bytes) regardless.
    issued.token = SecretString::from(token.expose_secret());
    Ok(issued)
}

#[cfg(test)]
mod ttl_tests {
    use super::*;

    #[test]
    fn huge_lease_durations_do_not_panic() {
        assert_eq!(ttl_from_lease(0), None);
        assert_eq!(ttl_from_lease(60), Some(Duration::from_secs(60)));
        assert_eq!(ttl_from_lease(u64::MAX), Some(MAX_TTL));
        let issued = |ttl| Issued {
            token: SecretString::from("s.FAKEFAKEFAKE"),
            ttl,
            renewable: true,
            obtained: Instant::now(),
        };
        let clamped = issued(ttl_from_lease(u64::MAX));
        assert!(clamped.expires_at().is_some());
        assert!(clamped.renew_at().unwrap() < clamped.expires_at().unwrap());
        // Even an unclamped TTL (Duration::MAX) is "no expiry", not a panic.
        let unclamped = issued(Some(Duration::MAX));
        assert_eq!(unclamped.expires_at(), None);
        assert_eq!(unclamped.renew_at(), None);
    }
}
