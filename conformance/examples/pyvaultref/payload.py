"""The codex_exec payload pipeline (spec/codex-exec.md §5): strict JSON, schema,
refs, queue policy, raw-secret lint. `validate` returns (errors, summary)."""

import re

import redact
import rules
import strictjson
from refs import Policy, PolicyError, RefError, is_segment

# The schema's patterns, anchored at the very end of the string (fullmatch = ^...\Z).
_SEG = r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+)"
REPOSITORY_RE = re.compile(
    r"(?:%s/%s|https://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:/%s)+/?)"
    % (_SEG, _SEG, _SEG))
GITREF_RE = re.compile(r"[^\x00-\x20\x7f~^:?*\[\\/-][^\x00-\x20\x7f~^:?*\[\\]*")
GITREF_BAD_RE = re.compile(r"\.\.|@\{|^@\Z|/\Z|//|\.\Z|(?:^|/)\.|\.lock(?:/|\Z)")
# ECMA-262 white space and line terminators (what `\s` means in the schema).
ECMA_SPACE = frozenset("\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                       "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff")
AUTH_REF_NAME = re.compile(r"[Aa][Uu][Tt][Hh][Rr][Ee][Ff]\Z")
AUTH_REFS = ("repoAuthRef", "publishAuthRef")


def pointer(*parts):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def repository_slug(value):
    """codex-exec.md §3.1: `owner/repo` or None."""
    if not isinstance(value, str):
        return None
    if value.startswith("https://"):
        rest = value[len("https://"):]
        if "/" not in rest:
            return None
        host, path = rest.split("/", 1)
        if not _authority_ok(host):
            return None
        if path.endswith("/"):
            path = path[:-1]
        if "/" not in path:
            return None
        owner, repo = path.split("/", 1)
        if repo.endswith(".git"):
            repo = repo[:-4]
    else:
        if "/" not in value:
            return None
        owner, repo = value.split("/", 1)
    if is_segment(owner) and is_segment(repo):
        return owner + "/" + repo
    return None


_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")


def _authority_ok(host):
    return bool(_HOST_RE.fullmatch(host))


def _git_ref_ok(v):
    return (isinstance(v, str) and 1 <= len(v) <= 255 and GITREF_RE.fullmatch(v) is not None
            and GITREF_BAD_RE.search(v) is None)


def _schema(job):
    errs = []

    def bad(ptr, msg):
        errs.append(("payload_schema", ptr, msg))

    if "type" not in job or "payload" not in job:
        bad("", "required: a job has `type` and `payload`")
    if "type" in job and job["type"] != "codex_exec":
        bad("/type", "const: the job type, the string \"codex_exec\"")
    if "payload" not in job:
        return errs
    p = job["payload"]
    if not isinstance(p, dict):
        bad("/payload", "type: the codex_exec payload object")
        return errs
    if "repository" not in p or "instruction" not in p:
        bad("/payload", "required: `repository` and `instruction`")
    for name in p:
        if name not in AUTH_REFS and AUTH_REF_NAME.search(name):
            bad("/payload", "propertyNames: names ending in AuthRef are reserved")
            break
    if "repository" in p:
        r = p["repository"]
        if not (isinstance(r, str) and len(r) <= 512 and REPOSITORY_RE.fullmatch(r)):
            bad("/payload/repository", "`owner/repo`, or an https://host[:port]/path URL")
    if "instruction" in p:
        i = p["instruction"]
        if not (isinstance(i, str) and any(c not in ECMA_SPACE for c in i)):
            bad("/payload/instruction", "a non-empty string with a non-whitespace character")
    if "ref" in p and not _git_ref_ok(p["ref"]):
        bad("/payload/ref", "a git ref name")
    if "workdirMode" in p and not (isinstance(p["workdirMode"], str)
                                   and p["workdirMode"] in ("fresh_clone", "reuse")):
        bad("/payload/workdirMode", "one of fresh_clone, reuse")
    if "publish" in p:
        pub = p["publish"]
        if not isinstance(pub, dict):
            bad("/payload/publish", "an object")
        else:
            if "mode" in pub and not (isinstance(pub["mode"], str) and pub["mode"] in ("none", "branch", "pr")):
                bad("/payload/publish/mode", "one of none, branch, pr")
            if "baseBranch" in pub and not _git_ref_ok(pub["baseBranch"]):
                bad("/payload/publish/baseBranch", "a git ref name")
    if "codex" in p:
        cx = p["codex"]
        if not isinstance(cx, dict):
            bad("/payload/codex", "an object")
        else:
            for k in ("model", "effort"):
                if k in cx and not (isinstance(cx[k], str) and 1 <= len(cx[k]) <= 256):
                    bad("/payload/codex/" + k, "a string of 1 to 256 characters")
    for k in AUTH_REFS:
        if k in p and not isinstance(p[k], str):
            bad("/payload/" + k, "a secret ref string")
    return errs


def check_refs(payload, policy, worker_id):
    """Step 3: (errors, parsed refs by member name)."""
    errs, parsed = [], {}
    slug = repository_slug(payload.get("repository"))
    for k in AUTH_REFS:
        v = payload.get(k)
        if not isinstance(v, str):
            continue
        try:
            parsed[k] = policy.check(v.encode("utf-8"), slug, worker_id)
        except RefError as e:
            errs.append((e.code, "/payload/" + k, e.message))
    return errs, parsed


def queue_errors(job, queue_policy):
    errs = []
    if not isinstance(queue_policy, dict):
        return errs
    types = queue_policy.get("allowed_job_types")
    if types is not None and isinstance(job.get("type"), str) and job["type"] not in types:
        errs.append(("job_type_not_allowed", "/type", "the queue policy does not allow this job type"))
    repos = queue_policy.get("allowed_repositories")
    p = job.get("payload")
    if repos is not None and isinstance(p, dict) and isinstance(p.get("repository"), str) \
            and p["repository"] not in repos:
        errs.append(("repository_not_allowed", "/payload/repository",
                     "the queue policy does not allow this repository"))
    return errs


def lint(value):
    """Step 5: set of (pointer, rule_id, matched bytes)."""
    found = []

    def scan(data, ptr, min_start=0):
        for rid, s, e in rules.find(data):
            if s >= min_start:
                found.append((ptr, rid, data[s:e]))

    def walk(v, ptr, override):
        at = override if override is not None else ptr
        if isinstance(v, str):
            scan(v.encode("utf-8"), at)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, ptr + pointer(i), override)
        elif isinstance(v, dict):
            for k, x in v.items():
                kb = k.encode("utf-8")
                before = len(found)
                scan(kb, at)
                name_hit = len(found) > before
                child_override = override if override is not None else (ptr if name_hit else None)
                child_at = child_override if child_override is not None else ptr + pointer(k)
                if isinstance(x, str):
                    scan(kb + b"=" + x.encode("utf-8"), child_at, len(kb) + 1)
                walk(x, ptr + pointer(k), child_override)

    walk(value, "", None)
    return found


def _policy(options):
    return Policy((options or {}).get("ref_policy"))


def validate(job=None, job_text=None, options=None):
    """Return (errors, summary). errors: list of dicts {code, pointer, message[, rule]}."""
    options = options if isinstance(options, dict) else {}
    if job_text is not None:
        try:
            job = strictjson.loads(job_text.encode("utf-8", "surrogatepass"))
        except strictjson.NotJson:
            return [{"code": "payload_not_json", "pointer": "", "message": "the job is not a JSON object"}], None
    if not isinstance(job, dict):
        return [{"code": "payload_not_json", "pointer": "", "message": "the job is not a JSON object"}], None
    errs = _schema(job)
    parsed = {}
    payload = job.get("payload") if isinstance(job.get("payload"), dict) else {}
    try:
        policy = _policy(options)
        ref_errs, parsed = check_refs(payload, policy, options.get("worker_id"))
        errs += ref_errs
    except PolicyError:
        errs.append(("config_invalid", "", "the ref policy cannot be built"))
    errs += queue_errors(job, options.get("queue_policy"))
    findings = lint(job)
    # §5.2: scrub what the lint matched (and any token) from messages and pointers.
    scrubber = redact.Redactor()
    scrubber.forms = {m for _, _, m in findings if len(m) >= 1}
    out = []
    seen = set()
    for code, ptr, msg in errs:
        key = (code, ptr)
        if key in seen:
            continue
        seen.add(key)
        out.append({"code": code, "pointer": scrubber.scrub(ptr), "message": scrubber.scrub(msg)})
    for ptr, rid, _ in findings:
        if (ptr, rid) in seen:
            continue
        seen.add((ptr, rid))
        out.append({"code": "payload_contains_secret", "pointer": ptr, "rule": rid,
                    "message": "a string matches the token rule %s" % rid})
    if out:
        return out, None
    p = job["payload"]
    publish = parsed.get("publishAuthRef") or parsed.get("repoAuthRef")
    summary = {"repository_slug": repository_slug(p.get("repository")),
               "publish_auth_ref": publish.format() if publish else None}
    return [], summary


def typed_job(job, options):
    """For the worker: validate and return (errors, payload dict, parsed refs)."""
    errs, _ = validate(job=job, options=options)
    if errs:
        return errs, None, None
    payload = job["payload"]
    _, parsed = check_refs(payload, _policy(options), options.get("worker_id"))
    return [], payload, parsed
