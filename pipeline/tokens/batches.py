"""Batch functions of the tokenize stage: tokenizing rows and explaining drops.

The batch functions take and return a pyarrow Table, for `map_batches`; the decisions
themselves live in mixing.py; reading the input is in inputs.py, parking tokenized rows
on disk in parts.py.

    table = tokenize_batch(input_rows, spec, "uint16", seed=0)   # inputs.INPUT_SCHEMA rows
    details = drop_details(reasons, n_tokens, plan, shards_config)
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from pipeline import schema as S
from pipeline.config.shards import ShardsConfig
from pipeline.plumbing.hashing import stable_rank
from pipeline.plumbing.snippets import snippet
from pipeline.tokens.mixing import (
    EMPTY,
    HELDOUT_KEY,
    HELDOUT_SOURCE,
    MIX_KEY,
    MIXTURE_RATIO,
    ORDER,
    PARENT_ID,
    TOO_SHORT,
    Plan,
)
from pipeline.tokens.tokenizers import Tokenizer, TokenizerSpec, load_tokenizer

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


# Tokenizers loaded in this worker process, by (file, BOS/EOS settings): Ray reuses
# worker processes across tasks, so each process loads a tokenizer once.
_LOADED: dict[tuple, Tokenizer] = {}


def cached_tokenizer(spec: TokenizerSpec) -> Tokenizer:
    """The spec's tokenizer, loaded on first use in this process."""
    # The file's bytes, not their sha256: a bytes object hashes once, a sha256 every call.
    key = (spec.kind, spec.data, spec.add_bos, spec.add_eos, spec.bos_token, spec.eos_token)
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
        stable_rank(seed, k, r, hashlib.blake2b(t.encode()).hexdigest())
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
            HELDOUT_KEY: pa.array([stable_rank(seed, "heldout", p) for p in parents], pa.int64()),
            MIX_KEY: pa.array([stable_rank(seed, "mix", r) for r in row_ids], pa.int64()),
            S.N_BYTES: batch[S.N_BYTES],
            S.SNIPPET: pa.array([snippet(t) for t in texts], pa.string()),
        },
        schema=tokenized_schema(token_dtype),
    )


def gather_columns(ds: ray.data.Dataset, columns: list[str]) -> dict[str, np.ndarray]:
    """Small columns of every row on the driver, as numpy arrays (strings as objects)."""
    tables = [b for b in ds.select_columns(columns).iter_batches(batch_format="pyarrow")]
    table = pa.concat_tables(tables) if tables else tokenized_schema("uint32").empty_table()
    return {c: table[c].to_numpy(zero_copy_only=False) for c in columns}


def drop_details(
    reasons: Sequence[str | None], n_tokens: np.ndarray, plan: Plan, shards: ShardsConfig
) -> list[str | None]:
    """Per row: the human explanation of its drop reason (None for a kept row)."""
    content = np.asarray(n_tokens, dtype=np.int64) - plan.n_special
    return [
        None if r is None else _detail(r, int(n), shards)
        for r, n in zip(reasons, content, strict=True)
    ]


def _detail(reason: str, content_tokens: int, shards: ShardsConfig) -> str:
    if reason == TOO_SHORT:
        return (
            f"{content_tokens} tokens < shards.min_tokens={shards.min_tokens} (BOS/EOS not counted)"
        )
    if reason == MIXTURE_RATIO:
        return f"beyond its budget under shards.rewrite_share={shards.rewrite_share}"
    return _DETAIL[reason]


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
        stable_rank(seed, "train", k, r)
        for k, r in zip(batch[S.KIND].to_pylist(), batch[S.DOC_ID].to_pylist(), strict=True)
    ]
    return batch.select([S.TEXT, S.N_BYTES]).append_column("_train_key", pa.array(keys, pa.int64()))
