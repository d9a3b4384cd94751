"""The tokenize stage on Ray Data: raw documents and rewrites -> Arrow token shards + manifest.

1. tokenizer  resolve the configured tokenizer (or train a SentencePiece model on the input,
              tokenizer.train=true); a copy is kept in <run>/tokenize/tokenizer/
2. tokenize   Ray tasks, one per CPU at a time, encode blocks of about equal text (each
              worker process loads the tokenizer once, and calls it on tokenizer.batch_rows
              documents at a time); each writes its rows to a part file
              (<run>/tokenize/_parts/, pipeline/tokens/parts.py) and returns only small
              per-row columns (no text, no tokens), streamed to the driver
3. plan       from those the driver decides the held-out split, the mixture and the shard
              boundaries (pipeline/tokens/mixing.py), and so every row's fate
4. write      dropped rows (reason, detail, snippet) -> quarantine/tokenize via AccountingSink;
              each shard assembled from its rows' parts -> ShardSink (temp + rename, sha256
              each), its lineage table beside it (lineage/, pipeline/tokens/lineage.py);
              manifest.json last; the parts are deleted

Inputs: the last stage producing DOCS (raw documents) and, when the run has one, the last
producing REWRITES. rows_in = raw documents + rewrites; every row ends in a shard or in
quarantine with its reason.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from pipeline import schema as S
from pipeline.config import Config
from pipeline.plumbing.hashing import file_sha256
from pipeline.ray_ops import count_rows, parquet_parts
from pipeline.stage import DOCS, REWRITES, SHARDS, RunContext, Stage
from pipeline.stats import StageStats, StepTimer
from pipeline.token_shards.files import (
    HELDOUT,
    SPLIT_PREFIX,
    SPLITS,
    TRAIN,
    token_dtype_for,
)
from pipeline.token_shards.manifest import build_manifest, write_manifest
from pipeline.tokens.batches import META_COLUMNS, training_lines
from pipeline.tokens.inputs import MAX_ITEM_BYTES, input_dataset, plan_items
from pipeline.tokens.lineage import lineage_entry
from pipeline.tokens.mixing import ORDER, decide, make_plan, shard_files, totals
from pipeline.tokens.parts import PARTS_DIR
from pipeline.tokens.resolve import resolve_spec, trained_spec
from pipeline.tokens.steps import encode, write_quarantine, write_shards
from pipeline.tokens.tokenizers import (
    SENTENCEPIECE,
    TokenizerError,
    TokenizerSpec,
    load_tokenizer,
    read_path,
)
from pipeline.tokens.training import train_sentencepiece

log = logging.getLogger("pipeline")
TOKENIZER_DIR = "tokenizer"


class TokenizeStage(Stage):
    name = "tokenize"
    produces = SHARDS
    # uint16 tokens shown; list<uint32> when the vocabulary has more than 65536 entries.

    @classmethod
    def check(cls, config: Config) -> list[str]:
        """A tokenizer file given by path must exist (read_path knows `package:` paths)."""
        t = config.tokenizer
        if t.kind == "model" or t.train or not t.path:
            return []
        try:
            read_path(t.path)
        except TokenizerError as err:
            return [f"tokenizer.path: {err}"]
        return []

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
            out["file_sha256"] = file_sha256(read_path(t.path))
        return out

    def run(self, ctx: RunContext) -> StageStats:
        started = time.perf_counter()
        cfg, steps = self.config, StepTimer(self.name)
        sources, rows_in = _sources(ctx)
        with steps("tokenizer"):
            spec = self._tokenizer_spec(sources)
            tokenizer = load_tokenizer(spec)
            _keep_copy(spec, ctx.stage_dir(self.name) / TOKENIZER_DIR)
        dtype = token_dtype_for(tokenizer.vocab_size)
        part_dir = ctx.stage_dir(self.name) / PARTS_DIR
        with steps("tokenize"):
            rows = encode(sources, spec, dtype, cfg, part_dir)
        with steps("plan"):
            meta = {c: rows[c].to_numpy(zero_copy_only=False) for c in META_COLUMNS}
            if len(meta[S.KIND]) != rows_in:
                raise RuntimeError(f"tokenized {len(meta[S.KIND])} rows of {rows_in}")
            plan, mixture = make_plan(meta, cfg.shards, tokenizer.n_special_added)
            reasons, splits = decide(meta, plan)
            files = shard_files(meta[ORDER], splits, plan)
        data_dir = ctx.data_dir(self.name)
        with steps("write"):
            dropped = write_quarantine(
                rows, reasons, plan, cfg, part_dir, data_dir, ctx.quarantine_dir(self.name)
            )
            shards, lineage = write_shards(rows, files, plan, dtype, part_dir, data_dir)
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
                lineage=lineage_entry(lineage),
            )
            write_manifest(data_dir, manifest)
            shutil.rmtree(part_dir, ignore_errors=True)
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

    def _tokenizer_spec(self, sources: list[tuple[Path, str]]) -> TokenizerSpec:
        t = self.config.tokenizer
        if not t.train:
            return resolve_spec(t, self.config.model, Path(self.config.rewrite.model_cache))
        inputs = input_dataset(plan_items(sources, cpus=1, min_bytes=MAX_ITEM_BYTES))
        lines = training_lines(inputs, t.train_max_bytes, self.config.shards.seed)
        log.info(
            "tokenize: training a %d-piece %s model on %d lines",
            t.train_vocab_size,
            t.train_model_type,
            len(lines),
        )
        model = train_sentencepiece(lines, t.train_vocab_size, t.train_model_type)
        return trained_spec(t, model, f"{self.name}/{TOKENIZER_DIR}/tokenizer.model")


def _sources(ctx: RunContext) -> tuple[list[tuple[Path, str]], int]:
    """The input directories with Parquet parts, each with its kind, and rows_in (footers)."""
    sources = []
    docs = ctx.output_of(DOCS)
    if parquet_parts(docs):
        sources.append((docs, S.KIND_RAW))
    rows_in = count_rows(docs)
    if ctx.latest(REWRITES) is not None:
        rewrites = ctx.output_of(REWRITES)
        if parquet_parts(rewrites):
            sources.append((rewrites, S.KIND_REWRITE))
        rows_in += count_rows(rewrites)
    return sources, rows_in


def _keep_copy(spec: TokenizerSpec, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / _copy_name(spec)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(spec.data)
    os.replace(tmp, path)


def _copy_name(spec: TokenizerSpec) -> str:
    return "tokenizer.model" if spec.kind == SENTENCEPIECE else "tokenizer.json"


def _counts(values: list[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def _tokens(table: dict) -> dict[str, int]:
    return {name: entry["tokens"] for name, entry in table.items()}
