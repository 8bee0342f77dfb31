//! `vaultref resolve` end to end: a real OpenBao, the real binary, settings
//! from the environment only. The value is never on stdout or stderr; the
//! fingerprint matches the library's.

use std::path::Path;
use std::process::{Command, Output};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use vaultref::testing::TestVault;
use vaultref::vault::FingerprintKey;

const VALUE: &str = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKECLI1";
const KEY_HEX: &str = "00112233445566778899aabbccddeeff";

fn vaultref(envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultref"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("resolve")
        .args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run vaultref")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn no_value(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !text(stream).contains(VALUE),
            "the value leaked: {}",
            text(stream)
        );
        assert!(
            !text(stream).contains("FAKEFAKE"),
            "the value leaked: {}",
            text(stream)
        );
    }
}

async fn setup() -> (TestVault, Vec<(String, String)>, String) {
    let v = TestVault::dev()
        .await
        .unwrap_or_else(|e| panic!("cannot start OpenBao: {e}"));
    v.admin()
        .put_read_policy("reader", "kv", &["cli/*"])
        .await
        .unwrap();
    v.admin()
        .kv_write("kv", "cli/s", json!({"token": VALUE}))
        .await
        .unwrap();
    let admin = v.admin();
    admin.ensure_auth("approle", "approle").await.unwrap();
    let role_id = admin
        .approle_role("approle", "cli", &["reader"], "1h", "2h")
        .await
        .unwrap();
    let secret_id = admin.approle_secret_id("approle", "cli").await.unwrap();
    let role_file = v.write_file("role_id", &role_id).unwrap();
    let secret_file = v
        .write_file("secret_id", secret_id.expose_secret())
        .unwrap();
    let key_file = v.write_file("fp.key", &format!("{KEY_HEX}\n")).unwrap();
    let env = vec![
        ("VAULT_ADDR".to_string(), v.addr().to_string()),
        ("VAULT_AUTH_METHOD".into(), "approle".into()),
        ("VAULT_ROLE_ID_FILE".into(), role_file.display().to_string()),
        (
            "VAULT_SECRET_ID_FILE".into(),
            secret_file.display().to_string(),
        ),
    ];
    (v, env, key_file.display().to_string())
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_the_fingerprint_never_the_value() {
    let (v, env, key) = setup().await;
    let expected = FingerprintKey::from_hex(KEY_HEX)
        .unwrap()
        .fingerprint(&SecretString::from(VALUE));

    let out = vaultref(
        &as_refs(&env),
        &[
            "vault://kv/cli/s#token",
            "--fingerprint-key-file",
            &key,
            "--job-id",
            "job-cli-1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{expected}\n"));
    no_value(&out);

    let out = vaultref(
        &as_refs(&env),
        &[
            "vault://kv/cli/s#token",
            "--fingerprint-key-file",
            &key,
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outcome"], "resolved");
    assert_eq!(doc["fingerprint"], expected.as_str());
    no_value(&out);

    // The job id reached the audit log; the CLI revoked its token on exit.
    let entries = v.audit_entries().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["request"]["headers"]["x-vaultref-job-id"] == json!(["job-cli-1"]))
    );
    // Only a revoke-self after the CLI's last login counts: the test
    // support revokes a token of its own while setting up.
    let paths: Vec<&str> = entries
        .iter()
        .filter(|e| e["type"] == "request")
        .filter_map(|e| e["request"]["path"].as_str())
        .collect();
    let login = paths
        .iter()
        .rposition(|p| *p == "auth/approle/login")
        .expect("the CLI never logged in");
    assert!(
        paths[login..].contains(&"auth/token/revoke-self"),
        "{paths:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolution_errors_exit_1_and_settings_errors_exit_2() {
    let (_v, env, key) = setup().await;
    let env = as_refs(&env);

    let out = vaultref(
        &env,
        &["vault://kv/cli/none#token", "--fingerprint-key-file", &key],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error[secret_not_found]: "),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    let out = vaultref(
        &env,
        &[
            "vault://kv/cli/s#nope",
            "--fingerprint-key-file",
            &key,
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["code"], "secret_field_missing");
    no_value(&out);

    let out = vaultref(
        &env,
        &["vault://kv/../s#token", "--fingerprint-key-file", &key],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("error[ref_traversal]"));

    // No Vault settings at all.
    let out = vaultref(
        &[],
        &["vault://kv/cli/s#token", "--fingerprint-key-file", &key],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error[vault_not_configured]"),
        "{}",
        text(&out.stderr)
    );

    // A raw VAULT_TOKEN without the opt-in.
    let mut with_token = env.clone();
    with_token.push(("VAULT_TOKEN", "s.FAKEFAKEFAKEFAKEFAKEFAKE"));
    let out = vaultref(
        &with_token,
        &["vault://kv/cli/s#token", "--fingerprint-key-file", &key],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error[config_invalid]"));
    no_value(&out);

    // A bad key file.
    let bad_key = Path::new(&key).with_file_name("short.key");
    std::fs::write(&bad_key, "abcd").unwrap();
    let out = vaultref(
        &env,
        &[
            "vault://kv/cli/s#token",
            "--fingerprint-key-file",
            bad_key.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error[config_invalid]"));

    // Usage error (clap).
    let out = vaultref(&env, &["vault://kv/cli/s#token"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A token pasted where a ref belongs is never echoed back, in either format
/// (`vault_not_configured` quotes the ref; no Vault is needed to get there).
#[test]
fn a_token_given_as_the_ref_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, KEY_HEX).unwrap();
    for format in ["text", "json"] {
        let out = vaultref(
            &[],
            &[
                VALUE,
                "--fingerprint-key-file",
                key.to_str().unwrap(),
                "--format",
                format,
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{format}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("vault_not_configured")
                || text(&out.stderr).contains("vault_not_configured"),
            "{format}: {} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        no_value(&out);
    }
}

/// `vaultref run --env` with a token instead of NAME=REF does not print it.
#[test]
fn a_malformed_run_env_is_not_echoed() {
    let out = Command::new(env!("CARGO_BIN_EXE_vaultref"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["run", "--env", VALUE, "--", "true"])
        .output()
        .expect("run vaultref");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("config_invalid"),
        "{}",
        text(&out.stderr)
    );
    no_value(&out);
}

/// `vaultref run` revokes its login token even when a ref fails (T6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_revokes_its_token_when_a_ref_fails() {
    let (v, env, _key) = setup().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultref"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args([
            "run",
            "--env",
            "A=vault://kv/cli/s#token",
            "--env",
            "B=vault://kv/cli/missing#token",
            "--",
            "true",
        ]);
    let out = cmd.output().expect("run vaultref");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    no_value(&out);
    // Request paths in order (the test support's own setup revokes a token
    // too, so only a revoke-self after the CLI's login counts).
    let paths: Vec<String> = v
        .audit_entries()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "request")
        .filter_map(|e| e["request"]["path"].as_str().map(str::to_owned))
        .collect();
    let login = paths
        .iter()
        .rposition(|p| p == "auth/approle/login")
        .expect("the CLI never logged in");
    assert!(
        paths[login..].iter().any(|p| p == "auth/token/revoke-self"),
        "the login token was left unrevoked: {paths:?}"
    );
}
