"""A deliberately small HTTP client for Vault (resolver.md S6).

- http.client directly: no redirect is ever followed, no proxy variable is read;
- TLS trust only from the configured CA file (never from the environment);
- every request bounded: one deadline for connect + headers + body, enforced by a
  watchdog that shuts the socket, and at most MAX_BODY bytes of body.
"""

import http.client
import json
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

MAX_BODY = 4 * 1024 * 1024


class Unavailable(Exception):
    """No usable answer: connection failure, timeout, oversize or redirect."""


class Response:
    def __init__(self, status, body):
        self.status = status
        self.body = body

    def json(self):
        """The body as a JSON object, or None."""
        try:
            v = json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeError, RecursionError):
            return None
        return v if isinstance(v, dict) else None


class Client:
    def __init__(self, addr, ca_cert=None, timeout_ms=5000):
        u = urlsplit(addr)
        if u.scheme not in ("http", "https") or not u.hostname or u.username or u.password \
                or u.query or u.fragment:
            raise ValueError("vault.addr must be an http:// or https:// base URL")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.prefix = u.path.rstrip("/")
        self.timeout = timeout_ms / 1000.0
        self.ssl = None
        if u.scheme == "https":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify + hostname check on
            if ca_cert:
                ctx.load_verify_locations(cafile=ca_cert)
            else:
                ctx.load_default_certs()
            self.ssl = ctx

    def request(self, method, path, headers=None, body=None):
        deadline = time.monotonic() + self.timeout
        if self.ssl is not None:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.ssl)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        watchdog = threading.Timer(self.timeout, _kill, (conn,))
        watchdog.daemon = True
        watchdog.start()
        try:
            data = None if body is None else json.dumps(body).encode()
            hdrs = {"Accept": "application/json"}
            if data is not None:
                hdrs["Content-Type"] = "application/json"
            hdrs.update(headers or {})
            conn.request(method, self.prefix + path, body=data, headers=hdrs)
            resp = conn.getresponse()
            length = resp.getheader("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > MAX_BODY:
                raise Unavailable("answer larger than 4 MiB")
            chunks, size = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise Unavailable("timed out")
                chunk = resp.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_BODY:
                    raise Unavailable("answer larger than 4 MiB")
                chunks.append(chunk)
            if time.monotonic() > deadline:
                raise Unavailable("timed out")
            return Response(resp.status, b"".join(chunks))
        except Unavailable:
            raise
        except (OSError, http.client.HTTPException, ssl.SSLError, ValueError) as e:
            if time.monotonic() > deadline:
                raise Unavailable("timed out") from None
            raise Unavailable(type(e).__name__) from None
        finally:
            watchdog.cancel()
            conn.close()


def _kill(conn):
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
