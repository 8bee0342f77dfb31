"""Every vector of fixtures/redaction through ``vaultref.Redactor``: one shot,
bytes, and streamed in chunks of every size the spec's runners try."""

from __future__ import annotations

import pytest
import vaultref
from conftest import ids, load_vectors

VECTORS = load_vectors("redaction")


def redactor(v: dict) -> vaultref.Redactor:
    return vaultref.Redactor(v["secrets"], **(v.get("options") or {}))


@pytest.mark.parametrize("v", VECTORS, ids=ids(VECTORS))
def test_one_shot(v: dict) -> None:
    r = redactor(v)
    assert r.redact(v["input"]) == v["expected"]
    assert r.redact_bytes(v["input"].encode()) == v["expected"].encode()
    if v["category"] == "near-miss":
        assert v["expected"] == v["input"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
@pytest.mark.parametrize("v", VECTORS, ids=ids(VECTORS))
def test_streamed(v: dict, size: int) -> None:
    data = v["input"].encode()
    stream = redactor(v).stream()
    out = "".join(stream.push(data[i : i + size]) for i in range(0, len(data), size))
    assert out + stream.finish() == v["expected"]


def test_secrets_never_show_in_a_repr() -> None:
    secret = "FAKE-registered-Secret-42"
    r = vaultref.Redactor([secret])
    assert secret not in repr(r) and "secrets=1" in repr(r)
    assert secret not in repr(r.stream())
    assert r.secret_count == 1


def test_a_secret_too_short_is_refused_with_its_code() -> None:
    with pytest.raises(vaultref.RedactError) as caught:
        vaultref.Redactor(["short"])
    assert caught.value.code == "secret_too_short"
    assert "short" not in str(caught.value).replace("secret_too_short", "")
    # A lower minimum (as the vectors' options allow) accepts it.
    assert vaultref.Redactor(["short"], min_secret_length=5).redact("a short b") == "a [REDACTED] b"


def test_a_finished_stream_refuses_more_input() -> None:
    s = vaultref.Redactor().stream()
    s.push("x")
    assert s.finish() == "x"
    with pytest.raises(ValueError):
        s.push("y")


RULE_VECTORS = load_vectors("rules")


@pytest.mark.parametrize("v", RULE_VECTORS, ids=ids(RULE_VECTORS))
def test_rule_vectors(v: dict) -> None:
    # fixtures/rules: a negative text passes unchanged; every match of a
    # positive one is masked, through the rules alone and a Redactor.
    for out in (vaultref.redact_tokens(v["text"]), vaultref.Redactor().redact(v["text"])):
        if v["kind"] == "negative":
            assert out == v["text"]
        else:
            assert all(m not in out for m in v["matches"]), out
            assert "[REDACTED:" in out
