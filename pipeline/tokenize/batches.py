"""Batch functions of the tokenize stage: reading inputs, tokenizing, placing rows.

Each takes and returns a pyarrow Table, so the stage (pipeline/tokenize/stage.py) is a
chain of `map_batches` calls; the decisions themselves live in mixing.py.

    ds = read_input(docs_dir, "raw").map_batches(tokenize_batch, fn_kwargs=...)
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from pipeline import schema as S
from pipeline.ray_ops import parquet_parts
from pipeline.tokenize.config import ShardsConfig
from pipeline.tokenize.mixing import (
    EMPTY,
    HELDOUT_KEY,
    HELDOUT_SOURCE,
    MIX_KEY,
    MIXTURE_RATIO,
    ORDER,
    PARENT_ID,
    TOO_SHORT,
    Plan,
    decide,
    key63,
    shard_files,
)
from pipeline.tokenize.sink import FILE
from pipeline.tokenize.tokenizers import Tokenizer, TokenizerSpec, load_tokenizer

SNIPPET_CHARS = 200

# One row per raw document or rewrite; DOC_ID is the row's id (a rewrite's rewrite_id).
INPUT_SCHEMA = pa.schema(
    [
        pa.field(S.DOC_ID, pa.string()),
        pa.field(PARENT_ID, pa.string()),
        pa.field(S.SOURCE, pa.string()),
        pa.field(S.KIND, pa.string()),
        pa.field(S.STYLE, pa.string()),
        pa.field(S.TEXT, pa.large_string()),
        pa.field(S.N_BYTES, pa.int64()),
    ]
)
META_COLUMNS = [S.KIND, S.SOURCE, S.STYLE, S.N_TOKENS, S.N_BYTES, ORDER, HELDOUT_KEY, MIX_KEY]
QUARANTINE_KEPT_SCHEMA = pa.schema(
    [f for f in S.token_shard_schema("uint32") if f.name != S.TOKENS]
)
_DETAIL = {
    EMPTY: "no tokens after tokenization",
    TOO_SHORT: "fewer than shards.min_tokens tokens (BOS/EOS not counted)",
    HELDOUT_SOURCE: "a rewrite of a held-out document (shards.heldout_exclude_rewrites)",
    MIXTURE_RATIO: "beyond its budget under shards.rewrite_share",
}


def tokenized_schema(token_dtype: str) -> pa.Schema:
    return pa.schema(
        [
            *S.token_shard_schema(token_dtype),
            pa.field(ORDER, pa.int64()),
            pa.field(HELDOUT_KEY, pa.int64()),
            pa.field(MIX_KEY, pa.int64()),
            pa.field(S.N_BYTES, pa.int64()),
            pa.field(S.SNIPPET, pa.string()),
        ]
    )


def read_input(directory: Path, kind: str) -> ray.data.Dataset:
    """A DOCS or REWRITES stage output as INPUT_SCHEMA rows, reading only those columns."""
    if kind == S.KIND_RAW:
        columns = [S.DOC_ID, S.SOURCE, S.TEXT, S.N_BYTES]
    else:
        columns = [S.REWRITE_ID, S.DOC_ID, S.SOURCE, S.STYLE, S.TEXT, S.N_BYTES]
    ds = ray.data.read_parquet(parquet_parts(directory), columns=columns)
    return ds.map_batches(_as_input, batch_format="pyarrow", fn_kwargs={"kind": kind})


def _as_input(batch: pa.Table, kind: str) -> pa.Table:
    n = batch.num_rows
    raw = kind == S.KIND_RAW
    return pa.table(
        {
            S.DOC_ID: batch[S.DOC_ID] if raw else batch[S.REWRITE_ID],
            PARENT_ID: batch[S.DOC_ID],
            S.SOURCE: batch[S.SOURCE],
            S.KIND: pa.array([kind] * n, pa.string()),
            S.STYLE: pa.nulls(n, pa.string()) if raw else batch[S.STYLE],
            S.TEXT: batch[S.TEXT].cast(pa.large_string()),
            S.N_BYTES: batch[S.N_BYTES],
        },
        schema=INPUT_SCHEMA,
    )


# Tokenizers loaded in this worker process, by (sha256, BOS/EOS settings): Ray reuses
# worker processes across tasks, so each process loads a tokenizer once.
_LOADED: dict[tuple, Tokenizer] = {}


def cached_tokenizer(spec: TokenizerSpec) -> Tokenizer:
    """The spec's tokenizer, loaded on first use in this process."""
    key = (spec.sha256, spec.add_bos, spec.add_eos, spec.bos_token, spec.eos_token)
    if key not in _LOADED:
        # HF tokenizers' encode_batch spreads over all cores; Ray already runs one task per
        # CPU, so each keeps to one thread (read when the thread pool first starts).
        os.environ.setdefault("RAYON_NUM_THREADS", "1")
        _LOADED[key] = load_tokenizer(spec)
    return _LOADED[key]


def tokenize_batch(batch: pa.Table, spec: TokenizerSpec, token_dtype: str, seed: int) -> pa.Table:
    """Encode INPUT_SCHEMA rows: the shard columns plus sort/split keys, bytes and snippet."""
    tokenizer = cached_tokenizer(spec)
    dtype = np.dtype(token_dtype)
    texts = batch[S.TEXT].to_pylist()
    ids = tokenizer.encode_batch(texts)
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype, count=int(offsets[-1]))
    kinds = batch[S.KIND].to_pylist()
    row_ids = batch[S.DOC_ID].to_pylist()
    parents = batch[PARENT_ID].to_pylist()
    order = [
        key63(seed, k, r, hashlib.blake2b(t.encode()).hexdigest())
        for k, r, t in zip(kinds, row_ids, texts, strict=True)
    ]
    return pa.table(
        {
            S.DOC_ID: batch[S.DOC_ID],
            S.SOURCE: batch[S.SOURCE],
            S.KIND: batch[S.KIND],
            S.STYLE: batch[S.STYLE],
            S.N_TOKENS: pa.array(lengths.astype(np.int32)),
            S.TOKENS: pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)),
            ORDER: pa.array(order, pa.int64()),
            HELDOUT_KEY: pa.array([key63(seed, "heldout", p) for p in parents], pa.int64()),
            MIX_KEY: pa.array([key63(seed, "mix", r) for r in row_ids], pa.int64()),
            S.N_BYTES: batch[S.N_BYTES],
            S.SNIPPET: pa.array([t[:SNIPPET_CHARS] for t in texts], pa.string()),
        },
        schema=tokenized_schema(token_dtype),
    )


def gather_columns(ds: ray.data.Dataset, columns: list[str]) -> dict[str, np.ndarray]:
    """Small columns of every row on the driver, as numpy arrays (strings as objects)."""
    tables = [b for b in ds.select_columns(columns).iter_batches(batch_format="pyarrow")]
    table = pa.concat_tables(tables) if tables else tokenized_schema("uint32").empty_table()
    return {c: table[c].to_numpy(zero_copy_only=False) for c in columns}


def place(batch: pa.Table, plan: Plan, shards: ShardsConfig) -> pa.Table:
    """Add the row's drop reason and detail, or its shard file, from the plan."""
    meta = {
        c: batch[c].to_numpy(zero_copy_only=False)
        for c in (S.KIND, S.N_TOKENS, HELDOUT_KEY, MIX_KEY)
    }
    reasons, splits = decide(meta, plan)
    files = shard_files(batch[ORDER].to_numpy(), splits, plan)
    content = meta[S.N_TOKENS] - plan.n_special
    details = [
        None if r is None else _detail(r, n, shards) for r, n in zip(reasons, content, strict=True)
    ]
    return (
        batch.append_column(S.DROP_REASON, pa.array(list(reasons), pa.string()))
        .append_column(S.DROP_DETAIL, pa.array(details, pa.string()))
        .append_column(FILE, pa.array(list(files), pa.string()))
    )


def _detail(reason: str, content_tokens: int, shards: ShardsConfig) -> str:
    if reason == TOO_SHORT:
        return (
            f"{content_tokens} tokens < shards.min_tokens={shards.min_tokens} (BOS/EOS not counted)"
        )
    if reason == MIXTURE_RATIO:
        return f"beyond its budget under shards.rewrite_share={shards.rewrite_share}"
    return _DETAIL[reason]


def dropped_rows(batch: pa.Table) -> pa.Table:
    """Rows with a reason, for quarantine/tokenize: ids, counts, reason, detail, snippet."""
    rows = batch.filter(pc.is_valid(batch[S.DROP_REASON]))
    names = [*QUARANTINE_KEPT_SCHEMA.names, *S.DROP_COLUMNS]
    return rows.select(names)


def kept_rows(batch: pa.Table) -> pa.Table:
    """Rows bound for a shard: the shard columns, the sort key and the file name."""
    rows = batch.filter(pc.is_null(batch[S.DROP_REASON]))
    return rows.select([*S.token_shard_schema("uint16").names, ORDER, FILE])


def one_shard(group: pa.Table) -> pa.Table:
    """One shard's rows (a groupby group), in the shard's row order."""
    return group.sort_by(ORDER)


def training_lines(inputs: ray.data.Dataset | None, max_bytes: int, seed: int) -> list[str]:
    """Non-empty lines of a deterministic sample of input documents (smallest row-id hash
    first, up to `max_bytes` of text), in hash order: the tokenizer trainer's input."""
    if inputs is None:
        return []
    keyed = inputs.map_batches(_training_key, batch_format="pyarrow", fn_kwargs={"seed": seed})
    sizes = gather_columns(keyed, ["_train_key", S.N_BYTES])
    if not len(sizes[S.N_BYTES]):
        return []
    order = np.argsort(sizes["_train_key"], kind="stable")
    fits = np.cumsum(sizes[S.N_BYTES][order]) <= max_bytes
    if not fits.any():
        fits[0] = True  # one document at least, even above the budget
    cutoff = int(sizes["_train_key"][order][fits].max())
    chosen = keyed.map_batches(
        lambda b: b.filter(pc.less_equal(b["_train_key"], cutoff)).select(["_train_key", S.TEXT]),
        batch_format="pyarrow",
    )
    table = pa.concat_tables(list(chosen.iter_batches(batch_format="pyarrow")))
    # Text breaks ties between equal keys (rows sharing an id), so the order is total.
    table = table.sort_by([("_train_key", "ascending"), (S.TEXT, "ascending")])
    return [line for text in table[S.TEXT].to_pylist() for line in text.split("\n") if line.strip()]


def _training_key(batch: pa.Table, seed: int) -> pa.Table:
    keys = [
        key63(seed, "train", k, r)
        for k, r in zip(batch[S.KIND].to_pylist(), batch[S.DOC_ID].to_pylist(), strict=True)
    ]
    return batch.select([S.TEXT, S.N_BYTES]).append_column("_train_key", pa.array(keys, pa.int64()))
