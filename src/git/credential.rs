//! Handing a token to git without leaving it anywhere: a per-command
//! credential session on a private Unix socket, and the helper side
//! (`vaultref git-credential`) that git runs.
//!
//! # How the token travels
//!
//! 1. The worker holds the token as a [`SecretString`]. For each git command
//!    that talks to the network it opens a [`CredentialSession`]: a Unix socket
//!    inside the job's private directory (mode 0700, removed at job end) and a
//!    fresh random nonce.
//! 2. git runs with its helper list reset and `vaultref git-credential` as the
//!    only helper; the socket path and the nonce travel in the environment
//!    ([`SOCKET_ENV`], [`NONCE_ENV`]), never in argv.
//! 3. When git needs credentials it runs the helper with `get` and git's
//!    credential description on stdin. The helper forwards the nonce and the
//!    description over the socket; the session answers `username`/`password`
//!    only if the nonce matches and the protocol, host and path are exactly the
//!    remote it was opened for. Anything else gets an empty answer, and git
//!    fails without prompting.
//! 4. `store` and `erase` are ignored: nothing is ever written down.
//!
//! The token thus exists only in this process's memory, in the socket buffer,
//! and in the memory of the helper and git processes for the command's
//! lifetime. The nonce keeps other local processes of the same user from
//! asking the socket (they cannot list the 0700 directory of another user
//! anyway); it is not a secret worth more than the session it opens.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::remote::Remote;

/// Environment variable naming the session's socket, set for git by the worker.
pub const SOCKET_ENV: &str = "VAULTREF_GIT_CREDENTIAL_SOCKET";
/// Environment variable holding the session's nonce, set for git by the worker.
pub const NONCE_ENV: &str = "VAULTREF_GIT_CREDENTIAL_NONCE";

/// Largest credential description accepted, in bytes. git's are well under 1 KiB.
const MAX_MESSAGE: u64 = 64 * 1024;

/// How long one helper connection may take to send its request. The helper
/// sends it at once; a connection that stays silent is dropped after this,
/// and never holds up another (each has its own thread).
const CONNECTION_DEADLINE: Duration = Duration::from_secs(2);

/// Connections served at the same time, at most (git opens one per `get`).
const MAX_CONNECTIONS: usize = 16;

/// How many times one session hands out the credential. A session serves
/// one git command, whose remote helper asks once and keeps the answer for
/// the rest of the command.
const MAX_ANSWERS: usize = 1;

/// One credential description in git's `key=value` line format
/// (`git help credential`, "INPUT/OUTPUT FORMAT"). Keys may repeat (`capability[]`,
/// `wwwauth[]`); order is kept.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Description {
    entries: Vec<(String, String)>,
}

impl std::fmt::Debug for Description {
    // The password is never formatted, even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.entries {
            if k == "password" || k.starts_with("oauth") {
                m.entry(k, &"<redacted>");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

/// A credential description that is not in git's format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

impl Description {
    /// Parses git's format: `key=value` lines, ended by a blank line or the
    /// end of input. A line without `=`, an empty key, or a NUL byte is an
    /// error (git itself refuses such descriptions).
    pub fn parse(input: &str) -> Result<Description, ProtocolError> {
        let mut entries = Vec::new();
        for line in input.split('\n') {
            if line.is_empty() {
                break;
            }
            if line.contains('\0') {
                return Err(ProtocolError("NUL byte in credential description".into()));
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(ProtocolError("credential line without `=`".into()));
            };
            if k.is_empty() {
                return Err(ProtocolError("credential line with an empty key".into()));
            }
            entries.push((k.to_owned(), v.to_owned()));
        }
        Ok(Description { entries })
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Appends `key=value`.
    pub fn push(&mut self, key: &str, value: &str) {
        self.entries.push((key.to_owned(), value.to_owned()));
    }

    /// Formats in git's format, one `key=value\n` per entry. Entries whose key
    /// or value holds a newline or NUL are refused, as git refuses them.
    pub fn to_wire(&self) -> Result<Zeroizing<String>, ProtocolError> {
        let mut out = Zeroizing::new(String::new());
        for (k, v) in &self.entries {
            if k.is_empty() || k.contains(['=', '\n', '\0']) || v.contains(['\n', '\0']) {
                return Err(ProtocolError(format!(
                    "credential entry {k:?} cannot be encoded"
                )));
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
            out.push('\n');
        }
        Ok(out)
    }
}

/// A running credential session: answers the helper for one remote with one
/// token until dropped. Dropping it stops the listener and removes the socket.
pub struct CredentialSession {
    socket: PathBuf,
    nonce: Zeroizing<String>,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for CredentialSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSession")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl CredentialSession {
    /// Opens a session on a new socket `name` inside `dir` (which the caller
    /// created with mode 0700), answering for `remote` with `username` and
    /// `token`.
    pub fn open(
        dir: &Path,
        name: &str,
        remote: &Remote,
        username: &str,
        token: &SecretString,
    ) -> io::Result<CredentialSession> {
        let socket = dir.join(name);
        let listener = UnixListener::bind(&socket)?;
        let nonce = Zeroizing::new(random_hex(16)?);
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let server = Server {
            nonce: nonce.clone(),
            remote: remote.clone(),
            username: username.to_owned(),
            token: token.clone(),
        };
        let (t_stop, t_answered) = (Arc::clone(&stop), Arc::clone(&answered));
        let thread = std::thread::Builder::new()
            .name("git-credential-session".into())
            .spawn(move || server.serve(listener, &t_stop, &t_answered))?;
        Ok(CredentialSession {
            socket,
            nonce,
            stop,
            answered,
            thread: Some(thread),
        })
    }

    /// The socket path, for [`SOCKET_ENV`].
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The nonce, for [`NONCE_ENV`].
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// How many `get` requests were answered with the credential.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

impl Drop for CredentialSession {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

struct Server {
    nonce: Zeroizing<String>,
    remote: Remote,
    username: String,
    token: SecretString,
}

impl Server {
    /// Serves each connection on its own thread, so one silent connection
    /// cannot hold up git's real request; the connection threads are joined
    /// when the session stops (each ends within [`CONNECTION_DEADLINE`]).
    fn serve(self, listener: UnixListener, stop: &Arc<AtomicBool>, answered: &Arc<AtomicUsize>) {
        let server = Arc::new(self);
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        for conn in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            workers.retain(|w| !w.is_finished());
            if workers.len() >= MAX_CONNECTIONS {
                // Far more than git ever opens: refuse rather than pile up.
                continue;
            }
            let (server, stop, answered) =
                (Arc::clone(&server), Arc::clone(stop), Arc::clone(answered));
            let spawned = std::thread::Builder::new()
                .name("git-credential-conn".into())
                .spawn(move || {
                    let _ = server.answer(conn, &stop, &answered);
                });
            if let Ok(w) = spawned {
                workers.push(w);
            }
        }
        for w in workers {
            let _ = w.join();
        }
    }

    /// Answers one helper connection. Returns whether the credential was sent.
    /// The whole request must arrive within [`CONNECTION_DEADLINE`]. The
    /// credential is handed out at most [`MAX_ANSWERS`] times per session: a
    /// replayed nonce gets nothing, and a thief who raced git makes git's own
    /// request fail (the theft shows).
    fn answer(
        &self,
        conn: UnixStream,
        stop: &AtomicBool,
        answered: &AtomicUsize,
    ) -> io::Result<bool> {
        let request = read_until_eof(&conn, Instant::now() + CONNECTION_DEADLINE)?;
        let text = std::str::from_utf8(&request)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let (nonce_line, rest) = text.split_once('\n').unwrap_or((text, ""));
        if stop.load(Ordering::SeqCst) {
            // The command is over (timed out or done): nothing more to hand out.
            return Ok(false);
        }
        let mut out = &conn;
        if !constant_time_eq(nonce_line.as_bytes(), self.nonce.as_bytes()) {
            return Ok(false);
        }
        let Ok(request) = Description::parse(rest) else {
            return Ok(false);
        };
        if !self.matches(&request) {
            return Ok(false);
        }
        if answered.fetch_add(1, Ordering::SeqCst) >= MAX_ANSWERS {
            answered.fetch_sub(1, Ordering::SeqCst);
            return Ok(false);
        }
        let mut reply = Description::default();
        reply.push("username", &self.username);
        reply.push("password", self.token.expose_secret());
        let wire = reply
            .to_wire()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        out.write_all(wire.as_bytes())?;
        Ok(true)
    }

    fn matches(&self, request: &Description) -> bool {
        request_matches(&self.remote, request)
    }
}

/// Reads `conn` to its end (the helper shuts down its write side), at most
/// [`MAX_MESSAGE`] bytes, failing with `TimedOut` past `deadline`.
fn read_until_eof(conn: &UnixStream, deadline: Instant) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    let mut chunk = Zeroizing::new([0u8; 4096]);
    let mut reader = conn.take(MAX_MESSAGE);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "request too slow"));
        }
        conn.set_read_timeout(Some(left))?;
        match reader.read(&mut chunk[..]) {
            Ok(0) => return Ok(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether a session for `remote` answers `request` (spec `resolver.md` G3):
/// `protocol`, `host` (with port) and `path` (a trailing `/` ignored) must all
/// be present and equal to the remote's. Vectors: `fixtures/git/credential.json`.
pub fn request_matches(remote: &Remote, request: &Description) -> bool {
    let path = request.get("path").map(|p| p.trim_end_matches('/'));
    request.get("protocol") == Some(remote.scheme())
        && request.get("host") == Some(remote.host())
        && path == Some(remote.path())
}

/// The helper side: what `vaultref git-credential <operation>` does.
///
/// `operation` is git's (`get`, `store`, `erase`). Only `get` does anything:
/// it reads git's description from `input`, asks the session named by the
/// environment, and writes its answer (possibly empty) to `output`.
/// `env` looks up [`SOCKET_ENV`] and [`NONCE_ENV`].
pub fn helper(
    operation: &str,
    env: &dyn Fn(&str) -> Option<String>,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<(), String> {
    let mut request = String::new();
    input
        .take(MAX_MESSAGE)
        .read_to_string(&mut request)
        .map_err(|e| format!("cannot read the credential request: {e}"))?;
    if operation != "get" {
        // `store` and `erase`: never persist, nothing to forget.
        return Ok(());
    }
    let parsed = Description::parse(&request).map_err(|e| e.to_string())?;
    let (Some(socket), Some(nonce)) = (env(SOCKET_ENV), env(NONCE_ENV)) else {
        return Err(format!(
            "{SOCKET_ENV} and {NONCE_ENV} are not set: this helper only works under a vaultref worker"
        ));
    };
    let nonce = Zeroizing::new(nonce);
    let mut conn = UnixStream::connect(&socket)
        .map_err(|e| format!("cannot reach the credential session: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let wire = parsed.to_wire().map_err(|e| e.to_string())?;
    let mut message = Zeroizing::new(String::with_capacity(nonce.len() + 1 + wire.len()));
    message.push_str(&nonce);
    message.push('\n');
    message.push_str(&wire);
    conn.write_all(message.as_bytes())
        .and_then(|()| conn.shutdown(std::net::Shutdown::Write))
        .map_err(|e| format!("cannot send the credential request: {e}"))?;
    let mut reply = Zeroizing::new(Vec::new());
    conn.take(MAX_MESSAGE)
        .read_to_end(&mut reply)
        .map_err(|e| format!("cannot read the credential answer: {e}"))?;
    output
        .write_all(&reply)
        .and_then(|()| output.flush())
        .map_err(|e| format!("cannot answer git: {e}"))
}

/// Reads a process environment variable for [`helper`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `n` random bytes from the OS, hex-encoded.
fn random_hex(n: usize) -> io::Result<String> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex::encode(&*buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_stops_at_blank_line() {
        let d = Description::parse("protocol=https\nhost=example.com\n\nignored=1\n").unwrap();
        assert_eq!(d.get("protocol"), Some("https"));
        assert_eq!(d.get("host"), Some("example.com"));
        assert_eq!(d.get("ignored"), None);
    }

    #[test]
    fn parse_rejects_malformed_lines() {
        assert!(Description::parse("no-equals\n").is_err());
        assert!(Description::parse("=v\n").is_err());
        assert!(Description::parse("k=v\0\n").is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let d = Description::parse("username=u\npassword=ghp_FAKEFAKEFAKE\n").unwrap();
        let shown = format!("{d:?}");
        assert!(!shown.contains("FAKE"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn values_may_contain_equals() {
        let d = Description::parse("wwwauth[]=Basic realm=\"x\"\n").unwrap();
        assert_eq!(d.get("wwwauth[]"), Some("Basic realm=\"x\""));
    }

    #[test]
    fn helper_ignores_store_and_erase() {
        let env = |_: &str| None;
        let mut out = Vec::new();
        helper("store", &env, &mut &b"password=x\n"[..], &mut out).unwrap();
        helper("erase", &env, &mut &b""[..], &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn helper_get_without_session_fails_clearly() {
        let env = |_: &str| None;
        let err = helper("get", &env, &mut &b"protocol=https\n"[..], &mut Vec::new()).unwrap_err();
        assert!(err.contains(SOCKET_ENV));
    }

    fn session_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("vr-cred-")
            .tempdir()
            .unwrap()
    }

    fn ask(session: &CredentialSession, nonce: &str, request: &str) -> String {
        let socket = session.socket().to_string_lossy().into_owned();
        let nonce = nonce.to_owned();
        let env = move |k: &str| match k {
            SOCKET_ENV => Some(socket.clone()),
            NONCE_ENV => Some(nonce.clone()),
            _ => None,
        };
        let mut out = Vec::new();
        helper("get", &env, &mut request.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn session_answers_only_its_remote_and_nonce() {
        let dir = session_dir();
        let remote = Remote::parse("https://git.example.com:8443/Owner/Repo.git", false).unwrap();
        let token = SecretString::from("ghp_FAKEFAKEFAKEFAKEFAKE");
        let s = CredentialSession::open(dir.path(), "s.sock", &remote, "x-access-token", &token)
            .unwrap();
        let good = "protocol=https\nhost=git.example.com:8443\npath=Owner/Repo.git\n";
        let nonce = s.nonce().to_owned();
        assert_eq!(
            ask(&s, &nonce, good),
            "username=x-access-token\npassword=ghp_FAKEFAKEFAKEFAKEFAKE\n"
        );
        assert_eq!(ask(&s, "wrong", good), "");
        assert_eq!(
            ask(
                &s,
                &nonce,
                "protocol=http\nhost=git.example.com:8443\npath=Owner/Repo.git\n"
            ),
            ""
        );
        assert_eq!(
            ask(
                &s,
                &nonce,
                "protocol=https\nhost=evil.example\npath=Owner/Repo.git\n"
            ),
            ""
        );
        assert_eq!(
            ask(
                &s,
                &nonce,
                "protocol=https\nhost=git.example.com:8443\npath=Owner/Other.git\n"
            ),
            ""
        );
        assert_eq!(
            ask(&s, &nonce, "protocol=https\nhost=git.example.com:8443\n"),
            ""
        );
        assert_eq!(s.answered(), 1);
        let path = s.socket().to_owned();
        drop(s);
        assert!(!path.exists(), "socket removed on drop");
    }

    /// The credential is handed out once per session: a replayed nonce (read
    /// from git's environment by another process) gets nothing. Found
    /// against an earlier vaultref, whose nonce stayed valid for the whole
    /// git command.
    #[test]
    fn a_session_answers_once() {
        let dir = session_dir();
        let remote = Remote::parse("https://git.example.com/Owner/Repo.git", false).unwrap();
        let token = SecretString::from("ghp_FAKEFAKEFAKEFAKEFAKE");
        let s = CredentialSession::open(dir.path(), "s.sock", &remote, "x-access-token", &token)
            .unwrap();
        let nonce = s.nonce().to_owned();
        let request = "protocol=https\nhost=git.example.com\npath=Owner/Repo.git\n";
        assert!(ask(&s, &nonce, request).contains("password="));
        assert_eq!(ask(&s, &nonce, request), "", "the replay was answered");
        assert_eq!(s.answered(), 1);
    }

    /// A connection that never sends anything holds up neither git's real
    /// request nor the end of the session.
    #[test]
    fn a_silent_connection_stalls_nothing() {
        let dir = session_dir();
        let remote = Remote::parse("https://git.example.com/Owner/Repo.git", false).unwrap();
        let token = SecretString::from("ghp_FAKEFAKEFAKEFAKEFAKE");
        let s = CredentialSession::open(dir.path(), "s.sock", &remote, "x-access-token", &token)
            .unwrap();
        let silent = UnixStream::connect(s.socket()).unwrap();
        let started = std::time::Instant::now();
        let nonce = s.nonce().to_owned();
        assert_eq!(
            ask(
                &s,
                &nonce,
                "protocol=https\nhost=git.example.com\npath=Owner/Repo.git\n"
            ),
            "username=x-access-token\npassword=ghp_FAKEFAKEFAKEFAKEFAKE\n"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the real request waited {:?} behind a silent connection",
            started.elapsed()
        );
        let _still_silent = UnixStream::connect(s.socket()).unwrap();
        let started = std::time::Instant::now();
        drop(s);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "dropping the session took {:?}",
            started.elapsed()
        );
        drop(silent);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = Description::parse(&s);
        }

        /// A session answers only when protocol, host and path are exactly
        /// its remote's (up to a trailing `/` on the path).
        #[test]
        fn answers_only_the_exact_remote(
            protocol in "(https|http|ftp)",
            host in "(git\\.example\\.com|git\\.example\\.com:8443|evil\\.example|GIT\\.example\\.com)",
            path in "(Owner/Repo\\.git|Owner/Repo\\.git/|Owner/Repo|owner/repo\\.git|Owner/Repo\\.git\\.x)",
        ) {
            let remote = Remote::parse("https://git.example.com/Owner/Repo.git", false).unwrap();
            let mut d = Description::default();
            d.push("protocol", &protocol);
            d.push("host", &host);
            d.push("path", &path);
            let exact = protocol == "https"
                && host == "git.example.com"
                && path.trim_end_matches('/') == "Owner/Repo.git";
            prop_assert_eq!(request_matches(&remote, &d), exact);
        }

        #[test]
        fn wire_round_trips(entries in proptest::collection::vec(
            ("[a-z\\[\\]]{1,12}", "[^\n\0]{0,40}"), 0..8)) {
            let mut d = Description::default();
            for (k, v) in &entries {
                d.push(k, v);
            }
            let wire = d.to_wire().unwrap();
            prop_assert_eq!(Description::parse(&wire).unwrap(), d);
        }
    }
}
