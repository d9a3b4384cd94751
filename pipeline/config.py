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

from pipeline.quality.config import FidelityConfig, QualityConfig, filter_problems
from pipeline.rewrite.config import PromptConfig, builtin_prompts, prompt_problems
from pipeline.security import security_problems
from pipeline.tokenize.config import ShardsConfig, TokenizerConfig, tokenize_problems
from pipeline.train.config import TrainConfig, train_problems

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
    # false: the rewrite stage leaves this source raw (it is still deduplicated, filtered and
    # tokenized). For text the rewriting model cannot handle, e.g. verse in old spelling.
    rewrite: bool = True


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
class ShingleConfig:
    # "word": word n-grams (robust to reflowed lines); "char": character n-grams (catches
    # edits inside words and scripts without spaces). bench/dedup.py: char 5-grams squeeze
    # the similarity range (30% word edits still score 0.53) and unrelated documents collide
    # (125k-661k candidates vs ~1.2k at t<=0.6); word 3- and 5-grams separate edit rates
    # equally well and 5-grams give fewer candidates, so word 5-grams are the default.
    kind: str = "word"
    n: int = 5
    lowercase: bool = True
    # "strip": punctuation separates words and is dropped; "keep": each mark is a token.
    punctuation: str = "strip"


@dataclass
class ContainmentConfig:
    # Partial duplicates: a document mostly contained in a longer one (an excerpt, a truncated
    # copy, an article quoted whole in a longer page) has low Jaccard with its container, so
    # the whole-document LSH misses it. Candidates are documents that share anchors: the
    # shingles whose hash is 0 modulo `anchor_every` (chosen by content, not position, so an
    # excerpt keeps its source's anchors); a pair is a partial duplicate when >= `threshold`
    # of the smaller document's shingles are in the larger one (exact sets).
    enabled: bool = True
    # Set from word 5-gram arithmetic, not tuned on a corpus: an excerpt with a share e of its
    # words changed keeps ~(1 - e)^5 of its 5-grams (0.77 at 5%, 0.59 at 10%), while
    # unrelated documents of one topic share a few percent. bench/dedup_scale.py reports it
    # on seeded corpora (light-edit excerpts against same-topic documents): recall 1.00 up
    # to 5%, 0.99 at 10%, precision 1.000 (BENCHMARKS.md).
    threshold: float = 0.5
    # One shingle in `anchor_every` is an anchor: fewer keys for a larger value, and fewer
    # shared anchors for a short excerpt. A pair must share `min_shared_anchors` of them (or
    # all the smaller document has).
    anchor_every: int = 8
    min_shared_anchors: int = 2
    action: str = "flag"  # "flag": keep, mark partial_dup_of; "remove": drop it


@dataclass
class DedupConfig:
    exact: bool = True
    near: bool = True
    shingle: ShingleConfig = field(default_factory=ShingleConfig)
    num_perm: int = 128
    seed: int = 1
    # Target Jaccard similarity of word 5-gram sets. Measured (bench/dedup.py): copies with
    # <=5% word edits score >= 0.61, copies with 10% edits <= 0.52, so 0.6 sits in the gap.
    threshold: float = 0.6
    # Bands and rows follow from the threshold by datasketch's optimisation of weighted
    # false-positive and false-negative areas. Balanced weights (0.5/0.5) make a pair right
    # at the threshold a candidate only ~40% of the time (recall 0.91); weighting false
    # negatives 0.95 gives 24 bands x 4 rows: recall 0.999, precision 1.000 after exact
    # verification, for 42% more candidate pairs to verify.
    fp_weight: float = 0.05
    fn_weight: float = 0.95
    bands: int | None = None
    rows: int | None = None
    # "jaccard": verify candidate pairs on the exact shingle sets; "estimate": trust the
    # signature estimate (cheaper, noisier).
    verify: str = "jaccard"
    # Buckets larger than this are verified against their first member only (star), which
    # bounds pair work on pathological buckets (boilerplate) at a small recall cost.
    max_bucket_pairs: int = 64
    # Which member of a cluster survives: "longest" (most bytes, then smallest id) or
    # "smallest_id".
    keep: str = "longest"
    containment: ContainmentConfig = field(default_factory=ContainmentConfig)
    max_cc_iterations: int = 64
    # Connected components in one union-find task up to this many verified edges (real
    # corpora have far fewer edges than documents); above it, distributed star rounds (0:
    # always).
    local_components_max_edges: int = 20_000_000
    # Hash partitions of the key and pair files; null = twice the cluster's CPUs, or one per
    # 200k documents when that is more (a worker's share stays bounded as the corpus grows).
    shuffle_partitions: int | None = None
    # Documents per map task (a unit of input) and per kernel call within it.
    unit_rows: int = 20_000
    batch_rows: int = 1024


@dataclass
class PresetSizing:
    """The numbers a GPU preset's memory arithmetic needs (pipeline/models/sizing.py); the
    architecture's from the checkpoint's config.json, the device's from the GPU it targets."""

    # Memory of one GPU as torch reports it, GiB: 79 for an 80 GB A100/H100, 23.5 for a 24 GB
    # card. gpu_memory_utilization is a fraction of this.
    gpu_memory_gib: float = 0.0
    # Total parameters in billions, every expert counted: all of them sit in GPU memory.
    params_b: float = 0.0
    # Bytes per parameter as loaded: 2 for bf16; a 4-bit AWQ/GPTQ checkpoint's size / params
    # (about 0.55: 4-bit experts with their group scales, bf16 embeddings and head).
    bytes_per_param: float = 2.0
    # Layers that keep a per-token KV cache (all of them, but for a hybrid's linear layers).
    kv_layers: int = 0
    # "gqa": keys and values of num_kv_heads x head_dim per layer, the heads split across
    # tensor-parallel ranks; "mla" (DeepSeek-V3 style): one latent of kv_lora_rank +
    # qk_rope_head_dim per layer, held whole by every rank.
    attention: str = "gqa"
    num_kv_heads: int = 0
    head_dim: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    kv_cache_bytes: int = 2  # bytes per cached value: bf16
    # Linear-attention layers (Kimi Delta Attention): a fixed state per sequence (fp32
    # heads x head_dim x head_dim, plus short-convolution windows) instead of a per-token cache.
    linear_layers: int = 0
    linear_num_heads: int = 0
    linear_head_dim: int = 0
    linear_conv_kernel: int = 4


@dataclass
class ModelConfig:
    """The rewriter: a local checkpoint built by the project or a hub id on a GPU cluster."""

    name: str = "smollm2-moe-e4-top2"
    # "local:smollm2-moe" (built on first use by jobs/build_model.py), "local:smollm2" (the
    # dense model), a directory, or a hub id (GPU clusters, where weights can be fetched).
    path: str = "local:smollm2-moe"
    tokenizer: str | None = None  # null: the model's own
    # Off unless a preset needs it: remote code runs with the job's rights.
    trust_remote_code: bool = False
    # Keyword arguments of vllm.LLM(...): dtype, max_model_len, tensor_parallel_size, ...
    engine: dict[str, Any] = field(default_factory=dict)
    num_gpus_per_actor: float = 0
    num_cpus_per_actor: float = 1
    num_actors: int = 1
    chat_template_has_system: bool = True
    # Environment of the engine's process, set before vLLM is imported.
    env: dict[str, str] = field(default_factory=dict)
    # Shape of the locally built MoE (sparse upcycling of the dense model).
    num_experts: int = 4
    top_k: int = 2
    # GPU presets: what their memory arithmetic needs (tests/models/test_presets.py checks
    # every preset with it). null on CPU.
    sizing: PresetSizing | None = None


@dataclass
class SamplingConfig:
    temperature: float = 0.7
    top_p: float = 0.9
    max_tokens: int = 512
    # Small models fall into repetition loops; a mild penalty keeps most rewrites out of them.
    repetition_penalty: float = 1.1
    # Each request's seed derives from this and its prompt, so outputs do not depend on
    # which batch or actor a chunk landed in.
    seed: int = 0


@dataclass
class RewriteConfig:
    # Styles to rewrite in: keys of `rewrite.prompts`. The Nemotron-CC set is left out of the
    # default list (experiment=nemotron_cc selects it).
    styles: list[str] = field(
        default_factory=lambda: [
            "wikipedia",
            "lecture_notes",
            "qa",
            "summary",
            "knowledge_list",
            "student",
            "expert",
            "skeptic",
        ]
    )
    # Prompt templates by style name, filled by the `prompts=` group (conf/prompts/: one file
    # per prompt set; default.yaml is the built-in set and this default).
    prompts: dict[str, PromptConfig] = field(default_factory=builtin_prompts)
    # Rewrites per source document, each in a different style (chosen per document, so a
    # document's chunks share a style and reassemble into one coherent rewrite).
    styles_per_doc: int = 1
    # "autoregressive" (K2): a document's chunks in order, each prompt carrying the previous
    # rewritten chunk as read-only context; "independent": every chunk on its own.
    mode: str = "autoregressive"
    # Upper bound on a chunk (tokens of the rewriter's tokenizer); the real budget is also
    # bounded by max_model_len - max_tokens - prompt overhead - context.
    max_chunk_tokens: int = 384
    context_tokens: int = 256  # the previous rewrite is cut to its last N tokens
    # Caps: documents rewritten per corpus source (exact, deterministic sample by hash),
    # chunks rewritten per document (the rest of a long document is left raw). null: all.
    max_docs_per_source: int | None = None
    max_chunks_per_doc: int | None = None
    # An output that hit max_tokens: "retry" once with twice the budget, then drop; "drop";
    # or "keep" the truncated text.
    on_truncated: str = "retry"
    # Best of n with the fidelity gate as verifier: a chunk whose rewrite the gate rejects
    # (fidelity.* rules, applied to the chunk alone) is sampled again with a new seed, up to
    # this many attempts in all; each rejected attempt is counted and kept in
    # quarantine/rewrite/attempts/. 1: no regeneration. Greedy sampling (temperature 0) gives
    # the same text for every seed, so it always makes one attempt.
    max_attempts: int = 4
    # Gate rules a new sample may fix; a chunk failing another rule fails at once. null: all.
    regenerate_on: list[str] | None = None
    # Documents interleaved in one actor batch: more keeps the engine's batch full (with 16,
    # 24 documents went as 16 + 8 and generation ran at 0.66x a single bare call).
    batch_docs: int = 64
    # An engine failure (not a rejected prompt) ends the actor; Ray starts a new one and
    # retries its batch, the generation cache keeping what was done. After this many
    # restarts of one actor the job fails instead of looping on a deterministic crash.
    max_engine_restarts: int = 3
    seed: int = 0
    cache_dir: str = ".cache/generations"
    model_cache: str = ".cache/models"
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


@dataclass
class ClusterConfig:
    # null: start a local Ray inside the job. "auto" or "ray://host:10001": join a cluster.
    address: str | None = None
    num_cpus: int | None = None  # local Ray only; null = all cores
    include_dashboard: bool = True
    # Loopback by default: a local head must not listen on the network.
    host: str = "127.0.0.1"
    # null: 8265, or the next free port when another run's dashboard holds it (two local
    # runs at once); a fixed port that is taken stops the job with a config error.
    dashboard_port: int | None = None
    namespace: str = "rewrite-pipeline"
    # Ray's worker logs on the driver's console; off keeps the progress bars readable.
    log_to_driver: bool = False
    # Ray Data's object store, in bytes (local Ray only); null = Ray's default.
    object_store_memory: int | None = None
    # Ray Data's shuffle for groupby and cogroup. Measured on 2 cores: a sort-based pull
    # shuffle runs a small groupby in ~0.3 s, the hash shuffle's aggregator actors ~1-5 s.
    # Clusters with large shuffles want "hash_shuffle" (conf/cluster/remote.yaml).
    shuffle_strategy: str = "sort_shuffle_pull_based"


@dataclass
class RunConfig:
    # The run directory is <output_root>/<name>; rerunning the same name resumes it.
    name: str = "${now:%Y%m%d-%H%M%S}"
    output_root: str = "outputs"
    stages: list[str] = field(
        default_factory=lambda: ["ingest", "dedup", "quality", "rewrite", "fidelity", "tokenize"]
    )
    resume: bool = True
    progress: bool = True


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    rewrite: RewriteConfig = field(default_factory=RewriteConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    shards: ShardsConfig = field(default_factory=ShardsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


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
    problems += _dedup_problems(cfg.dedup)
    problems += _rewrite_problems(cfg.rewrite)
    problems += security_problems(cfg)
    problems += filter_problems(cfg.quality, cfg.fidelity, list(cfg.rewrite.prompts))
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
