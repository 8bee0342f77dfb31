//! Hygiene (`spec/protocol.md` §6): no secret value, nor an encoding of one, in
//! anything the implementation wrote.
//!
//! The harness knows every secret it provisioned, so it can look for each one
//! exactly, in every form a careless implementation is known to leak it in:
//! raw, base64 (standard and URL-safe, with and without padding), percent-encoded,
//! and inside a git Basic-auth header (`base64("x-access-token:" + value)`).
//! Findings name the form and the stream, never the value.
//!
//! Outputs are small (kilobytes per scenario) and secrets few, so a plain
//! substring search per form is fast enough; there is no automaton to build.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

/// The forms of one secret that must never appear, with their names.
fn forms(secret: &str) -> Vec<(&'static str, String)> {
    let raw = secret.as_bytes();
    let basic = format!("x-access-token:{secret}");
    let mut forms = vec![
        ("raw", secret.to_string()),
        ("base64", STANDARD.encode(raw)),
        ("base64 (no padding)", STANDARD_NO_PAD.encode(raw)),
        ("base64url", URL_SAFE.encode(raw)),
        ("base64url (no padding)", URL_SAFE_NO_PAD.encode(raw)),
        (
            "percent-encoded",
            utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
        ),
        (
            "git Basic-auth header",
            STANDARD_NO_PAD.encode(basic.as_bytes()),
        ),
    ];
    // Forms that coincide with others (e.g. a secret with no special bytes is its
    // own percent-encoding) are searched once, under their first name.
    let mut seen = std::collections::HashSet::new();
    forms.retain(|(_, f)| seen.insert(f.clone()));
    forms
}

/// Returns the name of the first form of any `secrets` found in `haystack`.
pub fn find_leak(haystack: &[u8], secrets: &[SecretString]) -> Option<&'static str> {
    for secret in secrets {
        for (name, form) in forms(secret.expose_secret()) {
            if contains(haystack, form.as_bytes()) {
                return Some(name);
            }
        }
    }
    None
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_string())
    }

    #[test]
    fn finds_each_form_and_nothing_in_clean_text() {
        let secret = "ghp_FAKEFAKEFAKE+/=1234567890abcdefghij";
        let secrets = [s(secret)];
        for (name, form) in forms(secret) {
            let text = format!("before {form} after");
            // The Basic-auth form contains the plain base64 (its 15-byte prefix
            // is a whole number of base64 groups), so either name may come first.
            assert!(find_leak(text.as_bytes(), &secrets).is_some(), "{name}");
        }
        assert_eq!(find_leak(b"nothing to see", &secrets), None);
        assert_eq!(find_leak(b"", &secrets), None);
    }
}
