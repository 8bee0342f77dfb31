//! A Vault address that answers like an adversary (`spec/resolver.md` S6,
//! README "Threat model"): redirects, huge and endless bodies, bad JSON, and
//! an environment that asks for TLS checks to be skipped. Every test is a
//! finding against an earlier vaultref: a `307` on login re-POSTed the AppRole
//! credentials to another port, a `307` on revoke-self sent it the live token,
//! and `VAULT_SKIP_VERIFY=1` in the environment turned certificate checks off.
//!
//! The hostile server (`vaultref::testing::hostile`) is the one stand-in here,
//! because the scenario is the hostility itself.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use vaultref::testing::hostile::{Answer, Catcher, HostileVault};
use vaultref::vault::{Resolver, VaultConfig};
use vaultref::{ErrorCode, SecretRef};

mod common;

const ROLE_ID: &str = "role-FAKE-0000-1111-2222";
const SECRET_ID: &str = "secret-FAKE-3333-4444-5555";
const TOKEN: &str = "s.FAKEFAKEFAKEFAKEFAKEFAKE";
const VALUE: &str = "FAKE-value-that-must-stay-home";

fn login_ok() -> Answer {
    Answer::Json(
        200,
        format!(
            r#"{{"auth":{{"client_token":"{TOKEN}","lease_duration":3600,"renewable":true}}}}"#
        ),
    )
}

fn kv_ok() -> Answer {
    Answer::Json(
        200,
        format!(r#"{{"data":{{"data":{{"token":"{VALUE}"}},"metadata":{{"version":1}}}}}}"#),
    )
}

/// AppRole settings against `addr`, credentials in `dir`.
fn approle_config(addr: &str, dir: &std::path::Path, timeout_ms: u64) -> VaultConfig {
    let role = dir.join("role_id");
    let secret = dir.join("secret_id");
    std::fs::write(&role, ROLE_ID).unwrap();
    std::fs::write(&secret, SECRET_ID).unwrap();
    VaultConfig::from_json(
        &serde_json::json!({
            "addr": addr,
            "auth": {"method": "approle", "mount": "approle",
                     "role_id_file": role, "secret_id_file": secret},
            "timeout_ms": timeout_ms,
        })
        .to_string(),
    )
    .unwrap()
}

fn app_ref() -> SecretRef {
    SecretRef::parse("vault://kv/app#token").unwrap()
}

/// Nothing reached the catcher: no connection, not a byte.
fn assert_caught_nothing(c: &Catcher) {
    let got = c.received();
    for needle in [ROLE_ID, SECRET_ID, TOKEN] {
        assert!(
            !String::from_utf8_lossy(&got).contains(needle),
            "a credential reached the redirect target"
        );
    }
    assert_eq!(c.connections(), 0, "the client followed a redirect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_login_sends_no_credential_elsewhere() {
    let catcher = Catcher::start().unwrap();
    let vault = HostileVault::start(&[(
        "auth/approle/login",
        Answer::Redirect(format!("{}/v1/auth/approle/login", catcher.url())),
    )])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let res = Resolver::new(approle_config(&vault.url(), dir.path(), 2000))
        .await
        .unwrap();
    let e = res.resolve(&app_ref(), "job-redirect").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultUnavailable, "{e}");
    assert!(e.message().contains("redirect"), "{e}");
    assert!(!e.message().contains(SECRET_ID) && !e.message().contains(ROLE_ID));
    res.shutdown().await;
    assert_caught_nothing(&catcher);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_revoke_or_read_sends_no_token_elsewhere() {
    let catcher = Catcher::start().unwrap();
    let elsewhere = |p: &str| Answer::Redirect(format!("{}/v1/{p}", catcher.url()));
    let vault = HostileVault::start(&[
        ("auth/approle/login", login_ok()),
        ("kv/data/app", kv_ok()),
        ("kv/data/moved", elsewhere("kv/data/moved")),
        (
            "auth/token/revoke-self",
            elsewhere("auth/token/revoke-self"),
        ),
        ("auth/token/renew-self", elsewhere("auth/token/renew-self")),
    ])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let res = Resolver::new(approle_config(&vault.url(), dir.path(), 2000))
        .await
        .unwrap();
    let v = res.resolve(&app_ref(), "job-ok").await.unwrap();
    assert_eq!(v.expose_secret(), VALUE);
    let moved = SecretRef::parse("vault://kv/moved#token").unwrap();
    let e = res.resolve(&moved, "job-moved").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultUnavailable, "{e}");
    res.shutdown().await; // revoke-self, answered with a redirect
    assert!(
        vault
            .requests()
            .iter()
            .any(|(_, p)| p == "auth/token/revoke-self"),
        "the resolver did not try to revoke its token"
    );
    assert_caught_nothing(&catcher);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_endless_and_malformed_answers_are_unavailable_in_time() {
    let vault = HostileVault::start(&[
        ("auth/approle/login", login_ok()),
        ("kv/data/huge", Answer::Huge(64 << 20)),
        ("kv/data/drip", Answer::Drip(Duration::from_millis(100))),
        ("kv/data/bad", Answer::Json(200, "{not json".into())),
    ])
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let res = Resolver::new(approle_config(&vault.url(), dir.path(), 1500))
        .await
        .unwrap();
    for path in ["huge", "drip", "bad"] {
        let r = SecretRef::parse(&format!("vault://kv/{path}#token")).unwrap();
        let t = Instant::now();
        let e = res.resolve(&r, "job-hostile").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::VaultUnavailable, "{path}: {e}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{path}: took {:?}",
            t.elapsed()
        );
    }
    res.shutdown().await;
}

/// The variables other Vault clients read to weaken or redirect TLS are
/// refused before any connection, whether the settings come from the
/// environment or from `VAULTREF_CONFIG`.
#[test]
fn tls_variables_from_the_environment_are_refused_before_any_connection() {
    let catcher = Catcher::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let addr = format!("https://127.0.0.1:{}", catcher.port());
    let config = dir.path().join("vault.json");
    std::fs::write(
        &config,
        serde_json::json!({"addr": addr, "auth": {"method": "token", "token_file": token}})
            .to_string(),
    )
    .unwrap();
    let key = dir.path().join("fp.key");
    std::fs::write(&key, "00112233445566778899aabbccddeeff").unwrap();
    let key_s = key.display().to_string();
    let resolve = [
        "resolve",
        "--fingerprint-key-file",
        key_s.as_str(),
        "vault://kv/app#token",
    ];
    let token_s = token.display().to_string();
    let config_s = config.display().to_string();
    for (name, value) in [
        ("VAULT_SKIP_VERIFY", "1"),
        ("VAULT_SKIP_VERIFY", "true"),
        ("VAULT_CAPATH", "/etc/ssl/certs"),
        ("VAULT_CLIENT_CERT", "/tmp/c.pem"),
        ("VAULT_CLIENT_KEY", "/tmp/k.pem"),
        ("VAULT_TLS_SERVER_NAME", "vault.example"),
    ] {
        for settings in [
            vec![
                ("VAULT_ADDR", addr.as_str()),
                ("VAULT_AUTH_METHOD", "token"),
                ("VAULT_TOKEN_FILE", token_s.as_str()),
                ("VAULTREF_CONFIG", ""),
            ],
            vec![("VAULTREF_CONFIG", config_s.as_str()), ("VAULT_ADDR", "")],
        ] {
            let mut env = settings.clone();
            env.push((name, value));
            let out = common::cli_env(&resolve, "", &env);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name}={value}: {err}");
            assert!(
                err.contains("config_invalid") && err.contains(name),
                "{err}"
            );
        }
    }
    // `VAULT_SKIP_VERIFY=false` asks for nothing and is not refused (the
    // request then fails at the catcher, which speaks no TLS).
    let out = common::cli_env(
        &resolve,
        "",
        &[
            ("VAULTREF_CONFIG", config_s.as_str()),
            ("VAULT_ADDR", ""),
            ("VAULT_SKIP_VERIFY", "false"),
        ],
    );
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !String::from_utf8_lossy(&catcher.received()).contains(TOKEN),
        "the token crossed a connection that was never TLS-verified"
    );
}
