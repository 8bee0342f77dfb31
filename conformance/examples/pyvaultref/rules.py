"""The token rule table of spec/redaction.md §3, on bytes.

`find(line)` yields `(rule_id, start, end)` for the secret part of every match in
one line (no terminators inside). A match must start at an occurrence of one of
the rule's keywords; keywords of rules marked "any case" in the spec are compared
in any ASCII case (the search runs over a lower-cased copy of the line), the
others exactly (the anchored pattern checks the case). Rules marked "by name"
drop placeholder values (§3.2).
"""

import re

# (id, keywords, pattern, by_name); patterns are compiled with re.ASCII and
# anchored at a keyword.
_TABLE = [
    ("github-pat", ["ghp_"], rb"ghp_[A-Za-z0-9]{36,}", False),
    ("github-oauth", ["gho_"], rb"gho_[A-Za-z0-9]{36,}", False),
    ("github-user-to-server", ["ghu_"], rb"ghu_[A-Za-z0-9]{36,}", False),
    ("github-server-to-server", ["ghs_"], rb"ghs_[A-Za-z0-9]{36,}", False),
    ("github-refresh", ["ghr_"], rb"ghr_[A-Za-z0-9]{36,}", False),
    ("github-fine-grained-pat", ["github_pat_"], rb"github_pat_[A-Za-z0-9_]{82,}", False),
    ("vault-token", ["hvs.", "hvb.", "hvr."], rb"hv[sbr]\.[A-Za-z0-9_-]{24,}", False),
    ("vault-legacy-token", ["s.", "r.", "b."],
     rb"\b[sr]\.[A-Za-z0-9]{24}\b|\bb\.[A-Za-z0-9_-]{80,}", False),
    ("aws-access-key-id", ["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
     rb"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b", False),
    ("gitlab-pat", ["glpat-"], rb"glpat-[A-Za-z0-9_-]{20,}", False),
    ("google-api-key", ["AIza"], rb"AIza[A-Za-z0-9_-]{35}", False),
    ("jwt", ["eyJ"], rb"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", False),
    ("slack-token", ["xox", "xapp-"],
     rb"xox[abeoprs](?:\.xox[bp])?-[0-9A-Za-z-]{10,}|xapp-[0-9]-[0-9A-Za-z-]{10,}", False),
    ("slack-webhook", ["hooks.slack.com/"],
     rb"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9_/+-]{20,})", False),
    ("stripe-key", ["sk_", "rk_", "whsec_"],
     rb"\b[sr]k_(?:live|test)_[0-9A-Za-z]{20,}|whsec_[A-Za-z0-9+/=]{24,}", False),
    ("sendgrid-api-key", ["SG."], rb"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}", False),
    ("twilio-api-key", ["SK"], rb"\bSK[0-9a-fA-F]{32}\b", False),
    ("npm-token", ["npm_"], rb"npm_[A-Za-z0-9]{36}", False),
    ("pypi-token", ["pypi-Ag"], rb"pypi-Ag(?:EIcHlwaS5vcmc|ENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,}", False),
    ("dockerhub-token", ["dckr_"], rb"dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,}", False),
    ("gitlab-token", ["gldt-", "glrt-", "glptt-", "GR1348941"],
     rb"(?:gldt|glrt|glptt)-[A-Za-z0-9_-]{20,}|GR1348941[A-Za-z0-9_-]{20,}", False),
    ("private-key", ["-----BEGIN"], rb"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----", False),
    ("authorization-header", ["authorization"],
     rb"(?i:authorization)[\"']?[ \t]*[:=][ \t]*[\"']?(?i:bearer|basic|token)[ \t]+(?P<s>[^ \t\r\n\"',;]+)", True),
    ("bearer-token", ["bearer"],
     rb"\b(?i:bearer)[ \t]+(?P<s>[A-Za-z0-9._~+/-]{16,}=*)", True),
    ("url-password", ["://"], rb"://[^ \t\r\n:/?#@]*:(?P<s>[^ \t\r\n/?#@]+)@", True),
    ("git-credential-password", ["password="], rb"password=(?P<s>[^\r\n]+)", True),
    ("azure-storage-key", ["accountkey=", "sharedaccesskey="],
     rb"(?i:accountkey|sharedaccesskey)=(?P<s>[A-Za-z0-9+/]{40,}={0,2})", False),
    ("docker-config-auth", ['"auth"'], rb"\"(?i:auth)\"[ \t]*:[ \t]*\"(?P<s>[A-Za-z0-9+/]{8,}={0,2})\"", False),
    ("netrc-password", ["machine"],
     rb"\b(?i:machine)[ \t]+[^ \t\r\n]+(?:[ \t]+(?i:login|account)[ \t]+[^ \t\r\n]+)*[ \t]+(?i:password)[ \t]+(?P<s>[^ \t\r\n]+)", True),
    ("cli-password-flag", ["--pass", "--token", "--api", "--secret", "--auth", "--access"],
     rb"--(?i:password|passwd|pass|token|api-?key|secret|auth-token|access-token)(?:=|[ \t]+)[\"']?(?P<s>[^ \t\r\n\"'`]{4,})", True),
    ("cli-user-password", ["curl"],
     rb"(?i:curl)[^\r\n]*?[ \t](?:-u|--user)(?:=|[ \t]*)[\"']?[^ \t\r\n:\"']+:(?P<s>[^ \t\r\n\"']+)", True),
    ("cli-short-password-flag", ["login", "mysql"],
     rb"(?:(?i:login)(?:[ \t]+[^ \t\r\n]+)*?[ \t]+-p(?:=|[ \t]+)|(?i:mysql)[a-z]*(?:[ \t]+[^ \t\r\n]+)*?[ \t]+-p)[\"']?(?P<s>[^ \t\r\n\"']+)", True),
    ("password-colon", ["passw", "_pwd"],
     rb"(?i:passw(?:or)?d|_pwd):(?P<s>[^ \t\r\n\"'`,;&@/]{8,})", True),
    ("secret-assignment",
     ["token", "passw", "_pwd", "secret", "api_", "api-", "apik", "access_", "access-", "accessk",
      "private", "credential"],
     rb"(?i:token|passw(?:or)?d|_pwd|secret(?:[_-]?access)?(?:[_-]?key)?|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)[\"']?[ \t]*(?:=[ \t]*[\"']?|:[ \t]*[\"']|:[ \t]+)(?P<s>[^ \t\r\n\"'`,;&]{8,})", True),
]

RULES = [(rid, [k.lower().encode() for k in kws], re.compile(pat, re.ASCII), by_name)
         for rid, kws, pat, by_name in _TABLE]
RULE_IDS = [r[0] for r in RULES]
PEM_BEGIN = re.compile(rb"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
PEM_END = re.compile(rb"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")

# §3.2 placeholders
_OPENERS = [b"$", b"<", b"{{", b"{%", b"%(", b"#{", b"[REDACTED", b"="]
_CODE = [b"process.env.", b"os.environ", b"os.getenv", b"env.", b"env[", b"secrets.", b"vars.",
         b"settings.", b"config.", b"self.", b"this.", b"optional[", b"option<", b"secret<",
         b"secretstr", b"secretstring", b"secretbytes"]
_WORDS = [b"changeme", b"replaceme", b"placeholder", b"example", b"redacted", b"undefined", b"notset",
          b"password", b"secret", b"token", b"dummy", b"none", b"null", b"nil", b"true", b"false",
          b"empty", b"required", b"string"]
_WORD_PREFIXES = [b"your", b"insertyour", b"enteryour", b"putyour", b"changeme", b"replaceme"]
_IDENT = re.compile(rb"[A-Za-z0-9_.]*\Z")


def is_placeholder(v):
    if any(v.startswith(o) for o in _OPENERS) or any(v.lower().startswith(c) for c in _CODE):
        return True
    if b"(" in v:
        name, _, args = v.partition(b"(")
        if args.endswith(b")"):
            args = args[:-1]
        if (name and not name[:1].isdigit() and _IDENT.match(name)
                and all(_IDENT.match(a.strip(b" \t")) for a in args.split(b","))):
            return True
    if len(v) >= 3 and (len(set(v)) == 1 or all(c in b"xX*.#-_" for c in v)):
        return True
    word = v.replace(b"_", b"").replace(b"-", b"").lower()
    return word in _WORDS or any(word.startswith(w) for w in _WORD_PREFIXES)
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
    lower = line.lower()
    for rid, keywords, rx, by_name in RULES:
        last_end = 0
        for p in _keyword_positions(lower, keywords):
            if p < last_end:
                continue
            if rid == "git-credential-password" and p != 0:
                continue  # (?mR:^): only at a line start
            m = rx.match(line, p)
            if not m:
                continue
            last_end = max(m.end(), p + 1)
            s, e = (m.start("s"), m.end("s")) if "s" in rx.groupindex else (m.start(), m.end())
            if by_name and is_placeholder(line[s:e]):
                continue
            out.append((rid, s, e))
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
