"""The conformance suite's example Python adapter
(conformance/examples/python_adapter.py), which answers `check_ref` and
`check_payload` through this package, passes every ref and payload vector of
the suite with nothing reported `unsupported`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ADAPTER = ROOT / "conformance" / "examples" / "python_adapter.py"


def harness() -> Path:
    path = Path(
        os.environ.get("VAULTREF_CONFORMANCE")
        or ROOT / "target" / "debug" / "vaultref-conformance"
    )
    assert path.is_file(), (
        f"no conformance harness at {path}: build it with "
        "`cargo build -p vaultref-conformance` (`cargo xtask python` does) or set VAULTREF_CONFORMANCE"
    )
    return path


def test_the_adapter_passes_the_ref_and_payload_vectors(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    done = subprocess.run(
        [str(harness()), "--impl", sys.executable, "--impl-arg", str(ADAPTER),
         "--profile", "refs", "--profile", "payload", "--report-dir", str(reports)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((reports / "report.json").read_text())
    counts = report["counts"]
    assert report["implementation"]["implementation"]["language"] == "python"
    assert counts["fail"] == 0 and counts["unsupported"] == 0, counts
    assert counts["pass"] > 400, counts
