//! OpenBao over HTTPS (dev mode's `-dev-tls`: a CA and a certificate for
//! 127.0.0.1 made at each start): the resolver trusts exactly the CA it is
//! given (`VAULT_CACERT` / `ca_cert`), and refuses a server whose certificate
//! comes from any other CA before sending anything (`spec/resolver.md` S6).

use secrecy::ExposeSecret;
use serde_json::json;
use vaultref::testing::TestVault;
use vaultref::vault::{Resolver, VaultConfig};
use vaultref::{ErrorCode, SecretRef};

mod common;

const VALUE: &str = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKETLS1";

async fn tls_vault() -> TestVault {
    let v = TestVault::dev_tls()
        .await
        .unwrap_or_else(|e| panic!("cannot start OpenBao with TLS: {e}"));
    v.admin()
        .put_read_policy("reader", "kv", &["tls/*"])
        .await
        .unwrap();
    v.admin()
        .kv_write("kv", "tls/s", json!({"token": VALUE}))
        .await
        .unwrap();
    v
}

fn token_config(v: &TestVault, ca: Option<std::path::PathBuf>) -> VaultConfig {
    let token = v.admin().root_token().clone();
    let mut cfg = v.token_file_config("token", &token).unwrap();
    cfg.ca_cert = ca;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_over_https_with_the_servers_ca_and_refuses_any_other() {
    let v = tls_vault().await;
    assert!(v.addr().starts_with("https://"), "{}", v.addr());
    let r = SecretRef::parse("vault://kv/tls/s#token").unwrap();

    let res = Resolver::new(token_config(&v, v.ca_cert())).await.unwrap();
    let value = res.resolve(&r, "job-tls").await.unwrap();
    assert_eq!(value.expose_secret(), VALUE);
    res.shutdown().await;

    // The platform roots do not know this CA.
    let res = Resolver::new(token_config(&v, None)).await.unwrap();
    let e = res.resolve(&r, "job-untrusted").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultUnavailable, "{e}");
    res.shutdown().await;

    // Another server's CA is not this server's.
    let other = TestVault::dev_tls().await.unwrap();
    let res = Resolver::new(token_config(&v, other.ca_cert()))
        .await
        .unwrap();
    let e = res.resolve(&r, "job-other-ca").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultUnavailable, "{e}");
    res.shutdown().await;
    // Nothing reached the server as a request: the handshake failed first.
    assert!(
        !v.audit_entries()
            .unwrap()
            .iter()
            .any(|e| e.header("X-Vaultref-Job-Id") == Some("job-other-ca")
                || e.header("X-Vaultref-Job-Id") == Some("job-untrusted")),
        "a request crossed an unverified connection"
    );
}

/// `VAULT_CACERT` from the environment, through the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_trusts_vault_cacert() {
    let v = tls_vault().await;
    let token = v
        .write_file("cli-token", v.admin().root_token().expose_secret())
        .unwrap();
    let key = v
        .write_file("fp.key", "00112233445566778899aabbccddeeff")
        .unwrap();
    let ca = v.ca_cert().unwrap();
    let (token, key, ca) = (
        token.display().to_string(),
        key.display().to_string(),
        ca.display().to_string(),
    );
    let run = |with_ca: bool| {
        let mut env = vec![
            ("VAULT_ADDR", v.addr()),
            ("VAULT_AUTH_METHOD", "token"),
            ("VAULT_TOKEN_FILE", token.as_str()),
            ("VAULTREF_CONFIG", ""),
        ];
        if with_ca {
            env.push(("VAULT_CACERT", ca.as_str()));
        }
        common::cli_env(
            &[
                "resolve",
                "--fingerprint-key-file",
                &key,
                "vault://kv/tls/s#token",
            ],
            "",
            &env,
        )
    };
    let ok = run(true);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("hmac-sha256:"));
    let refused = run(false);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("vault_unavailable"));
}
