"""Resolver (spec/resolver.md §2-§5): token and AppRole auth, renewal, the V3/V4
classification of Vault's answers, and the health probe."""

import os
import sys
import threading
import time

from httpclient import Client, Unavailable

# Variables other Vault clients read implicitly; a setting the user believes in is
# never dropped silently (S6): their presence is a configuration error.
REFUSED_ENV = ("VAULT_SKIP_VERIFY", "VAULT_CAPATH", "VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY",
               "VAULT_TLS_SERVER_NAME")
JOB_ID_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")


class VaultError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class ConfigError(Exception):
    pass


def encode_job_id(job_id):
    """V8: percent-encode bytes outside A-Z a-z 0-9 . _ : -."""
    if not job_id:
        return "%00-none"
    out = "".join(chr(c) if c in JOB_ID_SAFE else "%%%02X" % c for c in job_id.encode("utf-8"))
    if len(out) > 256:
        out = out[:255] + "~"
    return out


def read_credential(path):
    """S4: read at each use, trimmed; None when unreadable or empty."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            value = f.read(65536).strip()
    except (OSError, UnicodeError):
        return None
    return value or None


def check_environment(env=os.environ):
    for name in REFUSED_ENV:
        v = env.get(name)
        if v is None:
            continue
        if name == "VAULT_SKIP_VERIFY" and v.strip().lower() in ("", "0", "f", "false"):
            continue
        raise ConfigError("%s is set; TLS trust comes only from vault.ca_cert" % name)


class Resolver:
    def __init__(self, settings, log=None, on_token=None):
        """settings: the `vault` object of `configure`."""
        if not isinstance(settings, dict) or not isinstance(settings.get("addr"), str):
            raise ConfigError("vault.addr is required")
        check_environment()
        auth = settings.get("auth")
        if not isinstance(auth, dict):
            raise ConfigError("vault.auth is required")
        self.method = auth.get("method")
        if self.method == "token":
            files = [auth.get("token_file")]
        elif self.method == "approle":
            mount = auth.get("mount", "approle")
            if not isinstance(mount, str) or not mount or any(p in ("", ".", "..") for p in mount.split("/")):
                raise ConfigError("auth.mount is not a mount path")
            self.mount = mount
            files = [auth.get("role_id_file"), auth.get("secret_id_file")]
        else:
            raise ConfigError("unsupported auth method")
        for f in files:
            if not isinstance(f, str) or not os.path.isfile(f):
                raise ConfigError("a credential file does not exist")
        self.auth = auth
        timeout = settings.get("timeout_ms", 5000)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 300000:
            raise ConfigError("vault.timeout_ms must be 1..300000")
        ca = settings.get("ca_cert")
        if settings["addr"].startswith("https://") and ca is not None and not os.path.isfile(ca):
            raise ConfigError("vault.ca_cert does not exist")
        try:
            self.http = Client(settings["addr"], ca, timeout)
        except (ValueError, OSError):
            raise ConfigError("vault.addr or vault.ca_cert is unusable") from None
        self.job_header = settings.get("job_id_header") or "X-Vaultref-Job-Id"
        self.namespace = settings.get("namespace")
        self.log = log or (lambda msg: None)
        self.on_token = on_token or (lambda tok: None)
        self.lock = threading.Lock()
        self.token = None          # the token in use (AppRole: from our login)
        self.ttl = 0
        self.renew_at = None       # monotonic time of the next renewal
        self.expires_at = None
        self.renewable = False
        self.stopping = threading.Event()
        self.backoff = 1.0
        if self.method == "approle":
            threading.Thread(target=self._renewer, name="renewer", daemon=True).start()

    # -- requests ---------------------------------------------------------------

    def _headers(self, token=None, job_id=None):
        h = {}
        if token is not None:
            h["X-Vault-Token"] = token
        if job_id is not None:
            h[self.job_header] = encode_job_id(job_id)
        if self.namespace:
            h["X-Vault-Namespace"] = self.namespace
        return h

    def _call(self, method, path, token=None, job_id=None, body=None):
        try:
            r = self.http.request(method, path, self._headers(token, job_id), body)
        except Unavailable as e:
            raise VaultError("vault_unavailable", "Vault did not answer usably (%s)" % e) from None
        if 300 <= r.status < 400:
            raise VaultError("vault_unavailable", "Vault answered HTTP %d (redirects are not followed)" % r.status)
        return r

    # -- tokens -----------------------------------------------------------------

    def _login(self):
        """AppRole login; credential files are read at each login (S4)."""
        role_id = read_credential(self.auth["role_id_file"])
        secret_id = read_credential(self.auth["secret_id_file"])
        if role_id is None or secret_id is None:
            raise VaultError("vault_auth_failed", "the AppRole credential files hold nothing")
        r = self._call("POST", "/v1/auth/%s/login" % self.mount, body={"role_id": role_id, "secret_id": secret_id})
        del role_id, secret_id
        if r.status in (400, 401, 403):
            raise VaultError("vault_auth_failed", "AppRole login refused (HTTP %d)" % r.status)
        doc = r.json() if r.status == 200 else None
        auth = doc.get("auth") if doc else None
        if not isinstance(auth, dict) or not isinstance(auth.get("client_token"), str):
            raise VaultError("vault_unavailable", "AppRole login failed (HTTP %d)" % r.status)
        self._set_token(auth["client_token"], auth.get("lease_duration"), auth.get("renewable"))
        self.log("logged in at auth/%s" % self.mount)

    def _set_token(self, token, ttl, renewable):
        self.on_token(token)
        now = time.monotonic()
        self.token = token
        self.ttl = ttl if isinstance(ttl, int) and ttl > 0 else 0
        self.renewable = bool(renewable) and self.ttl > 0
        self.expires_at = now + self.ttl if self.ttl else None
        self.renew_at = now + self.ttl * 2 / 3 if self.ttl else None

    def _current_token(self):
        """The token to use now (logging in when there is none or it has expired)."""
        if self.method == "token":
            tok = read_credential(self.auth["token_file"])
            if tok is None:
                raise VaultError("vault_auth_failed", "the token file holds no token")
            self.on_token(tok)
            return tok
        with self.lock:
            if self.token is None or (self.expires_at is not None and time.monotonic() >= self.expires_at - 0.2):
                self._login()
            return self.token

    def _replace_dead(self, dead):
        """V4: the token is dead; get another one (one login for all callers)."""
        if self.method == "token":
            tok = read_credential(self.auth["token_file"])
            if tok is None or tok == dead:
                raise VaultError("vault_auth_failed", "the token is dead and the token file was not rewritten")
            self.on_token(tok)
            return tok
        with self.lock:
            if self.token == dead:
                self.token = None
                self._login()
            return self.token

    def _renewer(self):
        """T2/T3: renew at 2/3 of the TTL; log in again when renewal falls short."""
        while not self.stopping.is_set():
            with self.lock:
                due = self.renew_at
            wait = 0.2 if due is None else max(0.05, due - time.monotonic())
            if self.stopping.wait(min(wait, 0.5)):
                return
            with self.lock:
                if self.token is None or self.renew_at is None or time.monotonic() < self.renew_at:
                    continue
                try:
                    self._renew_or_login()
                    self.backoff = 1.0
                except VaultError as e:
                    if e.code == "vault_unavailable":
                        self.renew_at = time.monotonic() + self.backoff
                        self.backoff = min(self.backoff * 2, 30.0)
                    else:
                        self.token = None
                        self.renew_at = None
                    self.log("token renewal failed: %s" % e.code)

    def _renew_or_login(self):
        if self.renewable:
            try:
                r = self._call("POST", "/v1/auth/token/renew-self", token=self.token,
                               body={"increment": "%ds" % self.ttl})
                doc = r.json() if r.status == 200 else None
                auth = doc.get("auth") if doc else None
                granted = auth.get("lease_duration") if isinstance(auth, dict) else None
                if isinstance(granted, int) and granted >= self.ttl:
                    now = time.monotonic()
                    self.expires_at = now + granted
                    self.renew_at = now + granted * 2 / 3
                    self.log("token renewed")
                    return
            except VaultError:
                pass
        self._login()

    def shutdown(self):
        """T6: stop renewing and revoke a token we obtained by logging in."""
        self.stopping.set()
        if self.method == "approle" and self.token is not None:
            try:
                self._call("POST", "/v1/auth/token/revoke-self", token=self.token)
            except VaultError:
                pass
        self.token = None

    # -- resolution -------------------------------------------------------------

    def read(self, ref, job_id):
        """V2-V4: the secret document's `data.data` and the field's value."""
        token = self._current_token()
        r = self._call("GET", ref.data_path(), token, job_id)
        if r.status in (401, 403):
            if self._token_alive(token, job_id):
                raise VaultError("vault_permission_denied", "Vault denies %s for job %s" % (ref.format(), job_id))
            token = self._replace_dead(token)
            r = self._call("GET", ref.data_path(), token, job_id)
            if r.status in (401, 403):
                if self._token_alive(token, job_id):
                    raise VaultError("vault_permission_denied",
                                     "Vault denies %s for job %s" % (ref.format(), job_id))
                raise VaultError("vault_auth_failed", "no valid Vault token can be had")
        return self._classify(r, ref, job_id)

    def _token_alive(self, token, job_id):
        r = self._call("GET", "/v1/auth/token/lookup-self", token, job_id)
        if r.status == 200:
            return True
        if r.status in (401, 403):
            return False
        raise VaultError("vault_unavailable", "lookup-self answered HTTP %d" % r.status)

    def _classify(self, r, ref, job_id):
        where = "%s (job %s)" % (ref.format(), job_id)
        doc = r.json() if r.status in (200, 404) else None
        if r.status == 200:
            if doc is None:
                raise VaultError("vault_unavailable", "Vault answered 200 without a JSON object for " + where)
            data = doc.get("data")
            inner = data.get("data") if isinstance(data, dict) else None
            if isinstance(inner, dict):
                value = inner.get(ref.field)
                if isinstance(value, str):
                    return value, inner
                raise VaultError("secret_field_missing", "no string field `%s` in %s" % (ref.field, where))
            return self._missing(data, where)
        if r.status == 404:
            return self._missing(doc.get("data") if doc else None, where)
        raise VaultError("vault_unavailable", "Vault answered HTTP %d for %s" % (r.status, where))

    @staticmethod
    def _missing(data, where):
        meta = data.get("metadata") if isinstance(data, dict) else None
        if isinstance(meta, dict):
            if meta.get("destroyed") is True:
                raise VaultError("secret_version_destroyed", "the version was destroyed: " + where)
            if isinstance(meta.get("deletion_time"), str) and meta["deletion_time"]:
                raise VaultError("secret_version_deleted", "the version was deleted: " + where)
        raise VaultError("secret_not_found", "nothing at " + where)

    def probe(self):
        """§5: is Vault able to serve reads?"""
        try:
            r = self._call("GET", "/v1/sys/health")
        except VaultError:
            return False
        return r.status in (200, 429, 472, 473)
