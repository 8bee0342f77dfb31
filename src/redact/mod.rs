//! Secret redaction for worker logs (`spec/redaction.md`).
//!
//! Worker logs must never carry secret material (design checklist item 5).
//! This module masks two kinds of thing in a byte stream:
//!
//! - **registered secrets**, values the worker resolved at run time, in their
//!   raw form and every derived form (base64 at three alignments, URL, JSON,
//!   git's Basic header): [`forms`];
//! - **token rules**, credential shapes recognised without being told the
//!   value (GitHub, Vault/OpenBao, AWS, JWT, PEM keys, headers...): [`rules`](mod@rules),
//!   the one table shared with the payload lint.
//!
//! # Design and trade-offs
//!
//! - *Semantics first, then streaming.* What is masked is defined on the whole
//!   stream ([`engine`]): spans, merged when they overlap. Streaming only
//!   decides *when* bytes may leave: complete lines leave at once, except a
//!   line that may begin a registered multi-line secret. That is why the
//!   output does not depend on how input is cut into writes (a proptest
//!   property).
//! - *Speed from the shape of secrets.* Registered forms are long and
//!   high-entropy, so a sampled window filter ([`literal`]) replaces an
//!   automaton over tens of thousands of literals; rules are found
//!   keyword-first (one SIMD pass finds where keywords start, in any case
//!   where the rule says so, and each rule's regex runs anchored there).
//! - *Over-masking is bounded.* Secrets shorter than the minimum length (8)
//!   are refused (`secret_too_short`) instead of masking every short word.
//!
//! Entry points: [`redact`] (rules only, one shot), [`RedactorBuilder`] →
//! [`Redactor`] (`redact`, `stream`), and the [`RedactWriter`] /
//! [`AsyncRedactWriter`] wrappers.

#[cfg(feature = "tokio")]
pub mod async_io;
mod decode;
pub mod engine;
pub mod forms;
pub mod io;
mod keywords;
pub mod literal;
mod prefixes;
pub mod rules;
pub mod synth;
mod wrapped;

#[cfg(feature = "tokio")]
pub use async_io::AsyncRedactWriter;
pub use engine::{
    DEFAULT_MIN_SECRET_LENGTH, DEFAULT_REPLACEMENT, MIN_MASKABLE_LENGTH, RedactError, RedactStream,
    Redactor, RedactorBuilder, SEGMENT, redact,
};
pub use io::RedactWriter;
pub use rules::{Rule, RuleKind, TokenMatch, find_tokens, rules};
