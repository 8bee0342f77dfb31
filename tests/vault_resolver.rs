//! The resolver against a real OpenBao dev server: values, rotation, every
//! resolution error code, audit correlation, probe and metrics.
//!
//! Each test starts its own server (about 0.2 s), so tests run in parallel
//! without seeing each other's secrets, policies or roles. A test that cannot
//! get OpenBao fails with instructions (see `vaultref::testing::vault`).

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::json;
use vaultref::testing::TestVault;
use vaultref::vault::{AuthConfig, ResolveError, Resolver, VaultConfig};
use vaultref::{ErrorCode, ScopeContext, SecretRef};

mod common;
use common::vault;

const VALUE_1: &str = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0001";
const VALUE_2: &str = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0002";

fn r(s: &str) -> SecretRef {
    SecretRef::parse(s).unwrap()
}

/// An AppRole resolver allowed to read `kv/data/repos/*` and `kv/data/pinned/*`.
async fn resolver(v: &TestVault) -> Resolver {
    v.admin()
        .put_read_policy(
            "reader",
            "kv",
            &["repos/*", "repos/+/*", "pinned/*", "gone/*"],
        )
        .await
        .unwrap();
    let cfg = v
        .approle_config("worker", &["reader"], "1h", "2h")
        .await
        .unwrap();
    Resolver::new(cfg).await.unwrap()
}

fn assert_clean(e: &ResolveError, job: &str, secret_ref: &str) {
    assert!(
        e.message().contains(job),
        "message lacks the job id: {}",
        e.message()
    );
    assert!(
        e.message().contains(secret_ref),
        "message lacks the ref: {}",
        e.message()
    );
    for v in [VALUE_1, VALUE_2, "FAKEFAKE"] {
        assert!(
            !e.message().contains(v),
            "message leaks a value: {}",
            e.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_and_follows_rotation_between_jobs() {
    let v = vault().await;
    let res = resolver(&v).await;
    v.admin()
        .kv_write(
            "kv",
            "repos/Acme/Api",
            json!({"github_token": VALUE_1, "username": "x-access-token"}),
        )
        .await
        .unwrap();
    let latest = r("vault://kv/repos/Acme/Api#github_token");
    let job1 = res.resolve(&latest, "job-1").await.unwrap();
    assert_eq!(job1.expose_secret(), VALUE_1);

    // Rotate between two jobs: the next job gets the new value, same resolver.
    let version = v
        .admin()
        .kv_write("kv", "repos/Acme/Api", json!({"github_token": VALUE_2}))
        .await
        .unwrap();
    assert_eq!(version, 2);
    let job2 = res.resolve(&latest, "job-2").await.unwrap();
    assert_eq!(job2.expose_secret(), VALUE_2);

    // A pinned version does not follow rotation.
    let pinned = r("vault://kv/repos/Acme/Api?version=1#github_token");
    assert_eq!(
        res.resolve(&pinned, "job-3").await.unwrap().expose_secret(),
        VALUE_1
    );
    let pinned = r("vault://kv/repos/Acme/Api?version=1#username");
    assert_eq!(
        res.resolve(&pinned, "job-3").await.unwrap().expose_secret(),
        "x-access-token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_resolution_error_code() {
    let v = vault().await;
    let res = resolver(&v).await;
    v.admin()
        .kv_write(
            "kv",
            "repos/Acme/Api",
            json!({"github_token": VALUE_1, "count": 3}),
        )
        .await
        .unwrap();
    v.admin()
        .kv_write("kv", "gone/a", json!({"t": VALUE_1}))
        .await
        .unwrap();
    v.admin()
        .kv_write("kv", "gone/a", json!({"t": VALUE_2}))
        .await
        .unwrap();
    v.admin()
        .kv_delete_versions("kv", "gone/a", &[1])
        .await
        .unwrap();
    v.admin()
        .kv_destroy_versions("kv", "gone/a", &[2])
        .await
        .unwrap();
    v.admin()
        .kv_write("kv", "private/x", json!({"t": VALUE_1}))
        .await
        .unwrap();

    let cases = [
        (
            "vault://kv/repos/Acme/Nope#github_token",
            ErrorCode::SecretNotFound,
        ),
        (
            "vault://kv/repos/Acme/Api?version=7#github_token",
            ErrorCode::SecretNotFound,
        ),
        (
            "vault://kv/repos/Acme/Api#password",
            ErrorCode::SecretFieldMissing,
        ),
        (
            "vault://kv/repos/Acme/Api#count",
            ErrorCode::SecretFieldMissing,
        ),
        (
            "vault://kv/gone/a?version=1#t",
            ErrorCode::SecretVersionDeleted,
        ),
        (
            "vault://kv/gone/a?version=2#t",
            ErrorCode::SecretVersionDestroyed,
        ),
        // Latest is the destroyed version 2.
        ("vault://kv/gone/a#t", ErrorCode::SecretVersionDestroyed),
        ("vault://kv/private/x#t", ErrorCode::VaultPermissionDenied),
        ("vault://secret/private/x#t", ErrorCode::RefMountNotAllowed),
    ];
    for (i, (input, code)) in cases.iter().enumerate() {
        let job = format!("job-err-{i}");
        let e = res.resolve(&r(input), &job).await.unwrap_err();
        assert_eq!(e.code(), *code, "{input}: {e}");
        assert_clean(&e, &job, input);
    }
    // The same through resolve_str, which also applies syntax.
    let e = res
        .resolve_str("vault://kv/../x#t", &ScopeContext::default(), "job-s")
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::RefTraversal);
    // Not configured at all: the helper workers use.
    let e = ResolveError::not_configured("vault://kv/a#f", "job-nc");
    assert_eq!(e.code(), ErrorCode::VaultNotConfigured);
    assert!(e.message().contains("job-nc") && e.message().contains("vault://kv/a#f"));

    let m = res.metrics_handle();
    assert_eq!(m.resolutions(Some(ErrorCode::SecretNotFound)), 2);
    assert_eq!(m.resolutions(Some(ErrorCode::VaultPermissionDenied)), 1);
    assert_eq!(m.resolutions(Some(ErrorCode::RefMountNotAllowed)), 1);
    assert_eq!(m.resolutions(None), 0);
}

/// A policy denial must not be mistaken for a dead token: no re-login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_denied_does_not_log_in_again() {
    let v = vault().await;
    let res = resolver(&v).await;
    v.admin()
        .kv_write("kv", "private/y", json!({"t": VALUE_1}))
        .await
        .unwrap();
    for job in ["job-a", "job-b"] {
        let e = res
            .resolve(&r("vault://kv/private/y#t"), job)
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::VaultPermissionDenied);
    }
    assert_eq!(res.metrics_handle().logins(None), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_id_is_in_the_audit_log_and_no_request_carries_a_value() {
    let v = vault().await;
    let res = resolver(&v).await;
    v.admin()
        .kv_write("kv", "repos/Acme/Audit", json!({"github_token": VALUE_1}))
        .await
        .unwrap();
    let value = res
        .resolve(
            &r("vault://kv/repos/Acme/Audit#github_token"),
            "job-audit-42",
        )
        .await
        .unwrap();
    assert_eq!(value.expose_secret(), VALUE_1);

    let entries = v.audit_entries().unwrap();
    let with_job: Vec<_> = entries
        .iter()
        .filter(|e| e["request"]["headers"]["x-vaultref-job-id"] == json!(["job-audit-42"]))
        .collect();
    assert!(
        with_job
            .iter()
            .any(|e| e["type"] == "response" && e["request"]["path"] == "kv/data/repos/Acme/Audit"),
        "no audited response for the job's read among {} entries",
        entries.len()
    );
    // The test server's audit device logs raw (`testing::audit_config`), so
    // the response entry holds the value; what vaultref *sent* must not (the
    // test's own write of the value is the one write in the log).
    let requests: Vec<String> = entries
        .iter()
        .filter(|e| e.is_request() && !e.is_write())
        .map(|e| e["request"].to_string())
        .collect();
    assert!(requests.iter().any(|r| r.contains("job-audit-42")));
    assert!(
        !requests.iter().any(|r| r.contains(VALUE_1)),
        "a request vaultref sent holds the value"
    );
    assert!(
        std::fs::read_to_string(v.audit_log())
            .unwrap()
            .contains(VALUE_1),
        "the raw audit log should hold the value in its response: is it still raw?"
    );
}

/// Syntax and policy are checked before any request (protocol §3.5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_refs_cause_no_vault_request() {
    let v = vault().await;
    let res = resolver(&v).await;
    res.login().await.unwrap();
    let before = v.audit_entries().unwrap().len();
    for bad in [
        "vault://secret/a#f",
        "vault://kv/a/../b#f",
        "https://kv/a#f",
    ] {
        let e = res
            .resolve_str(bad, &ScopeContext::default(), "job-nope")
            .await
            .unwrap_err();
        assert!(e.code().as_str().starts_with("ref_"), "{bad}: {e}");
    }
    let after = v.audit_entries().unwrap();
    assert_eq!(after.len(), before, "a refused ref reached Vault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_sealed_and_probe() {
    let mut v = vault().await;
    let res = resolver(&v).await;
    v.admin()
        .kv_write("kv", "repos/Acme/P", json!({"t": VALUE_1}))
        .await
        .unwrap();
    let x = r("vault://kv/repos/Acme/P#t");
    res.probe().await.unwrap();
    res.resolve(&x, "job-p1").await.unwrap();

    v.admin().seal().await.unwrap();
    let e = res.resolve(&x, "job-p2").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultUnavailable, "{e}");
    assert_eq!(
        res.probe().await.unwrap_err().code(),
        ErrorCode::VaultUnavailable
    );

    v.stop();
    let e = res.resolve(&x, "job-p3").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultUnavailable, "{e}");
    assert_clean(&e, "job-p3", "vault://kv/repos/Acme/P#t");
    assert_eq!(
        res.probe().await.unwrap_err().code(),
        ErrorCode::VaultUnavailable
    );
}

/// A server that accepts connections and never answers: the timeout bounds
/// the resolution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s.FAKEFAKEFAKEFAKEFAKEFAKE").unwrap();
    let mut cfg = VaultConfig::new(
        format!("http://{addr}"),
        AuthConfig::TokenFile { path: token },
    )
    .unwrap();
    cfg.timeout = Duration::from_millis(300);
    let res = Resolver::new(cfg).await.unwrap();
    let started = Instant::now();
    let e = res
        .resolve(&r("vault://kv/a#f"), "job-slow")
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultUnavailable);
    assert!(e.message().contains("300 ms"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_as_prometheus_text() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let v = vault().await;
    let res = std::sync::Arc::new(resolver(&v).await);
    v.admin()
        .kv_write("kv", "repos/Acme/M", json!({"t": VALUE_1}))
        .await
        .unwrap();
    res.resolve(&r("vault://kv/repos/Acme/M#t"), "job-m1")
        .await
        .unwrap();
    res.resolve(&r("vault://kv/repos/Acme/M#nope"), "job-m2")
        .await
        .unwrap_err();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(vaultref::vault::serve_metrics(listener, res.clone()));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    server.abort();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("vaultref_resolutions_total{outcome=\"ok\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("vaultref_resolutions_total{outcome=\"secret_field_missing\"} 1\n"));
    assert!(text.contains("vaultref_resolution_duration_seconds_count 2\n"));
    assert!(text.contains("vaultref_vault_logins_total{outcome=\"ok\"} 1\n"));
    assert!(!text.contains("FAKE"));
}
