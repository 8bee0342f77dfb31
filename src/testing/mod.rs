//! Test support, behind the cargo feature `testing`: real servers for
//! integration tests, shared by this crate's tests and the conformance crate
//! (`vaultref = { features = ["testing"] }`) so neither copies the other.
//!
//! Nothing here is a mock. [`vault::TestVault`] runs a real OpenBao server
//! process on a loopback port.

pub mod vault;

pub use vault::{TestSupportError, TestVault};
