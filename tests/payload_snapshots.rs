//! Snapshots of the error report (`Vec<PayloadError>` as JSON), the form the
//! conformance protocol and `--format json` carry. Reviewed by hand: each
//! message says what was expected and none quotes a secret.

use vaultref::payload::{QueuePolicy, ValidationOptions, validate};

fn errors(job: &str, options: &ValidationOptions) -> serde_json::Value {
    let errors = validate(job.as_bytes(), options).expect_err("the job is invalid");
    serde_json::to_value(errors).unwrap()
}

#[test]
fn schema_report() {
    let job = r#"{"type": "codex", "payload": {"repository": "git@github.com:Acme/Api.git",
        "instruction": " ", "ref": "main..x", "workdirMode": "fresh", "publish": {"mode": "push"},
        "codex": {"model": 5}, "repoAuthRef": 1, "publishAuthref": "vault://kv/a#b"}}"#;
    insta::assert_json_snapshot!("schema_report", errors(job, &ValidationOptions::default()));
}

#[test]
fn missing_members_report() {
    insta::assert_json_snapshot!(
        "missing_members_report",
        errors(r#"{"payload": {}}"#, &ValidationOptions::default())
    );
}

#[test]
fn ref_and_queue_report() {
    let options = ValidationOptions {
        ref_policy: vaultref::RefPolicy::default()
            .with_scopes(["moonmind/repos/{repository}"])
            .unwrap(),
        worker_id: None,
        queue_policy: Some(QueuePolicy {
            allowed_repositories: Some(vec!["Acme/Other".into()]),
            allowed_job_types: Some(vec!["codex_skill".into()]),
        }),
    };
    let job = r#"{"type": "codex_exec", "payload": {"repository": "https://github.com/Acme/Api",
        "instruction": "x", "repoAuthRef": "vault://kv/moonmind/repos/Acme/Other#github_token",
        "publishAuthRef": "vault://kv/moonmind/../x#token"}}"#;
    insta::assert_json_snapshot!("ref_and_queue_report", errors(job, &options));
}

#[test]
fn secrets_report() {
    let job = r#"{"type": "codex_exec", "meta": {"auth": "Bearer FAKEFAKEFAKEFAKEFAKE"},
        "payload": {"repository": "Acme/Api",
        "instruction": "push with ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000",
        "githubToken": "0123456789abcdef",
        "AKIAFAKEFAKEFAKEFAKE": {"inner": "hvs.FAKEFAKEFAKEFAKEFAKEFAKE"},
        "publishAuthRef": "vault://ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000/x#token"}}"#;
    let report = errors(job, &ValidationOptions::default());
    let text = report.to_string();
    for secret in ["FAKEFAKE", "0123456789abcdef"] {
        assert!(!text.contains(secret), "{secret} echoed: {text}");
    }
    insta::assert_json_snapshot!("secrets_report", report);
}

#[test]
fn not_json_report() {
    insta::assert_json_snapshot!(
        "not_json_report",
        errors(r#"{"a": 1, "a": 2}"#, &ValidationOptions::default())
    );
}
