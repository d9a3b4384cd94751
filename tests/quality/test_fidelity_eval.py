"""The fidelity gate with its default thresholds on the evaluation set's report split (human
Bible paraphrases, same-topic texts and planted factual changes; jobs/build_fidelity_eval.py),
which the thresholds were never set on (bench/fidelity_gate.py sets them on the calibration
split). Goals from issue 13."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from pipeline.config.fidelity import FidelityConfig
from pipeline.quality.fidelity_eval import (
    FAITHFUL,
    GOALS,
    PLANTED,
    UNFAITHFUL,
    judge_cases,
    load_cases,
    summarise,
)

EVAL_SET = Path(__file__).parent / "fidelity_eval.jsonl"


@lru_cache(maxsize=1)
def report() -> dict:
    return summarise(judge_cases(load_cases(EVAL_SET, split="report"), FidelityConfig()))


def test_the_set_has_both_splits_and_every_kind():
    cases = load_cases(EVAL_SET)
    books = {s: {c.id.split(":")[1].rsplit(" ", 1)[0] for c in cases if c.split == s}
             for s in ("calibration", "report")}  # fmt: skip
    assert books["calibration"] and books["report"] and not books["calibration"] & books["report"]
    n = report()["n"]
    assert n[FAITHFUL] == n[UNFAITHFUL] == 200 and n[PLANTED] >= 200
    changes = {g.split()[1] for g in report()["by_group"] if g.startswith(PLANTED)}
    assert changes == {"name", "number", "date"}


def test_faithful_paraphrases_are_kept():
    assert report()["rates"][FAITHFUL] >= GOALS[FAITHFUL]


def test_same_topic_texts_are_dropped():
    assert report()["rates"][UNFAITHFUL] >= GOALS[UNFAITHFUL]


@pytest.mark.parametrize("change", ["number", "date"])
def test_planted_numbers_and_dates_are_dropped(change):
    right, total = report()["by_group"][f"{PLANTED} {change}"]
    assert right / total >= GOALS[PLANTED]


def test_planted_name_swaps_are_mostly_dropped():
    # 0.87 with the defaults (name_swap with its reach and aliases, entity_swap above 1); 0.80
    # with name_swap at its slot only, 0.37 with the entity ratio alone, before both.
    right, total = report()["by_group"][f"{PLANTED} name"]
    assert right / total >= 0.85


def test_planted_changes_are_dropped():
    # 0.914 (names 0.87, numbers and dates 1.00); 0.861 before name_swap's reach and aliases.
    assert report()["rates"][PLANTED] >= GOALS[PLANTED]


def test_every_drop_names_its_rule_and_what_failed():
    results = judge_cases(load_cases(EVAL_SET, split="report")[:60], FidelityConfig())
    for r in results:
        if r.dropped:
            assert r.detail and r.detail.startswith("f_")
