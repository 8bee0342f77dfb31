//! Throughput of `payload::validate`: the whole pipeline (strict parse,
//! schema, refs, lint) on a small job, a job with a 64 KiB instruction, and a
//! rejected job carrying a token.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vaultref::payload::{ValidationOptions, validate};

fn job(instruction: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "codex_exec",
        "payload": {
            "repository": "MoonLadderStudios/MoonMind",
            "repoAuthRef": "vault://kv/moonmind/repos/MoonLadderStudios/MoonMind#github_token",
            "instruction": instruction,
            "publish": {"mode": "pr", "baseBranch": "main"},
            "codex": {"model": "gpt-5-codex", "effort": "high"}
        }
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let options = ValidationOptions {
        ref_policy: vaultref::RefPolicy::default()
            .with_scopes(["moonmind/repos/{repository}"])
            .unwrap(),
        ..ValidationOptions::default()
    };
    let prose = "Fix the flaky integration test and explain the root cause. ";
    let big = prose.repeat(64 * 1024 / prose.len());
    let cases = [
        ("design-example", job("Implement the assigned task")),
        ("instruction-64k", job(&big)),
        (
            "token-in-instruction",
            job("push with ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE0000 please"),
        ),
    ];
    let mut group = c.benchmark_group("payload");
    for (name, input) in &cases {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(*name, |b| b.iter(|| validate(black_box(input), &options)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
