//! The implementation under test as a child process (`spec/protocol.md` §1-2).
//!
//! One [`Iut`] is one process: the harness writes a request line, waits (with a
//! timeout) for one reply line, checks it against `reply.schema.json` and its
//! `id`, and hands back the reply object. Everything the process writes, on
//! stdout and stderr, is kept in [`Captured`] buffers that the scenario's
//! hygiene check scans afterwards; stderr is drained by a background task so a
//! chatty implementation can never block on a full pipe.
//!
//! Protocol breaches (timeouts, junk lines, exits) are the implementation's
//! failures, so they come back as [`Exchange::Broken`], which scenarios turn
//! into `fail`; only failing to *start* the process is the harness's problem.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::verdict::{Failure, Verdict};

/// The protocol version this harness speaks.
pub const PROTOCOL_VERSION: u64 = 1;

/// Most bytes kept per stream; beyond this the stream is still drained but not stored.
const CAPTURE_LIMIT: usize = 16 << 20;

/// How to start the implementation: its program and arguments.
#[derive(Clone, Debug)]
pub struct IutCommand {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Per-request timeout (`run_job` gets three times as long).
    pub timeout: Duration,
}

/// Bytes an implementation wrote on one stream.
#[derive(Clone, Debug, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn push(&self, bytes: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = CAPTURE_LIMIT.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// A copy of everything captured so far.
    pub fn snapshot(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Why an exchange did not produce the operation's reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// The implementation answered `unsupported` (P7).
    Unsupported(String),
    /// The implementation broke the protocol or answered `error` (P5, P8).
    Broken(String),
}

impl From<Exchange> for Verdict {
    fn from(e: Exchange) -> Verdict {
        match e {
            Exchange::Unsupported(m) => Verdict::Unsupported(m),
            Exchange::Broken(m) => Verdict::Fail(Failure::new(
                "protocol.md §1-2: one valid reply per request, in time",
                "a reply that validates against reply.schema.json",
                m,
            )),
        }
    }
}

/// A running implementation.
pub struct Iut {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    timeout: Duration,
    /// What it wrote on stdout (replies).
    pub out: Captured,
    /// What it wrote on stderr (diagnostics).
    pub err: Captured,
    /// Its `hello` reply.
    pub hello: Map<String, Value>,
    dead: bool,
}

fn reply_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(include_str!("../../spec/protocol/reply.schema.json"))
                .expect("reply.schema.json is JSON");
        jsonschema::validator_for(&schema).expect("reply.schema.json is a valid schema")
    })
}

fn request_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(include_str!("../../spec/protocol/request.schema.json"))
                .expect("request.schema.json is JSON");
        jsonschema::validator_for(&schema).expect("request.schema.json is a valid schema")
    })
}

/// Checks a request against `request.schema.json`: the harness holds itself
/// to the schema it publishes (checked on every request in debug builds).
pub fn validate_request(request: &Value) -> Result<(), String> {
    match request_validator().iter_errors(request).next() {
        None => Ok(()),
        Some(e) => Err(format!("at `{}`: {}", e.instance_path(), e)),
    }
}

/// Checks a reply against `reply.schema.json`; the first error, if any.
pub fn validate_reply(reply: &Value) -> Result<(), String> {
    match reply_validator().iter_errors(reply).next() {
        None => Ok(()),
        Some(e) => Err(format!("at `{}`: {}", e.instance_path(), e)),
    }
}

impl Iut {
    /// Starts the implementation in `cwd` with `TMPDIR=tmpdir` and sends `hello`.
    ///
    /// `Err(Verdict::Error)` if the process cannot be started (a harness
    /// problem: wrong path); a broken `hello` is the implementation's failure.
    pub async fn start(cmd: &IutCommand, cwd: &Path, tmpdir: &Path) -> Result<Iut, Verdict> {
        Self::start_with_env(cmd, cwd, tmpdir, &[]).await
    }

    /// [`Iut::start`] with extra environment variables (e.g. a `PATH` with a
    /// recording `git` wrapper in front).
    pub async fn start_with_env(
        cmd: &IutCommand,
        cwd: &Path,
        tmpdir: &Path,
        env: &[(String, std::ffi::OsString)],
    ) -> Result<Iut, Verdict> {
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // P1: no ambient Vault credentials for the implementation to stumble on.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("VAULT_") || k.starts_with("BAO_") {
                command.env_remove(&*k);
            }
        }
        command.env("TMPDIR", tmpdir);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().map_err(|e| {
            Verdict::Error(format!(
                "cannot start the implementation `{}`: {e}",
                cmd.program.display()
            ))
        })?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let err = Captured::default();
        if let Some(mut stderr) = child.stderr.take() {
            let sink = err.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = stderr.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    sink.push(&chunk[..n]);
                }
            });
        }
        let mut iut = Iut {
            child,
            stdin,
            stdout,
            next_id: 0,
            timeout: cmd.timeout,
            out: Captured::default(),
            err,
            hello: Map::new(),
            dead: false,
        };
        let hello = iut
            .request(
                "hello",
                json!({"protocol": PROTOCOL_VERSION,
                       "suite": {"name": "vaultref-conformance", "version": crate::SUITE_VERSION}}),
            )
            .await
            .map_err(Verdict::from)?;
        let version = hello.get("protocol").and_then(Value::as_u64);
        if version != Some(PROTOCOL_VERSION) {
            return Err(Verdict::Fail(Failure::new(
                "protocol.md §3.1: speak protocol 1",
                "protocol 1",
                format!("protocol {}", hello.get("protocol").unwrap_or(&Value::Null)),
            )));
        }
        iut.hello = hello;
        Ok(iut)
    }

    /// The process's peak resident memory (`VmHWM` in `/proc/<pid>/status`),
    /// in KiB, while it runs (Linux; `None` elsewhere or once it exited).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Whether the process broke the protocol and was killed.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// The profiles the implementation claimed in `hello`.
    pub fn profiles(&self) -> Vec<String> {
        self.hello
            .get("profiles")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends `op` with `fields` (a JSON object) and returns the reply object.
    pub async fn request(
        &mut self,
        op: &str,
        fields: Value,
    ) -> Result<Map<String, Value>, Exchange> {
        let timeout = if op == "run_job" {
            self.timeout * 3
        } else {
            self.timeout
        };
        self.request_with_timeout(op, fields, timeout).await
    }

    /// The per-request timeout (`--request-timeout`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// [`Iut::request`] with an explicit timeout.
    pub async fn request_with_timeout(
        &mut self,
        op: &str,
        fields: Value,
        timeout: Duration,
    ) -> Result<Map<String, Value>, Exchange> {
        if self.dead {
            return Err(Exchange::Broken(
                "the implementation already broke the protocol".into(),
            ));
        }
        let result = self.exchange(op, fields, timeout).await;
        if matches!(result, Err(Exchange::Broken(_))) {
            self.dead = true;
            let _ = self.child.start_kill();
        }
        result
    }

    async fn exchange(
        &mut self,
        op: &str,
        fields: Value,
        timeout: Duration,
    ) -> Result<Map<String, Value>, Exchange> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        request.insert("id".into(), json!(id));
        request.insert("op".into(), json!(op));
        let request = Value::Object(request);
        if cfg!(debug_assertions)
            && let Err(e) = validate_request(&request)
        {
            panic!("the harness built a `{op}` request that breaks request.schema.json {e}");
        }
        let mut line = serde_json::to_vec(&request).expect("JSON");
        line.push(b'\n');
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Exchange::Broken("stdin is closed".into()))?;
        if let Err(e) = stdin.write_all(&line).await.and(stdin.flush().await) {
            return Err(Exchange::Broken(format!(
                "could not write the `{op}` request (the process exited?): {e}"
            )));
        }
        let mut raw = Vec::new();
        let read = tokio::time::timeout(timeout, self.stdout.read_until(b'\n', &mut raw)).await;
        self.out.push(&raw);
        match read {
            Err(_) => {
                return Err(Exchange::Broken(format!(
                    "no reply to `{op}` within {} s",
                    timeout.as_secs_f32()
                )));
            }
            Ok(Err(e)) => {
                return Err(Exchange::Broken(format!(
                    "reading the reply to `{op}`: {e}"
                )));
            }
            Ok(Ok(0)) => {
                let status = self.child.try_wait().ok().flatten();
                return Err(Exchange::Broken(format!(
                    "the process closed stdout before replying to `{op}` (exit: {})",
                    status.map_or("still running".to_string(), |s| s.to_string())
                )));
            }
            Ok(Ok(_)) => {}
        }
        let reply: Value = serde_json::from_slice(&raw).map_err(|e| {
            // Never echo the line: it could hold anything, secrets included.
            Exchange::Broken(format!("the reply to `{op}` is not JSON: {e}"))
        })?;
        validate_reply(&reply)
            .map_err(|e| Exchange::Broken(format!("the reply to `{op}` breaks the schema {e}")))?;
        let Value::Object(reply) = reply else {
            unreachable!("the schema requires an object")
        };
        if reply.get("id").and_then(Value::as_u64) != Some(id) {
            return Err(Exchange::Broken(format!(
                "the reply to `{op}` carries id {}, not {id}",
                reply.get("id").unwrap_or(&Value::Null)
            )));
        }
        let message = || {
            reply
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        match reply.get("reply").and_then(Value::as_str) {
            Some(r) if r == op => Ok(reply),
            Some("unsupported") => Err(Exchange::Unsupported(format!(
                "`{op}` unsupported: {}",
                message()
            ))),
            Some("error") => Err(Exchange::Broken(format!(
                "`{op}` answered `error`: {}",
                message()
            ))),
            other => Err(Exchange::Broken(format!(
                "the reply to `{op}` is `{}`",
                other.unwrap_or("?")
            ))),
        }
    }

    /// Sends `shutdown` and waits up to 5 s for the process to exit; kills it
    /// otherwise. Returns a protocol breach (no reply, no exit within 5 s, a
    /// non-zero exit status), if any.
    pub async fn shutdown(mut self) -> Option<String> {
        let mut problem = None;
        if !self.dead
            && let Err(Exchange::Broken(m)) = self.request("shutdown", json!({})).await
        {
            problem = Some(m);
        }
        drop(self.stdin.take());
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => {
                problem.get_or_insert_with(|| format!("exited with {status} after `shutdown`"));
            }
            _ => {
                let _ = self.child.kill().await;
                problem.get_or_insert_with(|| "did not exit within 5 s of `shutdown`".into());
            }
        }
        // Let the stderr task drain what is left.
        tokio::time::sleep(Duration::from_millis(20)).await;
        problem
    }
}
