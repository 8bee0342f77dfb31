"""The worker (resolver.md §10-§11, protocol.md §3.6): queue policy, refs, resolve
at the moment of use, clone and push through a credential session, the job action
in an isolated PID namespace, degraded mode."""

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time

import hosts
import payload as payloads
from gitcred import HELPER, Session
from redact import Redactor, SecretTooShort
from vault import VaultError

GIT_TIMEOUT = 50.0
PROBE_INITIAL, PROBE_CAP = 0.5, 4.0
# W9: the action runs in its own PID namespace (with its own /proc) as `nobody`,
# without supplementary groups, so it can neither outlive itself nor read the
# worker's files (credential files, job-private directories, sockets).
ACTION_UID = ACTION_GID = 65534
ISOLATION = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
             "--setgid", str(ACTION_GID), "--setuid", str(ACTION_UID), "--"]


class JobFailed(Exception):
    def __init__(self, code, message, outcome="failed"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.outcome = outcome


def sanitize(job_id, limit=64):
    return re.sub(r"[^A-Za-z0-9_-]", "_", job_id)[:limit] or "_"


def isolation_available():
    if os.geteuid() != 0:
        return False  # both the namespace and the user switch need root
    try:
        r = subprocess.run(ISOLATION + ["true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _chown_tree(root, uid, gid, hand_over):
    """lchown every entry (symlinks not followed); a hard-linked file is never handed over."""
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
    for path in paths:
        try:
            st = os.lstat(path)
            if hand_over and not os.path.isdir(path) and st.st_nlink > 1:
                continue
            os.lchown(path, uid, gid)
        except OSError:
            pass


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Worker:
    def __init__(self, config, resolver, log, global_redactor):
        git = config.get("git") or {}
        self.base_url = git.get("base_url")
        if isinstance(self.base_url, str) and not self.base_url.endswith("/"):
            self.base_url += "/"
        self.work_dir = config.get("work_dir")
        self.temp_dir = config.get("temp_dir")
        self.ref_policy = config.get("ref_policy")
        self.queue_policy = config.get("queue_policy")
        self.worker_id = config.get("worker_id")
        self.resolver = resolver
        self.log = log
        self.global_redactor = global_redactor
        self.degraded = False
        self.probe_delay = PROBE_INITIAL
        self.next_probe = 0.0
        self.isolated = isolation_available()
        self.log("worker: action isolation %s" % ("available (unshare PID namespace)" if self.isolated
                                                   else "NOT available: command actions are refused"))

    # -- the job ----------------------------------------------------------------

    def run_job(self, job_id, job, action=None):
        redactor = Redactor()
        ctx = {"redactor": redactor, "tmp": None, "checkout": None}
        try:
            commit = self._run(job_id, job, action, ctx)
            return {"outcome": "completed", "commit": commit}
        except JobFailed as e:
            msg = redactor.scrub(self.global_redactor.scrub(e.message))
            self.log("job %s: %s %s" % (job_id, e.outcome, e.code))
            return {"outcome": e.outcome, "code": e.code, "message": msg}
        finally:
            for path in (ctx["checkout"], ctx["tmp"]):
                if path:
                    shutil.rmtree(path, ignore_errors=True)
            redactor.clear()

    def _run(self, job_id, job, action, ctx):
        if not isinstance(job, dict):
            raise JobFailed("payload_not_json", "the job is not a JSON object")
        # W1: queue policy first, before anything touches Vault or git.
        for code, _ptr, msg in payloads.queue_errors(job, self.queue_policy):
            if code == "job_type_not_allowed":
                raise JobFailed(code, msg)
        for code, _ptr, msg in payloads.queue_errors(job, self.queue_policy):
            raise JobFailed(code, msg)
        options = {"ref_policy": self.ref_policy, "worker_id": self.worker_id,
                   "queue_policy": self.queue_policy}
        errs, p, refs = payloads.typed_job(job, options)
        if errs:
            first = next((e for e in errs if e["code"].startswith("ref_")), errs[0])
            raise JobFailed(first["code"], "the job is invalid: %s at %s" % (first["code"], first["pointer"]))
        publish = (p.get("publish") or {}).get("mode", "none") != "none"
        repo_ref = refs.get("repoAuthRef")
        push_ref = refs.get("publishAuthRef") or repo_ref
        needs_secret = repo_ref is not None or (publish and refs.get("publishAuthRef") is not None)
        remote = self._remote(p["repository"])
        if needs_secret and self.resolver is None:
            raise JobFailed("vault_not_configured", "job %s carries a ref but Vault is not configured" % job_id)
        if needs_secret and self.degraded and not self._probe():
            raise JobFailed("vault_unavailable", "Vault is unavailable; job %s is declined" % job_id, "declined")
        # Directories: a private 0700 temp dir (HOME, sockets) and the checkout.
        tmp = os.path.join(self.temp_dir, "job-%s-%s" % (sanitize(job_id, 40), secrets.token_hex(4)))
        os.makedirs(tmp, mode=0o700)
        ctx["tmp"] = tmp
        os.makedirs(os.path.join(tmp, "home"), mode=0o700)
        checkout = os.path.join(self.work_dir, "jobs", sanitize(job_id))
        shutil.rmtree(checkout, ignore_errors=True)
        os.makedirs(os.path.dirname(checkout), exist_ok=True)
        ctx["checkout"] = checkout
        # W4: resolve repoAuthRef at the moment of the clone.
        clone_cred = self._credential(repo_ref, job_id, remote, ctx) if repo_ref else None
        self._git(ctx, ["clone", "-q", "--", remote, checkout], cwd=tmp,
                  remote=remote, cred=clone_cred)
        clone_cred = None
        self._checkout(ctx, p.get("ref"))
        git_dir = os.path.join(checkout, ".git")
        with open(os.path.join(git_dir, "config"), "rb") as f:
            saved_config = f.read()
        if action is not None:
            self._action(ctx, action)
            self._check_git_dir(git_dir)
            with open(os.path.join(git_dir, "config"), "wb") as f:
                f.write(saved_config)  # G8: the action's config changes never take effect
        else:
            with open(os.path.join(checkout, "VAULTREF_CONFORMANCE"), "w") as f:
                f.write(job_id + "\n")
        if not publish:
            return None
        self._git(ctx, ["add", "-A"], pinned=True)
        self._git(ctx, ["-c", "user.name=pyvaultref", "-c", "user.email=pyvaultref@invalid",
                        "commit", "--no-verify", "--allow-empty", "-q", "-m", "vaultref job " + job_id],
                  pinned=True)
        commit = self._git(ctx, ["rev-parse", "HEAD"], pinned=True).strip()
        # W4/G7: the effective publish ref, resolved just before the push.
        push_cred = self._credential(push_ref, job_id, remote, ctx) if push_ref else None
        self._git(ctx, ["push", "--no-verify", "--", remote, "HEAD:refs/heads/vaultref/" + sanitize(job_id)],
                  pinned=True, remote=remote, cred=push_cred)
        return commit

    # -- pieces -----------------------------------------------------------------

    def _remote(self, repository):
        """The remote URL of the job; G10: only on the worker's own git host."""
        if not isinstance(self.base_url, str):
            raise JobFailed("config_invalid", "no git.base_url configured")
        if repository.startswith("https://"):
            allowed = hosts.remote_authority(self.base_url)
            target = hosts.remote_authority(repository)
            if allowed is None or target is None or allowed[1:] != target[1:]:
                raise JobFailed("git_host_not_allowed", "the repository is not on an allowed git host")
            slug = payloads.repository_slug(repository)
            if slug is None:
                raise JobFailed("git_host_not_allowed", "the repository has no owner/repo path")
            repository = slug
        return self.base_url + repository + ".git"

    def _probe(self):
        """W7: while degraded, probe health with exponential backoff."""
        now = time.monotonic()
        if now < self.next_probe:
            return False
        if self.resolver.probe():
            self.degraded = False
            self.probe_delay = PROBE_INITIAL
            self.log("Vault is healthy again: degraded mode ends")
            return True
        self.next_probe = now + self.probe_delay
        self.probe_delay = min(self.probe_delay * 2, PROBE_CAP)
        return False

    def _credential(self, ref, job_id, remote, ctx):
        """Resolve a ref now; returns (username, value)."""
        try:
            value, doc = self.resolver.read(ref, job_id)
        except VaultError as e:
            if e.code == "vault_unavailable":
                self.degraded = True
                self.probe_delay = PROBE_INITIAL
                self.next_probe = time.monotonic() + PROBE_INITIAL
            raise JobFailed(e.code, e.message) from None
        try:
            ctx["redactor"].register(value)
            self.global_redactor.register(value)
        except SecretTooShort:
            raise JobFailed("secret_too_short", "the value of %s is too short to redact" % ref.format()) from None
        bound = doc.get("host")
        if isinstance(bound, str) and not hosts.host_matches(remote, bound):
            raise JobFailed("git_host_not_allowed", "the secret %s is bound to another git host" % ref.format())
        username = doc.get("username")
        if username is None or not isinstance(username, str):
            username = "x-access-token"
        elif not (1 <= len(username) <= 256 and all(0x21 <= ord(c) <= 0x7e for c in username)):
            raise JobFailed("git_failed", "the secret's username is not usable")
        return username, value

    def _git_env(self, ctx, cred_env=None, pinned=False):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.path.join(ctx["tmp"], "home"),
               "TMPDIR": ctx["tmp"], "LANG": "C", "LC_ALL": "C",
               "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "",
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
        if pinned:
            git_dir = os.path.join(ctx["checkout"], ".git")
            env.update(GIT_DIR=git_dir, GIT_COMMON_DIR=git_dir, GIT_WORK_TREE=ctx["checkout"])
        env.update(cred_env or {})
        return env

    def _git(self, ctx, args, cwd=None, pinned=False, remote=None, cred=None):
        """Run git; a network command gets a credential session for `remote`."""
        session = None
        if remote is not None:
            user, value = cred if cred else ("x-access-token", None)
            session = Session(ctx["tmp"], remote, user, value)
        scheme = self.base_url.split(":", 1)[0]
        argv = ["git", "-c", "credential.helper=",
                "-c", "credential.helper=!'%s' '%s'" % (sys.executable, HELPER),
                "-c", "credential.useHttpPath=true", "-c", "core.askPass=",
                "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "http.proxy=",
                "-c", "http.sslVerify=true", "-c", "protocol.allow=never",
                "-c", "protocol.%s.allow=always" % scheme] + args
        env = self._git_env(ctx, session.env() if session else None, pinned)
        try:
            proc = subprocess.Popen(argv, cwd=cwd or ctx["checkout"], env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            try:
                out, err = proc.communicate(timeout=GIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.communicate()
                raise JobFailed("git_failed", "git %s timed out" % args[0]) from None
            finally:
                _kill_group(proc.pid)
        finally:
            if session:
                session.close()
        if proc.returncode != 0:
            text = err.decode("utf-8", "replace")[-2000:]
            text = ctx["redactor"].scrub(self.global_redactor.scrub(text))
            raise JobFailed("git_failed", "git %s failed: %s" % (_verb(args), text.strip()))
        return out.decode("utf-8", "replace")

    def _checkout(self, ctx, ref):
        if ref is None:
            return  # the clone checked out the remote's default branch
        for target in ("refs/remotes/origin/" + ref, "refs/tags/" + ref, ref):
            try:
                self._git(ctx, ["checkout", "-q", "--detach", target + "^{commit}", "--"], pinned=True)
                return
            except JobFailed:
                continue
        raise JobFailed("git_failed", "cannot check out the job's ref")

    def _action(self, ctx, action):
        """W9: run the command in its own PID namespace and process group."""
        argv = action.get("argv") if isinstance(action, dict) else None
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise JobFailed("action_failed", "the action has no argv")
        if not self.isolated:
            raise JobFailed("action_failed", "command actions are refused: no PID namespace isolation here")
        timeout = action.get("timeout_ms", 60000)
        timeout = timeout / 1000.0 if isinstance(timeout, int) and timeout > 0 else 60.0
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "LANG": "C"}
        log_path = os.path.join(ctx["tmp"], "action.log")
        _chown_tree(ctx["checkout"], ACTION_UID, ACTION_GID, hand_over=True)
        try:
            with open(log_path, "wb") as logf:
                proc = subprocess.Popen(ISOLATION + argv, cwd=ctx["checkout"], env=env, stdin=subprocess.DEVNULL,
                                        stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    rc = proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    rc = None
                _kill_group(proc.pid)
                proc.wait()
        finally:
            # take the work dir back before git runs again
            _chown_tree(ctx["checkout"], os.geteuid(), os.getegid(), hand_over=False)
        with open(log_path, "rb") as f:
            out = f.read(65536)
        os.unlink(log_path)
        if out:
            self.log("action output: " + ctx["redactor"].scrub(out.decode("utf-8", "replace")))
        if rc is None:
            raise JobFailed("action_failed", "the action timed out")
        if rc != 0:
            raise JobFailed("action_failed", "the action exited with status %d" % rc)

    @staticmethod
    def _check_git_dir(git_dir):
        """G8: after the action, .git must be a plain directory without worktree links."""
        if os.path.islink(git_dir) or not os.path.isdir(git_dir):
            raise JobFailed("action_failed", "the action replaced .git")
        for name in ("commondir", "config.worktree", "worktrees"):
            if os.path.lexists(os.path.join(git_dir, name)):
                raise JobFailed("action_failed", "the action planted .git/" + name)


def _verb(args):
    for a in args:
        if not a.startswith("-") and "=" not in a:
            return a
    return "command"
