"""Token-shard directories for the train tests, written by the project's own shard and manifest
writers (pipeline/token_shards)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.token_shards.files import (
    HELDOUT,
    TRAIN,
    shard_file_name,
    token_dtype_for,
    write_shard,
)
from pipeline.token_shards.manifest import build_manifest, write_manifest

TOKENIZER_SHA256 = hashlib.sha256(b"the test tokenizer").hexdigest()
BOS, EOS = 1, 2


def make_docs(
    n: int, seed: int = 0, vocab_size: int = 300, max_len: int = 60, sources=("web", "wiki")
) -> list[dict]:
    """n documents, each BOS + body + EOS, alternating sources, every third a rewrite.

    Bodies never contain BOS or EOS and start with the token 3 + i (n < vocab_size - 3).
    """
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        # The first body token is unique per document, so a document can be recognised.
        body = rng.integers(3, vocab_size, size=int(rng.integers(1, max_len)))
        body[0] = 3 + i
        kind = "rewrite" if i % 3 == 2 else "raw"
        docs.append(
            {
                "doc_id": f"d{i:04d}",
                "source": sources[i % len(sources)],
                "kind": kind,
                "style": "wiki" if kind == "rewrite" else None,
                "tokens": [BOS, *body.tolist(), EOS],
            }
        )
    return docs


def make_learnable_docs(
    n: int, seed: int = 0, vocab_size: int = 300, length: int = 100
) -> list[dict]:
    """Documents a tiny model learns in a few steps: counting up by 1 or 2 from a random start."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        start, stride = int(rng.integers(0, vocab_size)), 1 + i % 2
        body = (start + stride * np.arange(length)) % (vocab_size - 3) + 3
        docs.append(
            {
                "doc_id": f"c{i:04d}",
                "source": "count",
                "kind": "raw",
                "style": None,
                "tokens": [BOS, *body.tolist(), EOS],
            }
        )
    return docs


def split_documents(stream: list[int]) -> list[tuple[int, ...]]:
    """Cut a token stream back into documents at BOS (every document starts with one)."""
    docs, current = [], None
    for token in stream:
        if token == BOS:
            if current is not None:
                docs.append(tuple(current))
            current = []
        current.append(token)
    if current:
        docs.append(tuple(current))
    return docs


def write_shard_dir(
    directory: Path,
    train: list[dict],
    heldout: list[dict] = (),
    vocab_size: int = 300,
    docs_per_shard: int = 7,
) -> Path:
    """Shards of `docs_per_shard` documents per split, then manifest.json; returns directory."""
    directory.mkdir(parents=True, exist_ok=True)
    dtype = token_dtype_for(vocab_size)
    splits = {}
    for split, docs in ((TRAIN, list(train)), (HELDOUT, list(heldout))):
        infos = []
        for index, first in enumerate(range(0, len(docs), docs_per_shard)):
            rows = docs[first : first + docs_per_shard]
            table = pa.table(
                {
                    key: pa.array(
                        [d[key] for d in rows],
                        pa.list_(pa.int64()) if key == "tokens" else pa.string(),
                    )
                    for key in ("doc_id", "source", "kind", "style", "tokens")
                }
            )
            infos.append(write_shard(directory, shard_file_name(split, index), table, dtype))
        splits[split] = infos
    tokenizer = {
        "kind": "hf",
        "name": "test",
        "sha256": TOKENIZER_SHA256,
        "vocab_size": vocab_size,
        "bos_id": BOS,
        "eos_id": EOS,
        "pad_id": 0,
        "add_bos": True,
        "add_eos": True,
    }
    manifest = build_manifest(
        tokenizer=tokenizer, token_dtype=dtype, splits=splits, totals={}, mixture={}, config={}
    )
    write_manifest(directory, manifest)
    return directory
