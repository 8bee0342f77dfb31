"""Every vector of fixtures/payloads through ``vaultref.validate_payload``."""

from __future__ import annotations

import json

import pytest
import vaultref
from conftest import ids, load_vectors

VECTORS = load_vectors("payloads")


def job_bytes(v: dict) -> bytes:
    if "job_text" in v:
        return v["job_text"].encode("utf-8", "surrogatepass")
    return json.dumps(v["job"]).encode()


def options(v: dict) -> dict:
    opts = v.get("options") or {}
    policy = opts.get("ref_policy") or {}
    kwargs = {
        "allowed_mounts": policy.get("allowed_mounts", ["kv"]),
        "max_length": policy.get("max_length", 512),
        "scopes": policy.get("scopes", []),
        "worker_id": opts.get("worker_id"),
    }
    queue = opts.get("queue_policy")
    if queue is not None:
        kwargs["allowed_repositories"] = queue.get("allowed_repositories")
        kwargs["allowed_job_types"] = queue.get("allowed_job_types")
    return kwargs


@pytest.mark.parametrize("v", VECTORS, ids=ids(VECTORS))
def test_payload_vector(v: dict) -> None:
    expect = v["expect"]
    if "valid" in expect:
        want = expect["valid"]
        job = vaultref.validate_payload(job_bytes(v), **options(v))
        assert job.repository_slug == want["repository_slug"]
        publish = job.publish_auth_ref
        assert (str(publish) if publish is not None else None) == want["publish_auth_ref"]
        if "publish_mode" in want:
            assert job.publish_mode == want["publish_mode"]
        return
    with pytest.raises(vaultref.PayloadError) as caught:
        vaultref.validate_payload(job_bytes(v), **options(v))
    err = caught.value
    got = {(e.code, e.pointer, e.rule_id) for e in err.errors}
    want = {(e["code"], e["pointer"], e.get("rule")) for e in expect["invalid"]}
    assert got == want
    assert err.code == err.errors[0].code
    # No planted token comes back in any message, pointer or the exception.
    for token in v.get("planted", []):
        shown = [str(err), repr(err.errors)] + [e.message + e.pointer for e in err.errors]
        assert not any(token in s for s in shown), "a planted token is in the output"
