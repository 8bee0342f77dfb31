//! A real git smart-HTTP server for tests: a tiny HTTP/1.1 front end that
//! checks Basic auth and hands each request to `git http-backend` (CGI).
//!
//! Tests of the git integration must talk to a real git server over HTTP, with
//! real authentication, so that "the token reached git through the credential
//! helper and nowhere else" is observed rather than assumed. This module is that
//! server, kept small enough to read in one sitting:
//!
//! - **Repositories** are bare repos under a private temp dir, created with an
//!   initial commit on `main` ([`GitServer::create_repo`]); more commits and
//!   branches can be added from the server side ([`GitServer::commit_files`]).
//! - **Auth**: every request needs Basic auth. The valid password (the
//!   "token") is set per repository and per [`Access`] kind (read = clone/fetch,
//!   push = `git-receive-pack`), and can be changed at any moment (rotation).
//!   The username is not checked, as on GitHub, where any username goes with a
//!   personal access token.
//! - **Log**: every request is recorded ([`RequestRecord`]: method, path,
//!   service, access kind, auth outcome, status). The `Authorization` header is
//!   never recorded, and neither is the username.
//!
//! Design trade-offs: one OS thread per connection and `Connection: close` on
//! every response (git opens a few connections per operation; throughput is
//! irrelevant here), and the CGI's output is buffered whole before it is sent
//! (test repositories are tiny). No dependency beyond std and `base64`.
//!
//! The server's own git commands (repository set-up, inspection) run the `git`
//! found on `PATH` when the server starts, with system and global config
//! disabled, so a test's recording wrapper or a developer's `~/.gitconfig`
//! never affects them.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

/// Which kind of git operation a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Clone and fetch (`git-upload-pack`).
    Read,
    /// Push (`git-receive-pack`).
    Push,
}

/// What the server concluded about a request's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// No `Authorization` header: answered 401 with a Basic challenge.
    Missing,
    /// A header was sent but its password is not the current token (or it
    /// could not be decoded): answered 401.
    Rejected,
    /// The password matched the token for this repository and access kind.
    Accepted,
    /// A read of a public repository ([`GitServer::set_public`]): no auth
    /// needed, none checked.
    Public,
}

/// One logged request. Never holds the `Authorization` header or the username.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The HTTP method.
    pub method: String,
    /// The request path, without the query string.
    pub path: String,
    /// The `service=` query parameter or the service named by the path
    /// (`git-upload-pack`, `git-receive-pack`), if any.
    pub service: Option<String>,
    /// The repository the request addressed (`Owner/Repo`), if it named one.
    pub repo: Option<String>,
    /// Whether the request reads or pushes.
    pub access: Access,
    /// The auth decision.
    pub auth: AuthOutcome,
    /// The HTTP status sent back.
    pub status: u16,
}

#[derive(Default)]
struct State {
    /// The tokens accepted per repository and access kind (several during a
    /// rotation's overlap, as at a real git host).
    tokens: HashMap<(String, Access), Vec<SecretString>>,
    public: std::collections::HashSet<String>,
    log: Vec<RequestRecord>,
}

struct Shared {
    root: PathBuf,
    backend: PathBuf,
    git: PathBuf,
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking handler thread must not take the whole test down with a
        // poisoned lock: the state stays consistent (plain inserts and pushes).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running git HTTP server. Dropping it stops the server and deletes its
/// repositories.
pub struct GitServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
    // Declared last so the directory outlives the accept thread.
    _root: tempfile::TempDir,
}

impl std::fmt::Debug for GitServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitServer")
            .field("addr", &self.addr)
            .field("root", &self.shared.root)
            .finish_non_exhaustive()
    }
}

impl GitServer {
    /// Starts a server on an ephemeral port of 127.0.0.1.
    ///
    /// Fails with a message naming what is missing when `git` or
    /// `git http-backend` cannot be found.
    pub fn start() -> io::Result<GitServer> {
        let git = find_git()?;
        let exec_path = Command::new(&git)
            .arg("--exec-path")
            .output()
            .map_err(|e| io::Error::other(format!("cannot run `git --exec-path`: {e}")))?;
        let exec_path = String::from_utf8_lossy(&exec_path.stdout).trim().to_owned();
        let backend = Path::new(&exec_path).join("git-http-backend");
        if !backend.is_file() {
            return Err(io::Error::other(format!(
                "git-http-backend not found at {}: install git with its HTTP support \
                 (Debian: `apt-get install git`)",
                backend.display()
            )));
        }
        let root = tempfile::Builder::new()
            .prefix("vaultref-git-server-")
            .tempdir()?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            root: root.path().to_path_buf(),
            backend,
            git,
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = std::thread::Builder::new()
            .name("git-server-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(GitServer {
            addr,
            shared,
            accept_thread: Some(accept_thread),
            _root: root,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The clone URL of a repository: `http://127.0.0.1:PORT/Owner/Repo.git`.
    pub fn url(&self, repo: &str) -> String {
        format!("http://{}/{}.git", self.addr, repo)
    }

    /// The directory holding the bare repository `repo`.
    pub fn git_dir(&self, repo: &str) -> PathBuf {
        self.shared.root.join(format!("{repo}.git"))
    }

    /// Creates the bare repository `repo` (`Owner/Repo`) with one commit on
    /// `main` holding `README.md`, and returns that commit's id.
    pub fn create_repo(&self, repo: &str) -> io::Result<String> {
        check_repo_name(repo)?;
        let dir = self.git_dir(repo);
        std::fs::create_dir_all(&dir)?;
        self.git(
            &dir,
            &["init", "--quiet", "--bare", "--initial-branch=main"],
            None,
        )?;
        // Pushes are authorised by this server, not by http-backend's
        // REMOTE_USER rule, so enable receive-pack outright.
        self.git(&dir, &["config", "http.receivepack", "true"], None)?;
        self.commit_files(
            repo,
            "main",
            &[("README.md", &format!("# {repo}\n"))],
            "Initial commit",
        )
    }

    /// Commits `files` (path, content) on `branch` of `repo`, directly in the
    /// bare repository, and returns the new commit id. A branch that does not
    /// exist yet starts from `main`.
    pub fn commit_files(
        &self,
        repo: &str,
        branch: &str,
        files: &[(&str, &str)],
        message: &str,
    ) -> io::Result<String> {
        let dir = self.git_dir(repo);
        let parent = self
            .rev_parse(repo, &format!("refs/heads/{branch}"))
            .or_else(|| self.rev_parse(repo, "refs/heads/main"));
        let index = tempfile::NamedTempFile::new_in(&self.shared.root)?;
        let index_path = index.path().to_owned();
        // An empty file is not a valid index; git creates it when absent.
        drop(index);
        let idx = [("GIT_INDEX_FILE", index_path.as_os_str())];
        if let Some(parent) = &parent {
            self.git_env(&dir, &["read-tree", parent], None, &idx)?;
        }
        for (path, content) in files {
            let blob = self.git(
                &dir,
                &["hash-object", "-w", "--stdin"],
                Some(content.as_bytes()),
            )?;
            let info = format!("100644,{},{}", blob.trim(), path);
            self.git_env(
                &dir,
                &["update-index", "--add", "--cacheinfo", &info],
                None,
                &idx,
            )?;
        }
        let tree = self.git_env(&dir, &["write-tree"], None, &idx)?;
        let _ = std::fs::remove_file(&index_path);
        let mut args = vec!["commit-tree", tree.trim(), "-m", message];
        if let Some(parent) = &parent {
            args.extend(["-p", parent.as_str()]);
        }
        let commit = self.git(&dir, &args, None)?.trim().to_owned();
        self.git(
            &dir,
            &["update-ref", &format!("refs/heads/{branch}"), &commit],
            None,
        )?;
        Ok(commit)
    }

    /// Creates a lightweight tag `tag` pointing at `rev` in `repo`.
    pub fn create_tag(&self, repo: &str, tag: &str, rev: &str) -> io::Result<()> {
        self.git(
            &self.git_dir(repo),
            &["update-ref", &format!("refs/tags/{tag}"), rev],
            None,
        )
        .map(drop)
    }

    /// Resolves `rev` (e.g. `refs/heads/main`) in `repo` to a commit id.
    pub fn rev_parse(&self, repo: &str, rev: &str) -> Option<String> {
        let spec = format!("{rev}^{{commit}}");
        self.git(
            &self.git_dir(repo),
            &["rev-parse", "--verify", "--quiet", &spec],
            None,
        )
        .ok()
        .map(|s| s.trim().to_owned())
    }

    /// The content of `path` at `rev` in `repo`, if it exists.
    pub fn read_file(&self, repo: &str, rev: &str, path: &str) -> Option<String> {
        self.git(
            &self.git_dir(repo),
            &["show", &format!("{rev}:{path}")],
            None,
        )
        .ok()
    }

    /// Sets the token accepted for `access` on `repo`, replacing any previous
    /// one (rotation takes effect for the next request).
    pub fn set_token(&self, repo: &str, access: Access, token: &SecretString) {
        self.shared
            .state()
            .tokens
            .insert((repo.to_owned(), access), vec![token.clone()]);
    }

    /// Accepts `token` for `access` on `repo` as well as those accepted
    /// already: a new credential created at the git host before the old one
    /// is revoked (the rotation playbook's first step).
    pub fn add_token(&self, repo: &str, access: Access, token: &SecretString) {
        self.shared
            .state()
            .tokens
            .entry((repo.to_owned(), access))
            .or_default()
            .push(token.clone());
    }

    /// Stops accepting `token` for `access` on `repo` (the others stay).
    pub fn revoke_token(&self, repo: &str, access: Access, token: &SecretString) {
        if let Some(list) = self
            .shared
            .state()
            .tokens
            .get_mut(&(repo.to_owned(), access))
        {
            list.retain(|t| t.expose_secret() != token.expose_secret());
        }
    }

    /// Sets the same token for both reading and pushing `repo`.
    pub fn set_tokens(&self, repo: &str, token: &SecretString) {
        self.set_token(repo, Access::Read, token);
        self.set_token(repo, Access::Push, token);
    }

    /// Removes the token for `access` on `repo`: every such request fails.
    pub fn clear_token(&self, repo: &str, access: Access) {
        self.shared
            .state()
            .tokens
            .remove(&(repo.to_owned(), access));
    }

    /// Makes reads of `repo` (clone, fetch) need no credentials, like a
    /// public repository; pushes still do.
    pub fn set_public(&self, repo: &str, public: bool) {
        let mut state = self.shared.state();
        if public {
            state.public.insert(repo.to_owned());
        } else {
            state.public.remove(repo);
        }
    }

    /// A copy of the request log, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().log.clone()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared.state().log.clear();
    }

    fn git(&self, dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> io::Result<String> {
        self.git_env(dir, args, stdin, &[])
    }

    fn git_env(
        &self,
        dir: &Path,
        args: &[&str],
        stdin: Option<&[u8]>,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> io::Result<String> {
        let mut cmd = Command::new(&self.shared.git);
        cmd.current_dir(dir)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.shared.root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Test Server")
            .env("GIT_AUTHOR_EMAIL", "server@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test Server")
            .env("GIT_COMMITTER_EMAIL", "server@example.invalid")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin was piped");
            pipe.write_all(input)?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "git {} failed: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        String::from_utf8(out.stdout).map_err(|e| io::Error::other(e.to_string()))
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the loop sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

fn find_git() -> io::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("git"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::other("`git` not found on PATH: install git (Debian: `apt-get install git`)")
        })
}

fn check_repo_name(repo: &str) -> io::Result<()> {
    let ok = repo.split('/').count() == 2
        && repo.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "repository name must be Owner/Repo, got {repo:?}"
        )))
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let conn_shared = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name("git-server-conn".into())
            .spawn(move || {
                let _ = handle_connection(stream, &conn_shared);
            });
    }
}

/// A parsed request head.
struct Head {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Upper bound on a request body; test pushes are a few KiB.
const MAX_BODY: usize = 64 << 20;

fn handle_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let Some(head) = read_head(&mut reader)? else {
        return Ok(());
    };
    let body = read_body(&mut reader, &head)?;

    let (repo, service) = classify(&head.path, &head.query);
    let access = if service.as_deref() == Some("git-receive-pack") {
        Access::Push
    } else {
        Access::Read
    };
    let public = access == Access::Read
        && repo
            .as_deref()
            .is_some_and(|r| shared.state().public.contains(r));
    let auth = if public {
        AuthOutcome::Public
    } else {
        check_auth(
            shared,
            repo.as_deref(),
            access,
            head.header("authorization"),
        )
    };
    let status = if !matches!(auth, AuthOutcome::Accepted | AuthOutcome::Public) {
        let msg = b"authentication required\n";
        write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"vaultref-test\"\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            msg.len()
        )?;
        out.write_all(msg)?;
        401
    } else {
        run_backend(shared, &head, repo.as_deref(), body, &mut out)?
    };
    out.flush()?;
    shared.state().log.push(RequestRecord {
        method: head.method,
        path: head.path,
        service,
        repo,
        access,
        auth,
        status,
    });
    Ok(())
}

fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::other("malformed request line"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut head = Head {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers: Vec::new(),
    };
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::other("connection closed inside headers"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            head.headers
                .push((k.trim().to_owned(), v.trim().to_owned()));
        }
        if head.headers.len() > 100 {
            return Err(io::Error::other("too many headers"));
        }
    }
    Ok(Some(head))
}

fn read_body(reader: &mut impl BufRead, head: &Head) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if head
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size_str = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_str, 16)
                .map_err(|_| io::Error::other("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(io::Error::other("body too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            line.clear();
            reader.read_line(&mut line)?;
        }
    } else if let Some(len) = head.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| io::Error::other("bad Content-Length"))?;
        if len > MAX_BODY {
            return Err(io::Error::other("body too large"));
        }
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(body)
}

/// Splits a request path into the repository (`Owner/Repo`) and the git
/// service it asks for.
fn classify(path: &str, query: &str) -> (Option<String>, Option<String>) {
    let service_q = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("service="))
        .map(str::to_owned);
    let trimmed = path.trim_start_matches('/');
    let (repo_part, rest) = match trimmed.find(".git/") {
        Some(i) => (&trimmed[..i], &trimmed[i + 5..]),
        None => return (None, service_q),
    };
    let service = match rest {
        "git-upload-pack" => Some("git-upload-pack".to_owned()),
        "git-receive-pack" => Some("git-receive-pack".to_owned()),
        _ => service_q,
    };
    let repo = check_repo_name(repo_part)
        .ok()
        .map(|()| repo_part.to_owned());
    (repo, service)
}

fn check_auth(
    shared: &Shared,
    repo: Option<&str>,
    access: Access,
    header: Option<&str>,
) -> AuthOutcome {
    let Some(header) = header else {
        return AuthOutcome::Missing;
    };
    let Some(repo) = repo else {
        return AuthOutcome::Rejected;
    };
    let Some(encoded) = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
    else {
        return AuthOutcome::Rejected;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return AuthOutcome::Rejected;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return AuthOutcome::Rejected;
    };
    let password = &decoded[colon + 1..];
    let state = shared.state();
    let accepted = state
        .tokens
        .get(&(repo.to_owned(), access))
        .is_some_and(|list| {
            list.iter()
                .any(|t| constant_time_eq(t.expose_secret().as_bytes(), password))
        });
    if accepted {
        AuthOutcome::Accepted
    } else {
        AuthOutcome::Rejected
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs `git http-backend` for an authorised request and relays its answer.
/// Returns the HTTP status sent.
fn run_backend(
    shared: &Shared,
    head: &Head,
    repo: Option<&str>,
    body: Vec<u8>,
    out: &mut impl Write,
) -> io::Result<u16> {
    let mut cmd = Command::new(&shared.backend);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", &shared.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", &head.method)
        .env("PATH_INFO", &head.path)
        .env("QUERY_STRING", &head.query)
        .env("REMOTE_ADDR", "127.0.0.1")
        // Not a secret: the fixed name of the authenticated principal.
        .env("REMOTE_USER", repo.unwrap_or("anonymous"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let passthrough: [(&str, &str); 3] = [
        ("content-type", "CONTENT_TYPE"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ];
    for (header, var) in passthrough {
        if let Some(v) = head.header(header) {
            cmd.env(var, OsString::from(v));
        }
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    // Write the body on its own thread: the backend may start answering
    // before it has read everything, and both pipes have finite buffers.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let output = child.wait_with_output()?;
    let _ = writer.join();

    let raw = output.stdout;
    let split = find_header_end(&raw).unwrap_or((raw.len(), raw.len()));
    let cgi_head = String::from_utf8_lossy(&raw[..split.0]).into_owned();
    let cgi_body = &raw[split.1..];
    let mut status = 200u16;
    let mut reason = "OK".to_owned();
    let mut headers = Vec::new();
    for line in cgi_head.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let mut it = v.splitn(2, ' ');
            status = it.next().and_then(|s| s.parse().ok()).unwrap_or(500);
            reason = it.next().unwrap_or("").to_owned();
        } else if !k.eq_ignore_ascii_case("content-length") {
            headers.push(format!("{}: {}", k.trim(), v));
        }
    }
    if !output.status.success() && status == 200 {
        status = 500;
        reason = "Internal Server Error".into();
    }
    write!(out, "HTTP/1.1 {status} {reason}\r\n")?;
    for h in headers {
        write!(out, "{h}\r\n")?;
    }
    write!(
        out,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        cgi_body.len()
    )?;
    out.write_all(cgi_body)?;
    Ok(status)
}

/// Finds the end of the CGI header block: returns (end of headers, start of
/// body), accepting `\r\n\r\n` or `\n\n`.
fn find_header_end(raw: &[u8]) -> Option<(usize, usize)> {
    let crlf = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let lf = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_paths() {
        assert_eq!(
            classify("/O/R.git/info/refs", "service=git-upload-pack"),
            (Some("O/R".into()), Some("git-upload-pack".into()))
        );
        assert_eq!(
            classify("/O/R.git/git-receive-pack", ""),
            (Some("O/R".into()), Some("git-receive-pack".into()))
        );
        assert_eq!(classify("/../x.git/info/refs", "").0, None);
        assert_eq!(classify("/nothing", ""), (None, None));
    }

    #[test]
    fn header_end_prefers_first_blank_line() {
        assert_eq!(find_header_end(b"Status: 200\r\n\r\nbody"), Some((11, 15)));
        assert_eq!(find_header_end(b"A: b\n\nbody\r\n\r\n"), Some((4, 6)));
        assert_eq!(find_header_end(b"no end"), None);
    }
}
