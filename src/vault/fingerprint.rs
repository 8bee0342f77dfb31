//! Fingerprints: `hmac-sha256:<64 lowercase hex>` of a resolved value.
//!
//! A fingerprint lets a person or the conformance harness check *which*
//! value was resolved (compare with the fingerprint of the expected value)
//! without the value ever being printed. A keyed HMAC rather than a bare hash,
//! because a hash of a low-entropy secret can be brute-forced offline; the
//! key never leaves the machine that checks.
//!
//! The key is given in hex (spec/resolver.md §6): in a file for
//! `vaultref resolve --fingerprint-key-file`, as a string in the conformance
//! protocol's `fingerprint_key`. It must decode to at least 16 bytes.

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::error::ResolveError;

/// The shortest accepted key, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// The prefix of every fingerprint.
pub const PREFIX: &str = "hmac-sha256:";

/// An HMAC key for fingerprints. Kept in a `SecretBox`: it is key material.
pub struct FingerprintKey(SecretBox<Vec<u8>>);

impl FingerprintKey {
    /// Decodes a hex key (surrounding whitespace ignored).
    pub fn from_hex(hex_key: &str) -> Result<FingerprintKey, ResolveError> {
        let bytes = Zeroizing::new(
            hex::decode(hex_key.trim())
                .map_err(|_| ResolveError::config("the fingerprint key must be hex (0-9, a-f)"))?,
        );
        if bytes.len() < MIN_KEY_BYTES {
            return Err(ResolveError::config(format!(
                "the fingerprint key must be at least {MIN_KEY_BYTES} bytes ({} hex digits)",
                MIN_KEY_BYTES * 2
            )));
        }
        Ok(FingerprintKey(SecretBox::new(Box::new(bytes.to_vec()))))
    }

    /// Reads a hex key from a file.
    pub fn from_file(path: &Path) -> Result<FingerprintKey, ResolveError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            ResolveError::config(format!(
                "cannot read the fingerprint key file {}: {}",
                path.display(),
                e.kind()
            ))
        })?);
        Self::from_hex(&text)
    }

    /// `hmac-sha256:<hex>` of the value's UTF-8 bytes.
    pub fn fingerprint(&self, value: &SecretString) -> String {
        self.fingerprint_bytes(value.expose_secret().as_bytes())
    }

    /// `hmac-sha256:<hex>` of raw bytes.
    pub fn fingerprint_bytes(&self, value: &[u8]) -> String {
        // `new_from_slice` accepts keys of any length for HMAC.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes keys of any length");
        mac.update(value);
        format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_non_hex_keys_are_refused() {
        assert!(FingerprintKey::from_hex("00ff").is_err());
        assert!(FingerprintKey::from_hex("zz".repeat(16).as_str()).is_err());
        assert!(FingerprintKey::from_hex(&"ab".repeat(16)).is_ok());
    }
}
