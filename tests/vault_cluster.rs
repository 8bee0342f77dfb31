//! The resolver against a real 3-node OpenBao raft cluster
//! (`spec/resolver.md` §13): the leader killed mid-queue, a standby's address
//! only, a sealed node, a rotation acknowledged just before the leader dies;
//! and against hostile nodes, a redirect followed only within the cluster.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use vaultref::testing::TestCluster;
use vaultref::testing::hostile::{Answer, Catcher, HostileVault};
use vaultref::vault::{AuthConfig, Resolver, VaultConfig};
use vaultref::{ErrorCode, SecretRef};

async fn cluster() -> TestCluster {
    TestCluster::start(3)
        .await
        .unwrap_or_else(|e| panic!("cannot start the cluster: {e}"))
}

/// A token that may read `kv/ha/*`, and the ref of `kv/ha/app#token`
/// holding `value`.
async fn seed(c: &TestCluster, value: &str) -> (SecretString, SecretRef) {
    let a = c.admin();
    a.put_read_policy("ha-reader", "kv", &["ha/*"])
        .await
        .unwrap();
    a.kv_write("kv", "ha/app", json!({"token": value}))
        .await
        .unwrap();
    let token = a.create_token(&["ha-reader"], "1h", true).await.unwrap();
    c.wait_served("kv/data/ha/app", Duration::from_secs(30))
        .await
        .unwrap();
    (token, SecretRef::parse("vault://kv/ha/app#token").unwrap())
}

fn all_nodes(c: &TestCluster, token: &SecretString, name: &str) -> VaultConfig {
    let mut cfg = c.token_file_config(name, token, &[0, 1, 2]).unwrap();
    cfg.timeout = Duration::from_secs(2);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_mid_queue_every_resolution_still_succeeds() {
    let mut c = cluster().await;
    let (token, r) = seed(&c, "ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEha0001").await;
    let res = Resolver::new(all_nodes(&c, &token, "t-all")).await.unwrap();
    let leader = c.wait_leader(Duration::from_secs(10)).await.unwrap();
    let mut window = Duration::ZERO;
    for job in 1..=10 {
        let killed_at = if job == 4 {
            c.kill(leader).await;
            Some(Instant::now())
        } else {
            None
        };
        let v = res
            .resolve(&r, &format!("job-{job}"))
            .await
            .unwrap_or_else(|e| panic!("job {job}: {e}"));
        assert_eq!(v.expose_secret(), "ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEha0001");
        if let Some(t) = killed_at {
            window = t.elapsed();
        }
    }
    let new_leader = c.wait_leader(Duration::from_secs(10)).await.unwrap();
    assert_ne!(new_leader, leader);
    eprintln!(
        "failover window seen by the resolver: {} ms",
        window.as_millis()
    );
    assert!(window < Duration::from_secs(15), "{window:?}");
    // The killed node comes back as a standby and the cluster keeps serving.
    c.restart(leader).await.unwrap();
    assert!(res.resolve(&r, "job-11").await.is_ok());
    res.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_address_alone_serves_and_a_sealed_node_is_passed_over() {
    let mut c = cluster().await;
    let (token, r) = seed(&c, "ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEha0002").await;
    let leader = c.wait_leader(Duration::from_secs(10)).await.unwrap();
    let standby = (leader + 1) % 3;
    // Only a standby's address, no cluster list: it forwards to the leader.
    let mut cfg = c
        .token_file_config("t-standby", &token, &[standby])
        .unwrap();
    cfg.timeout = Duration::from_secs(2);
    let res = Resolver::new(cfg).await.unwrap();
    assert!(res.resolve(&r, "job-standby").await.is_ok());
    assert!(res.probe().await.is_ok());
    res.shutdown().await;
    // A sealed standby named first: the resolver goes to the others.
    c.seal(standby).await.unwrap();
    let mut cfg = c
        .token_file_config("t-sealed", &token, &[standby, leader, (leader + 2) % 3])
        .unwrap();
    cfg.timeout = Duration::from_secs(2);
    let res = Resolver::new(cfg).await.unwrap();
    for job in 0..3 {
        let v = res.resolve(&r, &format!("job-sealed-{job}")).await.unwrap();
        assert_eq!(v.expose_secret(), "ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEha0002");
    }
    assert!(res.probe().await.is_ok());
    c.unseal(standby).await.unwrap();
    res.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_acknowledged_before_the_leader_dies_is_never_read_as_the_old_version() {
    let mut c = cluster().await;
    let (token, r) = seed(&c, "ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEhaOLD1").await;
    let res = Resolver::new(all_nodes(&c, &token, "t-rot")).await.unwrap();
    assert!(res.resolve(&r, "job-before").await.is_ok());
    let leader = c.wait_leader(Duration::from_secs(10)).await.unwrap();
    c.node(leader)
        .admin()
        .kv_write(
            "kv",
            "ha/app",
            json!({"token": "ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEhaNEW2"}),
        )
        .await
        .unwrap();
    c.kill(leader).await;
    for job in 0..5 {
        let v = res.resolve(&r, &format!("job-after-{job}")).await.unwrap();
        assert_eq!(
            v.expose_secret(),
            "ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEhaNEW2",
            "job {job} read the version written before the rotation"
        );
    }
    res.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_leader_for_longer_than_the_window_a_read_is_unavailable() {
    let mut c = cluster().await;
    let (token, r) = seed(&c, "ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEha0003").await;
    let mut cfg = all_nodes(&c, &token, "t-down");
    cfg.failover = Duration::from_secs(2);
    let res = Resolver::new(cfg).await.unwrap();
    assert!(res.resolve(&r, "job-up").await.is_ok());
    // Two of three nodes gone: no quorum, no leader.
    let leader = c.wait_leader(Duration::from_secs(10)).await.unwrap();
    c.kill(leader).await;
    c.kill((leader + 1) % 3).await;
    let started = Instant::now();
    let e = res.resolve(&r, "job-down").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultUnavailable, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(res.probe().await.is_err());
    // Back to a quorum: served again.
    c.restart(leader).await.unwrap();
    c.wait_leader(Duration::from_secs(20)).await.unwrap();
    assert!(res.resolve(&r, "job-back").await.is_ok());
    assert!(res.probe().await.is_ok());
    res.shutdown().await;
}

/// Two hostile nodes: A says it is a standby (and redirects), B says it is
/// active. Only B's answers are used, and a redirect (to A, or out of the
/// cluster) is never followed: the token goes to configured nodes only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_node_that_says_it_is_active_is_used_and_no_redirect_is_followed() {
    let catcher = Catcher::start().unwrap();
    let kv = |value: &str| {
        Answer::Json(
            200,
            json!({"request_id": "11111111-2222-3333-4444-555555555555",
                   "data": {"data": {"token": value}, "metadata": {"version": 1}}})
            .to_string(),
        )
    };
    let leader = |is_self: bool| {
        Answer::Json(
            200,
            json!({"ha_enabled": true, "is_self": is_self}).to_string(),
        )
    };
    let b = HostileVault::start(&[
        ("sys/leader", leader(true)),
        ("kv/data/app", kv("ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEhaGOOD")),
    ])
    .unwrap();
    let a = HostileVault::start(&[
        ("sys/leader", leader(false)),
        // A standby's own (stale) answer: must not be used.
        ("kv/data/app", kv("ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEhaSTAL")),
    ])
    .unwrap();
    b.set(
        "kv/data/other",
        Answer::Redirect(format!("{}/v1/kv/data/other", catcher.url())),
    );
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s.FAKEFAKEFAKEFAKEFAKEFAKE").unwrap();
    let mut cfg = VaultConfig::new(a.url(), AuthConfig::TokenFile { path: token_file }).unwrap();
    cfg.cluster_addrs = vec![b.url()];
    cfg.failover = Duration::from_millis(400);
    let res = Resolver::new(cfg).await.unwrap();
    let app = SecretRef::parse("vault://kv/app#token").unwrap();
    for job in 0..3 {
        let v = res.resolve(&app, &format!("job-{job}")).await.unwrap();
        assert_eq!(v.expose_secret(), "ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEhaGOOD");
    }
    assert!(
        !a.requests().iter().any(|(_, p)| p == "kv/data/app"),
        "a standby was asked for the secret"
    );
    let other = SecretRef::parse("vault://kv/other#token").unwrap();
    let e = res.resolve(&other, "job-elsewhere").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::VaultUnavailable, "{e}");
    assert_eq!(
        catcher.connections(),
        0,
        "a request went to an unconfigured address"
    );
    res.shutdown().await;
}

/// An AppRole token with a 6 s TTL: renewal (or a new login) keeps working
/// across a leader change, and the failover costs at most one login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_renewed_across_a_leader_change() {
    let mut c = cluster().await;
    let (_, r) = seed(&c, "ghp_FAKEhaFAKEhaFAKEhaFAKEhaFAKEha0005").await;
    let a = c.admin();
    a.ensure_auth("approle", "approle").await.unwrap();
    let role_id = a
        .approle_role("approle", "ha", &["ha-reader"], "6s", "1h")
        .await
        .unwrap();
    let secret_id = a.approle_secret_id("approle", "ha").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (rf, sf) = (dir.path().join("role_id"), dir.path().join("secret_id"));
    std::fs::write(&rf, role_id).unwrap();
    std::fs::write(&sf, secret_id.expose_secret()).unwrap();
    let addrs = c.addrs();
    let mut cfg = VaultConfig::new(
        addrs[0].clone(),
        AuthConfig::AppRole {
            mount: "approle".into(),
            role_id_file: rf,
            secret_id_file: sf,
        },
    )
    .unwrap();
    cfg.cluster_addrs = addrs[1..].to_vec();
    cfg.ca_cert = c.ca_cert();
    cfg.timeout = Duration::from_secs(2);
    let res = Resolver::new(cfg).await.unwrap();
    assert!(res.resolve(&r, "job-0").await.is_ok());
    let leader = c.wait_leader(Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.kill(leader).await;
    // Three TTLs after the kill: every resolution succeeds (after the
    // election), so the token was renewed or replaced in time.
    let until = Instant::now() + Duration::from_secs(18);
    let mut job = 0;
    while Instant::now() < until {
        job += 1;
        res.resolve(&r, &format!("job-{job}"))
            .await
            .unwrap_or_else(|e| panic!("job {job}: {e}"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let entries = c.audit_entries().unwrap();
    let count = |p: &str| {
        entries
            .iter()
            .filter(|e| e.is_request() && e.path() == p)
            .count()
    };
    let (logins, renewals) = (count("auth/approle/login"), count("auth/token/renew-self"));
    eprintln!("logins {logins}, renewals {renewals}");
    assert!(renewals >= 2, "renewals {renewals}");
    assert!(
        logins <= 2,
        "logins {logins}: more than one per failover episode"
    );
    res.shutdown().await;
}
