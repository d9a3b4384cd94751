"""The quality and fidelity config groups: they compose, validate, and name wrong keys."""

from __future__ import annotations

import pytest
from conftest import typed_config

from pipeline.config import ConfigError, validate
from pipeline.config.fidelity import FidelityConfig
from pipeline.config.quality import QualityConfig
from pipeline.quality.rules import quality_rules
from pipeline.runner import check_config
from pipeline.score_rules import skipped
from pipeline.text_fidelity.scores import fidelity_rules


def test_default_groups_compose_and_validate():
    cfg = typed_config()
    validate(cfg)
    assert cfg.quality.skip_rules["literature"] == [
        "c4_line_filter",
        "c4_too_few_sentences",
        "fineweb_*",
    ]
    assert cfg.fidelity.judge.enabled is False and cfg.fidelity.dedup.enabled is True


def test_every_rule_has_a_distinct_reason():
    names = [r.name for r in quality_rules(QualityConfig())]
    assert len(names) == len(set(names)) == 35
    fidelity = [r.name for r in fidelity_rules(FidelityConfig())]
    assert len(fidelity) == len(set(fidelity)) == 12  # entity_swap on: max_entity_swaps 1
    assert not set(names) & set(fidelity)


def test_null_thresholds_and_disabled_families_remove_rules():
    cfg = QualityConfig()
    cfg.gopher.min_words = None
    cfg.repetition.enabled = False
    names = {r.name for r in quality_rules(cfg)}
    assert "gopher_too_few_words" not in names and "gopher_too_many_words" in names
    assert not any(n.startswith("gopher_dup") or n.startswith("gopher_top") for n in names)
    cfg.classifier.path = "model.bin"
    assert "classifier_score" in {r.name for r in quality_rules(cfg)}


def test_skip_patterns():
    assert skipped("fineweb_line_punct", ["fineweb_*"])
    assert not skipped("c4_curly_brace", ["c4_line_filter", "fineweb_*"])


def test_style_bounds_replace_the_default_length_bounds():
    cfg = FidelityConfig()
    bounds = {r.name: r.threshold for r in fidelity_rules(cfg, "summary")}
    assert (bounds["too_short"], bounds["too_long"]) == (0.1, 1.2)
    bounds = {r.name: r.threshold for r in fidelity_rules(cfg, "wikipedia")}
    assert (bounds["too_short"], bounds["too_long"]) == (0.3, 2.5)


@pytest.mark.parametrize(
    "override, message",
    [
        ("quality.gopher.min_alpha_words=1.5", "quality.gopher.min_alpha_words: must be in [0, 1]"),
        ("quality.gopher.min_words=-1", "quality.gopher.min_words: must be >= 0"),
        ("quality.language.accepted=[]", "quality.language.accepted: no language accepted"),
        ("quality.classifier.path=/nowhere/model.bin", "quality.classifier.path: no file"),
        ("fidelity.judge.fraction=0", "fidelity.judge.fraction: must be in (0, 1]"),
        ("fidelity.judge.min_score=9", "fidelity.judge.min_score: must be in 1..5"),
        ("fidelity.dedup.threshold=1.0", "fidelity.dedup.threshold: must be in (0, 1)"),
        ("fidelity.max_per_style=0", "fidelity.max_per_style: must be >= 1 or null"),
        ("+fidelity.length_ratio_by_style.poem=[0.5,1.0]", "length_ratio_by_style.poem: unknown"),
        ("fidelity.min_copied_ngram_ratio=0.95", "fidelity.min_copied_ngram_ratio: 0.95 >= max"),
    ],
)
def test_wrong_values_name_their_key(override, message):
    with pytest.raises(ConfigError) as e:
        check_config(typed_config(override))
    assert message in str(e.value)
