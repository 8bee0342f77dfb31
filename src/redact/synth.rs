//! A deterministic synthetic log corpus, for benchmarks and `cargo xtask
//! bench-compare`.
//!
//! Lines imitate what a worker prints: git clone/fetch progress, cargo builds,
//! HTTP traces, JSON log records, with commit SHAs, UUIDs and paths (the
//! near-misses a good redactor leaves alone). Secret-bearing lines carry a
//! registered secret or a GitHub token, planted at a known rate so a
//! comparison can count how many each tool catches.
//!
//! Everything is fake and generated from a seed: same seed, same bytes.

/// A small, fast, seedable generator (SplitMix64); quality is irrelevant here.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }

    /// `n` characters from `alphabet`.
    pub fn string(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";

/// `n` fake registered secrets: 40-character random tokens, a shape like
/// most API tokens (and unlike any rule, so only registration finds them).
pub fn secrets(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed ^ 0x5EC2E7);
    (0..n)
        .map(|_| format!("FAKE{}", rng.string(ALNUM, 36)))
        .collect()
}

/// A fake GitHub token (matches the `github-pat` rule).
pub fn github_token(rng: &mut Rng) -> String {
    format!("ghp_{}", rng.string(ALNUM, 36))
}

fn clean_line(rng: &mut Rng, out: &mut String) {
    use std::fmt::Write;
    let ts = format!(
        "2026-11-28T19:{:02}:{:02}.{:03}Z",
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    );
    match rng.below(8) {
        0 => {
            let _ = writeln!(
                out,
                "{ts} git: Receiving objects: {}% ({}/{}), {} KiB | {} MiB/s",
                rng.below(101),
                rng.below(5000),
                5000,
                rng.below(90000),
                rng.below(40)
            );
        }
        1 => {
            let _ = writeln!(
                out,
                "{ts} git: HEAD is now at {} {}",
                rng.string(HEX, 40),
                rng.pick(&[
                    "Merge pull request #42 from owner/branch",
                    "Fix flaky test in scheduler",
                    "Bump tokio from 1.40 to 1.41",
                    "docs: explain secret refs"
                ])
            );
        }
        2 => {
            let _ = writeln!(
                out,
                "   Compiling {} v{}.{}.{} (/work/crates/{})",
                rng.pick(&["serde", "tokio", "regex", "vaultref", "hyper", "rustls"]),
                rng.below(3),
                rng.below(40),
                rng.below(10),
                rng.pick(&["core", "worker", "cli"])
            );
        }
        3 => {
            let _ = writeln!(
                out,
                "{{\"ts\":\"{ts}\",\"level\":\"{}\",\"job\":\"{}-{}-4{}-a{}-{}\",\"msg\":\"{}\",\"elapsed_ms\":{}}}",
                rng.pick(&["info", "debug", "warn"]),
                rng.string(HEX, 8),
                rng.string(HEX, 4),
                rng.string(HEX, 3),
                rng.string(HEX, 3),
                rng.string(HEX, 12),
                rng.pick(&[
                    "claimed job",
                    "resolved repository credentials",
                    "workspace prepared",
                    "codex exec finished"
                ]),
                rng.below(100000)
            );
        }
        4 => {
            let _ = writeln!(
                out,
                "{ts} http: > GET /repos/{}/{}/pulls?page={} HTTP/1.1",
                rng.pick(&["MoonLadderStudios", "octo-org", "example"]),
                rng.pick(&["MoonMind", "hello-world", "api"]),
                rng.below(20)
            );
        }
        5 => {
            let _ = writeln!(
                out,
                "{ts} http: < HTTP/1.1 200 OK\r\n{ts} http: < x-github-request-id: {}:{}:{}",
                rng.string(HEX, 4).to_uppercase(),
                rng.string(HEX, 6).to_uppercase(),
                rng.string(HEX, 8).to_uppercase()
            );
        }
        6 => {
            let _ = writeln!(
                out,
                "{ts} worker: wrote {} bytes to /tmp/job-{}/artifacts/{}.tar.zst (sha256 {})",
                rng.below(1 << 24),
                rng.string(HEX, 8),
                rng.pick(&["logs", "patch", "report"]),
                rng.string(HEX, 64)
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "{ts} test {}::{} ... ok",
                rng.pick(&[
                    "secret_ref::tests",
                    "policy::tests",
                    "redact::engine::tests"
                ]),
                rng.pick(&["parses_design_example", "rejects_traversal", "chunking"])
            );
        }
    }
}

/// What a secret-bearing line carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A GitHub token inside a clone URL (a rule finds it).
    TokenInCloneUrl,
    /// A registered secret printed as it is.
    Registered,
    /// A registered secret inside a git Basic-auth header (base64).
    RegisteredBasicHeader,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: &'static [Kind] = &[
        Kind::TokenInCloneUrl,
        Kind::Registered,
        Kind::RegisteredBasicHeader,
    ];

    /// A label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Kind::TokenInCloneUrl => "github token in clone URL",
            Kind::Registered => "registered secret, raw",
            Kind::RegisteredBasicHeader => "registered secret, git Basic header",
        }
    }
}

/// A planted value: its kind and the exact text printed for it (what must
/// not survive redaction, and what a detector must report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planted {
    /// What it is.
    pub kind: Kind,
    /// The spelling in the log.
    pub printed: String,
}

/// One secret-bearing line: a registered secret (raw or in a base64 Basic
/// header) or, with no secrets, a GitHub token in a clone URL.
fn secret_line(rng: &mut Rng, secrets: &[String], out: &mut String) -> Planted {
    use base64::Engine as _;
    use std::fmt::Write;
    if secrets.is_empty() || rng.below(4) == 0 {
        let t = github_token(rng);
        let _ = writeln!(
            out,
            "fatal: unable to access 'https://x-access-token:{t}@github.com/o/r.git/': 403"
        );
        return Planted {
            kind: Kind::TokenInCloneUrl,
            printed: t,
        };
    }
    let s = secrets[rng.below(secrets.len())].clone();
    match rng.below(3) {
        0 => {
            let _ = writeln!(out, "worker: export API_KEY {s} for step");
        }
        1 => {
            let _ = writeln!(
                out,
                "{{\"level\":\"debug\",\"msg\":\"request\",\"key\":\"{s}\"}}"
            );
        }
        _ => {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{s}"));
            let _ = writeln!(out, "http: > X-Auth: {b}");
            return Planted {
                kind: Kind::RegisteredBasicHeader,
                printed: b,
            };
        }
    }
    Planted {
        kind: Kind::Registered,
        printed: s,
    }
}

/// About `bytes` bytes of log, with a fraction `secret_rate` of lines
/// secret-bearing (0.0 for clean). Returns the text and what was planted,
/// one per secret-bearing line.
pub fn corpus(
    bytes: usize,
    secret_rate: f64,
    secrets: &[String],
    seed: u64,
) -> (String, Vec<Planted>) {
    generate(bytes, secret_rate, secrets, seed, clean_line)
}

/// About `bytes` bytes of `clean` lines, a fraction `secret_rate` of lines
/// secret-bearing instead.
fn generate(
    bytes: usize,
    secret_rate: f64,
    secrets: &[String],
    seed: u64,
    mut clean: impl FnMut(&mut Rng, &mut String),
) -> (String, Vec<Planted>) {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(bytes + 512);
    let mut planted = Vec::new();
    let threshold = (secret_rate * 1_000_000.0) as usize;
    while out.len() < bytes {
        if threshold > 0 && rng.below(1_000_000) < threshold {
            planted.push(secret_line(&mut rng, secrets, &mut out));
        } else {
            clean(&mut rng, &mut out);
        }
    }
    (out, planted)
}

/// Like [`corpus`], but every clean line is 60 to 120 bytes long (the
/// issue's "short-line log"): a busy worker's log of timestamps, levels and
/// short messages, where what the redactor spends per line, not per byte,
/// decides its speed.
pub fn short_line_corpus(
    bytes: usize,
    secret_rate: f64,
    secrets: &[String],
    seed: u64,
) -> (String, Vec<Planted>) {
    generate(bytes, secret_rate, secrets, seed, short_clean_line)
}

/// One clean line of 60 to 120 bytes, newline included.
fn short_clean_line(rng: &mut Rng, out: &mut String) {
    use std::fmt::Write;
    const WORDS: &[&str] = &[
        "job", "claimed", "queue", "worker", "checkout", "fetch", "origin", "main", "ok",
        "resolved", "pushed", "branch", "retry", "took", "ms", "step", "done", "cache", "hit",
        "miss", "size", "bytes", "files", "changed", "commit", "status", "waiting", "lease",
    ];
    let target = 60 + rng.below(61);
    let start = out.len();
    let _ = write!(
        out,
        "2026-11-28T19:{:02}:{:02}.{:03}Z {} {}:",
        rng.below(60),
        rng.below(60),
        rng.below(1000),
        rng.pick(&["INFO ", "DEBUG", "WARN "]),
        rng.pick(&["worker", "git", "queue", "http"])
    );
    while out.len() - start < target - 1 {
        if rng.below(4) == 0 {
            let _ = write!(out, " {}", rng.below(100_000));
        } else {
            let _ = write!(out, " {}", rng.pick(WORDS));
        }
    }
    out.truncate(start + target - 1);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_clean_means_clean() {
        let (a, pa) = corpus(50_000, 0.0, &[], 7);
        let (b, _) = corpus(50_000, 0.0, &[], 7);
        assert_eq!(a, b);
        assert!(pa.is_empty());
        // The clean corpus triggers no rule: it is a fair "clean logs" input.
        assert_eq!(crate::redact::redact(&a), a);
    }

    #[test]
    fn short_lines_are_60_to_120_bytes_and_clean() {
        let (text, planted) = short_line_corpus(100_000, 0.0, &[], 9);
        assert!(planted.is_empty());
        for line in text.lines() {
            assert!((60..=120).contains(&(line.len() + 1)), "{line:?}");
        }
        assert_eq!(crate::redact::redact(&text), text);
    }

    #[test]
    fn planted_secrets_are_all_masked() {
        let s = secrets(16, 1);
        let (text, planted) = corpus(200_000, 0.01, &s, 3);
        assert!(!planted.is_empty());
        let mut b = crate::redact::RedactorBuilder::new();
        for x in &s {
            b.add_secret(&secrecy::SecretString::from(x.clone()))
                .unwrap();
        }
        let out = b.build().unwrap().redact(&text);
        for p in &planted {
            assert!(!out.contains(p.printed.as_str()), "{:?} survived", p.kind);
        }
        for k in Kind::ALL {
            assert!(planted.iter().any(|p| p.kind == *k), "no {k:?} planted");
        }
    }
}
