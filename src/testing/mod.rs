//! Test support shared by the integration tests and the conformance harness
//! (cargo feature `testing`): real servers, never mocks.

pub mod git_server;
