"""Post-processing on outputs the real default model produced (recorded from a demo run).

The 135M model often opens with "Here's the re-written text ...:" (stripped here), runs past
max_tokens on verse (flagged truncated), and sometimes writes about the text instead of
rewriting it ("The text should be reworded ..."): that last kind is left to the fidelity
filters of the quality stage, which compare a rewrite with its source.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.text_fidelity.cleaning import clean_generation

RECORDED = json.loads((Path(__file__).parent / "recorded_smollm2_moe.json").read_text())
GENERATIONS = RECORDED["generations"]


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g["text"][:30])
def test_every_recorded_output_cleans_to_a_verdict(generation):
    cleaned = clean_generation(generation["text"], generation["finish_reason"])
    if generation["finish_reason"] == "length":
        assert cleaned.reason == "truncated"
    else:
        assert cleaned.reason is None and cleaned.text.strip()
    assert not cleaned.text.lower().startswith(("here's the re-written", "here's a revised"))


def test_recorded_preambles_are_stripped():
    preambles = [g for g in GENERATIONS if g["text"].startswith("Here's")]
    assert preambles
    for g in preambles:
        cleaned = clean_generation(g["text"], g["finish_reason"])
        assert "preamble" in cleaned.removed
        assert not cleaned.text.startswith("Here")
