//! The worker rig: a git server of the scenario's own
//! ([`vaultref::testing::git_server`]) that accepts, per repository and per
//! operation (read or push), only the token currently valid, and logs every
//! request; an implementation configured for it, with a recording `git`
//! wrapper first on its `PATH`; and the checks of a `run_job` reply.
//!
//! After a job, the argv log, what git could see while it ran (its
//! environment, readable files, the credential helper's answers to requests
//! for other remotes), the work dir and the temp dir are searched for every
//! form of every token.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde_json::{Map, Value, json};
use vaultref::testing::git_server::GitServer;
use vaultref::testing::leak::{GIT_USERNAME, scan_for_needles, token_forms};

use super::support::{Auth, Session, session_with, verr};
use crate::backend::KV_MOUNT;
use crate::cx::{Cx, Dirs};
use crate::verdict::{Failure, Verdict};

/// The repository every worker scenario uses (each scenario has its own server).
pub const REPO: &str = "Acme/Api";
/// A public repository, for jobs without refs.
pub const PUBLIC_REPO: &str = "Acme/Public";

/// A started git server, the IUT session, and where the argv log is.
pub struct Rig {
    /// The git server (one per scenario).
    pub git: GitServer,
    /// The configured implementation.
    pub s: Session,
    /// Where the recording `git` appends its argv.
    pub argv_log: PathBuf,
}

fn real_git() -> Result<PathBuf, Verdict> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("git"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Verdict::Error("no `git` on PATH: install git (Debian: apt-get install git)".into())
        })
}

/// Writes `bin/git`, the recording wrapper; returns `(PATH with bin first,
/// argv log)`. Before it runs the real git, the wrapper records:
///
/// - its argv, in `argv.log` (G1: no token in a command line);
/// - in `git-seen.log` (see [`seen_log`]), what git could read while it ran:
///   its environment (a token in `GIT_CONFIG_VALUE_n` as an `http.extraHeader`,
///   or in any variable), every file under its `HOME`, `TMPDIR` and
///   `XDG_CONFIG_HOME` and every file an environment variable names (a 0600
///   token file that exists only while git runs), and the answers of the
///   credential helper git is configured with to requests it must refuse
///   (G3): another host, another path on the job's host, the job's path over
///   `https` instead of `http`. The git server is at `git_addr`.
fn recording_git(dirs: &Dirs, git_addr: &str) -> Result<(OsString, PathBuf), Verdict> {
    use std::os::unix::fs::PermissionsExt;
    let real = real_git()?;
    let bin = dirs.root.join("bin");
    let log = dirs.root.join("argv.log");
    let seen = seen_log(&log);
    let io = |e: std::io::Error| Verdict::Error(format!("git wrapper: {e}"));
    std::fs::create_dir_all(&bin).map_err(io)?;
    let script = format!(
        r#"#!/bin/bash
printf '%s\n' "$*" >> '{log}'
real='{real}'
opts=()
args=("$@")
i=0
while [ $i -lt ${{#args[@]}} ]; do
  case "${{args[$i]}}" in
    -c|-C) opts+=("${{args[$i]}}" "${{args[$((i+1))]}}"); i=$((i+2)) ;;
    -*) opts+=("${{args[$i]}}"); i=$((i+1)) ;;
    *) break ;;
  esac
done
{{
  echo "== git ${{args[$i]}}: environment"
  env
  for f in $(find "${{HOME:-/nonexistent}}" "${{TMPDIR:-/nonexistent}}" "${{XDG_CONFIG_HOME:-/nonexistent}}" -maxdepth 4 -type f 2>/dev/null)            $(env | sed -n 's/^[A-Za-z_][A-Za-z0-9_]*=\(\/[^:]*\)$//p'); do
    if [ -f "$f" ]; then echo "== file $f"; head -c 65536 "$f"; echo; fi
  done
  case "${{args[$i]}}" in
    clone|fetch|pull|push|ls-remote)
      for probe in 'protocol=http
host=127.0.0.1:9
path=Acme/Api.git'                    'protocol=http
host={git_addr}
path=Other/Repo.git'                    'protocol=https
host={git_addr}
path=Acme/Api.git'; do
        echo "== credential fill: $probe"
        printf "$probe\n\n" | GIT_TERMINAL_PROMPT=0 GIT_ASKPASS= "$real" "${{opts[@]}}" credential fill 2>&1
      done ;;
  esac
}} >> '{seen}' 2>/dev/null
exec "$real" "$@"
"#,
        log = log.display(),
        seen = seen.display(),
        real = real.display(),
    );
    let wrapper = bin.join("git");
    std::fs::write(&wrapper, script).map_err(io)?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(paths).map_err(|e| Verdict::Error(e.to_string()))?;
    Ok((path, log))
}

/// Where the recording `git` writes what git could see, next to its argv log.
pub fn seen_log(argv_log: &Path) -> PathBuf {
    argv_log.with_file_name("git-seen.log")
}

/// Starts a git server with `REPO`, and an implementation configured for it
/// with a token file.
pub async fn rig(
    cx: &Cx,
    queue_policy: Option<Value>,
    vault_addr: Option<String>,
) -> Result<Rig, Verdict> {
    let vault = match vault_addr {
        Some(a) => json!({ "vault_addr": a }),
        None => json!({}),
    };
    rig_with(cx, queue_policy, vault, Auth::Token { ttl: "10m" }).await
}

/// [`rig`] with the IUT authenticating by `auth`, and `vault` holding where
/// it reaches Vault (`vault_addr`, `vault_cluster_addrs`; empty: the
/// scenario's server).
pub async fn rig_with(
    cx: &Cx,
    queue_policy: Option<Value>,
    vault: Value,
    auth: Auth,
) -> Result<Rig, Verdict> {
    let git = GitServer::start().map_err(|e| Verdict::Error(format!("git server: {e}")))?;
    git.create_repo(REPO)
        .map_err(|e| Verdict::Error(format!("git server: {e}")))?;
    let dirs_probe = cx.dirs()?;
    let (path, argv_log) = recording_git(&dirs_probe, &git.addr().to_string())?;
    let mut extra = json!({
        "git": {"base_url": format!("http://{}/", git.addr())},
        "ref_policy": {"allowed_mounts": [KV_MOUNT], "scopes": [format!("{}/repos/{{repository}}/**", cx.prefix())]},
    });
    if let Some(q) = queue_policy {
        extra["queue_policy"] = q;
    }
    if let Value::Object(vault) = vault {
        for (k, v) in vault {
            extra[k] = v;
        }
    }
    let s = session_with(
        cx,
        &[
            format!("{}/*", cx.prefix()),
            format!("{}/repos/*/*/*", cx.prefix()),
        ],
        auth,
        extra,
        &[("PATH".to_string(), path)],
    )
    .await?;
    Ok(Rig { git, s, argv_log })
}

/// Writes a token at `<prefix>/repos/Acme/Api/<name>#token`; returns the ref.
pub async fn put_token(cx: &Cx, name: &str, value: &SecretString) -> Result<String, Verdict> {
    let path = format!("{}/repos/{REPO}/{name}", cx.prefix());
    cx.vault()?
        .admin
        .kv_put(KV_MOUNT, &path, &[("token", value)])
        .await
        .map_err(verr)?;
    Ok(format!("vault://{KV_MOUNT}/{path}#token"))
}

/// A `codex_exec` job on [`REPO`] with these refs, publishing a branch or not.
pub fn job(repo_ref: Option<&str>, publish_ref: Option<&str>, publish: bool) -> Value {
    let mut payload =
        json!({"repository": REPO, "instruction": "conformance stub: write VAULTREF_CONFORMANCE"});
    if let Some(r) = repo_ref {
        payload["repoAuthRef"] = json!(r);
    }
    if let Some(r) = publish_ref {
        payload["publishAuthRef"] = json!(r);
    }
    if publish {
        payload["publish"] = json!({"mode": "branch"});
    }
    json!({"type": "codex_exec", "payload": payload})
}

/// Sends `run_job`.
pub async fn run_job(
    s: &mut Session,
    job_id: &str,
    job: Value,
) -> Result<Map<String, Value>, Verdict> {
    Ok(s.iut
        .request("run_job", json!({"job_id": job_id, "job": job}))
        .await?)
}

/// Runs one pushing job per id, each with the ref `r`; the first that does
/// not complete and push (see [`expect_completed`]) is the verdict.
pub async fn run_pushing_jobs(
    rig: &mut Rig,
    ids: &[&str],
    r: &str,
    spec: &str,
) -> Result<Verdict, Verdict> {
    for id in ids {
        let reply = run_job(&mut rig.s, id, job(Some(r), None, true)).await?;
        let v = expect_completed(spec, &reply, &rig.git, id, true);
        if v != Verdict::Pass {
            return Ok(v);
        }
    }
    Ok(Verdict::Pass)
}

/// Sends `run_job` with the harness's own action: `sh -c script` in the
/// checkout (`protocol.md` §3.6 `action`), 20 s at most.
pub async fn run_job_with_action(
    s: &mut Session,
    job_id: &str,
    job: Value,
    script: &str,
) -> Result<Map<String, Value>, Verdict> {
    Ok(s.iut
        .request(
            "run_job",
            json!({"job_id": job_id, "job": job,
                   "action": {"argv": ["sh", "-c", script], "timeout_ms": 20000}}),
        )
        .await?)
}

/// The action's part of a scenario that passes one: the job completed and
/// the pushed `VAULTREF_CONFORMANCE` holds `action:<job id>`, which the
/// action wrote (so it really ran).
pub fn expect_action_pushed(reply: &Map<String, Value>, git: &GitServer, job_id: &str) -> Verdict {
    let branch = format!("vaultref/{job_id}");
    let ran = git.read_file(REPO, &branch, "VAULTREF_CONFORMANCE");
    if outcome(reply).0 == "completed" && ran.as_deref() == Some(&format!("action:{job_id}")[..]) {
        Verdict::Pass
    } else {
        Verdict::Fail(Failure::new(
            "protocol.md §3.6: the job runs the given action and pushes",
            "completed, and the pushed VAULTREF_CONFORMANCE written by the action",
            format!(
                "{}; pushed file {}",
                describe(reply),
                if ran.is_some() {
                    "with other content"
                } else {
                    "absent"
                }
            ),
        ))
    }
}

/// A `run_job` reply, described without any value.
pub fn describe(r: &Map<String, Value>) -> String {
    match r.get("outcome").and_then(Value::as_str) {
        Some("completed") => format!(
            "completed (commit {})",
            r.get("commit").unwrap_or(&Value::Null)
        ),
        Some(o) => format!("{o} with code {}", r.get("code").unwrap_or(&Value::Null)),
        None => "no outcome".into(),
    }
}

/// The job completed and, when publishing, pushed `vaultref/<job id>` with
/// the stub file.
pub fn expect_completed(
    spec: &str,
    r: &Map<String, Value>,
    git: &GitServer,
    job_id: &str,
    publish: bool,
) -> Verdict {
    if r.get("outcome").and_then(Value::as_str) != Some("completed") {
        return Verdict::Fail(Failure::new(spec, "completed", describe(r)));
    }
    if !publish {
        return Verdict::Pass;
    }
    let branch = format!("vaultref/{job_id}");
    let on_server = git.rev_parse(REPO, &format!("refs/heads/{branch}"));
    let reported = r.get("commit").and_then(Value::as_str);
    if on_server.is_none() || on_server.as_deref() != reported {
        return Verdict::Fail(Failure::new(
            spec,
            format!("branch {branch} pushed, at the commit reported"),
            format!("server has {on_server:?}, reply says {reported:?}"),
        ));
    }
    match git.read_file(REPO, &branch, "VAULTREF_CONFORMANCE") {
        // The id, or the id and one newline (§3.6): nothing else.
        Some(t) if t.strip_suffix('\n').unwrap_or(&t) == job_id => Verdict::Pass,
        other => Verdict::Fail(Failure::new(
            "protocol.md §3.6: the pushed commit holds VAULTREF_CONFORMANCE with the job id",
            "VAULTREF_CONFORMANCE = job id",
            format!("{:?}", other.map(|_| "other content")),
        )),
    }
}

/// No form of any `tokens` in the git argv log, nor in any file under `dirs`.
pub fn expect_no_token_left(tokens: &[&SecretString], argv_log: &Path, dirs: &Dirs) -> Verdict {
    let needles: Vec<Vec<u8>> = tokens
        .iter()
        .flat_map(|t| token_forms(t, &[GIT_USERNAME]))
        .collect();
    let argv = std::fs::read(argv_log).unwrap_or_default();
    if needles
        .iter()
        .any(|n| argv.windows(n.len()).any(|w| w == n.as_slice()))
    {
        return Verdict::Fail(Failure::new(
            "resolver.md G1: no token in any argv (no token-in-URL clone)",
            "no token in any git argv",
            "a token (or an encoding of one) appeared in a git command line",
        ));
    }
    let seen = std::fs::read(seen_log(argv_log)).unwrap_or_default();
    if needles
        .iter()
        .any(|n| seen.windows(n.len()).any(|w| w == n.as_slice()))
    {
        return Verdict::Fail(Failure::new(
            "resolver.md G1, G3: no token where git can read it, and no answer for another remote",
            "no token in git's environment, in a file git could read while it ran, or in the helper's answer to another host or path",
            "a token (or an encoding of one) was visible to git while it ran (see the recording git's git-seen.log)",
        ));
    }
    for (what, root) in [("work dir", &dirs.work), ("temp dir", &dirs.tmp)] {
        let hits = scan_for_needles(root, &needles);
        if let Some((file, _)) = hits.first() {
            return Verdict::Fail(Failure::new(
                "resolver.md G1: no token left on disk (.git/config, work dir, TMPDIR)",
                format!("no token in the {what}"),
                format!(
                    "a token form in {}",
                    file.strip_prefix(root).unwrap_or(file).display()
                ),
            ));
        }
    }
    Verdict::Pass
}

/// The outcome and code of a `run_job` reply.
pub fn outcome(r: &Map<String, Value>) -> (&str, &str) {
    (
        r.get("outcome").and_then(Value::as_str).unwrap_or(""),
        r.get("code").and_then(Value::as_str).unwrap_or(""),
    )
}
