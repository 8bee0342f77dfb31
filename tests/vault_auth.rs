//! Each auth method against a real OpenBao: `token` (file), `approle`,
//! `jwt` (a JWT signed here with a fresh Ed25519 key, validated by OpenBao's
//! jwt auth with the public key), `kubernetes` (OpenBao's kubernetes auth
//! calling a TokenReview endpoint this test serves: the only stand-in, since
//! there is no Kubernetes API server here), and the refused/allowed
//! `VAULT_TOKEN`.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vaultref::testing::TestVault;
use vaultref::vault::{AuthConfig, Resolver, VaultConfig};
use vaultref::{ErrorCode, SecretRef};

mod common;
use common::vault;

const VALUE: &str = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEAUTH";

async fn seed(v: &TestVault) -> SecretRef {
    common::seed(v, "auth", "s", VALUE).await
}

/// A token with the `reader` policy, for an hour.
async fn reader_token(v: &TestVault) -> secrecy::SecretString {
    v.admin()
        .create_token(&["reader"], "1h", true)
        .await
        .unwrap()
}

async fn resolves(cfg: VaultConfig, r: &SecretRef) {
    let res = Resolver::new(cfg).await.unwrap();
    let v = res
        .resolve(r, "job-auth")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.expose_secret(), VALUE);
}

async fn refused(cfg: VaultConfig, r: &SecretRef) {
    let res = Resolver::new(cfg).await.unwrap();
    let e = res.resolve(r, "job-auth").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultAuthFailed, "{e}");
}

/// A self-signed certificate (public; its key was thrown away). OpenBao
/// requires a CA with `disable_local_ca_jwt`; the TokenReview endpoint is
/// plain HTTP, so it is never used.
const UNUSED_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBWzCCAQ2gAwIBAgIUQlRGSko44Ra4a+kQfAHlW5+iI8QwBQYDK2VwMCIxIDAe\nBgNVBAMMF3ZhdWx0cmVmLXRlc3QtdW51c2VkLWNhMCAXDTI2MTEyODE5MDI0MloY\nDzIxMjYxMTA0MTkwMjQyWjAiMSAwHgYDVQQDDBd2YXVsdHJlZi10ZXN0LXVudXNl\nZC1jYTAqMAUGAytlcAMhAEBMwTubHcpWdhpolrnISWLGjNFMvGsIAJBhRh7qcEQR\no1MwUTAdBgNVHQ4EFgQUd13ECpQEBPeN2GENjBnNCV2qZcQwHwYDVR0jBBgwFoAU\nd13ECpQEBPeN2GENjBnNCV2qZcQwDwYDVR0TAQH/BAUwAwEB/zAFBgMrZXADQQBA\nH3xlYUAVk4LHzlI1mqgUwMHkzvbpjlaO8B3NAFlLIo+zFnwS9TldnteSBf2xRteq\n+djDydYWrCDg930iTk8O\n-----END CERTIFICATE-----\n";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh Ed25519 key: (PKCS#8 DER private key, SPKI PEM public key).
fn ed25519() -> (Vec<u8>, String) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    // SubjectPublicKeyInfo for Ed25519 is a fixed 12-byte prefix + the key.
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(pair.public_key().as_ref());
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n");
    (pkcs8.as_ref().to_vec(), pem)
}

fn sign(private_der: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        claims,
        &EncodingKey::from_ed_der(private_der),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_file() {
    let v = vault().await;
    let r = seed(&v).await;
    let token = reader_token(&v).await;
    resolves(v.token_file_config("sink", &token).unwrap(), &r).await;
    // A file that holds no token.
    let path = v.write_file("garbage", "not a token\u{7}").unwrap();
    refused(
        VaultConfig::new(v.addr(), AuthConfig::TokenFile { path }).unwrap(),
        &r,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle() {
    let v = vault().await;
    let r = seed(&v).await;
    resolves(
        v.approle_config("w1", &["reader"], "1h", "2h")
            .await
            .unwrap(),
        &r,
    )
    .await;
    // Wrong secret id: AppRole answers 400 "invalid role or secret ID".
    let cfg = v
        .approle_config("w2", &["reader"], "1h", "2h")
        .await
        .unwrap();
    v.write_file("w2.secret_id", "11111111-2222-3333-4444-555555555555")
        .unwrap();
    let res = Resolver::new(cfg).await.unwrap();
    let e = res.login().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultAuthFailed);
    assert!(!e.message().contains("11111111"), "{e}");
    // At least this login failed (the background task may have tried too).
    assert!(
        res.metrics_handle()
            .logins(Some(ErrorCode::VaultAuthFailed))
            >= 1
    );
    assert_eq!(res.metrics_handle().logins(None), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_signed_locally() {
    let v = vault().await;
    let r = seed(&v).await;
    let (private, public_pem) = ed25519();
    v.admin().ensure_auth("jwt", "jwt").await.unwrap();
    v.admin()
        .call(
            "POST",
            "auth/jwt/config",
            Some(json!({"jwt_validation_pubkeys": [public_pem], "bound_issuer": "vaultref-tests"})),
        )
        .await
        .unwrap();
    v.admin()
        .call(
            "POST",
            "auth/jwt/role/worker",
            Some(json!({
                "role_type": "jwt",
                "user_claim": "sub",
                "bound_audiences": ["vault"],
                "bound_subject": "worker-01",
                "token_policies": ["reader"],
                "token_ttl": "1h",
            })),
        )
        .await
        .unwrap();
    let claims = json!({
        "iss": "vaultref-tests", "sub": "worker-01", "aud": "vault",
        "iat": now(), "nbf": now() - 5, "exp": now() + 600,
    });
    let jwt_file = v.write_file("jwt", &sign(&private, &claims)).unwrap();
    let cfg = VaultConfig::new(
        v.addr(),
        AuthConfig::Jwt {
            mount: "jwt".into(),
            role: "worker".into(),
            jwt_file: jwt_file.clone(),
        },
    )
    .unwrap();
    resolves(cfg.clone(), &r).await;

    // Signed by another key: refused.
    let (other, _) = ed25519();
    v.write_file("jwt", &sign(&other, &claims)).unwrap();
    refused(cfg.clone(), &r).await;
    // Right key, wrong subject: refused.
    let mut wrong = claims.clone();
    wrong["sub"] = json!("intruder");
    v.write_file("jwt", &sign(&private, &wrong)).unwrap();
    refused(cfg, &r).await;
}

/// Serves `POST /apis/authentication.k8s.io/v1/tokenreviews`, answering
/// "authenticated" only for `good_token`. Returns the base URL.
async fn token_review_server(good_token: String) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let good = good_token.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then Content-Length bytes of body.
                let (head_end, length) = loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                while buf.len() < head_end + length {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let review: Value = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
                let ok = review["spec"]["token"].as_str() == Some(good.as_str());
                let status = if ok {
                    json!({"authenticated": true, "user": {
                        "username": "system:serviceaccount:ci:vaultref",
                        "uid": "4a6f1c2e-0000-4000-8000-000000000001",
                        "groups": ["system:serviceaccounts", "system:serviceaccounts:ci"]}})
                } else {
                    json!({"authenticated": false, "error": "invalid token"})
                };
                let body = json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                                  "status": status})
                .to_string();
                let resp = format!(
                    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (base, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_with_a_served_token_review() {
    let v = vault().await;
    let r = seed(&v).await;
    // A service-account token as the kubelet would mount it: ES256 (OpenBao
    // accepts only the algorithms Kubernetes uses), signed with a throwaway
    // key, since OpenBao leaves verification to the TokenReview.
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let key = EncodingKey::from_ec_der(pkcs8.as_ref());
    let sign = |claims: &Value| {
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &key).unwrap()
    };
    let claims = json!({
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:ci:vaultref",
        "kubernetes.io/serviceaccount/namespace": "ci",
        "kubernetes.io/serviceaccount/service-account.name": "vaultref",
        "kubernetes.io/serviceaccount/service-account.uid": "4a6f1c2e-0000-4000-8000-000000000001",
        "iat": now() - 5, "nbf": now() - 5, "exp": now() + 600,
    });
    let sa_token = sign(&claims);
    let (k8s, server) = token_review_server(sa_token.clone()).await;
    v.admin()
        .ensure_auth("kubernetes", "kubernetes")
        .await
        .unwrap();
    v.admin()
        .call(
            "POST",
            "auth/kubernetes/config",
            Some(json!({"kubernetes_host": k8s, "disable_local_ca_jwt": true,
               "kubernetes_ca_cert": UNUSED_CA})),
        )
        .await
        .unwrap();
    v.admin()
        .call(
            "POST",
            "auth/kubernetes/role/worker",
            Some(json!({
                "bound_service_account_names": ["vaultref"],
                "bound_service_account_namespaces": ["ci"],
                "token_policies": ["reader"],
                "token_ttl": "1h",
            })),
        )
        .await
        .unwrap();
    let jwt_file = v.write_file("sa-token", &sa_token).unwrap();
    let cfg = VaultConfig::new(
        v.addr(),
        AuthConfig::Kubernetes {
            mount: "kubernetes".into(),
            role: "worker".into(),
            jwt_file,
        },
    )
    .unwrap();
    resolves(cfg.clone(), &r).await;

    // A token the TokenReview does not vouch for: refused.
    let mut other_claims = claims.clone();
    other_claims["exp"] = json!(now() + 601);
    let forged = sign(&other_claims);
    v.write_file("sa-token", &forged).unwrap();
    refused(cfg, &r).await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_token_env_only_with_opt_in() {
    let v = vault().await;
    let r = seed(&v).await;
    let token = reader_token(&v).await;
    let addr = v.addr().to_string();
    let tok = token.expose_secret().to_string();
    let lookup = |allow: bool| {
        let (addr, tok) = (addr.clone(), tok.clone());
        move |k: &str| match k {
            "VAULT_ADDR" => Some(addr.clone()),
            "VAULT_TOKEN" => Some(tok.clone()),
            "VAULTREF_ALLOW_ENV_TOKEN" if allow => Some("1".into()),
            _ => None,
        }
    };
    let e = VaultConfig::from_lookup(lookup(false)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ConfigInvalid);
    assert!(!e.message().contains(&tok));
    let cfg = VaultConfig::from_lookup(lookup(true)).unwrap().unwrap();
    resolves(cfg, &r).await;
}
