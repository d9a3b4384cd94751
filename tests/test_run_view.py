"""pipeline.run_view reads a finished run without the code that made it: no runner, no Ray."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

from pipeline import runner
from pipeline import schema as S


def test_every_stage_has_the_schema_of_its_kept_rows_for_readers():
    assert set(S.STAGE_OUTPUTS) == set(runner.STAGES)


@pytest.mark.cli
def test_reading_a_run_back_loads_neither_the_runner_nor_ray():
    heavy = ("pipeline.runner", "ray", "torch", "vllm")
    code = f"import sys, pipeline.run_view; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
