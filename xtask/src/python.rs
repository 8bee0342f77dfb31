//! `cargo xtask python [--bench] [PYTEST ARGS...]`: builds the Python
//! package (`bindings/python`) with maturin into a fresh virtualenv, installs
//! the wheel, reports its size and runs pytest on `bindings/python/tests`
//! (every vector of `fixtures/refs`, `fixtures/payloads` and
//! `fixtures/redaction`, the glue, and the conformance harness against the
//! example adapter `conformance/examples/python_adapter.py`, which imports
//! the package). `--bench` then runs
//! `bindings/python/bench.py` (the 100 MiB comparison).
//!
//! Everything lives under `target/python/`: the virtualenv (maturin and
//! pytest from PyPI, pinned), the wheel, and the extension's own cargo
//! target dir (the bindings are a separate workspace, built in release with
//! the core's default features off).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const MATURIN: &str = "maturin==1.16.0";
const PYTEST: &str = "pytest==9.2.0";

fn check(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {status}"))
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

pub fn run_cmd(args: &[String]) -> Result<(), String> {
    let bench = args.iter().any(|a| a == "--bench");
    let pytest_args: Vec<&String> = args.iter().filter(|a| *a != "--bench").collect();
    let root = root();
    let work = vaultref::testing::pip::target_dir().join("python");
    let venv = work.join("venv");
    let bin = venv.join("bin");
    let python3 = vaultref::testing::pip::on_path("python3")
        .ok_or("no python3 on PATH: the Python package needs CPython 3.10 or later")?;
    if !bin.join("python").is_file() {
        check(
            Command::new(&python3).args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
    }
    let pip = |args: &[&str]| {
        let mut cmd = Command::new(bin.join("python"));
        cmd.args(["-m", "pip", "--disable-pip-version-check", "--no-input"])
            .args(args);
        cmd
    };
    check(
        &mut pip(&["install", "--quiet", MATURIN, PYTEST]),
        "pip install maturin pytest",
    )?;
    let wheels = work.join("wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    check(
        Command::new(bin.join("maturin"))
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(root.join("bindings/python/Cargo.toml"))
            .arg("--out")
            .arg(&wheels)
            .arg("--interpreter")
            .arg(bin.join("python"))
            .env("CARGO_TARGET_DIR", work.join("cargo")),
        "maturin build",
    )?;
    let wheel = std::fs::read_dir(&wheels)
        .map_err(|e| format!("no wheel directory {}: {e}", wheels.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("maturin built no wheel")?;
    let size = std::fs::metadata(&wheel).map(|m| m.len()).unwrap_or(0);
    println!(
        "wheel: {} ({:.2} MiB)",
        wheel.file_name().unwrap_or_default().to_string_lossy(),
        size as f64 / (1024.0 * 1024.0)
    );
    let mut install = pip(&["install", "--quiet", "--force-reinstall", "--no-deps"]);
    check(install.arg(&wheel), "pip install the wheel")?;
    // The adapter test runs the conformance harness against the example
    // Python adapter, which imports the package.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    check(
        Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "vaultref-conformance",
                "--bin",
                "vaultref-conformance",
            ])
            .current_dir(&root),
        "cargo build -p vaultref-conformance",
    )?;
    let harness = vaultref::testing::pip::target_dir().join("debug/vaultref-conformance");
    check(
        Command::new(bin.join("python"))
            .env("VAULTREF_CONFORMANCE", &harness)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(root.join("bindings/python/tests"))
            .args(&pytest_args)
            .current_dir(&root),
        "pytest",
    )?;
    if bench {
        check(
            Command::new(bin.join("python"))
                .arg(root.join("bindings/python/bench.py"))
                .current_dir(&root),
            "bench.py",
        )?;
    }
    Ok(())
}

pub fn run(args: &[String]) -> ExitCode {
    match run_cmd(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
