#!/usr/bin/env python3
"""Run the conformance suite against each mutant of pyvaultref.

For every entry of mutants.json ({id, file, old, new, class, why}, optionally
`also`: further {file, old, new} substitutions of the same mistake): copy the implementation to a temporary
directory, apply the one substitution (it must occur exactly once), run the
harness against the copy and record whether the suite caught it (exit code != 0)
and which scenarios failed. Writes mutation-results.json and mutation-report.md.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IMPL_FILES = [f for f in sorted(os.listdir(HERE)) if f.endswith(".py") and f != "run_mutants.py"]


def copy_impl(dest):
    for f in IMPL_FILES:
        shutil.copy2(os.path.join(HERE, f), os.path.join(dest, f))


def apply(dest, mutant):
    """Apply the mutant's substitution, and those of its optional `also` list
    (a mistake that takes two edits); each `old` must occur exactly once."""
    for sub in [mutant] + mutant.get("also", []):
        path = os.path.join(dest, sub["file"])
        with open(path, encoding="utf-8") as f:
            text = f.read()
        count = text.count(sub["old"])
        if count != 1:
            raise SystemExit("mutant %s: `old` occurs %d times in %s (must be exactly once)"
                             % (mutant["id"], count, sub["file"]))
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(sub["old"], sub["new"]))


def failed_scenarios(report_dir):
    try:
        with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    results = report.get("results") or report.get("scenarios") or []
    out = []
    for r in results:
        status = r.get("status")
        if status in ("fail", "error", "unexpected-pass"):
            out.append("%s (%s)" % (r.get("id"), status))
    return out


def run_suite(args, impl_dir, report_dir):
    cmd = [args.harness, "--backend", "process", "--fixtures", args.fixtures,
           "--impl", os.path.join(impl_dir, "adapter.py"), "--report-dir", report_dir,
           "--jobs", str(args.jobs)]
    if args.bao:
        cmd += ["--bao", args.bao]
    cmd += args.harness_arg
    # A private TMPDIR and HOME: the harness looks for secrets in files changed
    # outside the implementation's directories during the run (H5), and other runs
    # on the machine write report files (with the vectors' planted tokens) under
    # /tmp and tokens under ~.
    tmp = tempfile.mkdtemp(prefix="pvr-")
    os.chmod(tmp, 0o755)  # like /tmp: the action runs as another user and needs the harness's scripts
    home = os.path.join(tmp, "home")
    os.mkdir(home)
    t0 = time.monotonic()
    try:
        with open(os.path.join(report_dir, "harness.log"), "wb") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT,
                                 env=dict(os.environ, TMPDIR=tmp, HOME=home))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rc, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harness", default="vaultref-conformance")
    ap.add_argument("--bao", default=None)
    ap.add_argument("--fixtures", default=os.path.join(HERE, "..", "..", "..", "fixtures"))
    ap.add_argument("--only", action="append", default=[], help="mutant id (repeatable)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=HERE, help="where the JSON and markdown summaries go")
    ap.add_argument("--keep", action="store_true", help="keep each mutant's report dir")
    ap.add_argument("--clean", action="store_true", help="also run the unmutated implementation first")
    ap.add_argument("--harness-arg", action="append", default=[], help="extra harness argument (repeatable)")
    args = ap.parse_args()

    with open(os.path.join(HERE, "mutants.json"), encoding="utf-8") as f:
        mutants = json.load(f)
    ids = [m["id"] for m in mutants]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate mutant ids")
    unknown = set(args.only) - set(ids)
    if unknown:
        raise SystemExit("unknown mutant ids: %s" % ", ".join(sorted(unknown)))
    selected = [m for m in mutants if not args.only or m["id"] in args.only]

    # Check every substitution applies before spending time on the suite.
    for m in selected:
        with tempfile.TemporaryDirectory() as d:
            copy_impl(d)
            apply(d, m)

    results = []
    base = tempfile.mkdtemp(prefix="pyvaultref-mutants-")
    todo = ([{"id": "(clean)", "file": "", "old": "", "new": "", "class": "baseline", "why": ""}]
            if args.clean else []) + selected
    for m in todo:
        impl = os.path.join(base, m["id"].replace("/", "_"), "impl")
        report = os.path.join(base, m["id"].replace("/", "_"), "report")
        os.makedirs(impl)
        os.makedirs(report)
        copy_impl(impl)
        if m["file"]:
            apply(impl, m)
        rc, secs = run_suite(args, impl, report)
        failed = failed_scenarios(report)
        entry = {"id": m["id"], "class": m["class"], "why": m["why"], "exit_code": rc,
                 "caught": rc != 0, "failed": failed, "seconds": round(secs, 1)}
        results.append(entry)
        print("%-40s %s  exit=%d  %.0fs  %s" % (m["id"], "CAUGHT" if rc != 0 else "missed", rc, secs,
                                                 ", ".join(failed or [])[:200]), flush=True)
        if not args.keep:
            shutil.rmtree(os.path.join(base, m["id"].replace("/", "_")), ignore_errors=True)
    write_summary(args, results)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


def write_summary(args, results):
    try:
        commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    mutants = [r for r in results if r["id"] != "(clean)"]
    caught = sum(r["caught"] for r in mutants)
    doc = {"date": datetime.date.today().isoformat(), "harness_commit": commit,
           "caught": caught, "total": len(mutants), "results": results}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "mutation-results.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    lines = ["# pyvaultref mutation report", "",
             "Date: %s. Harness commit: `%s`. Backend: process, all profiles." % (doc["date"], commit), "",
             "**Caught %d of %d mutants.**" % (caught, len(mutants)), "",
             "| mutant | class | caught | failing scenarios |", "|---|---|---|---|"]
    for r in results:
        lines.append("| `%s` | %s | %s | %s |" % (
            r["id"], r["class"], "yes" if r["caught"] else "**no**",
            ", ".join("`%s`" % s for s in (r["failed"] or [])) or ("exit %d" % r["exit_code"])))
    missed = [r for r in mutants if not r["caught"]]
    if missed:
        lines += ["", "## Not caught", ""]
        for r in missed:
            lines.append("- `%s`: %s" % (r["id"], r["why"]))
    with open(os.path.join(args.out, "mutation-report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
