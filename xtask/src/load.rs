//! `cargo xtask load [--jobs M] [--naive-jobs N] [--levels 1,8,64]`: a worker
//! fleet against a
//! 3-node OpenBao raft cluster (HTTPS), with a rotation and a leader kill halfway
//! through every run, side by side with the naive worker a user writes
//! first.
//!
//! A *job* is one resolution of the job's secret, the part of a worker's job
//! that meets Vault. At concurrency `c`:
//!
//! - **vaultref**: `c` long-lived reference adapters (`vaultref-adapter`,
//!   the conformance protocol's `resolve`), each logged in once with AppRole
//!   and given every node's address, share `M` jobs;
//! - **naive**: `c` threads, each job a fresh `bao kv get -field=token`
//!   process with the token in `BAO_TOKEN` and one node's address (a
//!   standby's, so that killing the leader does not simply cut it off).
//!
//! Halfway through each run the harness writes a new version of the secret
//! and kills the leader (`SIGKILL`); the killed node is restarted before the
//! next run. Every answer must be the old or the new value, and a job
//! started after the new one was acknowledged must not get the old one
//! (*stale*: a standby's own read). Reported per run: jobs/s (wall),
//! resolution latency p50/p99, failed jobs, stale and wrong values,
//! logins and renewals (from every node's audit log), and the failover
//! window (from the kill to the first success after it); *steady* jobs/s
//! leave the window out (runs are short, so it would dominate).
//!
//! `--naive-jobs` (default: `--jobs`) gives the naive worker fewer jobs:
//! its rate does not depend on the run's length (it never waits for a
//! leader), and at 9-16 jobs/s a run as long as vaultref's takes minutes.
//! Runs of vaultref long enough that the one failover window is not most
//! of them (`--jobs 6000`) are what a fleet sees, where failovers are rare.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use vaultref::testing::TestCluster;
use vaultref::vault::FingerprintKey;

pub fn run(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What one run measured.
#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    failed: usize,
    wrong: usize,
    /// The old value, from a job started after the rotation was acknowledged.
    stale: usize,
    wall: Duration,
    window: Option<Duration>,
    logins: usize,
    renewals: usize,
}

/// One job's outcome.
enum Outcome {
    /// The value before the rotation.
    Old,
    /// The value after it.
    New,
    /// No value.
    Failed,
    /// Some other value.
    Wrong,
}

struct Shared {
    next: AtomicUsize,
    jobs: usize,
    /// (started, took, outcome) of every job.
    results: Mutex<Vec<(Instant, Duration, Outcome)>>,
}

fn run_inner(args: &[String]) -> Result<(), String> {
    let mut jobs = 600usize;
    let mut naive_jobs = None;
    let mut levels = vec![1usize, 8, 64];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--jobs" => {
                jobs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--jobs needs a number")?
            }
            "--naive-jobs" => {
                naive_jobs = Some(
                    it.next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("--naive-jobs needs a number")?,
                )
            }
            "--levels" => {
                levels = it
                    .next()
                    .ok_or("--levels needs a list")?
                    .split(',')
                    .map(|v| v.trim().parse().map_err(|_| format!("bad level {v}")))
                    .collect::<Result<_, _>>()?
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: cargo xtask load [--jobs M] [--naive-jobs N] [--levels 1,8,64]"
                ));
            }
        }
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "vaultref-conformance",
            "--bin",
            "vaultref-adapter",
        ])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("cargo build --release --bin vaultref-adapter failed".into());
    }
    let adapter = root.join("target/release/vaultref-adapter");
    let naive_jobs: usize = naive_jobs.unwrap_or(jobs);
    let bao = vaultref::testing::vault::bao_binary().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    eprintln!("starting a 3-node cluster...");
    let mut cluster = rt
        .block_on(TestCluster::start_with_binary(&bao, 3))
        .map_err(|e| e.to_string())?;
    let work = tempfile::Builder::new()
        .prefix("vaultref-load-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let (role_id_file, secret_id_file, token) = rt.block_on(provision(&cluster, work.path()))?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{jobs} jobs per run ({naive_jobs} for the naive worker); a rotation and a leader kill halfway; 3-node OpenBao raft cluster on loopback; load {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<9} {:>5} {:>9} {:>9} {:>8} {:>8} {:>7} {:>6} {:>6} {:>7} {:>9} {:>10}",
        "worker",
        "conc",
        "jobs/s",
        "steady/s",
        "p50 ms",
        "p99 ms",
        "failed",
        "stale",
        "wrong",
        "logins",
        "renewals",
        "window ms"
    );
    let mut value = 0u32;
    for &c in &levels {
        for naive in [false, true] {
            value += 1;
            let old = secret_value(value);
            rt.block_on(write_secret(&cluster, &old))
                .map_err(|e| e.to_string())?;
            let before = audit_counts(&cluster);
            let r = if naive {
                let leader = rt
                    .block_on(cluster.wait_leader(Duration::from_secs(30)))
                    .map_err(|e| e.to_string())?;
                let standby = cluster.addrs()[(leader + 1) % 3].clone();
                let ca = cluster.ca_cert().unwrap_or_default();
                run_naive(
                    &mut cluster,
                    &rt,
                    &bao,
                    &standby,
                    &ca,
                    &token,
                    c,
                    naive_jobs,
                    value,
                )?
            } else {
                let cfg = AdapterConfig {
                    program: adapter.clone(),
                    addrs: cluster.addrs(),
                    ca_cert: cluster.ca_cert(),
                    role_id_file: role_id_file.clone(),
                    secret_id_file: secret_id_file.clone(),
                    work: work.path().to_path_buf(),
                };
                run_vaultref(&mut cluster, &rt, &cfg, c, jobs, value)?
            };
            let after = audit_counts(&cluster);
            let r = Run {
                logins: after.0 - before.0,
                renewals: after.1 - before.1,
                ..r
            };
            let (name, n) = if naive {
                ("naive", naive_jobs)
            } else {
                ("vaultref", jobs)
            };
            print_row(name, c, n, &r);
            // The killed node back, and a leader, before the next run.
            for i in 0..3 {
                if !cluster.node(i).is_running() {
                    rt.block_on(cluster.restart(i)).map_err(|e| e.to_string())?;
                }
            }
            rt.block_on(cluster.wait_leader(Duration::from_secs(30)))
                .map_err(|e| e.to_string())?;
            value += 1;
        }
    }
    Ok(())
}

fn secret_value(n: u32) -> String {
    format!("ghp_FAKEloadFAKEloadFAKEloadFAKElo{n:04}")
}

async fn provision(
    c: &TestCluster,
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf, SecretString), String> {
    let a = c.admin();
    let e = |e: vaultref::testing::TestSupportError| e.to_string();
    a.put_read_policy("load", "kv", &["load/*"])
        .await
        .map_err(e)?;
    a.ensure_auth("approle", "approle").await.map_err(e)?;
    let role_id = a
        .approle_role("approle", "load", &["load"], "10m", "1h")
        .await
        .map_err(e)?;
    let secret_id = a.approle_secret_id("approle", "load").await.map_err(e)?;
    let write = |name: &str, v: &str| -> Result<std::path::PathBuf, String> {
        let p = dir.join(name);
        std::fs::write(&p, v).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    };
    let rf = write("role_id", &role_id)?;
    let sf = write("secret_id", secret_id.expose_secret())?;
    let token = a.create_token(&["load"], "1h", true).await.map_err(e)?;
    Ok((rf, sf, token))
}

async fn write_secret(
    c: &TestCluster,
    value: &str,
) -> Result<(), vaultref::testing::TestSupportError> {
    let leader = c.wait_leader(Duration::from_secs(30)).await?;
    c.node(leader)
        .admin()
        .kv_write("kv", "load/app", json!({"token": value}))
        .await
        .map(drop)
}

/// (logins, renewals) in every node's audit log so far.
fn audit_counts(c: &TestCluster) -> (usize, usize) {
    let entries = c.audit_entries().unwrap_or_default();
    let count = |part: &str| {
        entries
            .iter()
            .filter(|e| e.is_request() && e.path().contains(part))
            .count()
    };
    (count("auth/approle/login"), count("auth/token/renew"))
}

fn print_row(worker: &str, c: usize, jobs: usize, r: &Run) {
    let mut l = r.latencies.clone();
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{worker:<9} {c:>5} {:>9.0} {:>9.0} {:>8.1} {:>8.1} {:>7} {:>6} {:>6} {:>7} {:>9} {:>10}",
        jobs as f64 / r.wall.as_secs_f64(),
        // Outside the failover window: the fleet's own speed.
        jobs as f64
            / r.wall
                .saturating_sub(r.window.unwrap_or_default())
                .as_secs_f64(),
        pct(0.5),
        pct(0.99),
        r.failed,
        r.stale,
        r.wrong,
        r.logins,
        r.renewals,
        r.window
            .map_or("-".to_string(), |w| w.as_millis().to_string())
    );
}

/// Runs `jobs` jobs on `c` threads calling `job(thread, index)`; kills the
/// leader (after writing the new value) once half the jobs are taken.
fn drive(
    cluster: &mut TestCluster,
    rt: &tokio::runtime::Runtime,
    c: usize,
    jobs: usize,
    new_value: &str,
    job: Arc<dyn Fn(usize, usize) -> Outcome + Send + Sync>,
) -> Result<Run, String> {
    let shared = Arc::new(Shared {
        next: AtomicUsize::new(0),
        jobs,
        results: Mutex::new(Vec::with_capacity(jobs)),
    });
    let started = Instant::now();
    let mut threads = Vec::new();
    for t in 0..c {
        let (shared, job) = (shared.clone(), job.clone());
        threads.push(std::thread::spawn(move || {
            loop {
                let i = shared.next.fetch_add(1, Ordering::SeqCst);
                if i >= shared.jobs {
                    break;
                }
                let t0 = Instant::now();
                let o = job(t, i);
                let took = t0.elapsed();
                shared.results.lock().unwrap().push((t0, took, o));
            }
        }));
    }
    while shared.next.load(Ordering::SeqCst) < jobs / 2 {
        std::thread::sleep(Duration::from_millis(2));
    }
    rt.block_on(write_secret(cluster, new_value))
        .map_err(|e| e.to_string())?;
    let acknowledged = Instant::now();
    let leader = rt
        .block_on(cluster.wait_leader(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    rt.block_on(cluster.kill(leader));
    let killed = Instant::now();
    for t in threads {
        let _ = t.join();
    }
    let wall = started.elapsed();
    let results = std::mem::take(&mut *shared.results.lock().unwrap());
    let mut r = Run {
        wall,
        ..Run::default()
    };
    let mut first_after: Option<Instant> = None;
    for (started, took, o) in results {
        r.latencies.push(took);
        let done = started + took;
        match o {
            Outcome::Old if started > acknowledged => r.stale += 1,
            Outcome::Old | Outcome::New => {
                if done > killed && first_after.is_none_or(|f| done < f) {
                    first_after = Some(done);
                }
            }
            Outcome::Failed => r.failed += 1,
            Outcome::Wrong => r.wrong += 1,
        }
    }
    r.window = first_after.map(|f| f - killed);
    Ok(r)
}

struct AdapterConfig {
    program: std::path::PathBuf,
    addrs: Vec<String>,
    ca_cert: Option<std::path::PathBuf>,
    role_id_file: std::path::PathBuf,
    secret_id_file: std::path::PathBuf,
    work: std::path::PathBuf,
}

struct Adapter {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    id: u64,
}

impl Adapter {
    fn request(&mut self, mut req: Value) -> Result<Value, String> {
        self.id += 1;
        req["id"] = json!(self.id);
        writeln!(self.stdin, "{req}").map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&line).map_err(|e| format!("adapter reply: {e}"))
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_vaultref(
    cluster: &mut TestCluster,
    rt: &tokio::runtime::Runtime,
    cfg: &AdapterConfig,
    c: usize,
    jobs: usize,
    value: u32,
) -> Result<Run, String> {
    let key_hex = "6b".repeat(32);
    let key = FingerprintKey::from_hex(&key_hex).map_err(|e| e.to_string())?;
    let old = key.fingerprint(&SecretString::from(secret_value(value)));
    let new = key.fingerprint(&SecretString::from(secret_value(value + 1)));
    let mut adapters = Vec::new();
    for i in 0..c {
        let dir = cfg.work.join(format!("w{i}"));
        std::fs::create_dir_all(dir.join("tmp")).map_err(|e| e.to_string())?;
        let mut child = Command::new(&cfg.program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env("TMPDIR", dir.join("tmp"))
            .spawn()
            .map_err(|e| format!("{}: {e}", cfg.program.display()))?;
        let mut a = Adapter {
            stdin: child.stdin.take().ok_or("stdin")?,
            stdout: BufReader::new(child.stdout.take().ok_or("stdout")?),
            child,
            id: 0,
        };
        a.request(
            json!({"op": "hello", "protocol": 1, "suite": {"name": "xtask-load", "version": "0"}}),
        )?;
        let r = a.request(json!({"op": "configure",
            "vault": {"addr": cfg.addrs[0], "cluster_addrs": &cfg.addrs[1..], "ca_cert": cfg.ca_cert,
                      "auth": {"method": "approle", "mount": "approle",
                               "role_id_file": cfg.role_id_file, "secret_id_file": cfg.secret_id_file}},
            "fingerprint_key": key_hex, "work_dir": dir, "temp_dir": dir.join("tmp")}))?;
        if r["outcome"] != "configured" {
            return Err(format!("configure: {r}"));
        }
        adapters.push(Mutex::new(a));
    }
    let adapters = Arc::new(adapters);
    let job = {
        let adapters = adapters.clone();
        Arc::new(move |t: usize, i: usize| {
            let mut a = adapters[t].lock().unwrap();
            match a.request(json!({"op": "resolve", "ref": "vault://kv/load/app#token", "job_id": format!("job-{i}")})) {
                Ok(r) if r["fingerprint"] == old.as_str() => Outcome::Old,
                Ok(r) if r["fingerprint"] == new.as_str() => Outcome::New,
                Ok(r) if r["outcome"] == "resolved" => Outcome::Wrong,
                _ => Outcome::Failed,
            }
        })
    };
    drive(cluster, rt, c, jobs, &secret_value(value + 1), job)
}

#[allow(clippy::too_many_arguments)]
fn run_naive(
    cluster: &mut TestCluster,
    rt: &tokio::runtime::Runtime,
    bao: &std::path::Path,
    addr: &str,
    ca: &std::path::Path,
    token: &SecretString,
    c: usize,
    jobs: usize,
    value: u32,
) -> Result<Run, String> {
    let (old, new) = (secret_value(value), secret_value(value + 1));
    let (bao, addr, token) = (bao.to_path_buf(), addr.to_string(), token.clone());
    let ca = ca.to_path_buf();
    let job = Arc::new(move |_t: usize, _i: usize| {
        let out = Command::new(&bao)
            .args(["kv", "get", "-mount=kv", "-field=token", "load/app"])
            .env("BAO_ADDR", &addr)
            .env("BAO_CACERT", &ca)
            .env("BAO_TOKEN", token.expose_secret())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
                if v == old {
                    Outcome::Old
                } else if v == new {
                    Outcome::New
                } else {
                    Outcome::Wrong
                }
            }
            _ => Outcome::Failed,
        }
    });
    drive(cluster, rt, c, jobs, &secret_value(value + 1), job)
}
