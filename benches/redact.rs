//! Redaction throughput (`spec/redaction.md`, issue 4 targets).
//!
//! - `clean/<n>`: 16 MiB of clean synthetic log, n registered secrets (with
//!   their derived forms), all rules on, one-shot;
//! - `dense_1pct/1000`: 1% of lines carry a secret or a token;
//! - `stream_<chunk>/1000`: clean log through `RedactWriter` in 4 KiB and
//!   64 KiB writes;
//! - `one_write_unterminated/32MiB`: one write of a 32 MiB line without a
//!   line end, rules only (cut into segments inside the write);
//! - `multi_line_secrets/200`: 20,000 writes of a 73-byte log line with 200
//!   registered multi-line secrets of 2 KB (the holdback asks each cut).
//!
//! Sample sizes are small so the suite ends in a few minutes on a shared
//! 2-core machine.

use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secrecy::SecretString;
use vaultref::redact::{RedactWriter, Redactor, RedactorBuilder, synth};

const SIZE: usize = 16 << 20;

fn redactor(n: usize) -> Redactor {
    let mut b = RedactorBuilder::new();
    for s in synth::secrets(n, 42) {
        b.add_secret(&SecretString::from(s)).expect("long enough");
    }
    b.build().expect("builds")
}

/// A writer that only counts, so the bench measures redaction, not copying.
struct Sink(usize);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn benches(c: &mut Criterion) {
    let (clean, _) = synth::corpus(SIZE, 0.0, &[], 1);
    let mut g = c.benchmark_group("redact");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(clean.len() as u64));
    for n in [0usize, 16, 256, 1000] {
        let r = redactor(n);
        g.bench_function(format!("clean/{n}"), |b| {
            b.iter(|| black_box(r.redact_bytes(black_box(clean.as_bytes()))).len())
        });
    }
    let r = redactor(1000);
    let (dense, _) = synth::corpus(SIZE, 0.01, &synth::secrets(1000, 42), 2);
    g.throughput(Throughput::Bytes(dense.len() as u64));
    g.bench_function("dense_1pct/1000", |b| {
        b.iter(|| black_box(r.redact_bytes(black_box(dense.as_bytes()))).len())
    });
    g.throughput(Throughput::Bytes(clean.len() as u64));
    for chunk in [4 << 10, 64 << 10] {
        g.bench_function(format!("stream_{}k/1000", chunk >> 10), |b| {
            b.iter(|| {
                let mut w = RedactWriter::new(&r, Sink(0));
                for c in clean.as_bytes().chunks(chunk) {
                    w.write_all(c).expect("sink never fails");
                }
                w.finish().expect("sink never fails").0
            })
        });
    }
    let long = vec![b'x'; 32 << 20];
    let builtin = Redactor::builtin();
    g.throughput(Throughput::Bytes(long.len() as u64));
    g.bench_function("one_write_unterminated/32MiB", |b| {
        b.iter(|| black_box(builtin.redact_bytes(black_box(&long))).len())
    });
    let mut mb = RedactorBuilder::new();
    for i in 0..200 {
        let lines: Vec<String> = (0..26)
            .map(|l| format!("MII{i:05}{l:02}{}", "Fake0123456789".repeat(4)))
            .collect();
        mb.add_secret(&SecretString::from(lines.join("\n")))
            .expect("long enough");
    }
    let multi = mb.build().expect("builds");
    let line = b"2024-01-01T00:00:00Z INFO worker: compiling crate foo v0.1.0 step 1234\n";
    g.throughput(Throughput::Bytes(20_000 * line.len() as u64));
    g.bench_function("multi_line_secrets/200", |b| {
        b.iter(|| {
            let mut s = multi.stream();
            let mut out = Vec::with_capacity(20_000 * line.len());
            for _ in 0..20_000 {
                s.push(line, &mut out);
            }
            s.finish(&mut out);
            out.len()
        })
    });
    g.finish();
}

criterion_group!(redact, benches);
criterion_main!(redact);
