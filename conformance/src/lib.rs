//! The vaultref conformance harness: does an implementation, in any language,
//! keep the promises of `spec/`?
//!
//! # Design
//!
//! The harness imitates the suites that work (field notes §6): like Bowtie,
//! it drives the implementation under test (IUT) as a child process speaking
//! newline-delimited JSON (`spec/protocol.md`), with `unsupported` replies kept
//! apart from failures; like BoGo in rustls, the reference implementation is
//! run through a thin shim ([`adapter`], binary `vaultref-adapter`) and known
//! failures live in an expectations file with a reason each; like h2spec,
//! every scenario has a stable dotted id, a MUST/SHOULD level and the spec
//! section it checks, and every failure prints the requirement, what was
//! accepted and what happened; like OCI's suite, results go to JSON, JUnit
//! XML and Markdown.
//!
//! Everything the IUT is checked against is real: a real Vault (OpenBao) from
//! one of three backends ([`backend`]), real files with real modes. The harness
//! never shows the IUT a secret value except through Vault, and asks it only
//! for HMAC fingerprints, so the protocol itself never carries a secret; the
//! IUT's whole output is then scanned for every secret the harness provisioned
//! (`vaultref::testing::leak`, shared with the library's own tests).
//!
//! Module map: [`scenario`] (what a scenario is: id, profile, level, body),
//! [`verdict`] (what it concluded, and the one place a verdict becomes a
//! status), [`cx`] (a live scenario's handle: Vault, directories, processes,
//! secrets), [`iut`] (the child process), [`runner`] (selection,
//! concurrency, hygiene), [`scenarios`] (the catalogue, one module per
//! profile), [`backend`] (where Vault comes from), [`expect`] (expectations file), [`report`] (JSON, JUnit, Markdown,
//! console), [`adapter`] (the reference adapter; its deliberate faults are
//! kept apart in `adapter::faults`).

pub mod adapter;
pub mod backend;
pub mod cx;
pub mod expect;
pub mod hygiene;
pub mod iut;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod scenarios;
pub mod verdict;

/// The suite's version, reported in `hello` and in every report.
pub const SUITE_VERSION: &str = env!("CARGO_PKG_VERSION");
