"""Every vector of fixtures/refs through ``vaultref.check_ref``."""

from __future__ import annotations

import pytest
import vaultref
from conftest import ids, load_vectors

VECTORS = load_vectors("refs")


def ref_input(v: dict) -> str | bytes:
    return bytes.fromhex(v["ref_hex"]) if "ref_hex" in v else v["ref"]


def policy_kwargs(v: dict) -> dict:
    policy = v.get("policy") or {}
    context = v.get("context") or {}
    kwargs = {
        "allowed_mounts": policy.get("allowed_mounts", ["kv"]),
        "max_length": policy.get("max_length", 512),
        "scopes": policy.get("scopes", []),
    }
    for key in ("repository", "worker_id"):
        if context.get(key) is not None:
            kwargs[key] = context[key]
    return kwargs


@pytest.mark.parametrize("v", VECTORS, ids=ids(VECTORS))
def test_ref_vector(v: dict) -> None:
    data = ref_input(v)
    expect = v["expect"]
    if "valid" in expect:
        want = expect["valid"]
        got = vaultref.check_ref(data, **policy_kwargs(v))
        assert (got.mount, got.path, got.version, got.field) == (
            want["mount"],
            want["path"],
            want["version"],
            want["field"],
        )
        # R12: the canonical form is the input, byte for byte.
        assert str(got).encode() == (data if isinstance(data, bytes) else data.encode())
        if "kv2" in want:
            version = f"?version={got.version}" if got.version is not None else ""
            assert "/v1/" + got.kv2_data_path + version == want["kv2"]["data"]
            assert "/v1/" + got.kv2_metadata_path == want["kv2"]["metadata"]
    else:
        want = expect["invalid"]
        with pytest.raises(vaultref.RefError) as caught:
            vaultref.check_ref(data, **policy_kwargs(v))
        assert (caught.value.code, caught.value.offset) == (want["code"], want["offset"])
        assert caught.value.code in vaultref.ERROR_CODES
