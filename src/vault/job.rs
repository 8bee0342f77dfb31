//! [`JobId`]: the job id as it travels in the `X-Vaultref-Job-Id` header and
//! in messages.
//!
//! Job ids come from the queue and are not under our control, while an HTTP
//! header value and a log line both have a restricted alphabet. Rather than
//! refuse odd ids (and fail a job for a cosmetic reason) every byte outside
//! `A-Z a-z 0-9 . _ : -` is percent-encoded. The mapping is lossless, so an
//! operator can still match the audit log entry to the queue's job.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Bytes kept as they are; everything else (including `%`) is encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'_')
    .remove(b':')
    .remove(b'-');

/// The longest job id sent; longer ids are cut (at a character boundary) and
/// marked with a trailing `~`, to bound header size.
const MAX_LEN: usize = 256;

/// A job id, encoded for headers and messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobId(String);

impl JobId {
    /// Encodes a job id. Never fails.
    pub fn new(raw: &str) -> JobId {
        let mut encoded: String = utf8_percent_encode(raw, ENCODE).collect();
        if encoded.is_empty() {
            encoded.push_str("%00-none");
        }
        if encoded.len() > MAX_LEN {
            encoded.truncate(MAX_LEN - 1);
            encoded.push('~');
        }
        JobId(encoded)
    }

    /// The encoded form: header-safe, printable ASCII.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_pass_through_and_others_are_encoded() {
        assert_eq!(JobId::new("job-7").as_str(), "job-7");
        assert_eq!(JobId::new("3f2a:b_c.d").as_str(), "3f2a:b_c.d");
        assert_eq!(
            JobId::new("a b\r\nX-Evil: 1").as_str(),
            "a%20b%0D%0AX-Evil:%201"
        );
        assert_eq!(JobId::new("").as_str(), "%00-none");
        let long = JobId::new(&"x".repeat(1000));
        assert_eq!(long.as_str().len(), MAX_LEN);
        assert!(long.as_str().ends_with('~'));
        assert!(long.as_str().bytes().all(|b| b.is_ascii_graphic()));
    }

    proptest::proptest! {
        /// Any job id becomes a header-safe string, and short ones decode
        /// back to exactly the original (the mapping loses nothing).
        #[test]
        fn encoding_is_header_safe_and_reversible(raw in "\\PC{0,80}") {
            let id = JobId::new(&raw);
            proptest::prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_graphic()));
            proptest::prop_assert!(reqwest::header::HeaderValue::from_str(id.as_str()).is_ok());
            if !raw.is_empty() && id.as_str().len() < MAX_LEN {
                let back = percent_encoding::percent_decode_str(id.as_str()).decode_utf8().unwrap();
                proptest::prop_assert_eq!(back, raw.as_str());
            }
        }
    }
}
