"""Typed configuration, the ground floor: one module per Hydra group (conf/<group>/), each a
dataclass registered in Hydra's ConfigStore. Nothing here imports a stage: stages import it.

The YAML files under conf/ fill these dataclasses; Hydra rejects unknown keys, values of the
wrong type and choices not in a field's Enum while composing. Each dataclass checks its ranges
when built (`to_config`), `validate` the keys of several groups that must agree, and a stage's
`check` what needs its code (a tokenizer file, the corpus paths; pipeline/runner.check_config
runs all three before any work). Each raises `ConfigError`, one "key: problem" line each.

    from pipeline.config import Config, to_config, validate
    cfg = to_config(dict_config)   # DictConfig -> Config
    validate(cfg)                  # raises ConfigError("corpus.sources.wiki.paths: ...")
"""

from pipeline.config.checks import validate
from pipeline.config.cluster import ClusterConfig
from pipeline.config.corpus import CorpusConfig, NormalizeConfig, SourceConfig
from pipeline.config.dedup import ContainmentConfig, DedupConfig, ShingleConfig
from pipeline.config.errors import ConfigError
from pipeline.config.model import ModelConfig, PresetSizing
from pipeline.config.rewrite import RewriteConfig, SamplingConfig
from pipeline.config.root import Config, register_configs, to_config
from pipeline.config.run import RunConfig

__all__ = [
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
