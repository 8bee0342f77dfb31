"""The token rule table of spec/redaction.md §3, on bytes.

`find(line)` yields `(rule_id, start, end)` for the secret part of every match in
one line (no terminators inside). A match must start at an occurrence of one of
the rule's keywords; keywords marked * in the spec are tried in three casings.
"""

import re


def _casings(words):
    out = []
    for w in words:
        for v in (w, w[:1].upper() + w[1:], w.upper()):
            if v not in out:
                out.append(v)
    return out


# (id, keywords, pattern); patterns are compiled with re.ASCII and anchored at a keyword.
_TABLE = [
    ("github-pat", ["ghp_"], rb"ghp_[A-Za-z0-9]{36,}"),
    ("github-oauth", ["gho_"], rb"gho_[A-Za-z0-9]{36,}"),
    ("github-user-to-server", ["ghu_"], rb"ghu_[A-Za-z0-9]{36,}"),
    ("github-server-to-server", ["ghs_"], rb"ghs_[A-Za-z0-9]{36,}"),
    ("github-refresh", ["ghr_"], rb"ghr_[A-Za-z0-9]{36,}"),
    ("github-fine-grained-pat", ["github_pat_"], rb"github_pat_[A-Za-z0-9_]{82,}"),
    ("vault-token", ["hvs.", "hvb.", "hvr."], rb"hv[sbr]\.[A-Za-z0-9_-]{24,}"),
    ("vault-legacy-token", ["s.", "r.", "b."],
     rb"\b[sr]\.[A-Za-z0-9]{24}\b|\bb\.[A-Za-z0-9_-]{80,}"),
    ("aws-access-key-id", ["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
     rb"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
    ("gitlab-pat", ["glpat-"], rb"glpat-[A-Za-z0-9_-]{20,}"),
    ("google-api-key", ["AIza"], rb"AIza[A-Za-z0-9_-]{35}"),
    ("jwt", ["eyJ"], rb"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    ("private-key", ["-----BEGIN"], rb"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"),
    ("authorization-header", _casings(["authorization"]),
     rb"(?i:authorization)[\"']?[ \t]*[:=][ \t]*[\"']?(?i:bearer|basic|token)[ \t]+(?P<s>[^ \t\r\n\"',;]+)"),
    ("bearer-token", _casings(["bearer"]),
     rb"\b(?i:bearer)[ \t]+(?P<s>[A-Za-z0-9._~+/-]{16,}=*)"),
    ("url-password", ["://"], rb"://[^ \t\r\n:/?#@]*:(?P<s>[^ \t\r\n/?#@]+)@"),
    ("git-credential-password", ["password="], rb"password=(?P<s>[^\r\n]+)"),
    ("secret-assignment",
     _casings(["token", "passw", "secret", "api_key", "apikey", "access_key", "accesskey", "credential"]),
     rb"(?i:token|passw(?:or)?d|secret|api_?key|access_?key|credentials?)[\"']?[ \t]*(?:=[ \t]*[\"']?|:[ \t]*[\"']|:[ \t]+)(?P<s>[^ \t\r\n\"'`,;&]{8,})"),
]

RULES = [(rid, [k.encode() for k in kws], re.compile(pat, re.ASCII)) for rid, kws, pat in _TABLE]
RULE_IDS = [r[0] for r in RULES]
PEM_BEGIN = re.compile(rb"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
PEM_END = re.compile(rb"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
SEGMENT = 262144


def _keyword_positions(line, keywords):
    pos = set()
    for kw in keywords:
        i = line.find(kw)
        while i >= 0:
            pos.add(i)
            i = line.find(kw, i + 1)
    return sorted(pos)


def find_in_line(line):
    """All (rule_id, start, end) secret-part spans in one line (bytes, no terminator)."""
    out = []
    for rid, keywords, rx in RULES:
        last_end = 0
        for p in _keyword_positions(line, keywords):
            if p < last_end:
                continue
            if rid == "git-credential-password" and p != 0:
                continue  # (?mR:^): only at a line start
            m = rx.match(line, p)
            if not m:
                continue
            if "s" in rx.groupindex:
                out.append((rid, m.start("s"), m.end("s")))
            else:
                out.append((rid, m.start(), m.end()))
            last_end = max(m.end(), p + 1)
    return out


def iter_lines(data):
    """(offset, line) for every line of `data`, cut into SEGMENT-sized pieces."""
    start = 0
    n = len(data)
    while start <= n:
        j = start
        while j < n and data[j] not in (10, 13):
            j += 1
        for s in range(start, j, SEGMENT) if j > start else [start]:
            yield s, data[s:min(j, s + SEGMENT)]
        if j >= n:
            break
        start = j + 1


def find(data):
    """All (rule_id, start, end) spans in a byte string, line by line."""
    spans = []
    for off, line in iter_lines(data):
        for rid, s, e in find_in_line(line):
            if rid == "private-key":
                continue
            spans.append((rid, off + s, off + e))
    spans.extend(("private-key", s, e) for s, e in pem_blocks(data))
    return spans


def pem_blocks(data):
    """PEM private-key blocks (§3.1) as (start, end)."""
    out = []
    pos = 0
    while True:
        m = PEM_BEGIN.search(data, pos)
        if not m:
            return out
        # the block may not run past the 201st newline after the BEGIN marker
        k, nl, count = m.end(), None, 0
        while count < 201:
            k = data.find(b"\n", k)
            if k < 0:
                break
            nl, k, count = k, k + 1, count + 1
        nl_201 = nl if count == 201 else len(data)
        e = PEM_END.search(data, m.end())
        if e and e.start() < nl_201:
            end = e.end()
        else:
            end = nl_201
        out.append((m.start(), end))
        pos = max(end, m.end())
