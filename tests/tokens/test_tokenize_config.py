"""tokenizer.* and shards.* presets compose, and wrong values are named by key."""

from __future__ import annotations

import pytest
from conftest import typed_config
from hydra.errors import ConfigCompositionException

from pipeline.config import ConfigError, validate
from pipeline.config.tokenizer import TokenizerConfig
from pipeline.tokens.stage import TokenizeStage


@pytest.mark.parametrize(
    ("overrides", "kind", "train", "share"),
    [
        ([], "model", False, None),
        (["tokenizer=mistral_v1"], "sentencepiece", False, None),
        (["tokenizer=trained", "shards=wrap"], "model", True, 0.5),
        (["tokenizer.train=true", "shards.rewrite_share=0.25"], "model", True, 0.25),
    ],
)
def test_presets_compose(overrides, kind, train, share):
    cfg = typed_config(*overrides)
    validate(cfg)
    assert (cfg.tokenizer.kind, cfg.tokenizer.train, cfg.shards.rewrite_share) == (
        kind,
        train,
        share,
    )


def test_wrong_values_are_named_by_key(tmp_path):
    with pytest.raises(ConfigError) as e:
        typed_config(
            "tokenizer.train_vocab_size=10",
            "tokenizer.batch_rows=0",
            "shards.target_tokens=0",
            "shards.min_tokens=-1",
            "shards.heldout_fraction=1.0",
            "shards.rewrite_share=1.5",
        )
    for key in (
        "tokenizer.train_vocab_size",
        "tokenizer.batch_rows",
        "shards.target_tokens",
        "shards.min_tokens",
        "shards.heldout_fraction",
        "shards.rewrite_share",
    ):
        assert f"\n{key}: " in f"\n{e.value}"
    cfg = typed_config("tokenizer.kind=sentencepiece", f"tokenizer.path={tmp_path / 'none.model'}")
    [problem] = TokenizeStage.check(cfg)
    assert problem.startswith("tokenizer.path: ") and "no such tokenizer file" in problem
    with pytest.raises(ConfigError, match=r"tokenizer\.path: needed for tokenizer\.kind=hf"):
        typed_config("tokenizer.kind=hf")
    # A choice outside the Enum: Hydra refuses it while composing; built in code, the dataclass.
    with pytest.raises(ConfigCompositionException, match="wordpiece"):
        typed_config("tokenizer.train_model_type=wordpiece")
    with pytest.raises(ConfigError, match=r"kind: 'tiktoken' not in"):
        TokenizerConfig(kind="tiktoken")
