//! Test support, behind the cargo feature `testing`: real servers for
//! integration tests, shared by this crate's tests and the conformance crate
//! (`vaultref = { features = ["testing"] }`) so neither copies the other.
//!
//! Nothing here is a mock. [`vault::TestVault`] runs a real OpenBao server
//! process on a loopback port; [`admin::Admin`] is the one root-token client
//! for any Vault server (the one `TestVault` starts, a container, someone's
//! own); [`git_server::GitServer`] runs `git http-backend` behind Basic auth;
//! [`relay::Relay`] sits in front of a real Vault and lines up concurrent
//! reads, so that a race between workers happens every time.
//!
//! The small helpers every server launcher needs ([`free_port`],
//! [`random_hex`], [`audit_config`]) live here, once.

pub mod admin;
pub mod audit;
pub mod cluster;
pub mod git_server;
pub mod hostile;
mod http1;
pub mod leak;
pub mod pip;
pub mod relay;
pub mod tls;
pub mod vault;
pub mod vectors;

use std::time::SystemTime;

pub use admin::Admin;
pub use cluster::TestCluster;
pub use vault::TestVault;

/// Test infrastructure failed (no binary, server did not start, an admin
/// call was refused). The message says what to do, and never carries a
/// response body (bodies can echo values).
#[derive(Debug, Clone)]
pub struct TestSupportError(String);

impl std::fmt::Display for TestSupportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TestSupportError {}

impl TestSupportError {
    /// An error with this message (for test support built outside this
    /// crate, such as the conformance harness's container nodes). It must
    /// not carry a secret or a response body.
    pub fn new(msg: impl Into<String>) -> TestSupportError {
        TestSupportError(msg.into())
    }
}

impl From<TestSupportError> for String {
    fn from(e: TestSupportError) -> String {
        e.0
    }
}

pub(crate) fn err(msg: impl Into<String>) -> TestSupportError {
    TestSupportError(msg.into())
}

/// A loopback port free at the moment of asking, chosen at random *below*
/// the kernel's ephemeral range.
///
/// A port the kernel hands out for `bind(0)` comes from the ephemeral range,
/// which is also where every outgoing connection takes its local port; the
/// harness makes thousands of them, so such a port was sometimes taken
/// between the probe and the server's own bind (seen on CI: a raft node's
/// cluster listener, `address already in use`, and the node never joined).
/// Below the range only another listener can take it. Another process can
/// still bind it first, so launchers that can retry do.
pub fn free_port() -> Result<u16, TestSupportError> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    const FLOOR: u16 = 10_000;
    if low > FLOOR + 1_000 {
        for _ in 0..64 {
            let r = u16::from_str_radix(&random_hex(2), 16).unwrap_or(0);
            let port = FLOOR + r % (low - FLOOR);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| err(format!("no free local port: {e}")))
}

/// A fresh random hex string of `bytes` bytes, for root tokens and unique
/// ids; from `/dev/urandom`, else hashed from time, pid and a counter (good
/// enough for a test token, never for a real one).
pub fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        use sha2::Digest;
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let seed = format!(
            "{:?}{}{}",
            SystemTime::now(),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let d = sha2::Sha256::digest(seed.as_bytes());
        buf = d.iter().cycle().take(bytes).copied().collect();
    }
    hex::encode(buf)
}

/// The file audit device declaration for a server config file, writing to
/// `file_path` as the server sees it. Declared in config because OpenBao 2.x
/// refuses to enable audit devices through the API.
///
/// `log_raw`: tokens and values are logged in clear, not HMAC-ed, so that a
/// test (or the conformance harness) learns every token the server issued,
/// including those an implementation obtained itself by logging in, and can
/// look for them in that implementation's output. Only for test servers.
pub fn audit_config(file_path: &str) -> String {
    format!(
        "audit \"file\" \"vaultref\" {{\n  options {{\n    file_path = \"{file_path}\"\n    log_raw = \"true\"\n  }}\n}}\n"
    )
}
