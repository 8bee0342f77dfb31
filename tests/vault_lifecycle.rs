//! Token lifecycle against a real OpenBao: renewal across several TTLs of a
//! 3 s token, re-login at max TTL and after revocation, Vault Agent sink
//! refresh, fail-secure, and an outage with the data kept (persistent
//! server stopped and started again).
//!
//! TTLs are 2-4 s so each test finishes in seconds; every test has its own
//! server, so they run in parallel.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::json;
use vaultref::testing::TestVault;
use vaultref::vault::Resolver;
use vaultref::{ErrorCode, SecretRef};

mod common;
use common::vault;

const VALUE: &str = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKELIFE";

async fn seed(v: &TestVault) -> SecretRef {
    common::seed(v, "app", "one", VALUE).await
}

/// A dev server with the seeded secret, and a resolver logging in with a
/// fresh AppRole role with these token TTLs.
async fn approle_resolver(
    role: &str,
    ttl: &str,
    max_ttl: &str,
) -> (TestVault, Resolver, SecretRef) {
    let v = vault().await;
    let r = seed(&v).await;
    let cfg = v
        .approle_config(role, &["reader"], ttl, max_ttl)
        .await
        .unwrap();
    let res = Resolver::new(cfg).await.unwrap();
    (v, res, r)
}

/// Revokes every token AppRole issued: a resolver's token is then dead and
/// Vault answers 403 exactly as for a policy denial.
async fn revoke_approle_tokens(v: &TestVault) {
    v.admin()
        .request(
            "PUT",
            "sys/leases/revoke-prefix/auth/approle/login",
            Some(json!({})),
        )
        .await
        .unwrap();
}

/// Resolves every `step` for `total`; every resolution must succeed.
async fn keep_resolving(res: &Resolver, r: &SecretRef, total: Duration, step: Duration) {
    let end = Instant::now() + total;
    let mut i = 0;
    while Instant::now() < end {
        let job = format!("job-{i}");
        let v = res
            .resolve(r, &job)
            .await
            .unwrap_or_else(|e| panic!("resolution {i} failed: {e}"));
        assert_eq!(v.expose_secret(), VALUE);
        i += 1;
        tokio::time::sleep(step).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renews_across_several_ttls_without_logging_in_again() {
    let (_v, res, r) = approle_resolver("renewer", "3s", "1m").await;
    // 9 s is three TTLs: without renewal the token would die twice. (3 s
    // rather than 2 s leaves a second of slack for a loaded machine.)
    keep_resolving(&res, &r, Duration::from_secs(9), Duration::from_millis(400)).await;
    let m = res.metrics_handle();
    assert!(m.renewals(None) >= 3, "renewed {} times", m.renewals(None));
    assert_eq!(m.logins(None), 1, "logged in again instead of renewing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_in_again_at_max_ttl() {
    let (_v, res, r) = approle_resolver("capped", "2s", "4s").await;
    // 9 s spans two max TTLs: the token must be replaced at least twice.
    keep_resolving(&res, &r, Duration::from_secs(9), Duration::from_millis(300)).await;
    let m = res.metrics_handle();
    assert!(m.logins(None) >= 3, "logged in {} times", m.logins(None));
    assert_eq!(m.resolutions(Some(ErrorCode::VaultAuthFailed)), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_in_again_after_revocation_and_retries_once() {
    let (v, res, r) = approle_resolver("revoked", "1h", "2h").await;
    res.resolve(&r, "job-before").await.unwrap();
    // Revoke every token AppRole issued: the resolver's token is now dead
    // and Vault answers 403 exactly as for a policy denial.
    revoke_approle_tokens(&v).await;
    let value = res.resolve(&r, "job-after").await.unwrap();
    assert_eq!(value.expose_secret(), VALUE);
    assert_eq!(res.metrics_handle().logins(None), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_secure_when_it_cannot_log_in_again() {
    let (v, res, r) = approle_resolver("stuck", "1h", "2h").await;
    res.resolve(&r, "job-ok").await.unwrap();
    // The secret id is rotated away (a bogus one in the file) and the token
    // revoked: no way back in.
    v.write_file("stuck.secret_id", "00000000-0000-0000-0000-000000000000")
        .unwrap();
    revoke_approle_tokens(&v).await;
    let e = res.resolve(&r, "job-stuck").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultAuthFailed, "{e}");
    assert!(e.message().contains("job-stuck"));
    assert!(!e.message().contains("00000000-0000"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_file_follows_the_agent_sink() {
    let v = vault().await;
    let r = seed(&v).await;
    let first = v
        .admin()
        .create_token(&["reader"], "1h", true)
        .await
        .unwrap();
    let cfg = v.token_file_config("sink", &first).unwrap();
    let res = Resolver::new(cfg).await.unwrap();
    res.resolve(&r, "job-1").await.unwrap();

    // The agent logs in again and rewrites its sink; the old token dies.
    let second = v
        .admin()
        .create_token(&["reader"], "1h", true)
        .await
        .unwrap();
    v.write_file("sink", second.expose_secret()).unwrap();
    v.admin().revoke_token(&first).await.unwrap();
    assert_eq!(
        res.resolve(&r, "job-2").await.unwrap().expose_secret(),
        VALUE
    );

    // The file is rewritten only after the token died: found on retry.
    let third = v
        .admin()
        .create_token(&["reader"], "1h", true)
        .await
        .unwrap();
    v.admin().revoke_token(&second).await.unwrap();
    v.write_file("sink", third.expose_secret()).unwrap();
    assert_eq!(
        res.resolve(&r, "job-3").await.unwrap().expose_secret(),
        VALUE
    );

    // The token dies and the sink is not rewritten: fail secure.
    v.admin().revoke_token(&third).await.unwrap();
    let e = res.resolve(&r, "job-4").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultAuthFailed, "{e}");
    assert!(e.message().contains("not been rewritten"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_an_outage_with_data_kept() {
    let mut v = TestVault::persistent()
        .await
        .unwrap_or_else(|e| panic!("cannot start OpenBao: {e}"));
    let r = seed(&v).await;
    let cfg = v
        .approle_config("outage", &["reader"], "1h", "2h")
        .await
        .unwrap();

    // Vault is down when the worker starts: the resolver is still built.
    v.stop();
    let res = Resolver::new(cfg).await.unwrap();
    let e = res.resolve(&r, "job-down").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultUnavailable, "{e}");
    assert!(res.probe().await.is_err());

    // Back, with its data: the same resolver logs in and resolves.
    v.start().await.unwrap();
    res.probe().await.unwrap();
    assert_eq!(
        res.resolve(&r, "job-up").await.unwrap().expose_secret(),
        VALUE
    );

    // Down again mid-life, and back: the token survives the restart.
    v.stop();
    assert_eq!(
        res.resolve(&r, "job-down2").await.unwrap_err().code(),
        ErrorCode::VaultUnavailable
    );
    v.start().await.unwrap();
    assert_eq!(
        res.resolve(&r, "job-up2").await.unwrap().expose_secret(),
        VALUE
    );
    assert_eq!(res.metrics_handle().logins(None), 1);
}

/// Many jobs find the token dead at once: one login, not one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_jobs_with_a_dead_token_logs_in_once() {
    let (v, res, r) = approle_resolver("burst", "1h", "2h").await;
    let res = std::sync::Arc::new(res);
    res.resolve(&r, "job-first").await.unwrap();
    revoke_approle_tokens(&v).await;
    let jobs: Vec<_> = (0..8)
        .map(|i| {
            let (res, r) = (res.clone(), r.clone());
            tokio::spawn(async move { res.resolve(&r, &format!("job-burst-{i}")).await })
        })
        .collect();
    for job in jobs {
        assert_eq!(job.await.unwrap().unwrap().expose_secret(), VALUE);
    }
    assert_eq!(res.metrics_handle().logins(None), 2);
}
