"""Redacting a worker's log in Python: ``vaultref.Redactor.redact`` against the
straightforward pure-Python approach a worker uses today, on the same text, in
one run.

The log: ~90-byte lines (git, HTTP, JSON shapes), 100 MiB by default, with
1,000 registered secrets of which some are planted in the text (plain, base64
and URL-encoded) and a few rule-shaped tokens. The pure-Python redactor does
what such code does: for each secret, ``str.replace`` of the secret, its
base64 and its URL-encoded form, then a handful of regexes for known token
shapes. Both must remove every planted value (checked), and the CPU time of
each is compared (``time.process_time``; steadier than wall time on a shared
machine).

Usage (after ``cargo xtask python``, or with the wheel installed):
``python bindings/python/bench.py [--mib N] [--secrets N]``.
"""

from __future__ import annotations

import argparse
import base64
import random
import re
import time
import urllib.parse

import vaultref

GHP = "ghp_FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE"


def make_secrets(n: int, rng: random.Random) -> list[str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+="
    return [
        f"FAKE{i:04d}-" + "".join(rng.choice(alphabet) for _ in range(20)) for i in range(n)
    ]


def make_log(mib: int, secrets: list[str], rng: random.Random) -> tuple[str, list[str]]:
    shapes = [
        "remote: Counting objects: {n}% ({n}/100), done. pack {h}\n",
        '{{"level":"info","job":"q-{n}","msg":"step {n} finished in {n} ms","id":"{h}"}}\n',
        "GET /api/v1/items/{n}?page={n} HTTP/1.1 200 {n} bytes in {n}ms trace={h}\n",
        "2026-12-02T18:20:{n:02d}Z worker executor-01 cloned Acme/Api at {h}\n",
    ]
    planted: list[str] = []
    lines: list[str] = []
    size = 0
    target = mib * 1024 * 1024
    i = 0
    while size < target:
        i += 1
        if i % 5000 == 0:
            s = secrets[rng.randrange(len(secrets))]
            form = i // 5000 % 3
            value = [s, base64.b64encode(s.encode()).decode(), urllib.parse.quote(s, safe="")][form]
            planted.append(s)
            line = f"debug: using credential {value} for the push\n"
        elif i % 7919 == 0:
            line = f"config: GITHUB_TOKEN={GHP}{i % 10000:04d}\n"
            planted.append(f"{GHP}{i % 10000:04d}")
        else:
            shape = shapes[i % len(shapes)]
            line = shape.format(n=rng.randrange(100), h=f"{rng.getrandbits(64):016x}")
        lines.append(line)
        size += len(line)
    return "".join(lines), planted


RULES = [
    re.compile(r"gh[pousr]_[A-Za-z0-9]{36}"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"(?i)(password|token|secret)=\S{8,}"),
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
]


def python_redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        for form in (s, base64.b64encode(s.encode()).decode(), urllib.parse.quote(s, safe="")):
            text = text.replace(form, "[REDACTED]")
    for rule in RULES:
        text = rule.sub("[REDACTED]", text)
    return text


def timed(f):
    wall, cpu = time.perf_counter(), time.process_time()
    out = f()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--secrets", type=int, default=1000)
    args = ap.parse_args()
    rng = random.Random(42)
    secrets = make_secrets(args.secrets, rng)
    text, planted = make_log(args.mib, secrets, rng)
    mib = len(text.encode()) / (1024 * 1024)

    redactor, _, build_cpu = timed(lambda: vaultref.Redactor(secrets))
    ours, ours_wall, ours_cpu = timed(lambda: redactor.redact(text))
    theirs, theirs_wall, theirs_cpu = timed(lambda: python_redact(text, secrets))
    for name, out in (("vaultref", ours), ("pure Python", theirs)):
        missed = sum(1 for p in planted if p in out)
        assert missed == 0, f"{name} left {missed} planted values"

    print(f"log: {mib:.1f} MiB, {text.count(chr(10))} lines, {len(secrets)} registered secrets, "
          f"{len(planted)} planted values (all removed by both)")
    print(f"{'redactor':<28}{'CPU s':>9}{'wall s':>9}{'MiB/s (CPU)':>14}")
    print(f"{'vaultref.Redactor.redact':<28}{ours_cpu:>9.2f}{ours_wall:>9.2f}{mib / ours_cpu:>14.1f}")
    print(f"{'pure Python (replace+re)':<28}{theirs_cpu:>9.2f}{theirs_wall:>9.2f}{mib / theirs_cpu:>14.1f}")
    print(f"building the Redactor: {build_cpu * 1000:.0f} ms CPU")
    print(f"ratio (CPU time, pure Python / vaultref): {theirs_cpu / ours_cpu:.1f}x")


if __name__ == "__main__":
    main()
