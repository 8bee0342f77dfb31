//! `cargo xtask bench-backup [--mib N]`: `vaultref codex backup` and
//! `restore` of an N MiB volume (default 1024) against a real OpenBao with
//! Transit, side by side with plain `tar` of the same volume (no encryption,
//! no Vault) as the yardstick. Reports wall time, CPU time (the child's own,
//! from `wait4`), throughput per CPU second and peak memory (the child's
//! `VmHWM`), best of three runs each.
//!
//! The volume (64 files of N/64 MiB of pseudo-random bytes and 256 small
//! files) is written once into `target/bench-backup/` and reused.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::time::Instant;

use vaultref::testing::TestVault;

pub fn run(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One child's measurements.
#[derive(Clone, Copy)]
struct Measured {
    wall: f64,
    cpu: f64,
    max_rss_mib: f64,
}

/// Runs `cmd` and reaps it with `wait4`, for its own CPU time; its peak
/// memory is the `VmHWM` of `/proc/<pid>/status`, sampled while it runs
/// (wait4's `ru_maxrss` would count the parent's pages at the spawn).
fn measured(cmd: &mut Command, what: &str) -> Result<Measured, String> {
    let t = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("cannot run {what}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let status_file = format!("/proc/{pid}/status");
    let mut hwm_kib = 0u64;
    let mut status = 0;
    // SAFETY: a zeroed `rusage` is valid; wait4 fills it for our own child.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            hwm_kib = hwm_kib.max(kib);
        }
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut u) };
        if r == pid {
            break;
        }
        if r != 0 {
            return Err(format!("wait4 for {what} failed"));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let wall = t.elapsed().as_secs_f64();
    if !ExitStatus::from_raw(status).success() {
        return Err(format!("{what} failed: {}", ExitStatus::from_raw(status)));
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Measured {
        wall,
        cpu: secs(u.ru_utime) + secs(u.ru_stime),
        max_rss_mib: hwm_kib as f64 / 1024.0,
    })
}

/// The best (least CPU) of `n` runs of `make()`, `between` run before each.
fn best_of(
    n: usize,
    what: &str,
    mut between: impl FnMut() -> Result<(), String>,
    mut make: impl FnMut() -> Command,
) -> Result<Measured, String> {
    let mut best: Option<Measured> = None;
    for _ in 0..n {
        between()?;
        let m = measured(&mut make(), what)?;
        if best.is_none_or(|b| m.cpu < b.cpu) {
            best = Some(m);
        }
    }
    best.ok_or_else(|| "no run".into())
}

/// Writes the volume unless it is there with the right size.
fn make_volume(dir: &Path, mib: usize) -> Result<(), String> {
    let big = mib.div_ceil(64) << 20;
    let marker = dir.join(".size");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(&mib.to_string()) {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("sessions")).map_err(|e| e.to_string())?;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut buf = vec![0u8; big];
    for i in 0..64 {
        for c in buf.chunks_mut(8) {
            c.copy_from_slice(&next().to_le_bytes()[..c.len()]);
        }
        std::fs::write(dir.join(format!("sessions/rollout-{i:02}.jsonl")), &buf)
            .map_err(|e| e.to_string())?;
    }
    for i in 0..256 {
        std::fs::write(dir.join(format!("small-{i:03}.json")), &buf[..4096])
            .map_err(|e| e.to_string())?;
    }
    std::fs::write(&marker, mib.to_string()).map_err(|e| e.to_string())
}

fn run_inner(args: &[String]) -> Result<(), String> {
    let mib: usize = match args {
        [] => 1024,
        [flag, n] if flag == "--mib" => n.parse().map_err(|_| format!("bad --mib {n}"))?,
        _ => return Err("usage: cargo xtask bench-backup [--mib N]".into()),
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--release", "--quiet", "--bin", "vaultref"])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("cargo build --release --bin vaultref failed".into());
    }
    let bin = root.join("target/release/vaultref");
    let work = root.join("target/bench-backup");
    let vol = work.join("vol");
    make_volume(&vol, mib)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let vault = runtime
        .block_on(TestVault::dev())
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(async {
            let a = vault.admin();
            a.call(
                "POST",
                "sys/mounts/transit",
                Some(serde_json::json!({"type": "transit"})),
            )
            .await?;
            a.call("POST", "transit/keys/codex", None).await
        })
        .map_err(|e| e.to_string())?;
    let token_file = vault
        .write_file(
            "bench-token",
            secrecy::ExposeSecret::expose_secret(vault.root_token()),
        )
        .map_err(|e| e.to_string())?;
    let (store, to, tar_file, tar_to) = (
        work.join("store"),
        work.join("restored"),
        work.join("plain.tar"),
        work.join("tar-restored"),
    );
    let codex = |args: &[&Path]| {
        let mut c = Command::new(&bin);
        c.stdout(std::process::Stdio::null())
            .env("VAULT_ADDR", vault.addr())
            .env("VAULT_AUTH_METHOD", "token")
            .env("VAULT_TOKEN_FILE", &token_file)
            .env_remove("VAULT_TOKEN")
            .arg("codex")
            .args(args);
        c
    };
    let p = Path::new;
    measured(
        &mut codex(&[
            p("claim"),
            p("--shard"),
            p("bench"),
            p("--worker-id"),
            p("w1"),
        ]),
        "codex claim",
    )?;
    let clear = |d: &Path| {
        let _ = std::fs::remove_dir_all(d);
        let _ = std::fs::remove_file(d);
        Ok(())
    };
    let backup = best_of(
        3,
        "codex backup",
        || clear(&store),
        || {
            codex(&[
                p("backup"),
                p("--shard"),
                p("bench"),
                p("--worker-id"),
                p("w1"),
                p("--volume"),
                &vol,
                p("--store"),
                &store,
            ])
        },
    )?;
    let restore = best_of(
        3,
        "codex restore",
        || clear(&to),
        || {
            codex(&[
                p("restore"),
                p("--shard"),
                p("bench"),
                p("--worker-id"),
                p("w1"),
                p("--to"),
                &to,
                p("--store"),
                &store,
            ])
        },
    )?;
    let tar_c = best_of(
        3,
        "tar -c",
        || clear(&tar_file),
        || {
            let mut c = Command::new("tar");
            c.arg("-C").arg(&vol).arg("-cf").arg(&tar_file).arg(".");
            c
        },
    )?;
    let tar_x = best_of(
        3,
        "tar -x",
        || {
            clear(&tar_to)?;
            std::fs::create_dir_all(&tar_to).map_err(|e| e.to_string())
        },
        || {
            let mut c = Command::new("tar");
            c.arg("-C").arg(&tar_to).arg("-xf").arg(&tar_file);
            c
        },
    )?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "volume {mib} MiB (64 files + 256 small), best of 3 by CPU time; load {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<28} {:>8} {:>8} {:>12} {:>12} {:>10}",
        "", "wall s", "CPU s", "MiB/CPU-s", "MiB/wall-s", "peak MiB"
    );
    let row = |name: &str, m: Measured| {
        println!(
            "{name:<28} {:>8.2} {:>8.2} {:>12.0} {:>12.0} {:>10.1}",
            m.wall,
            m.cpu,
            mib as f64 / m.cpu,
            mib as f64 / m.wall,
            m.max_rss_mib
        );
    };
    row("vaultref codex backup", backup);
    row("tar -c (no encryption)", tar_c);
    row("vaultref codex restore", restore);
    row("tar -x (no verification)", tar_x);
    println!(
        "CPU ratio vaultref/tar: backup {:.2}x, restore {:.2}x",
        backup.cpu / tar_c.cpu,
        restore.cpu / tar_x.cpu
    );
    for d in [&store, &to, &tar_file, &tar_to] {
        clear(d)?;
    }
    Ok(())
}
