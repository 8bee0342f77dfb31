//! A relay in front of a real Vault that lines up concurrent reads, so that
//! a race between workers is a race every time.
//!
//! Two processes asked to claim a shard "at the same moment" often do not
//! overlap on a loaded machine: one reads and writes before the other has
//! read, and an implementation that reads, decides and writes without
//! check-and-set passes by luck (it did, on CI). [`Relay`] forwards every
//! request to the real server unchanged, except that it holds the first
//! `GET` of each path under its [`Rendezvous`] prefix until `parties` such
//! reads of that path have arrived, or `wait` has passed; and then holds
//! their answers until Vault has answered all of them. So all readers see
//! the same version before any of them can write: the interleaving
//! check-and-set exists for. A correct implementation then has one write
//! refused and reads again (later reads of a path go straight through); a
//! check-then-act one lets every write win. [`Relay::short`] counts the
//! paths whose readers did not all come in time: there the race was not
//! staged, and a caller should say so rather than pass.
//!
//! Reads are counted, not readers: a client that gave up and read again
//! within `wait` would count twice (the harness's clients wait 5 s).
//!
//! One request per connection: the relay reads a request (see
//! [`super::http1`]), sends it upstream with `Connection: close`, and hands
//! back whatever the server answered, byte for byte. HTTP/1.1 only (no
//! ALPN), over HTTPS on either side when given certificates. It records
//! nothing: requests carry tokens.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::http1::{Request, read_request};
use super::tls::TlsFiles;
use super::{TestSupportError, err};

/// The most of an upstream answer that is relayed.
const MAX_ANSWER: usize = 16 << 20;

/// Which reads the relay lines up.
#[derive(Clone, Debug)]
pub struct Rendezvous {
    /// Vault paths (without `/v1/`) starting with this are held.
    pub prefix: String,
    /// How many reads of one path are let through together.
    pub parties: usize,
    /// The longest a read is held waiting for the others.
    pub wait: Duration,
}

/// Where requests go.
struct Upstream {
    addr: SocketAddr,
    name: rustls::pki_types::ServerName<'static>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// One path's meeting point.
#[derive(Default)]
struct Gate {
    /// Reads held so far (until the gate opens).
    arrived: usize,
    /// The reads let through together: their answers wait for each other.
    open: Option<usize>,
    /// Answers of those reads that Vault has given.
    answered: usize,
}

struct Shared {
    upstream: Upstream,
    rendezvous: Rendezvous,
    gates: Mutex<HashMap<String, Gate>>,
    moved: Condvar,
    met: AtomicUsize,
    short: AtomicUsize,
    stop: AtomicBool,
}

/// The relay. Stops accepting when dropped.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    https: bool,
}

impl Relay {
    /// Starts on a free loopback port, relaying to `upstream`
    /// (`http://host[:port]` or `https://host[:port]`, whose certificate
    /// must chain to `upstream_ca`, or to the platform's roots without it).
    /// With `tls`, the relay itself serves HTTPS with that certificate.
    pub fn start(
        upstream: &str,
        upstream_ca: Option<&Path>,
        tls: Option<&TlsFiles>,
        rendezvous: Rendezvous,
    ) -> Result<Relay, TestSupportError> {
        let (https_up, hostport) = match upstream.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            _ => return Err(err(format!("relay: upstream `{upstream}` is not a URL"))),
        };
        let hostport = hostport.split('/').next().unwrap_or_default();
        // `[v6]:port`, `host:port`, or a host alone (the scheme's port).
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, p.parse().ok()),
            _ => (hostport, Some(if https_up { 443 } else { 80 })),
        };
        let port: u16 = port.ok_or_else(|| err(format!("relay: bad port in `{upstream}`")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addr = (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| err(format!("relay: cannot resolve `{host}`")))?;
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| err(format!("relay: `{host}`: {e}")))?;
        let up_tls = match https_up {
            false => None,
            true => Some(super::tls::client_config(upstream_ca)?),
        };
        let server_tls = tls.map(super::tls::server_config).transpose()?;
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| err(format!("relay: bind: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| err(format!("relay: {e}")))?;
        let shared = Arc::new(Shared {
            upstream: Upstream {
                addr,
                name,
                tls: up_tls,
            },
            rendezvous,
            gates: Mutex::default(),
            moved: Condvar::new(),
            met: AtomicUsize::new(0),
            short: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let https = server_tls.is_some();
        super::http1::serve_connections(
            listener,
            server_tls,
            (Duration::from_secs(30), Duration::from_secs(30)),
            Arc::clone(&shared),
            |s| s.stop.load(Ordering::SeqCst),
            |conn, s| relay(conn, s),
        );
        Ok(Relay {
            addr: local,
            shared,
            https,
        })
    }

    /// `http://127.0.0.1:<port>` (`https://` when serving TLS).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// How many paths saw all their parties meet.
    pub fn met(&self) -> usize {
        self.shared.met.load(Ordering::SeqCst)
    }

    /// How many paths had a read give up waiting for the others: races
    /// that were not staged.
    pub fn short(&self) -> usize {
        self.shared.short.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

impl Shared {
    fn gates(&self) -> std::sync::MutexGuard<'_, HashMap<String, Gate>> {
        self.gates.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on `moved` until `done` holds for the gate of `path` or
    /// `deadline` passes; returns whether `done` held.
    fn wait_for<'a>(
        &self,
        mut gates: std::sync::MutexGuard<'a, HashMap<String, Gate>>,
        path: &str,
        deadline: Instant,
        done: impl Fn(&Gate) -> bool,
    ) -> (std::sync::MutexGuard<'a, HashMap<String, Gate>>, bool) {
        loop {
            if gates.get(path).is_some_and(&done) {
                return (gates, true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (gates, false);
            }
            gates = self
                .moved
                .wait_timeout(gates, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Holds a read of `path` until its parties are all there (or the wait
    /// is over). Returns whether this read is one of those let through
    /// together (its answer then waits for theirs); later reads pass.
    fn arrive(&self, path: &str) -> bool {
        let parties = self.rendezvous.parties;
        let mut gates = self.gates();
        let gate = gates.entry(path.to_string()).or_default();
        if gate.open.is_some() {
            return false;
        }
        gate.arrived += 1;
        if gate.arrived >= parties {
            gate.open = Some(gate.arrived);
            self.met.fetch_add(1, Ordering::SeqCst);
            self.moved.notify_all();
            return true;
        }
        let deadline = Instant::now() + self.rendezvous.wait;
        let (mut gates, met) = self.wait_for(gates, path, deadline, |g| g.open.is_some());
        if !met {
            // The others are not coming: let those here through.
            let gate = gates.entry(path.to_string()).or_default();
            gate.open = Some(gate.arrived);
            self.short.fetch_add(1, Ordering::SeqCst);
            self.moved.notify_all();
        }
        true
    }

    /// Counts the answer to one of the reads let through together, and
    /// holds it until all of theirs are in (or the wait is over).
    fn answered(&self, path: &str) {
        let mut gates = self.gates();
        let gate = gates.entry(path.to_string()).or_default();
        gate.answered += 1;
        self.moved.notify_all();
        let deadline = Instant::now() + self.rendezvous.wait;
        let _ = self.wait_for(gates, path, deadline, |g| g.answered >= g.open.unwrap_or(0));
    }
}

fn relay(mut conn: impl Read + Write, s: &Shared) {
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    let path = req.vault_path();
    let together = req.method == "GET" && path.starts_with(&s.rendezvous.prefix) && s.arrive(path);
    let answer = forward(&req, &s.upstream);
    if together {
        s.answered(path);
    }
    let answer = answer.unwrap_or_else(|e| {
        let body = format!(r#"{{"errors":["relay: {e}"]}}"#);
        format!(
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    let _ = conn.write_all(&answer);
    let _ = conn.flush();
}

/// Sends `req` upstream on a connection of its own and returns the whole
/// answer.
fn forward(req: &Request, up: &Upstream) -> Result<Vec<u8>, String> {
    let mut out = format!("{} {} HTTP/1.1\r\n", req.method, req.target).into_bytes();
    for line in &req.headers {
        let name = line.split(':').next().unwrap_or("").trim();
        // Hop-by-hop headers and framing are the relay's own. `Expect`
        // too: the whole body is read before anything is sent on.
        let hop = [
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "te",
            "upgrade",
            "content-length",
            "expect",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h));
        if !hop {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            req.body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&req.body);
    let tcp = TcpStream::connect_timeout(&up.addr, Duration::from_secs(5))
        .map_err(|e| format!("upstream: {e}"))?;
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(30)));
    match &up.tls {
        None => exchange(tcp, &out),
        Some(config) => {
            let tls = rustls::ClientConnection::new(Arc::clone(config), up.name.clone())
                .map_err(|e| format!("upstream TLS: {e}"))?;
            exchange(rustls::StreamOwned::new(tls, tcp), &out)
        }
    }
}

/// Writes `request` and reads the answer up to the end of the stream.
fn exchange(mut conn: impl Read + Write, request: &[u8]) -> Result<Vec<u8>, String> {
    conn.write_all(request)
        .and_then(|()| conn.flush())
        .map_err(|e| format!("upstream: {e}"))?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) if answer.len() + n <= MAX_ANSWER => answer.extend_from_slice(&chunk[..n]),
            Ok(_) => return Err("upstream answer too big".into()),
            // A server may close without TLS's close_notify once it has
            // answered (`Connection: close`): the answer is complete.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {
                break;
            }
            Err(e) => return Err(format!("upstream: {e}")),
        }
    }
    if answer.is_empty() {
        return Err("upstream closed without answering".into());
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::super::hostile::{Answer, HostileVault};
    use super::*;

    /// A relay to `vault` lining up two reads under `kv/data/race-`.
    fn relay_to(vault: &HostileVault, wait: Duration) -> Relay {
        Relay::start(
            &vault.url(),
            None,
            None,
            Rendezvous {
                prefix: "kv/data/race-".into(),
                parties: 2,
                wait,
            },
        )
        .expect("relay")
    }

    fn get(url: &str, path: &str) -> (Instant, String) {
        let addr = url.trim_start_matches("http://");
        let mut c = TcpStream::connect(addr).expect("connect");
        write!(c, "GET /v1/{path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let mut answer = String::new();
        c.read_to_string(&mut answer).expect("read");
        (Instant::now(), answer)
    }

    #[test]
    fn the_first_reads_of_a_path_wait_for_each_other_and_later_ones_do_not() {
        let vault = HostileVault::start(&[
            (
                "kv/data/race-1",
                Answer::Json(404, r#"{"errors":[]}"#.into()),
            ),
            ("kv/data/other", Answer::Json(200, r#"{"data":{}}"#.into())),
        ])
        .expect("upstream");
        let relay = relay_to(&vault, Duration::from_secs(20));
        let url = relay.url();
        let first = std::thread::spawn({
            let url = url.clone();
            move || get(&url, "kv/data/race-1")
        });
        // Outside the prefix: not held.
        let (_, other) = get(&url, "kv/data/other");
        assert!(other.starts_with("HTTP/1.1 200"), "{other}");
        std::thread::sleep(Duration::from_millis(300));
        assert!(!first.is_finished(), "the first read came back alone");
        let second_sent = Instant::now();
        let (_, second) = get(&url, "kv/data/race-1");
        let (first_back, first) = first.join().expect("first");
        assert!(first_back >= second_sent);
        for a in [&first, &second] {
            assert!(a.starts_with("HTTP/1.1 404"), "{a}");
        }
        assert_eq!((relay.met(), relay.short()), (1, 0));
        // A third read (a loser reading again) passes at once.
        let t = Instant::now();
        let (_, third) = get(&url, "kv/data/race-1");
        assert!(third.starts_with("HTTP/1.1 404") && t.elapsed() < Duration::from_secs(5));
        let seen = vault.requests();
        assert_eq!(
            seen.iter().filter(|(_, p)| p == "kv/data/race-1").count(),
            3
        );
    }

    #[test]
    fn a_read_whose_partner_never_comes_goes_through_after_the_wait() {
        let vault = HostileVault::start(&[("kv/data/race-9", Answer::Json(200, "{}".into()))])
            .expect("upstream");
        let relay = relay_to(&vault, Duration::from_millis(400));
        let t = Instant::now();
        let (back, answer) = get(&relay.url(), "kv/data/race-9");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(back - t >= Duration::from_millis(400));
        assert_eq!((relay.met(), relay.short()), (0, 1));
    }

    #[test]
    fn an_unreachable_upstream_is_a_502() {
        let port = super::super::free_port().expect("port");
        let relay = Relay::start(
            &format!("http://127.0.0.1:{port}"),
            None,
            None,
            Rendezvous {
                prefix: "none/".into(),
                parties: 2,
                wait: Duration::ZERO,
            },
        )
        .expect("relay");
        let (_, answer) = get(&relay.url(), "sys/health");
        assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    }
}
