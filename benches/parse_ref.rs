//! Parse + validate throughput of refs.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vaultref::{RefPolicy, ScopeContext};

fn parse_and_validate(c: &mut Criterion) {
    let policy = RefPolicy::default()
        .with_scopes([
            "moonmind/repos/{repository}",
            "moonmind/workers/{worker_id}/**",
        ])
        .expect("valid scopes");
    let ctx = ScopeContext {
        repository: Some("MoonLadderStudios/MoonMind".into()),
        worker_id: Some("executor-01".into()),
    };
    let cases = [
        (
            "design-example",
            "vault://kv/moonmind/repos/MoonLadderStudios/MoonMind#github_token",
        ),
        (
            "pinned",
            "vault://kv/moonmind/workers/executor-01/github?version=42#token",
        ),
        ("traversal", "vault://kv/moonmind/repos/../../sys#token"),
    ];
    let mut group = c.benchmark_group("ref");
    for (name, input) in cases {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| b.iter(|| policy.check(black_box(input), &ctx)));
    }
    let long = format!("vault://kv/{}#f", "a/".repeat(250).trim_end_matches('/'));
    group.throughput(Throughput::Bytes(long.len() as u64));
    group.bench_function("long-505-bytes", |b| {
        b.iter(|| vaultref::SecretRef::parse(black_box(&long)))
    });
    group.finish();
}

criterion_group!(benches, parse_and_validate);
criterion_main!(benches);
