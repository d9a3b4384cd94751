"""Everything dedup needs from a document, computed in one pass: the pure map step.

For a batch of documents with global indices, `document_keys` returns four tables:
- docs:    doc_id, n_bytes and anchor count, in input order (idx = unit start + row);
- digests: the text's 128-bit digest as two uint64 (exact duplicates group by it);
- bands:   one row per (document, LSH band key) of its MinHash signature (near duplicates);
- anchors: one row per anchor shingle (partial duplicates, below).

Anchors: the shingles whose hash is 0 modulo `containment.anchor_every`. The choice depends on
the shingle alone, not on its position, so an excerpt keeps every anchor of the text it kept;
two documents sharing as many anchors as a pair at the containment threshold would (at
least `containment.min_shared_anchors`) become a candidate pair, and exact containment
decides. An excerpt with light edits keeps most of its anchors (one with 10% of words changed
keeps ~59% of its word 5-grams), where a window-level LSH loses whole windows.

    tables = document_keys(batch, start=0, cfg=DedupConfig(), bands=24, rows=4)
    sets = document_sets(texts_of_candidates, their_idx, cfg)   # later, candidates only

Exact shingle sets are not written by this pass: at ~2.4 KB a document they were the largest
work file, and only candidate documents (a few percent of a real corpus) need them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline import schema as S
from pipeline.config import DedupConfig
from pipeline.dedup.workfiles import (
    DOCS_FILE_SCHEMA,
    IDX,
    N_ANCHORS,
    SETS_FILE_SCHEMA,
    SHINGLES,
    SIGNATURE,
)
from pipeline.similarity.lsh import band_keys
from pipeline.similarity.minhash import minhash_signatures
from pipeline.similarity.shingles import shingle_hashes_batch

KEY = "key"
DIGEST_HI, DIGEST_LO = "digest_hi", "digest_lo"
N_SHINGLES = "n_shingles"

DIGESTS_SCHEMA = pa.schema(
    [
        pa.field(DIGEST_HI, pa.uint64()),
        pa.field(DIGEST_LO, pa.uint64()),
        pa.field(IDX, pa.int64()),
        pa.field(S.DOC_ID, pa.string()),
        pa.field(S.N_BYTES, pa.int64()),
    ]
)
BANDS_SCHEMA = pa.schema([pa.field(KEY, pa.uint64()), pa.field(IDX, pa.int64())])
# An anchor is a 32-bit shingle hash; 16 bytes a row, ~45 rows a 3.5 KB document.
ANCHORS_SCHEMA = pa.schema(
    [pa.field(KEY, pa.uint32()), pa.field(IDX, pa.int64()), pa.field(N_SHINGLES, pa.int32())]
)


@dataclass
class DocumentKeys:
    docs: pa.Table
    digests: pa.Table
    bands: pa.Table
    anchors: pa.Table


def text_digest(text: str) -> bytes:
    """BLAKE2b-128 of the UTF-8 text (lone surrogates pass through rather than raise).

    Texts are normalised at ingest, so equal visible text means equal bytes means equal
    digest; 16 bytes make a chance collision negligible (~2^-64 at 2^32 documents)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def document_keys(
    batch: pa.Table, start: int, cfg: DedupConfig, bands: int, rows: int
) -> DocumentKeys:
    """The four key tables of `batch` (doc_id, text, n_bytes), indices from `start`."""
    n = batch.num_rows
    idx = np.arange(start, start + n, dtype=np.int64)
    texts = batch[S.TEXT].to_pylist()
    values, offsets = shingle_hashes_batch(texts, cfg.shingle)
    n_shingles = np.diff(offsets)
    digests = np.frombuffer(b"".join(text_digest(t) for t in texts), dtype=np.uint64)
    n_anchors = np.zeros(n, np.int32)
    band_table = BANDS_SCHEMA.empty_table()
    if cfg.near:
        keys = band_keys(minhash_signatures(values, offsets, cfg.num_perm, cfg.seed), bands, rows)
        band_table = pa.table({KEY: keys.ravel(), IDX: np.repeat(idx, bands)}, schema=BANDS_SCHEMA)
    anchor_table = ANCHORS_SCHEMA.empty_table()
    if cfg.containment.enabled:
        is_anchor = values % np.uint32(cfg.containment.anchor_every) == 0
        owner = np.repeat(np.arange(n), n_shingles)[is_anchor]
        n_anchors = np.bincount(owner, minlength=n).astype(np.int32)
        anchor_table = pa.table(
            {KEY: values[is_anchor], IDX: idx[owner], N_SHINGLES: n_shingles[owner]},
            schema=ANCHORS_SCHEMA,
        )
    return DocumentKeys(
        docs=pa.table(
            {S.DOC_ID: batch[S.DOC_ID], S.N_BYTES: batch[S.N_BYTES], N_ANCHORS: n_anchors},
            schema=DOCS_FILE_SCHEMA,
        ),
        digests=pa.table(
            {
                DIGEST_HI: digests[0::2],
                DIGEST_LO: digests[1::2],
                IDX: idx,
                S.DOC_ID: batch[S.DOC_ID],
                S.N_BYTES: batch[S.N_BYTES],
            },
            schema=DIGESTS_SCHEMA,
        ),
        bands=band_table,
        anchors=anchor_table,
    )


def document_sets(texts: list[str], idx: np.ndarray, cfg: DedupConfig) -> pa.Table:
    """Exact shingle sets (and MinHash signatures for verify="estimate") of some documents:
    computed again for the candidates only, so the keys pass writes no per-document sets."""
    values, offsets = shingle_hashes_batch(texts, cfg.shingle)
    signatures = pa.nulls(len(texts), pa.list_(pa.uint32()))
    if cfg.verify == "estimate":
        signatures = list(minhash_signatures(values, offsets, cfg.num_perm, cfg.seed))
    return pa.table(
        {
            IDX: np.asarray(idx, dtype=np.int64),
            SHINGLES: pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values)),
            SIGNATURE: signatures,
        },
        schema=SETS_FILE_SCHEMA,
    )
