//! Snapshots of every ref error's message, and of `vaultref ref check` output.

mod common;

use vaultref::{ErrorCode, RefPolicy, ScopeContext};

/// One input per `ref_*` code (and a few variants of the same code).
const CASES: &[&str] = &[
    "",
    "vault://kv/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa#f",
    "https://github.com/Owner/Repo#token",
    "vault:/kv/a#f",
    "vault:///a#f",
    "vault://kv#f",
    "vault://kv/#f",
    "vault://kv/a",
    "vault://kv/a#",
    "vault://kv/a b#f",
    "vault://kv/a%2e%2e/b#f",
    "vault://kv/a\\b#f",
    "vault://kv/a\tb#f",
    "vault://kv/a\u{0}b#f",
    "vault://kv/\u{ff0e}\u{ff0e}/b#f",
    "vault://kv/a:b#f",
    "vault://kv/a#f/g",
    "vault://kv//a#f",
    "vault://kv/a/#f",
    "vault://kv/../a#f",
    "vault://../a#f",
    "vault://kv/a?foo=1#f",
    "vault://kv/a?version=01#f",
    "vault://kv/a?version=1&x=2#f",
    "vault://secret/a#f",
    "vault://kv/moonmind/repos/Acme/Other#github_token",
];

fn policy() -> RefPolicy {
    RefPolicy::default()
        .with_max_length(64)
        .and_then(|p| p.with_scopes(["moonmind/repos/{repository}", "a", "a/**"]))
        .expect("valid policy")
}

#[test]
fn every_ref_error_message() {
    let ctx = ScopeContext {
        repository: Some("Acme/Api".into()),
        worker_id: None,
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut out = String::new();
    for input in CASES {
        let err = policy().check(input, &ctx).expect_err(input);
        seen.insert(err.code());
        out.push_str(&format!("{:?}\n  {} @ {:?}\n", input, err, err.offset()));
    }
    let ref_codes: Vec<_> = ErrorCode::ALL
        .iter()
        .filter(|c| c.as_str().starts_with("ref_"))
        .collect();
    for code in ref_codes {
        assert!(seen.contains(code), "no snapshot case for {code}");
    }
    insta::assert_snapshot!(out);
}

fn vaultref(args: &[&str], stdin: Option<&str>) -> String {
    common::transcript(&common::cli(args, stdin.unwrap_or("")))
}

#[test]
fn cli_valid_ref_text() {
    insta::assert_snapshot!(vaultref(
        &[
            "ref",
            "check",
            "vault://kv/moonmind/repos/MoonLadderStudios/MoonMind#github_token",
            "vault://kv/a/b?version=3#token"
        ],
        None
    ));
}

#[test]
fn cli_invalid_refs_text_with_caret() {
    insta::assert_snapshot!(vaultref(
        &[
            "ref",
            "check",
            "vault://kv/a#f",
            "vault://kv/../etc#f",
            "vault://kv/a\tb#f",
            "vault://secret/x#f"
        ],
        None
    ));
}

#[test]
fn cli_json_and_policy_flags() {
    insta::assert_snapshot!(vaultref(
        &[
            "ref",
            "check",
            "--format",
            "json",
            "--allowed-mount",
            "secret",
            "--max-length",
            "30",
            "vault://secret/x#f",
            "vault://kv/x#f",
            "vault://secret/aaaaaaaaaaaaaaaaaaa#f"
        ],
        None
    ));
}

#[test]
fn cli_scopes() {
    insta::assert_snapshot!(vaultref(
        &[
            "ref",
            "check",
            "--scope",
            "moonmind/repos/{repository}",
            "--repository",
            "Acme/Api",
            "vault://kv/moonmind/repos/Acme/Api#t",
            "vault://kv/moonmind/repos/Acme/Other#t"
        ],
        None
    ));
}

#[test]
fn cli_reads_stdin() {
    insta::assert_snapshot!(vaultref(
        &["ref", "check", "-"],
        Some("vault://kv/a#f\nvault://kv/a//b#f\nvault://kv/\u{2024}\u{2024}/x#f\n")
    ));
}

#[test]
fn cli_usage_errors_exit_2() {
    insta::assert_snapshot!(vaultref(
        &["ref", "check", "--max-length", "600", "vault://kv/a#f"],
        None
    ));
    let no_refs = vaultref(&["ref", "check"], None);
    assert!(no_refs.starts_with("exit: Some(2)"), "{no_refs}");
}
