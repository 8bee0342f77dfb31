//! Resolution latency against a real OpenBao dev server on loopback (warm
//! token: the steady state of a worker), the 403 path (read + lookup-self),
//! and the cost of a fingerprint. Run: `cargo bench --bench vault_resolve`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::SecretString;
use serde_json::json;
use vaultref::SecretRef;
use vaultref::testing::TestVault;
use vaultref::vault::{FingerprintKey, Resolver};

fn resolve(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (vault, resolver) = rt.block_on(async {
        let v = TestVault::dev()
            .await
            .unwrap_or_else(|e| panic!("cannot start OpenBao: {e}"));
        v.admin()
            .put_read_policy("reader", "kv", &["bench/*"])
            .await
            .unwrap();
        v.admin()
            .kv_write(
                "kv",
                "bench/s",
                json!({"token": "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEBNCH"}),
            )
            .await
            .unwrap();
        v.admin()
            .kv_write("kv", "denied/s", json!({"token": "ghp_FAKE"}))
            .await
            .unwrap();
        let cfg = v
            .approle_config("bench", &["reader"], "1h", "2h")
            .await
            .unwrap();
        let res = Resolver::new(cfg).await.unwrap();
        res.login().await.unwrap();
        (v, res)
    });
    let ok = SecretRef::parse("vault://kv/bench/s#token").unwrap();
    let denied = SecretRef::parse("vault://kv/denied/s#token").unwrap();
    let mut group = c.benchmark_group("vault");
    group.bench_function("resolve/warm-token", |b| {
        b.iter(|| {
            rt.block_on(resolver.resolve(black_box(&ok), "job-bench"))
                .unwrap()
        })
    });
    group.bench_function("resolve/permission-denied", |b| {
        b.iter(|| {
            rt.block_on(resolver.resolve(black_box(&denied), "job-bench"))
                .unwrap_err()
        })
    });
    group.finish();
    drop(resolver);
    drop(vault);

    let key = FingerprintKey::from_hex("00112233445566778899aabbccddeeff").unwrap();
    let value = SecretString::from("ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEBNCH");
    c.bench_function("fingerprint/40-bytes", |b| {
        b.iter(|| key.fingerprint(black_box(&value)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = resolve
}
criterion_main!(benches);
