//! Reading one HTTP/1.1 request off a connection, for the test servers that
//! speak HTTP themselves ([`super::hostile`], [`super::relay`]).
//!
//! Just enough of RFC 9112 for clients of Vault: a request line, header
//! lines, and a body framed by `Content-Length` or chunked
//! `Transfer-Encoding` (decoded). Heads are capped at 64 KiB and bodies at
//! 1 MiB: these servers face clients under test, which may misbehave.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// The most a request head may take.
const MAX_HEAD: usize = 64 * 1024;
/// The most of a body that is kept.
const MAX_BODY: usize = 1 << 20;

/// A client connection as the test servers see it, plain or TLS.
pub(crate) trait Conn: Read + Write + Send {}

impl<T: Read + Write + Send> Conn for T {}

/// Accepts connections on `listener` until `stopped(state)`, each on a
/// thread of its own, over TLS when `tls` is given; `(read, write)`
/// timeouts keep a client that stalls from pinning a thread forever.
pub(crate) fn serve_connections<S: Send + Sync + 'static>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    (read, write): (Duration, Duration),
    state: Arc<S>,
    stopped: fn(&S) -> bool,
    handle: fn(&mut dyn Conn, &S),
) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stopped(&state) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(read));
            let _ = conn.set_write_timeout(Some(write));
            let state = Arc::clone(&state);
            let mut conn: Box<dyn Conn> = match &tls {
                None => Box::new(conn),
                Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                    Ok(session) => Box::new(rustls::StreamOwned::new(session, conn)),
                    Err(_) => continue,
                },
            };
            std::thread::spawn(move || handle(conn.as_mut(), &state));
        }
    });
}

/// One request: its line, its header lines as sent, its decoded body.
pub(crate) struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent (`/v1/kv/data/x?version=2`).
    pub target: String,
    /// Header lines without their line ends, in order.
    pub headers: Vec<String>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// The target without `/v1/` and the query: the Vault path.
    pub fn vault_path(&self) -> &str {
        let path = self.target.split('?').next().unwrap_or("");
        path.strip_prefix("/v1/").unwrap_or(path)
    }

    /// The value of header `name` (the first of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Bytes read ahead of what has been consumed.
struct Reader<'a, R> {
    conn: &'a mut R,
    buf: Vec<u8>,
}

impl<R: Read> Reader<'_, R> {
    /// Reads more; false at the end of the stream or on an error.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.conn.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next line (without CRLF), at most `max` bytes.
    fn line(&mut self, max: usize) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Some(line);
            }
            if self.buf.len() > max || !self.fill() {
                return None;
            }
        }
    }

    /// The next `n` bytes (all of them, or `None`).
    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill() {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }
}

/// Reads one request, or `None` when the connection ends first or the
/// request is malformed or over the caps.
pub(crate) fn read_request(conn: &mut impl Read) -> Option<Request> {
    let mut r = Reader {
        conn,
        buf: Vec::new(),
    };
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let first = text(r.line(MAX_HEAD)?);
    let mut parts = first.split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    let mut size = first.len();
    loop {
        let line = r.line(MAX_HEAD)?;
        if line.is_empty() {
            break;
        }
        size += line.len();
        if size > MAX_HEAD {
            return None;
        }
        headers.push(text(line));
    }
    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let line = text(r.line(64)?);
            let hex = line.split(';').next().unwrap_or("").trim();
            let n = usize::from_str_radix(hex, 16).ok()?;
            if n == 0 {
                // Trailer lines, up to the empty one.
                while !r.line(MAX_HEAD)?.is_empty() {}
                break;
            }
            if n > MAX_BODY - req.body.len() {
                return None;
            }
            req.body.extend(r.take(n)?);
            if !r.take(2)?.eq(b"\r\n") {
                return None;
            }
        }
    } else {
        let n: usize = match req.header("content-length") {
            Some(v) => v.parse().ok()?,
            None => 0,
        };
        if n > MAX_BODY {
            return None;
        }
        req.body = r.take(n)?;
    }
    Some(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_request_with_a_length_and_one_with_chunks() {
        let raw = b"POST /v1/kv/data/a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
        let req = read_request(&mut &raw[..]).expect("request");
        assert_eq!(
            (req.method.as_str(), req.vault_path(), &req.body[..]),
            ("POST", "kv/data/a", &b"hello"[..])
        );
        assert_eq!(req.header("HOST"), Some("h"));
        let raw = b"PUT /v1/p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n";
        let req = read_request(&mut &raw[..]).expect("request");
        assert_eq!(&req.body[..], b"abcde");
    }

    #[test]
    fn refuses_what_is_cut_short_or_too_big() {
        for raw in [
            &b"GET /v1/x HTTP/1.1\r\nHost: h\r\n"[..],
            b"POST /v1/x HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort",
            b"POST /v1/x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            b"POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
        ] {
            assert!(read_request(&mut &raw[..]).is_none(), "{raw:?}");
        }
    }
}
