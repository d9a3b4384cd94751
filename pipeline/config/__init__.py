"""Typed configuration, the ground floor: one module per Hydra group (conf/<group>/), each a
dataclass registered in Hydra's ConfigStore. Nothing here imports a stage: stages import it.

The YAML files under conf/ fill these dataclasses; Hydra rejects unknown keys and values of
the wrong type while composing. `validate` then checks what types cannot (values in range,
keys that must agree) before any work starts, and raises `ConfigError` naming the key; checks
that need a stage's code (a tokenizer file) are that stage's `check` (pipeline/stage.py).

    from pipeline.config import Config, to_config, validate
    cfg = to_config(dict_config)   # DictConfig -> Config
    validate(cfg)                  # raises ConfigError("corpus.sources.wiki.paths: ...")
"""

from pipeline.config.checks import validate
from pipeline.config.cluster import ClusterConfig
from pipeline.config.corpus import READER_FORMATS, CorpusConfig, NormalizeConfig, SourceConfig
from pipeline.config.dedup import ContainmentConfig, DedupConfig, ShingleConfig
from pipeline.config.errors import ConfigError
from pipeline.config.model import ModelConfig, PresetSizing
from pipeline.config.rewrite import RewriteConfig, SamplingConfig
from pipeline.config.root import Config, register_configs, to_config
from pipeline.config.run import RunConfig

__all__ = [
    "READER_FORMATS",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "ContainmentConfig",
    "CorpusConfig",
    "DedupConfig",
    "ModelConfig",
    "NormalizeConfig",
    "PresetSizing",
    "RewriteConfig",
    "RunConfig",
    "SamplingConfig",
    "ShingleConfig",
    "SourceConfig",
    "register_configs",
    "to_config",
    "validate",
]
