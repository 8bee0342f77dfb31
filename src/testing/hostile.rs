//! A deliberately hostile "Vault" for tests whose scenario *is* hostility,
//! and a catcher that records whatever reaches another address.
//!
//! [`HostileVault`] speaks just enough HTTP/1.1 on a loopback port: for each
//! request it looks up the path (without `/v1/` and the query) in a table of
//! [`Answer`]s and answers with it, `Connection: close`. It records every
//! request's method and path (never headers or bodies: those may carry what
//! the test planted). [`Catcher`] accepts connections on another port and
//! records every byte it receives: a test asserts it stays empty, which proves
//! no credential was sent there.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{TestSupportError, err};

/// How the hostile server answers one path.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A status and a JSON body.
    Json(u16, String),
    /// `307 Temporary Redirect` to `Location`.
    Redirect(String),
    /// A 200 whose body is `bytes` long (a huge answer), sent as fast as the
    /// client reads.
    Huge(usize),
    /// A 200 that sends its headers, then one byte every `interval`, forever
    /// (a slow drip).
    Drip(Duration),
}

struct Shared {
    answers: Mutex<HashMap<String, Answer>>,
    requests: Mutex<Vec<(String, String)>>,
    stop: AtomicBool,
}

/// The hostile server. Stops when dropped.
pub struct HostileVault {
    addr: SocketAddr,
    shared: Arc<Shared>,
    https: bool,
}

impl HostileVault {
    /// Starts on a free loopback port with `answers` (path -> answer); other
    /// paths get `404 {"errors":[]}`.
    pub fn start(answers: &[(&str, Answer)]) -> Result<HostileVault, TestSupportError> {
        Self::launch(answers, None)
    }

    /// [`HostileVault::start`] over HTTPS with `tls`'s certificate and key
    /// (for instance a cluster's, so that a client trusting the cluster's
    /// CA takes it for one of the nodes).
    pub fn start_tls(
        answers: &[(&str, Answer)],
        tls: &super::tls::TlsFiles,
    ) -> Result<HostileVault, TestSupportError> {
        Self::launch(answers, Some(super::tls::server_config(tls)?))
    }

    fn launch(
        answers: &[(&str, Answer)],
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<HostileVault, TestSupportError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| err(format!("hostile vault: bind: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| err(format!("hostile vault: {e}")))?;
        let shared = Arc::new(Shared {
            answers: Mutex::new(
                answers
                    .iter()
                    .map(|(p, a)| (p.to_string(), a.clone()))
                    .collect(),
            ),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let https = tls.is_some();
        // The write timeout: a client that stops reading a huge or
        // dripping answer does not pin a thread forever.
        super::http1::serve_connections(
            listener,
            tls,
            (Duration::from_secs(5), Duration::from_secs(10)),
            Arc::clone(&shared),
            |s| s.stop.load(Ordering::SeqCst),
            |conn, s| serve(conn, s),
        );
        Ok(HostileVault {
            addr,
            shared,
            https,
        })
    }

    /// `http://127.0.0.1:<port>` (`https://` for [`HostileVault::start_tls`]).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Sets the answer for `path` from now on.
    pub fn set(&self, path: &str, answer: Answer) {
        self.shared
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), answer);
    }

    /// `(method, path)` of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for HostileVault {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(mut conn: impl Read + Write, s: &Shared) {
    let Some(req) = super::http1::read_request(&mut conn) else {
        return;
    };
    let (method, path) = (req.method.clone(), req.vault_path().to_string());
    s.requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((method, path.clone()));
    let answer = s
        .answers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&path)
        .cloned()
        .unwrap_or(Answer::Json(404, r#"{"errors":[]}"#.into()));
    let _ = match answer {
        Answer::Json(status, body) => write!(
            conn,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        Answer::Redirect(to) => write!(
            conn,
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Answer::Huge(n) => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
            );
            let block = vec![b' '; 64 * 1024];
            let mut left = n;
            while left > 0 {
                let k = left.min(block.len());
                if conn.write_all(&block[..k]).is_err() {
                    break;
                }
                left -= k;
            }
            Ok(())
        }
        Answer::Drip(every) => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            // Chunked, no length: a client cannot refuse the answer by its
            // announced size, only its own deadline ends the read.
            while !s.stop.load(Ordering::SeqCst) && conn.write_all(b"1\r\n \r\n").is_ok() {
                let _ = conn.flush();
                std::thread::sleep(every);
            }
            Ok(())
        }
    };
    // Over TLS, what is buffered in the session goes out now.
    let _ = conn.flush();
}

/// Accepts connections and records every byte sent to it.
pub struct Catcher {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
    connections: Arc<Mutex<usize>>,
}

impl Catcher {
    /// Starts on a free loopback port.
    pub fn start() -> Result<Catcher, TestSupportError> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| err(format!("catcher: bind: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| err(format!("catcher: {e}")))?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (r, c) = (Arc::clone(&received), Arc::clone(&connections));
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                *c.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                let r = Arc::clone(&r);
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    // A client that stops reading a huge or dripping answer
                    // does not pin a thread forever.
                    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        r.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend_from_slice(&chunk[..n]);
                    }
                });
            }
        });
        Ok(Catcher {
            addr,
            received,
            connections,
        })
    }

    /// `http://127.0.0.1:<port>` (also usable as an `https://` target).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections reached it.
    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every byte received so far.
    pub fn received(&self) -> Vec<u8> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
