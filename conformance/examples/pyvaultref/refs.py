"""Secret refs: syntax (spec/secret-ref.md §1-2) and policy (§4).

A ref is handled as bytes; nothing is decoded. `parse_ref` returns a `Ref` or
raises `RefError(code, offset)`; `Policy.check` adds the policy steps.
"""

from dataclasses import dataclass

SCHEME = b"vault://"
ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/:?#=")
SEGCHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
MAX_LENGTH = 512
MAX_VERSION = 4294967295


class RefError(Exception):
    def __init__(self, code, offset, message=""):
        super().__init__(message or code)
        self.code = code
        self.offset = offset
        self.message = message or code


@dataclass(frozen=True)
class Ref:
    mount: str
    path: str
    version: object  # int or None
    field: str

    def format(self):
        q = "" if self.version is None else "?version=%d" % self.version
        return "vault://%s/%s%s#%s" % (self.mount, self.path, q, self.field)

    def data_path(self):
        q = "" if self.version is None else "?version=%d" % self.version
        return "/v1/%s/data/%s%s" % (self.mount, self.path, q)

    def metadata_path(self):
        return "/v1/%s/metadata/%s" % (self.mount, self.path)

    def as_json(self):
        return {"mount": self.mount, "path": self.path, "version": self.version, "field": self.field}


def is_segment(s):
    """A non-empty run of segchars that is not `.` or `..` (str or bytes)."""
    b = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s
    return bool(b) and all(c in SEGCHARS for c in b) and b not in (b".", b"..")


def _read_segment(data, i):
    """Read segchars from i; stop at / ? # or end; other bytes are invalid."""
    start = i
    n = len(data)
    while i < n and data[i] in SEGCHARS:
        i += 1
    if i < n and data[i] not in b"/?#":
        raise RefError("ref_invalid_char", i, "byte not allowed here")
    return data[start:i], i


def parse_ref(data, max_length=MAX_LENGTH):
    """Syntax check of §2 steps 1-5. `data` is bytes."""
    n = len(data)
    if n == 0:
        raise RefError("ref_empty", None, "the ref is empty")
    if n > max_length:
        raise RefError("ref_too_long", max_length, "the ref is longer than %d bytes" % max_length)
    for i, c in enumerate(data):
        if c not in ALPHABET:
            raise RefError("ref_invalid_char", i, "byte outside the ref alphabet")
    for i, c in enumerate(SCHEME):
        if i >= n or data[i] != c:
            raise RefError("ref_bad_scheme", i, "the ref must start with vault://")
    i = len(SCHEME)
    mount, i = _read_segment(data, i)
    if not mount:
        raise RefError("ref_missing_mount", i, "no mount")
    if mount in (b".", b".."):
        raise RefError("ref_traversal", i - len(mount), "traversal segment")
    if i >= n or data[i] in b"?#":
        raise RefError("ref_missing_path", i, "no path after the mount")
    i += 1  # the '/'
    segments = []
    version = None
    while True:
        seg_start = i
        seg, i = _read_segment(data, i)
        if not seg:
            if not segments and (i >= n or data[i] in b"?#"):
                raise RefError("ref_missing_path", i, "no path after the mount")
            raise RefError("ref_empty_segment", i, "empty path segment")
        if seg in (b".", b".."):
            raise RefError("ref_traversal", seg_start, "traversal segment")
        segments.append(seg)
        if i >= n:
            raise RefError("ref_missing_field", n, "no #field")
        if data[i] == ord("/"):
            i += 1
            continue
        break
    if data[i] == ord("?"):
        i += 1
        for c in b"version=":
            if i >= n or data[i] != c:
                raise RefError("ref_bad_query", i, "the query must be version=<n>")
            i += 1
        if i >= n or not (0x31 <= data[i] <= 0x39):
            raise RefError("ref_bad_query", i, "the version must be 1..4294967295")
        digits_start = i
        while i < n and 0x30 <= data[i] <= 0x39:
            i += 1
        version = int(data[digits_start:i])
        if version > MAX_VERSION:
            raise RefError("ref_bad_query", digits_start, "the version is too large")
        if i < n and data[i] != ord("#"):
            raise RefError("ref_bad_query", i, "text after the version")
        if i >= n:
            raise RefError("ref_missing_field", n, "no #field")
    # data[i] == '#'
    i += 1
    field_start = i
    while i < n:
        if data[i] not in SEGCHARS:
            raise RefError("ref_invalid_char", i, "byte not allowed in the field")
        i += 1
    if i == field_start:
        raise RefError("ref_missing_field", field_start, "empty field")
    return Ref(mount.decode(), b"/".join(segments).decode(), version, data[field_start:].decode())


class PolicyError(Exception):
    """The policy itself cannot be built (config_invalid)."""


VARIABLES = {"{repository}", "{owner}", "{repo}", "{worker_id}"}


class Policy:
    def __init__(self, settings=None):
        settings = settings or {}
        if not isinstance(settings, dict):
            raise PolicyError("policy is not an object")
        mounts = settings.get("allowed_mounts", ["kv"])
        if mounts is None:
            mounts = ["kv"]
        if not isinstance(mounts, list) or not all(isinstance(m, str) for m in mounts):
            raise PolicyError("allowed_mounts must be a list of strings")
        max_length = settings.get("max_length", MAX_LENGTH)
        if max_length is None:
            max_length = MAX_LENGTH
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 1 <= max_length <= MAX_LENGTH:
            raise PolicyError("max_length must be 1..512")
        scopes = settings.get("scopes", [])
        if scopes is None:
            scopes = []
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise PolicyError("scopes must be a list of strings")
        self.allowed_mounts = list(mounts)
        self.max_length = max_length
        self.scopes = [self._template(s) for s in scopes]

    @staticmethod
    def _template(text):
        parts = text.split("/")
        for k, p in enumerate(parts):
            if p == "**":
                if k != len(parts) - 1:
                    raise PolicyError("** must be the last pattern segment")
            elif p == "*" or p in VARIABLES:
                pass
            elif not is_segment(p):
                raise PolicyError("bad pattern segment in a scope template")
        return parts

    def check(self, data, repository=None, worker_id=None):
        """Syntax then policy; returns a Ref or raises RefError."""
        ref = parse_ref(data, self.max_length)
        if ref.mount not in self.allowed_mounts:
            raise RefError("ref_mount_not_allowed", len(SCHEME), "mount not allowed by the policy")
        if self.scopes:
            path = ref.path.split("/")
            if not any(_match(_bind(t, repository, worker_id), path) for t in self.scopes):
                raise RefError("ref_out_of_scope", len(SCHEME) + len(ref.mount) + 1,
                               "the path is outside the job's scopes")
        return ref


def _bind(template, repository, worker_id):
    """Expand variables into literal segments; None when a variable is unbound."""
    owner = repo = None
    if isinstance(repository, str):
        halves = repository.split("/")
        if len(halves) == 2 and is_segment(halves[0]) and is_segment(halves[1]):
            owner, repo = halves
    out = []
    for p in template:
        if p == "{repository}":
            if owner is None:
                return None
            out += [owner, repo]
        elif p == "{owner}":
            if owner is None:
                return None
            out.append(owner)
        elif p == "{repo}":
            if repo is None:
                return None
            out.append(repo)
        elif p == "{worker_id}":
            if not (isinstance(worker_id, str) and is_segment(worker_id)):
                return None
            out.append(worker_id)
        else:
            out.append((p,))  # tuple marks a pattern (literal / * / **)
    return out


def _match(bound, path):
    if bound is None:
        return False
    for k, p in enumerate(bound):
        lit = p[0] if isinstance(p, tuple) else None
        if lit == "**":
            return len(path) > k
        if k >= len(path):
            return False
        if lit == "*":
            continue
        want = lit if lit is not None else p
        if path[k] != want:
            return False
    return len(path) == len(bound)
