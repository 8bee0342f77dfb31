"""The one place the Python tests find the repository's vectors."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"


def load_vectors(topic: str) -> list[dict]:
    """Every vector of ``fixtures/<topic>/*.json`` (not the schemas), each
    with the file it came from in ``_file``. Fails on an empty set or a
    duplicate id: a runner that ran nothing must not pass."""
    vectors: list[dict] = []
    for path in sorted((FIXTURES / topic).glob("*.json")):
        if path.name.endswith("schema.json"):
            continue
        for v in json.loads(path.read_text(encoding="utf-8"))["vectors"]:
            vectors.append({**v, **joined(v), "_file": path.name})
    ids = [v["id"] for v in vectors]
    assert vectors, f"no vectors under {FIXTURES / topic}"
    assert len(ids) == len(set(ids)), f"duplicate vector ids under {topic}"
    return vectors


def joined(v: dict) -> dict:
    """``input`` and ``expected`` written as pieces (strings and
    ``{"repeat": s, "times": n}``, for texts too long to write out), joined."""
    out = {}
    for member in ("input", "expected"):
        if isinstance(v.get(member), list):
            out[member] = "".join(
                p if isinstance(p, str) else p["repeat"] * p["times"] for p in v[member]
            )
    return out


def ids(vectors: list[dict]) -> list[str]:
    return [v["id"] for v in vectors]
