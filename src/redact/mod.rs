//! Secret redaction for worker logs (`spec/redaction.md`).
//!
//! [`rules`] is the token rule table shared with the payload lint.

pub mod rules;
