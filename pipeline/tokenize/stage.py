"""The tokenize stage on Ray Data: raw documents and rewrites -> Arrow token shards + manifest.

1. tokenizer  resolve the configured tokenizer (or train a SentencePiece model on the input,
              tokenizer.train=true); a copy is kept in <run>/tokenize/tokenizer/
2. tokenize   Ray tasks encode batches of tokenizer.batch_rows documents (each worker
              process loads the tokenizer once); the result is materialized once
3. plan       the driver reads small per-row columns (no text, no tokens) and decides the
              held-out split, the mixture and the shard boundaries (pipeline/tokenize/mixing.py)
4. write      dropped rows (reason, detail, snippet) -> quarantine/tokenize via AccountingSink;
              kept rows grouped by shard -> ShardSink (temp + rename, sha256 each);
              manifest.json last

Inputs: the last stage producing DOCS (raw documents) and, when the run has one, the last
producing REWRITES. rows_in = raw documents + rewrites; every row ends in a shard or in
quarantine with its reason.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray

from pipeline import schema as S
from pipeline.io.sink import AccountingSink
from pipeline.ray_ops import count_rows, parquet_parts, shuffle_partitions
from pipeline.stage import DOCS, REWRITES, SHARDS, RunContext, Stage
from pipeline.stats import StageStats, StepTimer
from pipeline.tokenize import batches as B
from pipeline.tokenize.manifest import build_manifest, write_manifest
from pipeline.tokenize.mixing import decide, make_plan, totals
from pipeline.tokenize.resolve import resolve_spec, trained_spec
from pipeline.tokenize.shards import (
    HELDOUT,
    SPLIT_PREFIX,
    SPLITS,
    TRAIN,
    sha256_file,
    token_dtype_for,
)
from pipeline.tokenize.sink import FILE, ShardSink
from pipeline.tokenize.tokenizers import (
    SENTENCEPIECE,
    TokenizerSpec,
    load_tokenizer,
    read_path,
)
from pipeline.tokenize.training import train_sentencepiece

log = logging.getLogger("pipeline")
TOKENIZER_DIR = "tokenizer"


class TokenizeStage(Stage):
    name = "tokenize"
    produces = SHARDS
    # uint16 tokens shown; list<uint32> when the vocabulary has more than 65536 entries.
    output_schema = S.token_shard_schema("uint16")

    def settings(self):
        t = self.config.tokenizer
        out = {"tokenizer": t, "shards": self.config.shards}
        if t.kind == "model" and not t.train:
            m = self.config.model
            out["model"] = {
                "name": m.name,
                "path": m.path,
                "tokenizer": m.tokenizer,
                "num_experts": m.num_experts,
                "top_k": m.top_k,
            }
        elif not t.train:  # a file edited in place (or a package upgrade) reruns the stage
            out["file_sha256"] = sha256_file(read_path(t.path))
        return out

    def run(self, ctx: RunContext) -> StageStats:
        started = time.perf_counter()
        cfg, steps = self.config, StepTimer(self.name)
        inputs, rows_in = _read_inputs(ctx)
        with steps("tokenizer"):
            spec = self._tokenizer_spec(inputs)
            tokenizer = load_tokenizer(spec)
            _keep_copy(spec, ctx.stage_dir(self.name) / TOKENIZER_DIR)
        dtype = token_dtype_for(tokenizer.vocab_size)
        with steps("tokenize"):
            tokenized = _tokenize(inputs, spec, dtype, cfg)
        with steps("plan"):
            meta = B.gather_columns(tokenized, B.META_COLUMNS)
            if len(meta[S.KIND]) != rows_in:
                raise RuntimeError(f"tokenized {len(meta[S.KIND])} rows of {rows_in}")
            plan, mixture = make_plan(meta, cfg.shards, tokenizer.n_special_added)
            reasons, splits = decide(meta, plan)
        data_dir = ctx.data_dir(self.name)
        with steps("write"):
            dropped, shards = _write(
                tokenized, plan, dtype, cfg, data_dir, ctx.quarantine_dir(self.name)
            )
            planned_drops = _counts([r for r in reasons if r is not None])
            if dropped != planned_drops:
                raise RuntimeError(f"quarantine got {dropped}, the plan dropped {planned_drops}")
            by_split = {
                s: [x for x in shards if x.file.startswith(SPLIT_PREFIX[s] + "-")] for s in SPLITS
            }
            manifest = build_manifest(
                tokenizer={**tokenizer.info(), "file": f"../{TOKENIZER_DIR}/{_copy_name(spec)}"},
                token_dtype=dtype,
                splits=by_split,
                totals={**totals(meta, splits, TRAIN), HELDOUT: totals(meta, splits, HELDOUT)},
                mixture={
                    **mixture,
                    "source_weights": {
                        name: src.weight for name, src in sorted(cfg.corpus.sources.items())
                    },
                },
                config={"tokenizer": asdict(cfg.tokenizer), "shards": asdict(cfg.shards)},
            )
            write_manifest(data_dir, manifest)
        seconds = time.perf_counter() - started
        written = sum(s.tokens for s in shards)
        totals_ = manifest["totals"]
        return StageStats(
            stage=self.name,
            rows_in=rows_in,
            rows_out=sum(s.rows for s in shards),
            dropped=dropped,
            bytes_in=int(meta[S.N_BYTES].sum()),
            bytes_out=sum(s.bytes for s in shards),
            extra={
                "tokenizer": {k: tokenizer.info()[k] for k in ("kind", "name", "sha256")},
                "vocab_size": tokenizer.vocab_size,
                "token_dtype": dtype,
                "tokens_written": written,
                # The whole stage (Ray start-up of its pipelines included) and the encoding
                # step alone (every input token, dropped rows too).
                "tokens_per_second": round(written / seconds, 1),
                "tokenize_step_tokens_per_second": round(
                    int(meta[S.N_TOKENS].sum()) / max(steps.seconds["tokenize"], 1e-3), 1
                ),
                "shards_written": {s: len(by_split[s]) for s in SPLITS},
                "documents": {s: manifest["splits"][s]["documents"] for s in SPLITS},
                # Training split (held-out tokens: manifest.json totals.heldout).
                "tokens_by_source": _tokens(totals_["by_source"]),
                "tokens_by_kind": _tokens(totals_["by_kind"]),
                "tokens_by_style": _tokens(totals_["by_style"]),
                "rewrite_share": mixture["rewrite_share"],
                "step_seconds": steps.seconds,
            },
        )

    def _tokenizer_spec(self, inputs: ray.data.Dataset | None) -> TokenizerSpec:
        t = self.config.tokenizer
        if not t.train:
            return resolve_spec(t, self.config.model, Path(self.config.rewrite.model_cache))
        lines = B.training_lines(inputs, t.train_max_bytes, self.config.shards.seed)
        log.info(
            "tokenize: training a %d-piece %s model on %d lines",
            t.train_vocab_size,
            t.train_model_type,
            len(lines),
        )
        model = train_sentencepiece(lines, t.train_vocab_size, t.train_model_type)
        return trained_spec(t, model, f"{self.name}/{TOKENIZER_DIR}/tokenizer.model")


def _write(tokenized, plan, dtype: str, cfg, data_dir: Path, quarantine_dir: Path):
    """Dropped rows to quarantine, kept rows to shards; returns (dropped counts, ShardInfos)."""
    placed = tokenized.map_batches(
        B.place, batch_format="pyarrow", fn_kwargs={"plan": plan, "shards": cfg.shards}
    )
    quarantine = AccountingSink(data_dir, quarantine_dir, B.QUARANTINE_KEPT_SCHEMA, count_by=None)
    placed.map_batches(B.dropped_rows, batch_format="pyarrow").write_datasink(quarantine)
    sink = ShardSink(data_dir, dtype, plan.planned)
    if plan.planned:
        partitions = min(len(plan.planned), shuffle_partitions(None))
        with _block_size_at_least(2 * _largest_shard_bytes(plan, dtype)):
            (
                placed.map_batches(B.kept_rows, batch_format="pyarrow")
                .groupby(FILE, num_partitions=partitions)
                .map_groups(B.one_shard, batch_format="pyarrow")
                .write_datasink(sink)
            )
    return quarantine.result.dropped, sink.shards


def _read_inputs(ctx: RunContext) -> tuple[ray.data.Dataset | None, int]:
    parts = []
    docs = ctx.output_of(DOCS)
    if parquet_parts(docs):
        parts.append(B.read_input(docs, S.KIND_RAW))
    rows_in = count_rows(docs)
    if ctx.latest(REWRITES) is not None:
        rewrites = ctx.output_of(REWRITES)
        if parquet_parts(rewrites):
            parts.append(B.read_input(rewrites, S.KIND_REWRITE))
        rows_in += count_rows(rewrites)
    if not parts:
        return None, rows_in
    return (parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]), rows_in


def _tokenize(inputs, spec: TokenizerSpec, dtype: str, cfg) -> ray.data.Dataset:
    if inputs is None:
        return ray.data.from_arrow(B.tokenized_schema(dtype).empty_table())
    # Ingest's small Parquet parts are read as one block, which would be one task: cut it
    # into blocks of batch_rows rows (streaming, no shuffle) so every CPU tokenizes.
    blocks = inputs.repartition(target_num_rows_per_block=cfg.tokenizer.batch_rows)
    return blocks.map_batches(
        B.tokenize_batch,
        fn_kwargs={"spec": spec, "token_dtype": dtype, "seed": cfg.shards.seed},
        batch_size=cfg.tokenizer.batch_rows,
        batch_format="pyarrow",
        num_cpus=1,
    ).materialize()


def _keep_copy(spec: TokenizerSpec, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / _copy_name(spec)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(spec.data)
    os.replace(tmp, path)


def _copy_name(spec: TokenizerSpec) -> str:
    return "tokenizer.model" if spec.kind == SENTENCEPIECE else "tokenizer.json"


def _largest_shard_bytes(plan, dtype: str) -> int:
    itemsize = pa.from_numpy_dtype(np.dtype(dtype)).bit_width // 8
    # Tokens plus ~200 bytes of ids, offsets and keys per row: an upper estimate.
    return max(tokens * itemsize + rows * 200 for rows, tokens in plan.planned.values())


@contextmanager
def _block_size_at_least(nbytes: int):
    """Ray Data splits blocks above target_max_block_size; a shard must stay one block."""
    context = ray.data.DataContext.get_current()
    old = context.target_max_block_size
    if old is not None and nbytes > old:
        context.target_max_block_size = nbytes
    try:
        yield
    finally:
        context.target_max_block_size = old


def _counts(values: list[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def _tokens(table: dict) -> dict[str, int]:
    return {name: entry["tokens"] for name, entry in table.items()}
