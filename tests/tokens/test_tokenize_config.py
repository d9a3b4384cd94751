"""tokenizer.* and shards.* presets compose, and wrong values are named by key."""

from __future__ import annotations

import pytest
from conftest import ROOT
from hydra import compose, initialize_config_dir

from pipeline.config import Config, ConfigError, to_config, validate
from pipeline.config.shards import ShardsConfig, tokenize_problems
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
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        cfg = to_config(compose("config", overrides=overrides))
    validate(cfg)
    assert (cfg.tokenizer.kind, cfg.tokenizer.train, cfg.shards.rewrite_share) == (
        kind,
        train,
        share,
    )


def test_wrong_values_are_named_by_key(tmp_path):
    cfg = Config()
    cfg.tokenizer = TokenizerConfig(
        kind="sentencepiece",
        path=str(tmp_path / "none.model"),
        train_model_type="wordpiece",
        train_vocab_size=10,
        batch_rows=0,
    )
    cfg.shards = ShardsConfig(
        target_tokens=0, min_tokens=-1, heldout_fraction=1.0, rewrite_share=1.5
    )
    problems = "\n".join(tokenize_problems(cfg) + TokenizeStage.check(cfg))
    for key in (
        "tokenizer.path: ",
        "tokenizer.train_model_type",
        "tokenizer.train_vocab_size",
        "tokenizer.batch_rows",
        "shards.target_tokens",
        "shards.min_tokens",
        "shards.heldout_fraction",
        "shards.rewrite_share",
    ):
        assert key in problems
    assert "no such tokenizer file" in problems
    cfg.tokenizer = TokenizerConfig(kind="hf")
    assert tokenize_problems(Config(tokenizer=cfg.tokenizer)) == [
        "tokenizer.path: needed for tokenizer.kind=hf"
    ]
    cfg.tokenizer = TokenizerConfig(kind="tiktoken")
    with pytest.raises(ConfigError, match=r"tokenizer\.kind: 'tiktoken' not in"):
        validate(cfg)
