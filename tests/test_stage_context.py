"""RunContext finds a stage's inputs by the kind of data upstream stages produce."""

from pathlib import Path

import pytest

from pipeline.config import Config
from pipeline.stage import DOCS, REWRITES, RunContext


def test_output_of_takes_the_last_upstream_stage_of_a_kind():
    ctx = RunContext(
        run_dir=Path("/run"),
        config=Config(),
        input_stage="rewrite",
        upstream=(("ingest", DOCS), ("dedup", DOCS), ("rewrite", REWRITES)),
    )
    assert ctx.latest(DOCS) == "dedup"
    assert ctx.output_of(DOCS) == Path("/run/dedup/data")
    assert ctx.output_of(REWRITES) == Path("/run/rewrite/data")
    assert ctx.input_dir == Path("/run/rewrite/data")


def test_a_missing_kind_is_a_clear_error():
    ctx = RunContext(run_dir=Path("/run"), config=Config(), upstream=(("ingest", DOCS),))
    assert ctx.latest(REWRITES) is None
    with pytest.raises(ValueError, match="produces rewrites"):
        ctx.output_of(REWRITES)
