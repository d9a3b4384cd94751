"""Arrow schemas and column names of every table that crosses a stage boundary.

Stages agree on these names and nothing else: a stage reads the columns it needs by the
constants below and adds its own. Dropped rows of any stage carry the same columns plus
`DROP_REASON` / `DROP_DETAIL`, so one browser serves every stage's side table.
"""

from __future__ import annotations

import pyarrow as pa

# --- documents (output of ingest, input of dedup and chunking) ---------------------------
DOC_ID = "doc_id"  # "<source>/<record key>" or "<source>/h:<content hash>"; stable across runs
SOURCE = "source"  # the configured source name, e.g. "wiki"
TEXT = "text"  # normalised UTF-8 text
WEIGHT = "weight"  # the source's mixture weight, carried forward to tokenization
PATH = "path"  # the input file the record came from (lineage)
LOCATION = "location"  # 1-based line (JSONL) or 0-based row (Parquet); null for text files
N_BYTES = "n_bytes"  # UTF-8 size of TEXT
NORMALIZED = "normalized"  # names of the normalisations that changed this text

DOCS_SCHEMA = pa.schema(
    [
        pa.field(DOC_ID, pa.string(), nullable=False),
        pa.field(SOURCE, pa.string(), nullable=False),
        pa.field(TEXT, pa.large_string(), nullable=False),
        pa.field(WEIGHT, pa.float64(), nullable=False),
        pa.field(PATH, pa.string(), nullable=False),
        pa.field(LOCATION, pa.int64()),
        pa.field(N_BYTES, pa.int64(), nullable=False),
        pa.field(NORMALIZED, pa.list_(pa.string())),
    ]
)

# --- deduplicated documents (output of dedup) --------------------------------------------
CLUSTER_ID = "cluster_id"  # "exact:<survivor>" / "near:<survivor>"; null for a unique document
CLUSTER_SIZE = "cluster_size"  # members of that cluster, survivor included (1 if unique)
PARTIAL_DUP_OF = "partial_dup_of"  # the longer document this one is mostly contained in
CONTAINMENT = "containment"  # share of this document's shingles found in partial_dup_of

DEDUP_SCHEMA = pa.schema(
    [
        *DOCS_SCHEMA,
        pa.field(CLUSTER_ID, pa.string()),
        pa.field(CLUSTER_SIZE, pa.int32()),
        pa.field(PARTIAL_DUP_OF, pa.string()),
        pa.field(CONTAINMENT, pa.float32()),
    ]
)

# --- dedup clusters, for inspection (one row per member, survivor included) ----------------
KIND = "kind"  # "exact" or "near"
SURVIVOR = "survivor"
IS_SURVIVOR = "is_survivor"
SIMILARITY = "similarity"  # Jaccard of the member's shingles with the survivor's (1.0: exact)

CLUSTERS_SCHEMA = pa.schema(
    [
        pa.field(CLUSTER_ID, pa.string(), nullable=False),
        pa.field(KIND, pa.string(), nullable=False),
        pa.field(DOC_ID, pa.string(), nullable=False),
        pa.field(SURVIVOR, pa.string(), nullable=False),
        pa.field(IS_SURVIVOR, pa.bool_(), nullable=False),
        pa.field(SIMILARITY, pa.float32(), nullable=False),
        pa.field(CLUSTER_SIZE, pa.int32(), nullable=False),
        pa.field(N_BYTES, pa.int64(), nullable=False),
    ]
)

# --- rows set aside, by any stage ---------------------------------------------------------
# A stage emits its output columns plus these three; the accounting sink writes rows whose
# reason is null to the stage's data and the others, with their reason, to quarantine/<stage>/.
DROP_REASON = "reason"  # a short stable name, e.g. "invalid_json"; counted in the stats
DROP_DETAIL = "detail"  # a human explanation (the parser's message, the limit exceeded)
SNIPPET = "snippet"  # the first characters of the offending record, for browsing

DROP_FIELDS = [
    pa.field(DROP_REASON, pa.string()),
    pa.field(DROP_DETAIL, pa.string()),
    pa.field(SNIPPET, pa.string()),
]
DROP_COLUMNS = [f.name for f in DROP_FIELDS]


def with_drop_columns(schema: pa.Schema) -> pa.Schema:
    """The schema a stage emits: its output columns (all nullable) plus the drop columns."""
    return pa.schema([f.with_nullable(True) for f in schema] + DROP_FIELDS)


INGEST_SCHEMA = with_drop_columns(DOCS_SCHEMA)

# --- rewrites (output of rewrite: one row per source document and style) ------------------
REWRITE_ID = "rewrite_id"  # "<doc_id>#<style>"
STYLE = "style"
PROMPT_ID = "prompt_id"  # "<template id>@v<version>"
PROMPT_HASH = "prompt_hash"  # content hash of the template's instruction
MODEL = "model"
SAMPLING = "sampling"  # the sampling parameters as canonical JSON
MODE = "mode"  # "autoregressive" or "independent"
N_CHUNKS = "n_chunks"  # chunks rewritten (a long document may be capped)
SOURCE_TEXT = "source_text"  # the part of the source document that was rewritten
CHUNK_SOURCES = "chunk_sources"  # per chunk, in order: the source text ...
CHUNK_REWRITES = "chunk_rewrites"  # ... and its cleaned rewrite (lineage per chunk index)
FINISH_REASONS = "finish_reasons"  # per chunk
INPUT_TOKENS = "input_tokens"  # prompt tokens summed over the chunks (retries included)
OUTPUT_TOKENS = "output_tokens"  # generated tokens summed over the chunks
REQUESTS = "requests"  # generation requests made (a chunk, plus its retry if truncated)
CACHED = "cached"  # requests served by the generation cache
REMOVED = "removed"  # what post-processing stripped (preamble, fence, think, chatter)

REWRITES_SCHEMA = pa.schema(
    [
        pa.field(REWRITE_ID, pa.string(), nullable=False),
        pa.field(DOC_ID, pa.string(), nullable=False),
        pa.field(SOURCE, pa.string(), nullable=False),
        pa.field(WEIGHT, pa.float64(), nullable=False),
        pa.field(STYLE, pa.string(), nullable=False),
        pa.field(PROMPT_ID, pa.string(), nullable=False),
        pa.field(PROMPT_HASH, pa.string(), nullable=False),
        pa.field(MODEL, pa.string(), nullable=False),
        pa.field(SAMPLING, pa.string(), nullable=False),
        pa.field(MODE, pa.string(), nullable=False),
        pa.field(N_CHUNKS, pa.int32(), nullable=False),
        pa.field(TEXT, pa.large_string(), nullable=False),
        pa.field(SOURCE_TEXT, pa.large_string(), nullable=False),
        pa.field(CHUNK_SOURCES, pa.list_(pa.large_string())),
        pa.field(CHUNK_REWRITES, pa.list_(pa.large_string())),
        pa.field(FINISH_REASONS, pa.list_(pa.string())),
        pa.field(INPUT_TOKENS, pa.int64(), nullable=False),
        pa.field(OUTPUT_TOKENS, pa.int64(), nullable=False),
        pa.field(REQUESTS, pa.int32(), nullable=False),
        pa.field(CACHED, pa.int32(), nullable=False),
        pa.field(REMOVED, pa.list_(pa.string())),
        pa.field(N_BYTES, pa.int64(), nullable=False),
    ]
)
