//! Codex shard ownership (`spec/codex-shards.md`) against a real OpenBao:
//! 8 workers claim, renew and release one shard concurrently for 200 rounds
//! with short leases, so that leases expire and are taken over; then the
//! record's KV v2 history must show no takeover of a live lease and exactly
//! one version per successful operation.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{cli_env, transcript, vault};
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::Mutex;
use vaultref::ErrorCode;
use vaultref::testing::TestVault;
use vaultref::vault::{Resolver, ShardStore};

const WORKERS: usize = 8;
const ROUNDS: usize = 200;

/// A token whose policy allows exactly the shard records.
async fn shard_token(v: &TestVault) -> SecretString {
    v.admin()
        .put_policy(
            "codex-shards",
            r#"path "kv/data/moonmind/codex/shards/*" { capabilities = ["create", "read", "update"] }"#,
        )
        .await
        .unwrap();
    v.admin()
        .create_token(&["codex-shards"], "10m", true)
        .await
        .unwrap()
}

/// A resolver holding a [`shard_token`], through the token file `name`.
async fn worker_resolver(v: &TestVault, name: &str) -> Resolver {
    let token = shard_token(v).await;
    Resolver::new(v.token_file_config(name, &token).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_share_a_shard() {
    let v = vault().await;
    let store = ShardStore::default();
    // KV v2 keeps 10 versions unless told otherwise; the check needs them all.
    v.admin()
        .call(
            "POST",
            "kv/metadata/moonmind/codex/shards/codex-1",
            Some(json!({"max_versions": 10_000})),
        )
        .await
        .unwrap();
    // Successful writes: (version, worker, what).
    let log = Arc::new(Mutex::new(Vec::<(u64, String, &'static str)>::new()));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let res = Arc::new(worker_resolver(&v, &format!("worker-token-{w}")).await);
        let (store, log) = (store.clone(), Arc::clone(&log));
        tasks.push(tokio::spawn(async move {
            let me = format!("worker-{w}");
            let mut not_owned = 0;
            for round in 0..ROUNDS {
                // Short leases (30-90 ms) so that some expire mid-run.
                let ttl = Duration::from_millis(30 + (round as u64 * 7 + w as u64 * 13) % 60);
                let result = match (round * 3 + w) % 8 {
                    0..=4 => res
                        .shard_claim(&store, "codex-1", &me, ttl)
                        .await
                        .map(|r| (r, "claim")),
                    5 => res
                        .shard_renew(&store, "codex-1", &me, ttl)
                        .await
                        .map(|r| (r, "renew")),
                    6 => res
                        .shard_release(&store, "codex-1", &me)
                        .await
                        .map(|r| (r, "release")),
                    _ => {
                        // A stalled worker: it neither renews nor releases,
                        // so its lease runs out and another takes the shard.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                match result {
                    Ok((rec, what)) => {
                        // A release of a shard nobody owns writes nothing.
                        if rec.written {
                            log.lock().await.push((rec.version, me.clone(), what));
                        }
                    }
                    Err(e) if e.code() == ErrorCode::CodexShardNotOwned => not_owned += 1,
                    // Losing the race five times in a row is allowed, rarely.
                    Err(e)
                        if e.code() == ErrorCode::VaultUnavailable
                            && e.message().contains("check-and-set") => {}
                    Err(e) => panic!("{me}: {e}"),
                }
                if round % 16 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            not_owned
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.unwrap();
    }

    let admin_res = worker_resolver(&v, "auditor-token").await;
    let history = admin_res.shard_history(&store, "codex-1").await.unwrap();
    let log = log.lock().await;
    // No lost update: every successful write is one version, and every
    // version is one successful write.
    let versions: BTreeSet<u64> = log.iter().map(|(v, _, _)| *v).collect();
    assert_eq!(
        versions.len(),
        log.len(),
        "two successes reported the same version"
    );
    assert_eq!(
        versions,
        (1..=history.len() as u64).collect(),
        "versions written and successes differ"
    );
    // Takeover only after expiry (or release).
    let mut takeovers = 0;
    for pair in history.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if !a.owner.is_empty() && !b.owner.is_empty() && a.owner != b.owner {
            takeovers += 1;
            let claimed = b.data["claimed_at_ms"].as_u64().unwrap();
            assert!(
                claimed >= a.lease_expires_ms,
                "version {}: {} took the shard from {} whose lease ran {} ms more",
                b.version,
                b.owner,
                a.owner,
                a.lease_expires_ms - claimed
            );
            assert_eq!(b.epoch, a.epoch + 1, "an owner change without a new epoch");
        }
        if a.owner == b.owner && !a.owner.is_empty() {
            assert_eq!(a.epoch, b.epoch, "the epoch moved without a new owner");
        }
    }
    let releases = log.iter().filter(|(_, _, w)| *w == "release").count();
    eprintln!(
        "{} versions, {takeovers} takeovers, {releases} releases, {refused} refusals",
        history.len()
    );
    // The run exercised what it is about.
    assert!(
        takeovers >= 5,
        "only {takeovers} takeovers of an expired lease"
    );
    assert!(refused >= 50, "only {refused} refusals of a live lease");
    let claims = log.iter().filter(|(_, _, w)| *w == "claim").count();
    assert!(claims >= 20, "{claims} claims");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_renews_releases_and_records() {
    let v = vault().await;
    let store = ShardStore::default();
    let a = worker_resolver(&v, "a-token").await;
    let b = worker_resolver(&v, "b-token").await;
    let ttl = Duration::from_secs(60);
    let rec = a.shard_claim(&store, "codex-2", "a", ttl).await.unwrap();
    assert!(rec.owned_by("a") && rec.epoch == 1 && rec.version == 1);
    for e in [
        b.shard_claim(&store, "codex-2", "b", ttl)
            .await
            .unwrap_err(),
        b.shard_renew(&store, "codex-2", "b", ttl)
            .await
            .unwrap_err(),
        b.shard_release(&store, "codex-2", "b").await.unwrap_err(),
        b.shard_record(
            &store,
            "codex-2",
            "b",
            "last_preflight",
            json!({"status": "ok"}),
        )
        .await
        .unwrap_err(),
    ] {
        assert_eq!(e.code(), ErrorCode::CodexShardNotOwned, "{e}");
        assert!(e.message().contains("worker `a` owns it"), "{e}");
    }
    a.shard_record(
        &store,
        "codex-2",
        "a",
        "last_preflight",
        json!({"status": "ok", "at_ms": 1}),
    )
    .await
    .unwrap();
    let rec = a.shard_release(&store, "codex-2", "a").await.unwrap();
    assert!(!rec.live && rec.owner.is_empty());
    // Released: b takes it, a new epoch; the preflight record is kept.
    let rec = b.shard_claim(&store, "codex-2", "b", ttl).await.unwrap();
    assert_eq!((rec.epoch, rec.owner.as_str()), (2, "b"));
    assert_eq!(rec.data["last_preflight"]["status"], "ok");
    // Bad ids and members are refused before any request.
    let e = a.shard_status(&store, "../x").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ConfigInvalid);
    let e = b
        .shard_record(&store, "codex-2", "b", "owner", json!("b"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ConfigInvalid);
}

/// `vaultref codex claim|renew|status|release`, as an operator runs them with
/// the worker's settings from the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_claims_refuses_and_releases() {
    let v = vault().await;
    let token = shard_token(&v).await;
    let file = v
        .write_file("cli-token", secrecy::ExposeSecret::expose_secret(&token))
        .unwrap();
    let file = file.to_string_lossy().into_owned();
    let env = [
        ("VAULT_ADDR", v.addr()),
        ("VAULT_AUTH_METHOD", "token"),
        ("VAULT_TOKEN_FILE", file.as_str()),
        ("VAULT_TOKEN", ""),
    ];
    let run = |args: &[&str]| {
        let out = cli_env(args, "", &env);
        let text = transcript(&out);
        assert!(
            !text.contains(secrecy::ExposeSecret::expose_secret(&token)),
            "the token is in the output"
        );
        (out.status.code(), text)
    };
    let (code, text) = run(&["codex", "claim", "--shard", "s1", "--worker-id", "w1"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("claim: shard `s1` (version 1, epoch 1): worker `w1`, lease live"),
        "{text}"
    );
    let (code, text) = run(&["codex", "claim", "--shard", "s1", "--worker-id", "w2"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("error[codex_shard_not_owned]: shard `s1` is not owned by worker `w2`: worker `w1` owns it"), "{text}");
    let (code, text) = run(&[
        "codex",
        "status",
        "--shard",
        "s1",
        "--worker-id",
        "w2",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        (json["owner"].as_str(), json["live"].as_bool()),
        (Some("w1"), Some(true))
    );
    let (code, text) = run(&["codex", "release", "--shard", "s1", "--worker-id", "w1"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&["codex", "renew", "--shard", "s1"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("needs --worker-id"), "{text}");
    let (code, text) = run(&["codex", "status", "--shard", "../etc"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("error[config_invalid]"), "{text}");
}

/// The record is written by whoever may write the path: a forged owner with
/// a line break and an escape sequence cannot fake lines in messages or in
/// the CLI's report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_owner_cannot_fake_output_lines() {
    let v = vault().await;
    let forged = "evil\n✓ claim: shard `s9` (version 1, epoch 1): worker `w2`\u{1b}[2K";
    let far = 4_102_444_800_000u64; // 2100-01-01: a live lease
    v.admin()
        .kv_write(
            "kv",
            "moonmind/codex/shards/s9",
            json!({"owner": forged, "epoch": 1, "lease_expires_ms": far}),
        )
        .await
        .unwrap();
    let res = worker_resolver(&v, "w2-token").await;
    let e = res
        .shard_claim(&ShardStore::default(), "s9", "w2", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::CodexShardNotOwned);
    assert!(
        !e.message().contains('\n') && !e.message().contains('\u{1b}'),
        "{e}"
    );
    assert!(e.message().contains("worker `evil?✓ claim"), "{e}");
    let rec = res
        .shard_status(&ShardStore::default(), "s9")
        .await
        .unwrap();
    assert_eq!(rec.owner, forged, "the owner itself is kept as written");
    assert!(!rec.owner_shown().contains(['\n', '\u{1b}']));
}
