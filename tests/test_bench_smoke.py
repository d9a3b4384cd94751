"""The benchmarks still run (a smoke run at tiny sizes; the figures are not checked here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.cli


def run_bench(script: str, *args: str, json_out) -> tuple[str, dict]:
    """Run bench/<script> with `args`, writing JSON to `json_out`: (stdout, numbers)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args, "--json", str(json_out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, json.loads(json_out.read_text())


def test_dedup_benchmark_smoke_run(tmp_path):
    stdout, numbers = run_bench("dedup.py", "--quick", "--no-stage", json_out=tmp_path / "d.json")
    assert "signatures" in stdout and "lsh" in stdout
    assert numbers["signatures"]["synthetic"]["equal"] is True


def test_dedup_scale_benchmark_smoke_run(tmp_path):
    stdout, numbers = run_bench(
        "dedup_scale.py", "--sizes", "500,1000", "--no-stage", "--work", str(tmp_path / "work"),
        json_out=tmp_path / "ds.json",
    )  # fmt: skip
    assert "datasketch" in stdout
    assert numbers["corpora"]["1000"]["planted"] == {"edit": 40, "exact": 20, "excerpt": 80}
    assert numbers["datasketch"]["1000"]["candidates"] > 0
