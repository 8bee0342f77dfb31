#!/usr/bin/env python3
"""A conformance adapter in Python: the protocol of spec/protocol.md, with
`check_ref` and `check_payload` answered in-process by the `vaultref` Python
package (bindings/python: the Rust core through PyO3).

It shows what another team's adapter looks like (MoonMind's worker is Python):
read one JSON request per line, write one JSON reply per line, answer
`unsupported` for what it does not do. With the package installed
(`cargo xtask python` builds it into target/python/venv):

    cargo xtask conformance --impl target/python/venv/bin/python \
        --impl-arg $PWD/conformance/examples/python_adapter.py --profile refs --profile payload
"""

import json
import sys

import vaultref


def policy_kwargs(policy):
    policy = policy or {}
    return {
        "allowed_mounts": policy.get("allowed_mounts", ["kv"]),
        "max_length": policy.get("max_length", 512),
        "scopes": policy.get("scopes", []),
    }


def check_ref(req):
    raw = req["input"].encode("utf-8") if "input" in req else bytes.fromhex(req["input_hex"])
    context = req.get("context") or {}
    try:
        r = vaultref.check_ref(
            raw,
            repository=context.get("repository"),
            worker_id=context.get("worker_id"),
            **policy_kwargs(req.get("policy")),
        )
    except vaultref.RefError as e:
        return {"reply": "check_ref", "valid": False, "code": e.code, "offset": e.offset,
                "message": e.message}
    return {"reply": "check_ref", "valid": True,
            "ref": {"mount": r.mount, "path": r.path, "version": r.version, "field": r.field}}


def check_payload(req):
    if "job_text" in req:
        data = req["job_text"].encode("utf-8", "surrogatepass")
    else:
        data = json.dumps(req["job"]).encode("utf-8")
    options = req.get("options") or {}
    queue = options.get("queue_policy") or {}
    try:
        job = vaultref.validate_payload(
            data,
            worker_id=options.get("worker_id"),
            allowed_repositories=queue.get("allowed_repositories"),
            allowed_job_types=queue.get("allowed_job_types"),
            **policy_kwargs(options.get("ref_policy")),
        )
    except vaultref.RefError as e:  # a policy that cannot be built
        return {"reply": "check_payload", "valid": False,
                "errors": [{"code": e.code, "pointer": "", "message": e.message}]}
    except vaultref.PayloadError as e:
        errors = []
        for issue in e.errors:
            error = {"code": issue.code, "pointer": issue.pointer, "message": issue.message}
            if issue.rule_id is not None:
                error["rule"] = issue.rule_id
            errors.append(error)
        return {"reply": "check_payload", "valid": False, "errors": errors}
    publish = job.publish_auth_ref
    return {"reply": "check_payload", "valid": True,
            "summary": {"repository_slug": job.repository_slug,
                        "publish_auth_ref": str(publish) if publish is not None else None}}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        if op == "hello":
            rep = {"reply": "hello", "protocol": 1,
                   "implementation": {"name": "python-example", "version": vaultref.__version__,
                                      "language": "python"},
                   "profiles": ["refs", "payload"]}
        elif op == "check_ref":
            rep = check_ref(req)
        elif op == "check_payload":
            rep = check_payload(req)
        elif op == "shutdown":
            print(json.dumps({"id": req["id"], "reply": "shutdown"}), flush=True)
            return
        else:
            rep = {"reply": "unsupported", "op": op, "message": "not implemented"}
        print(json.dumps({"id": req["id"], **rep}), flush=True)


if __name__ == "__main__":
    main()
