"""Credential sessions (resolver.md §10, G1-G3): one Unix socket per git command,
in a 0700 directory, answering `get` once for exactly one protocol/host/path."""

import hmac
import os
import secrets
import socket
import threading
from urllib.parse import urlsplit

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "git_credential.py")
SUN_PATH_MAX = 100  # sockaddr_un.sun_path is 108 bytes on Linux


def with_short_path(path, action):
    """Call action(p) with a path to `path` short enough for AF_UNIX: long paths
    go through an O_PATH descriptor of the directory (/proc/self/fd/N/name)."""
    if len(os.fsencode(path)) < SUN_PATH_MAX:
        return action(path)
    fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
    try:
        return action("/proc/self/fd/%d/%s" % (fd, os.path.basename(path)))
    finally:
        os.close(fd)


def remote_scope(url):
    """(protocol, host[:port] lower-cased, path without surrounding /) of a remote."""
    u = urlsplit(url)
    host = u.hostname or ""
    if u.port is not None:
        host = "%s:%d" % (host, u.port)
    return u.scheme, host.lower(), u.path.strip("/")


def parse_description(data):
    attrs = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            if not k.endswith("[]"):
                attrs[k] = v
    return attrs


def answers(scope, attrs):
    protocol, host, path = scope
    if "protocol" not in attrs or "host" not in attrs or "path" not in attrs:
        return False
    return (attrs["protocol"] == protocol and attrs["host"].lower() == host
            and attrs["path"].strip("/") == path)


class Session:
    """Serve one credential for one remote for the life of one git command."""

    def __init__(self, directory, remote_url, username, password):
        self.scope = remote_scope(remote_url)
        self.username = username
        self.password = password
        self.nonce = secrets.token_hex(16)
        self.path = os.path.join(directory, "cred-%s.sock" % secrets.token_hex(6))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with_short_path(self.path, self.sock.bind)
        os.chmod(self.path, 0o600)
        self.sock.listen(4)
        self.used = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def env(self):
        return {"PYVAULTREF_CRED_SOCKET": self.path, "PYVAULTREF_CRED_NONCE": self.nonce}

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(5)
                    data = b""
                    while len(data) < 65536:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    nonce, _, request = data.partition(b"\n")
                    if not hmac.compare_digest(nonce, self.nonce.encode()):
                        continue
                    if self.used or self.password is None or not answers(self.scope, parse_description(request)):
                        continue
                    self.used = True
                    conn.sendall(("username=%s\npassword=%s\n" % (self.username, self.password)).encode())
                except OSError:
                    continue

    def close(self):
        self.password = None
        try:
            self.sock.close()
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass
