//! The vaultref conformance harness (skeleton; see issue "Conformance harness").
