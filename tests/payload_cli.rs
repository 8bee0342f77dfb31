//! `vaultref payload check`, run as a real process.

use std::process::Output;

mod common;

const GHP: &str = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000";

const DESIGN_EXAMPLE: &str = r#"{
  "type": "codex_exec",
  "payload": {
    "repository": "MoonLadderStudios/MoonMind",
    "repoAuthRef": "vault://kv/moonmind/repos/MoonLadderStudios/MoonMind#github_token",
    "instruction": "Implement the assigned task"
  }
}"#;

fn vaultref(args: &[&str], stdin: &str) -> Output {
    common::cli(args, stdin)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_design_example_is_valid() {
    let out = vaultref(&["payload", "check", "-"], DESIGN_EXAMPLE);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("cli_valid_text", text(&out.stdout));
}

#[test]
fn a_file_argument_and_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.json");
    std::fs::write(&path, DESIGN_EXAMPLE).unwrap();
    let out = vaultref(
        &[
            "payload",
            "check",
            "--format",
            "json",
            path.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["repository_slug"], "MoonLadderStudios/MoonMind");
    assert_eq!(
        v["publish_auth_ref"],
        "vault://kv/moonmind/repos/MoonLadderStudios/MoonMind#github_token"
    );
}

#[test]
fn every_error_is_printed_with_code_and_pointer() {
    let job = format!(
        r#"{{"type": "codex_exec", "payload": {{"repository": "https://x-access-token:{GHP}@github.com/Acme/Api",
            "instruction": "", "repoAuthRef": "vault://secret/{GHP}#token", "note": "{GHP}"}}}}"#
    );
    let out = vaultref(
        &[
            "payload",
            "check",
            "--allowed-repository",
            "Acme/Api",
            "--allowed-job-type",
            "codex_exec",
            "-",
        ],
        &job,
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains(GHP) && !text(&out.stderr).contains(GHP),
        "{stdout}"
    );
    assert!(!stdout.contains("FAKEFAKE"), "{stdout}");
    insta::assert_snapshot!("cli_invalid_text", stdout);

    let out = vaultref(&["payload", "check", "--format", "json", "-"], &job);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stdout).contains(GHP));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let codes: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    for code in [
        "payload_schema",
        "ref_mount_not_allowed",
        "payload_contains_secret",
    ] {
        assert!(codes.contains(&code), "{code} missing: {codes:?}");
    }
}

#[test]
fn queue_policy_flags_apply() {
    let out = vaultref(
        &[
            "payload",
            "check",
            "--allowed-repository",
            "Other/Repo",
            "-",
        ],
        DESIGN_EXAMPLE,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("error[repository_not_allowed] at /payload/repository"));

    let out = vaultref(
        &[
            "payload",
            "check",
            "--scope",
            "moonmind/repos/{repository}",
            "--allowed-mount",
            "kv",
            "-",
        ],
        DESIGN_EXAMPLE,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn usage_errors_exit_2() {
    let out = vaultref(&["payload", "check"], "");
    assert_eq!(out.status.code(), Some(2), "no FILE");
    let out = vaultref(&["payload", "check", "--bogus", "-"], "");
    assert_eq!(out.status.code(), Some(2), "unknown flag");
    let out = vaultref(&["payload", "check", "/nonexistent/job.json"], "");
    assert_eq!(out.status.code(), Some(2), "missing file");
    assert!(text(&out.stderr).contains("cannot read"));
    let out = vaultref(&["payload", "check", "--max-length", "600", "-"], "{}");
    assert_eq!(out.status.code(), Some(2), "bad policy");
    assert!(text(&out.stderr).contains("config_invalid"));
}

#[test]
fn not_json_is_invalid_not_a_usage_error() {
    let out = vaultref(&["payload", "check", "-"], "not json");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("error[payload_not_json] at (the job)"));
}
