"""`validate`: what the types cannot check, before any work starts; every wrong key at once.

from pipeline.config import validate
validate(cfg)   # raises ConfigError("corpus.sources.wiki.paths: ...\n...")
"""

from __future__ import annotations

import glob
from pathlib import Path

from pipeline.config.corpus import READER_FORMATS
from pipeline.config.dedup import DedupConfig
from pipeline.config.errors import ConfigError
from pipeline.config.fidelity import fidelity_problems
from pipeline.config.prompts import prompt_problems
from pipeline.config.quality import quality_problems
from pipeline.config.rewrite import RewriteConfig
from pipeline.config.root import Config
from pipeline.config.shards import tokenize_problems
from pipeline.config.train import train_problems
from pipeline.security import is_plain_name, security_problems


def validate(cfg: Config, stage_names: tuple[str, ...] | list[str] = ()) -> None:
    """Check what the types cannot; raise ConfigError listing every wrong key, one per line."""
    problems: list[str] = []

    def check(ok: object, key: str, problem: str) -> None:
        if not ok:
            problems.append(f"{key}: {problem}")

    check(is_plain_name(cfg.run.name), "run.name", f"{cfg.run.name!r} is not a plain name")
    if stage_names:
        for stage in cfg.run.stages:
            check(
                stage in stage_names, "run.stages", f"unknown stage {stage!r}; known: {stage_names}"
            )
    cluster = cfg.cluster
    strategies = (
        "sort_shuffle_pull_based",
        "sort_shuffle_push_based",
        "hash_shuffle",
        "shuffle_v2",
    )
    check(
        cluster.shuffle_strategy in strategies,
        "cluster.shuffle_strategy",
        f"{cluster.shuffle_strategy!r} not in {strategies}",
    )
    if cluster.num_cpus is not None:
        check(cluster.num_cpus > 0, "cluster.num_cpus", f"must be positive, got {cluster.num_cpus}")
    corpus = cfg.corpus
    check(corpus.max_doc_bytes > 0, "corpus.max_doc_bytes", "must be positive")
    check(corpus.batch_rows > 0, "corpus.batch_rows", "must be positive")
    check(bool(corpus.sources), "corpus.sources", "no source configured")
    for name, source in corpus.sources.items():
        key = f"corpus.sources.{name}"
        check(is_plain_name(name), key, "a source name is letters, digits, '_', '-', '.'")
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
    problems += _dedup_problems(cfg.dedup)
    problems += _rewrite_problems(cfg.rewrite)
    problems += security_problems(cfg)
    problems += quality_problems(cfg.quality)
    problems += fidelity_problems(cfg.fidelity, list(cfg.rewrite.prompts))
    problems += tokenize_problems(cfg)
    problems += train_problems(cfg.train)
    if problems:
        raise ConfigError("\n".join(problems))


def _dedup_problems(d: DedupConfig) -> list[str]:
    problems = []
    choices = {
        "dedup.shingle.kind": (d.shingle.kind, ("word", "char")),
        "dedup.shingle.punctuation": (d.shingle.punctuation, ("strip", "keep")),
        "dedup.verify": (d.verify, ("jaccard", "estimate")),
        "dedup.keep": (d.keep, ("longest", "smallest_id")),
        "dedup.containment.action": (d.containment.action, ("flag", "remove")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            problems.append(f"{key}: {value!r} not in {allowed}")
    for key, value in {
        "dedup.threshold": d.threshold,
        "dedup.containment.threshold": d.containment.threshold,
    }.items():
        if not 0 < value < 1:
            problems.append(f"{key}: must be in (0, 1), got {value}")
    for key, value in {
        "dedup.shingle.n": d.shingle.n,
        "dedup.num_perm": d.num_perm,
        "dedup.containment.anchor_every": d.containment.anchor_every,
        "dedup.containment.min_shared_anchors": d.containment.min_shared_anchors,
        "dedup.max_bucket_pairs": d.max_bucket_pairs,
        "dedup.unit_rows": d.unit_rows,
        "dedup.batch_rows": d.batch_rows,
    }.items():
        if value < 1:
            problems.append(f"{key}: must be >= 1, got {value}")
    if d.local_components_max_edges < 0:
        problems.append(
            f"dedup.local_components_max_edges: must be >= 0, got {d.local_components_max_edges}"
        )
    if (d.bands is None) != (d.rows is None):
        problems.append("dedup.bands, dedup.rows: give both or neither")
    elif d.bands is not None and d.rows is not None and d.bands * d.rows > d.num_perm:
        problems.append(f"dedup.bands * dedup.rows: {d.bands * d.rows} > num_perm {d.num_perm}")
    return problems


def _rewrite_problems(r: RewriteConfig) -> list[str]:
    problems = prompt_problems(r.prompts, r.styles)
    if r.mode not in ("autoregressive", "independent"):
        problems.append(f"rewrite.mode: {r.mode!r} not in ('autoregressive', 'independent')")
    if r.on_truncated not in ("retry", "drop", "keep"):
        problems.append(
            f"rewrite.on_truncated: {r.on_truncated!r} not in ('retry', 'drop', 'keep')"
        )
    for key, value in {
        "rewrite.styles_per_doc": r.styles_per_doc,
        "rewrite.max_chunk_tokens": r.max_chunk_tokens,
        "rewrite.batch_docs": r.batch_docs,
        "rewrite.sampling.max_tokens": r.sampling.max_tokens,
        "rewrite.max_attempts": r.max_attempts,
    }.items():
        if value < 1:
            problems.append(f"{key}: must be >= 1, got {value}")
    if r.max_engine_restarts < 0:
        problems.append(f"rewrite.max_engine_restarts: must be >= 0, got {r.max_engine_restarts}")
    if r.context_tokens < 0:
        problems.append(f"rewrite.context_tokens: must be >= 0, got {r.context_tokens}")
    return problems
