"""The benchmarks still run (a smoke run at tiny sizes; the figures are not checked here)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_dedup_benchmark_smoke_run(tmp_path):
    out = tmp_path / "dedup.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "dedup.py"),
            "--quick",
            "--no-stage",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "signatures" in result.stdout and "lsh" in result.stdout
    numbers = json.loads(out.read_text())
    assert numbers["signatures"]["synthetic"]["equal"] is True


def test_dedup_scale_benchmark_smoke_run(tmp_path):
    out = tmp_path / "dedup_scale.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "dedup_scale.py"),
            "--sizes",
            "500,1000",
            "--no-stage",
            "--work",
            str(tmp_path / "work"),
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "datasketch" in result.stdout
    numbers = json.loads(out.read_text())
    assert numbers["corpora"]["1000"]["planted"] == {"edit": 40, "exact": 20, "excerpt": 80}
    assert numbers["datasketch"]["1000"]["candidates"] > 0
