"""G6/G10: remote URLs a worker accepts, and the host a credential is bound to."""

import re
from urllib.parse import urlsplit

_AUTHORITY = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::([0-9]{1,5}))?\Z")
DEFAULT_PORT = {"https": 443, "http": 80}


def parse_authority(text, scheme):
    """`host[:port]` -> (host lower-cased, port) or None."""
    if not isinstance(text, str):
        return None
    m = _AUTHORITY.match(text)
    if not m:
        return None
    port = int(m.group(2)) if m.group(2) else DEFAULT_PORT.get(scheme)
    if port is None or not 1 <= port <= 65535:
        return None
    return m.group(1).lower(), port


def remote_authority(url):
    """(scheme, host, port) of a remote URL without user info, or None."""
    u = urlsplit(url)
    if u.scheme not in DEFAULT_PORT or "@" in u.netloc:
        return None
    a = parse_authority(u.netloc, u.scheme)
    return (u.scheme,) + a if a else None


def host_matches(url, bound):
    """May a credential bound to `bound` go to `url`? (fixtures/git/hosts.json)"""
    r = remote_authority(url)
    if r is None:
        return False
    b = parse_authority(bound, r[0])
    return b is not None and b == r[1:]
