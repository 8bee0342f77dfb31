//! `cargo xtask fuzz [--seconds N] [--target NAME]...`: runs the `cargo fuzz`
//! targets of `fuzz/` (libFuzzer, on the nightly toolchain), each for N
//! seconds (default 60), and prints what each did.
//!
//! `cargo-fuzz` is installed from crates.io into the cargo home on first use.
//! Each target reads the seeds kept in the repository
//! (`fuzz/corpus/<target>/`, written by this command from `fixtures/` when
//! missing) and writes what it finds to `target/fuzz-corpus/<target>/`, so a
//! run never dirties the checkout. A crash leaves its input in
//! `fuzz/artifacts/<target>/` and fails the command.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// Every target in `fuzz/Cargo.toml`.
const TARGETS: &[&str] = &[
    "parse_ref",
    "payload_validate",
    "redact_stream",
    "kv2_answer",
];

pub fn run(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask fuzz: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &[String]) -> Result<(), String> {
    let mut seconds = 60u64;
    let mut targets: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|s| *s > 0)
                    .ok_or("--seconds takes a positive number")?;
            }
            "--target" => targets.push(it.next().ok_or("--target takes a name")?.clone()),
            other => {
                return Err(format!(
                    "unknown argument `{other}` (usage: cargo xtask fuzz [--seconds N] [--target NAME]...)"
                ));
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    for t in &targets {
        if !TARGETS.contains(&t.as_str()) {
            return Err(format!(
                "no fuzz target `{t}`; targets: {}",
                TARGETS.join(", ")
            ));
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    ensure_cargo_fuzz()?;
    seed_corpora(&root)?;
    for t in &targets {
        let found = root.join("target/fuzz-corpus").join(t);
        std::fs::create_dir_all(&found).map_err(|e| e.to_string())?;
        let out = Command::new("cargo")
            .current_dir(root.join("fuzz"))
            .args(["+nightly", "fuzz", "run", t])
            .arg(&found)
            .arg(root.join("fuzz/corpus").join(t))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        // libFuzzer's last lines: `#N DONE cov: C ft: F corp: ...` and
        // `Done N runs in S second(s)`.
        let coverage = log
            .lines()
            .rev()
            .find_map(|l| {
                l.split_once(" DONE ")
                    .map(|(_, rest)| rest.trim().to_string())
            })
            .unwrap_or_else(|| "(no coverage line)".into());
        let runs = log
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("Done ").map(str::to_string))
            .unwrap_or_else(|| "(no run count)".into());
        println!("{t}: {runs}; {coverage}");
        if !out.status.success() {
            eprintln!("{log}");
            return Err(format!(
                "{t} failed ({}): the crashing input is in fuzz/artifacts/{t}/",
                out.status
            ));
        }
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let have = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Ok(());
    }
    eprintln!("installing cargo-fuzz from crates.io");
    let ok = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .map_err(|e| format!("cannot run cargo install: {e}"))?;
    if ok.success() {
        Ok(())
    } else {
        Err("`cargo install cargo-fuzz` failed (needs crates.io and the nightly toolchain)".into())
    }
}

/// Writes seed inputs from `fixtures/` into `fuzz/corpus/<target>/` for any
/// target that has none yet.
fn seed_corpora(root: &Path) -> Result<(), String> {
    let load = |dir: &str| -> Result<Vec<serde_json::Value>, String> {
        Ok(vaultref::testing::vectors::all_vectors(
            &root.join("fixtures").join(dir),
        )?)
    };
    let seeds: [(&str, Vec<Vec<u8>>); 4] = [
        (
            "parse_ref",
            load("refs")?
                .iter()
                .filter_map(|v| v["ref"].as_str().map(|s| s.as_bytes().to_vec()))
                .collect(),
        ),
        (
            "payload_validate",
            load("payloads")?
                .iter()
                .filter_map(|v| {
                    v.get("job")
                        .map(|j| j.to_string().into_bytes())
                        .or_else(|| v["job_text"].as_str().map(|t| t.as_bytes().to_vec()))
                })
                .collect(),
        ),
        (
            "redact_stream",
            load("redaction")?
                .iter()
                .filter_map(|v| {
                    v["input"]
                        .as_str()
                        .map(|i| [b"\x07\x13\x01\x40".as_slice(), i.as_bytes()].concat())
                })
                .collect(),
        ),
        (
            "kv2_answer",
            [
                (
                    0u8,
                    r#"{"data":{"data":{"token":"FAKE"},"metadata":{"version":1}}}"#,
                ),
                (
                    1,
                    r#"{"errors":[],"data":{"metadata":{"destroyed":true,"version":2}}}"#,
                ),
                (
                    1,
                    r#"{"data":{"metadata":{"deletion_time":"2026-01-01T00:00:00Z"}}}"#,
                ),
                (0, "{not json"),
            ]
            .iter()
            .map(|(status, body)| [&[*status][..], body.as_bytes()].concat())
            .collect(),
        ),
    ];
    for (target, inputs) in seeds {
        let dir = root.join("fuzz/corpus").join(target);
        if dir.is_dir()
            && std::fs::read_dir(&dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
        {
            continue;
        }
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:04}")), input).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
