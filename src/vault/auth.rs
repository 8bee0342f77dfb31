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
use serde::Serialize;
use zeroize::Zeroizing;

use super::config::AuthConfig;
use super::error::ResolveError;
use super::transport::{AuthBlock, Transport, check_token};
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

/// The body of a login request: the credentials as read from their files.
#[derive(Serialize)]
#[serde(untagged)]
enum LoginBody<'a> {
    AppRole {
        role_id: &'a str,
        secret_id: &'a str,
    },
    Jwt {
        role: &'a str,
        jwt: &'a str,
    },
}

/// Logs in with `auth` (AppRole, JWT, Kubernetes): `POST auth/<mount>/login`
/// with the credentials read afresh from their files.
pub(crate) async fn login(
    transport: &Transport,
    auth: &AuthConfig,
) -> Result<Issued, ResolveError> {
    let what = format!("{} login", auth.method());
    let (mount, first, second) = match auth {
        AuthConfig::AppRole {
            mount,
            role_id_file,
            secret_id_file,
        } => (
            mount,
            read_credential(role_id_file, "role id")?,
            read_credential(secret_id_file, "secret id")?,
        ),
        AuthConfig::Jwt {
            mount,
            role,
            jwt_file,
        }
        | AuthConfig::Kubernetes {
            mount,
            role,
            jwt_file,
        } => {
            let what = match auth {
                AuthConfig::Jwt { .. } => "JWT",
                _ => "service-account token",
            };
            (
                mount,
                Zeroizing::new(role.clone()),
                read_credential(jwt_file, what)?,
            )
        }
        AuthConfig::TokenFile { .. } | AuthConfig::EnvToken { .. } => {
            return Err(ResolveError::new(
                ErrorCode::VaultAuthFailed,
                "the token auth method cannot log in",
            ));
        }
    };
    let body = match auth {
        AuthConfig::AppRole { .. } => LoginBody::AppRole {
            role_id: &first,
            secret_id: &second,
        },
        _ => LoginBody::Jwt {
            role: &first,
            jwt: &second,
        },
    };
    let body = Zeroizing::new(serde_json::to_vec(&body).map_err(|_| {
        ResolveError::new(
            ErrorCode::VaultAuthFailed,
            format!("{what}: cannot encode the request"),
        )
    })?);
    let reply = transport
        .post(&format!("auth/{mount}/login"), None, body)
        .await?;
    let auth_block = transport
        .classify_auth(&what, &reply)
        .map_err(|e| without_sent(e, &[&first, &second], &what))?;
    issued_from(auth_block, &what)
}

/// An error whose message (built from Vault's own error strings) quotes
/// something we sent, as a hostile server might: the detail is dropped.
fn without_sent(e: ResolveError, sent: &[&str], what: &str) -> ResolveError {
    if sent
        .iter()
        .any(|s| !s.is_empty() && e.message().contains(s))
    {
        ResolveError::new(
            e.code(),
            format!(
                "{what}: Vault refused it (its error text is not shown: it quoted the request)"
            ),
        )
    } else {
        e
    }
}

fn issued_from(auth: AuthBlock, what: &str) -> Result<Issued, ResolveError> {
    let obtained = Instant::now();
    if !check_token(&auth.client_token) {
        return Err(ResolveError::new(
            ErrorCode::VaultAuthFailed,
            format!("{what}: Vault returned no usable token"),
        ));
    }
    Ok(Issued {
        token: SecretString::from(auth.client_token.as_str()),
        ttl: ttl_from_lease(auth.lease_duration),
        renewable: auth.renewable,
        obtained,
    })
}

/// Renews `token` by `increment`. Returns the token with its new TTL.
pub(crate) async fn renew(
    transport: &Transport,
    token: &SecretString,
    increment: Duration,
) -> Result<Issued, ResolveError> {
    let body = format!(r#"{{"increment":"{}s"}}"#, increment.as_secs().max(1));
    let reply = transport
        .post(
            "auth/token/renew-self",
            Some(token),
            Zeroizing::new(body.into_bytes()),
        )
        .await?;
    let mut issued = issued_from(
        transport.classify_auth("token renewal", &reply)?,
        "token renewal",
    )?;
    // Vault answers with the same token; keep ours (same bytes) regardless.
    issued.token = SecretString::from(token.expose_secret());
    Ok(issued)
}

/// Revokes `token` (`auth/token/revoke-self`); failures are ignored, the
/// token expires anyway.
pub(crate) async fn revoke(transport: &Transport, token: &SecretString) {
    let _ = transport
        .post(
            "auth/token/revoke-self",
            Some(token),
            Zeroizing::new(b"{}".to_vec()),
        )
        .await;
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
