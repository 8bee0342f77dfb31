#!/usr/bin/env python3
"""A conformance adapter in Python: the protocol of spec/protocol.md, with
check_ref answered by the `vaultref ref check --format json` command line.

It shows what another team's adapter looks like (MoonMind's worker is Python):
read one JSON request per line, write one JSON reply per line, answer
`unsupported` for what it does not do. Run it with

    cargo xtask conformance --impl python3 \
        --impl-arg conformance/examples/python_adapter.py --profile refs

(`VAULTREF_BIN` names the vaultref binary; default: `vaultref` on PATH.)
"""

import json
import os
import subprocess
import sys

VAULTREF = os.environ.get("VAULTREF_BIN", "vaultref")


def check_ref(req):
    if "input" in req:
        raw = req["input"].encode("utf-8")
    else:
        raw = bytes.fromhex(req["input_hex"])
    policy = req.get("policy") or {}
    context = req.get("context") or {}
    args = [VAULTREF, "ref", "check", "--format", "json"]
    for mount in policy.get("allowed_mounts") or []:
        args += ["--allowed-mount", mount]
    if policy.get("allowed_mounts") == []:
        return {"reply": "unsupported", "op": "check_ref",
                "message": "the CLI cannot express an empty mount allow-list"}
    if "max_length" in policy:
        args += ["--max-length", str(policy["max_length"])]
    for scope in policy.get("scopes") or []:
        args += ["--scope", scope]
    if context.get("repository") is not None:
        args += ["--repository", context["repository"]]
    if context.get("worker_id") is not None:
        args += ["--worker-id", context["worker_id"]]
    try:
        raw.decode("utf-8")
        argv_ok = b"\0" not in raw
    except UnicodeDecodeError:
        argv_ok = False  # the CLI parses argv as UTF-8
    if not argv_ok or b"\n" in raw:
        # argv cannot carry NUL or non-UTF-8; stdin (one ref per line) cannot
        # carry newlines.
        if b"\n" in raw:
            return {"reply": "unsupported", "op": "check_ref",
                    "message": "a ref with a newline cannot be passed to the CLI"}
        done = subprocess.run(args + ["-"], input=raw, capture_output=True)
    else:
        done = subprocess.run(args + ["--", raw], capture_output=True)
    if done.returncode == 2:
        # A policy that cannot be built: the CLI says `error[config_invalid]`.
        return {"reply": "check_ref", "valid": False, "code": "config_invalid",
                "offset": None, "message": "policy refused"}
    out = json.loads(done.stdout.decode("utf-8").splitlines()[0])
    if out["valid"]:
        return {"reply": "check_ref", "valid": True,
                "ref": {k: out[k] for k in ("mount", "path", "version", "field")}}
    return {"reply": "check_ref", "valid": False, "code": out["code"],
            "offset": out["offset"], "message": out["message"]}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        if op == "hello":
            rep = {"reply": "hello", "protocol": 1,
                   "implementation": {"name": "python-example", "version": "0.1.0",
                                      "language": "python"},
                   "profiles": ["refs"]}
        elif op == "check_ref":
            rep = check_ref(req)
        elif op == "shutdown":
            print(json.dumps({"id": req["id"], "reply": "shutdown"}), flush=True)
            return
        else:
            rep = {"reply": "unsupported", "op": op, "message": "not implemented"}
        print(json.dumps({"id": req["id"], **rep}), flush=True)


if __name__ == "__main__":
    main()
