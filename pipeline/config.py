"""Typed configuration: dataclasses registered in Hydra's ConfigStore, and validation.

The YAML files under conf/ fill these dataclasses; Hydra rejects unknown keys and values of
the wrong type while composing. `validate` then checks what types cannot (paths exist,
values in range) before any work starts, and raises `ConfigError` naming the key.

    from pipeline.config import Config, to_config, validate
    cfg = to_config(dict_config)   # DictConfig -> Config
    validate(cfg)                  # raises ConfigError("corpus.sources.wiki.paths: ...")
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

READER_FORMATS = ("auto", "jsonl", "parquet", "text")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(ValueError):
    """A configuration value is wrong; the message starts with the key's dotted path."""


@dataclass
class SourceConfig:
    # Glob patterns (recursive ** allowed), relative to the directory the job starts in.
    paths: list[str] = MISSING
    # auto: by extension (.jsonl[.gz|.zst], .parquet, .txt)
    format: str = "auto"
    text_field: str = "text"
    # Field holding the record key; records without one get a content-hash id.
    id_field: str | None = "id"
    # Mixture weight, carried on every row to tokenization and the loader.
    weight: float = 1.0


@dataclass
class NormalizeConfig:
    nfc: bool = True  # Unicode NFC: one byte sequence per visible string, so hashes agree
    newlines: bool = True  # CRLF / CR -> LF
    control_chars: bool = True  # C0/C1 controls except tab and newline
    strip: bool = True  # leading/trailing whitespace of the whole document


@dataclass
class CorpusConfig:
    name: str = MISSING
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    # Larger documents are quarantined as too_large. 2 MB holds any play or book chapter
    # while keeping one record far below a worker's memory.
    max_doc_bytes: int = 2_000_000
    # Rows per Arrow batch handed downstream: bounds a reader's memory independent of file size.
    batch_rows: int = 1024
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)


@dataclass
class ClusterConfig:
    # null: start a local Ray inside the job. "auto" or "ray://host:10001": join a cluster.
    address: str | None = None
    num_cpus: int | None = None  # local Ray only; null = all cores
    include_dashboard: bool = True
    # Loopback by default: a local head must not listen on the network.
    host: str = "127.0.0.1"
    dashboard_port: int = 8265
    namespace: str = "rewrite-pipeline"
    # Ray's worker logs on the driver's console; off keeps the progress bars readable.
    log_to_driver: bool = False
    # Ray Data's object store, in bytes (local Ray only); null = Ray's default.
    object_store_memory: int | None = None


@dataclass
class RunConfig:
    # The run directory is <output_root>/<name>; rerunning the same name resumes it.
    name: str = "${now:%Y%m%d-%H%M%S}"
    output_root: str = "outputs"
    stages: list[str] = field(default_factory=lambda: ["ingest"])
    resume: bool = True
    progress: bool = True


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


def register_configs() -> None:
    """Register the schema so conf/config.yaml can name it first in its defaults list."""
    ConfigStore.instance().store(name="base_config", node=Config)


register_configs()


def to_config(cfg: DictConfig | dict[str, Any]) -> Config:
    """Resolve interpolations and turn a composed DictConfig into the typed Config."""
    if isinstance(cfg, dict):
        cfg = OmegaConf.create(cfg)
    merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
    OmegaConf.resolve(merged)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def validate(cfg: Config, stage_names: tuple[str, ...] | list[str] = ()) -> None:
    """Check what the types cannot; raise ConfigError listing every wrong key, one per line."""
    problems: list[str] = []

    def check(ok: object, key: str, problem: str) -> None:
        if not ok:
            problems.append(f"{key}: {problem}")

    check(_SAFE_NAME.match(cfg.run.name or ""), "run.name", f"{cfg.run.name!r} is not a plain name")
    if stage_names:
        for stage in cfg.run.stages:
            check(
                stage in stage_names, "run.stages", f"unknown stage {stage!r}; known: {stage_names}"
            )
    cluster = cfg.cluster
    if cluster.num_cpus is not None:
        check(cluster.num_cpus > 0, "cluster.num_cpus", f"must be positive, got {cluster.num_cpus}")
    corpus = cfg.corpus
    check(corpus.max_doc_bytes > 0, "corpus.max_doc_bytes", "must be positive")
    check(corpus.batch_rows > 0, "corpus.batch_rows", "must be positive")
    check(bool(corpus.sources), "corpus.sources", "no source configured")
    for name, source in corpus.sources.items():
        key = f"corpus.sources.{name}"
        check(_SAFE_NAME.match(name), key, "a source name is letters, digits, '_', '-', '.'")
        check(
            source.format in READER_FORMATS,
            f"{key}.format",
            f"{source.format!r} not in {READER_FORMATS}",
        )
        check(source.weight > 0, f"{key}.weight", f"must be positive, got {source.weight}")
        check(bool(source.paths), f"{key}.paths", "no path given")
        for pattern in source.paths:
            check(
                any(Path(p).is_file() for p in glob.iglob(pattern, recursive=True)),
                f"{key}.paths",
                f"no file matches {pattern!r} (relative to {Path.cwd()})",
            )
    if problems:
        raise ConfigError("\n".join(problems))
