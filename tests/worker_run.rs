//! `vaultref run --env NAME=REF -- COMMAND`, against a real OpenBao: the
//! value reaches the command's environment, never its argv, and whatever the
//! command prints of it comes out redacted, on stdout and stderr alike.

use std::process::Command;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use vaultref::testing::vault::TestVault;

const VALUE: &str = "run-credential-FAKE-not-a-known-shape-0001";

async fn vault_with_secret() -> (TestVault, std::path::PathBuf) {
    let vault = TestVault::dev()
        .await
        .expect("OpenBao test server (see vaultref::testing::vault for how to get `bao`)");
    vault
        .admin()
        .kv_write("kv", "moonmind/tools/ci", json!({ "api_key": VALUE }))
        .await
        .unwrap();
    let token: SecretString = vault.root_token().clone();
    let token_file = vault
        .write_file("run-token", token.expose_secret())
        .unwrap();
    (vault, token_file)
}

fn vaultref(vault: &TestVault, token_file: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultref"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("VAULT_ADDR", vault.addr())
        .env("VAULT_AUTH_METHOD", "token")
        .env("VAULT_TOKEN_FILE", token_file);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_puts_the_value_in_the_environment_and_redacts_output() {
    let (vault, token_file) = vault_with_secret().await;
    let out = vaultref(&vault, &token_file)
        .args([
            "run",
            "--env",
            "API_KEY=vault://kv/moonmind/tools/ci#api_key",
            "--",
            "sh",
            "-c",
            // The length proves the variable holds the value; the echoes
            // prove the output is masked; VAULT_ADDR must not be passed on.
            r#"printf '%s' "$API_KEY" | wc -c; echo "out $API_KEY"; echo "err $API_KEY" >&2; echo "addr=${VAULT_ADDR:-unset}"; exit 7"#,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(7),
        "exit status passes through; stderr: {stderr}"
    );
    assert!(stdout.contains(&VALUE.len().to_string()), "{stdout}");
    assert!(stdout.contains("out [REDACTED]"), "{stdout}");
    assert!(stderr.contains("err [REDACTED]"), "{stderr}");
    assert!(stdout.contains("addr=unset"), "{stdout}");
    assert!(!stdout.contains(VALUE) && !stderr.contains(VALUE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_fails_before_running_anything_when_a_ref_fails() {
    let (vault, token_file) = vault_with_secret().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let out = vaultref(&vault, &token_file)
        .args([
            "run",
            "--env",
            "API_KEY=vault://kv/moonmind/tools/ci#no_such_field",
            "--",
            "touch",
        ])
        .arg(&marker)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("secret_field_missing"), "{stderr}");
    assert!(!marker.exists(), "the command ran although a ref failed");

    let out = vaultref(&vault, &token_file)
        .args(["run", "--env", "1BAD=vault://kv/a#b", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config_invalid"));
}
