//! `vaultref doctor` against a real OpenBao: a worker set up right passes
//! every check; each way of being set up wrong (policy, missing secret,
//! missing field, deleted and destroyed versions, a ref outside the scopes,
//! a dead token, a sealed server) fails its check, and the output names the
//! fix. The token and the values never appear in the output.

mod common;

use common::{cli_env, transcript, vault};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use vaultref::testing::TestVault;

const TOKEN_VALUE: &str = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE6001";
const API: &str = "vault://kv/moonmind/repos/Acme/Api#github_token";

/// Runs `doctor` with `token` (through a token file) and `args`; the
/// transcript has the server's address, version and the token's TTL made
/// stable for snapshots. Neither the token nor the value is in it.
fn doctor(v: &TestVault, token: &SecretString, args: &[&str]) -> (Option<i32>, String) {
    let file = v
        .write_file("doctor-token", token.expose_secret())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let head = ["doctor"];
    let argv: Vec<&str> = head.iter().chain(args).copied().collect();
    let out = cli_env(
        &argv,
        "",
        &[
            ("VAULT_ADDR", v.addr()),
            ("VAULT_AUTH_METHOD", "token"),
            ("VAULT_TOKEN_FILE", &file),
            ("VAULT_TOKEN", ""),
        ],
    );
    let text = transcript(&out);
    assert!(
        !text.contains(token.expose_secret()),
        "the token is in the output"
    );
    assert!(!text.contains(TOKEN_VALUE), "the value is in the output");
    assert!(
        !text.contains("[REDACTED"),
        "the output scrub mangled a line: {text}"
    );
    let stable = [
        (r#"version \d+\.\d+\.\d+[^,\s"]*"#, "version X.Y.Z"),
        (r"TTL \d+m\d+s", "TTL 10m"),
        (r"http://127\.0\.0\.1:\d+", "http://VAULT"),
    ]
    .iter()
    .fold(text.replace(v.addr(), "http://VAULT"), |t, (re, to)| {
        regex::Regex::new(re)
            .unwrap()
            .replace_all(&t, *to)
            .into_owned()
    });
    (out.status.code(), stable)
}

async fn token(v: &TestVault, policy: &str, hcl: &str) -> SecretString {
    v.admin().put_policy(policy, hcl).await.unwrap();
    v.admin()
        .create_token(&[policy], "10m", true)
        .await
        .unwrap()
}

async fn write(v: &TestVault, path: &str, doc: serde_json::Value) {
    v.admin().kv_write("kv", path, doc).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_set_up_right_passes_every_check() {
    let v = vault().await;
    write(
        &v,
        "moonmind/repos/Acme/Api",
        json!({"github_token": TOKEN_VALUE, "host": "github.com"}),
    )
    .await;
    let t = token(
        &v,
        "worker",
        "path \"kv/data/moonmind/repos/Acme/Api\" { capabilities = [\"read\"] }\n\
         path \"sys/audit\" { capabilities = [\"read\", \"sudo\"] }\n",
    )
    .await;
    let args = [
        API,
        "--repository",
        "Acme/Api",
        "--scope",
        "moonmind/repos/{repository}",
    ];
    let (code, text) = doctor(&v, &t, &args);
    assert_eq!(code, Some(0), "{text}");
    insta::assert_snapshot!("doctor_pass", text);
    // The read carried doctor's job id, so the audit log tells it apart.
    assert!(v.audit_entries().unwrap().iter().any(|e| {
        e.path() == "kv/data/moonmind/repos/Acme/Api"
            && e.header("X-Vaultref-Job-Id") == Some("vaultref-doctor")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misconfiguration_fails_its_check_and_names_the_fix() {
    let v = vault().await;
    write(
        &v,
        "moonmind/repos/Acme/Api",
        json!({"github_token": TOKEN_VALUE}),
    )
    .await;
    for n in 1..=2 {
        write(
            &v,
            "moonmind/repos/Acme/Old",
            json!({"github_token": format!("{TOKEN_VALUE}{n}")}),
        )
        .await;
        write(
            &v,
            "moonmind/repos/Acme/Gone",
            json!({"github_token": format!("{TOKEN_VALUE}{n}")}),
        )
        .await;
    }
    v.admin()
        .kv_delete_versions("kv", "moonmind/repos/Acme/Old", &[1])
        .await
        .unwrap();
    v.admin()
        .kv_destroy_versions("kv", "moonmind/repos/Acme/Gone", &[1])
        .await
        .unwrap();
    let t = token(
        &v,
        "partial",
        "path \"kv/data/moonmind/repos/Acme/*\" { capabilities = [\"read\"] }\n",
    )
    .await;
    let args = [
        API,
        "vault://kv/moonmind/repos/Acme/Missing#github_token",
        "vault://kv/moonmind/repos/Acme/Api#password",
        "vault://kv/moonmind/repos/Acme/Old?version=1#github_token",
        "vault://kv/moonmind/repos/Acme/Gone?version=1#github_token",
        "vault://kv/moonmind/workers/executor-01/github#token",
    ];
    let (code, text) = doctor(&v, &t, &args);
    assert_eq!(code, Some(1), "{text}");
    insta::assert_snapshot!("doctor_misconfigured", text);

    // The same verdicts as JSON, with the codes.
    let (code, json_text) = doctor(&v, &t, &[&args[..], &["--format", "json"]].concat());
    assert_eq!(code, Some(1));
    let line = json_text.lines().find(|l| l.starts_with('{')).unwrap();
    let report: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(report["ok"], false);
    let failed: Vec<(String, String)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .map(|c| {
            (
                c["check"].as_str().unwrap().into(),
                c["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        failed,
        [
            pair("ref.secret", "secret_not_found"),
            pair("ref.secret", "secret_field_missing"),
            pair("ref.secret", "secret_version_deleted"),
            pair("ref.secret", "secret_version_destroyed"),
            pair("ref.policy", "vault_permission_denied"),
            pair("ref.secret", "vault_permission_denied"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_token_and_a_ref_outside_the_scopes_fail_before_any_read() {
    let v = vault().await;
    let t = token(
        &v,
        "worker",
        "path \"kv/data/moonmind/repos/*\" { capabilities = [\"read\"] }\n",
    )
    .await;
    v.admin().revoke_token(&t).await.unwrap();
    let args = [
        API,
        "vault://kv/moonmind/repos/Other/Repo#github_token",
        "--repository",
        "Acme/Api",
        "--scope",
        "moonmind/repos/{repository}",
    ];
    let (code, text) = doctor(&v, &t, &args);
    assert_eq!(code, Some(1), "{text}");
    insta::assert_snapshot!("doctor_dead_token", text);
    assert!(
        !v.audit_entries()
            .unwrap()
            .iter()
            .any(|e| e.path().starts_with("kv/data/moonmind/repos/Other")),
        "a ref outside the scopes was read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_server_fails_the_server_check() {
    let v = TestVault::persistent()
        .await
        .unwrap_or_else(|e| panic!("cannot start OpenBao: {e}"));
    let t = token(
        &v,
        "worker",
        "path \"kv/data/moonmind/repos/*\" { capabilities = [\"read\"] }\n",
    )
    .await;
    v.admin().seal().await.unwrap();
    let (code, text) = doctor(&v, &t, &[API]);
    assert_eq!(code, Some(1), "{text}");
    insta::assert_snapshot!("doctor_sealed", text);
}

#[test]
fn without_vault_settings_it_is_a_usage_error() {
    let out = cli_env(&["doctor", API], "", &[("VAULT_ADDR", "")]);
    assert_eq!(out.status.code(), Some(2), "{}", transcript(&out));
    insta::assert_snapshot!("doctor_no_settings", transcript(&out));
}
