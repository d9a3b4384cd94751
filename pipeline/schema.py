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
PROMPT_HASH = "prompt_hash"  # sha256 (12 hex) of the prompt text: instruction, examples, frame
MODEL = "model"
# sha256 over the model's weight files (pipeline/models/weights.py), cached beside them; null
# for a hub id or remote path, whose files are not on the machine that records the row.
MODEL_HASH = "model_hash"
SAMPLING = "sampling"  # the sampling parameters as canonical JSON
MODE = "mode"  # "autoregressive" or "independent"
N_CHUNKS = "n_chunks"  # chunks rewritten (a long document may be capped)
SOURCE_TEXT = "source_text"  # the part of the source document that was rewritten
CHUNK_SOURCES = "chunk_sources"  # per chunk, in order: the source text ...
CHUNK_REWRITES = "chunk_rewrites"  # ... and its cleaned rewrite (lineage per chunk index)
# ... and where it lies: its index and [start, end) character offsets in the source document's
# text (chunking.Chunk), so a chunk id is (doc_id, index) and document[start:end] its text.
CHUNK_SPANS = "chunk_spans"
CHUNK_SPAN_TYPE = pa.list_(
    pa.struct([("index", pa.int32()), ("start", pa.int64()), ("end", pa.int64())])
)
FINISH_REASONS = "finish_reasons"  # per chunk
# Samples drawn per chunk (rewrite.max_attempts: best of n with the fidelity gate as verifier);
# 0 for a chunk never reached because an earlier one failed.
CHUNK_ATTEMPTS = "chunk_attempts"
# Every sample the gate rejected: chunk index, attempt (1-based), rule, detail, cleaned text.
REJECTED_ATTEMPTS = "rejected_attempts"
ATTEMPT = "attempt"
CHUNK_INDEX = "chunk_index"
REJECTED_ATTEMPT_TYPE = pa.list_(
    pa.struct(
        [
            ("index", pa.int32()),
            (ATTEMPT, pa.int32()),
            ("reason", pa.string()),
            ("detail", pa.string()),
            ("text", pa.large_string()),
        ]
    )
)
INPUT_TOKENS = "input_tokens"  # prompt tokens summed over the chunks (retries included)
OUTPUT_TOKENS = "output_tokens"  # generated tokens summed over the chunks
REQUESTS = "requests"  # generation requests made: every attempt, and each truncation retry
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
        pa.field(MODEL_HASH, pa.string()),
        pa.field(SAMPLING, pa.string(), nullable=False),
        pa.field(MODE, pa.string(), nullable=False),
        pa.field(N_CHUNKS, pa.int32(), nullable=False),
        pa.field(TEXT, pa.large_string(), nullable=False),
        pa.field(SOURCE_TEXT, pa.large_string(), nullable=False),
        pa.field(CHUNK_SOURCES, pa.list_(pa.large_string())),
        pa.field(CHUNK_REWRITES, pa.list_(pa.large_string())),
        pa.field(CHUNK_SPANS, CHUNK_SPAN_TYPE),
        pa.field(FINISH_REASONS, pa.list_(pa.string())),
        pa.field(CHUNK_ATTEMPTS, pa.list_(pa.int32())),
        pa.field(REJECTED_ATTEMPTS, REJECTED_ATTEMPT_TYPE),
        pa.field(INPUT_TOKENS, pa.int64(), nullable=False),
        pa.field(OUTPUT_TOKENS, pa.int64(), nullable=False),
        pa.field(REQUESTS, pa.int32(), nullable=False),
        pa.field(CACHED, pa.int32(), nullable=False),
        pa.field(REMOVED, pa.list_(pa.string())),
        pa.field(N_BYTES, pa.int64(), nullable=False),
    ]
)

# --- token shards (output of tokenize, read by pipeline.train) -----------------------------
# One row per document, Arrow IPC *file* format, uncompressed (pipeline/token_shards/files.py;
# contract: manifest.json beside the shards, pipeline/token_shards/manifest.py). DOC_ID holds the
# rewrite_id for a rewrite; KIND (named above for the clusters table) is KIND_RAW or
# KIND_REWRITE here; STYLE is null for raw text.
KIND_RAW = "raw"
KIND_REWRITE = "rewrite"
N_TOKENS = "n_tokens"  # len(tokens), BOS/EOS included
TOKENS = "tokens"  # token ids, BOS/EOS as configured (tokenizer.add_bos / add_eos)
TOKEN_DTYPES = {"uint16": pa.uint16(), "uint32": pa.uint32()}


def token_shard_schema(token_dtype: str) -> pa.Schema:
    """The schema of a token shard: `tokens` is list<uint16> or list<uint32>."""
    return pa.schema(
        [
            pa.field(DOC_ID, pa.string(), nullable=False),
            pa.field(SOURCE, pa.string(), nullable=False),
            pa.field(KIND, pa.string(), nullable=False),
            pa.field(STYLE, pa.string()),
            pa.field(N_TOKENS, pa.int32(), nullable=False),
            pa.field(TOKENS, pa.list_(TOKEN_DTYPES[token_dtype]), nullable=False),
        ]
    )


# --- lineage of token shards (a table beside the shards, pipeline/tokens/lineage.py) -----
# One Parquet file per shard, lineage/<shard name>.parquet, named in manifest.json with its
# sha256: row i describes row i of the shard (the same DOC_ID). Kept out of the shards so the
# loader maps only tokens. Raw rows fill PATH/LOCATION, rewrites the prompt, model and chunks.
SOURCE_DOC_ID = "source_doc_id"  # the document (ingest/dedup DOC_ID) the row's text came from

LINEAGE_SCHEMA = pa.schema(
    [
        pa.field(DOC_ID, pa.string(), nullable=False),  # the shard row's doc_id
        pa.field(SOURCE_DOC_ID, pa.string(), nullable=False),
        pa.field(SOURCE, pa.string(), nullable=False),
        pa.field(KIND, pa.string(), nullable=False),
        pa.field(STYLE, pa.string()),
        pa.field(PATH, pa.string()),  # raw: the input file (rewrites: see SOURCE_DOC_ID's)
        pa.field(LOCATION, pa.int64()),
        pa.field(PROMPT_ID, pa.string()),  # rewrite: the prompt, model and sampling used
        pa.field(PROMPT_HASH, pa.string()),
        pa.field(MODEL, pa.string()),
        pa.field(MODEL_HASH, pa.string()),
        pa.field(SAMPLING, pa.string()),
        pa.field(CHUNK_SPANS, CHUNK_SPAN_TYPE),  # rewrite: the source chunks it covers
        # rewrite: samples drawn per chunk; chunk i's kept text was drawn with seed
        # sampling.seed + attempts[i] - 1 (pipeline/rewrite/rewriter.py)
        pa.field(CHUNK_ATTEMPTS, pa.list_(pa.int32())),
    ]
)


# --- quality scores (quality stage: added to document rows, kept and dropped alike) -------
# Definitions and thresholds: pipeline/quality/heuristics.py, textstats.py, config.py.
Q_WORDS = "q_words"  # words: tokens with a character other than punctuation
Q_MEAN_WORD_LENGTH = "q_mean_word_length"
Q_HASH_RATIO = "q_hash_ratio"  # '#' per token
Q_ELLIPSIS_RATIO = "q_ellipsis_ratio"  # '...' or '…' per token
Q_BULLET_LINES = "q_bullet_lines"  # share of lines starting with a bullet
Q_ELLIPSIS_LINES = "q_ellipsis_lines"  # share of lines ending with an ellipsis
Q_ALPHA_WORDS = "q_alpha_words"  # share of words with a letter
Q_STOP_WORDS = "q_stop_words"  # distinct Gopher stop words present
Q_DUP_LINE_FRAC = "q_dup_line_frac"
Q_DUP_LINE_CHAR_FRAC = "q_dup_line_char_frac"
Q_DUP_PARA_FRAC = "q_dup_para_frac"
Q_DUP_PARA_CHAR_FRAC = "q_dup_para_char_frac"
Q_TOP_NGRAM = {n: f"q_top_{n}gram_char_frac" for n in (2, 3, 4)}
Q_DUP_NGRAM = {n: f"q_dup_{n}gram_char_frac" for n in range(5, 11)}
Q_C4_SENTENCES = "q_c4_sentences"  # sentences in the lines C4's line filter keeps
Q_C4_KEPT_CHAR_FRAC = "q_c4_kept_char_frac"
Q_C4_LOREM_IPSUM = "q_c4_lorem_ipsum"
Q_C4_CURLY_BRACES = "q_c4_curly_braces"
Q_C4_JAVASCRIPT_LINES = "q_c4_javascript_lines"
Q_C4_POLICY_LINES = "q_c4_policy_lines"
Q_LINE_PUNCT_FRAC = "q_line_punct_frac"  # FineWeb: lines ending in terminal punctuation
Q_SHORT_LINE_FRAC = "q_short_line_frac"
Q_FW_DUP_LINE_CHAR_FRAC = "q_fw_dup_line_char_frac"  # FineWeb's variant (newlines excluded)
Q_NEWLINE_WORD_RATIO = "q_newline_word_ratio"
LANGUAGE = "language"
LANGUAGE_SCORE = "language_score"
QUALITY_SCORE = "quality_score"  # the fastText classifier's probability of "high quality"
QUALITY_FAILED = "quality_failed"  # every rule that failed, in rule order (reason = first)

QUALITY_FIELDS = [
    pa.field(Q_WORDS, pa.int64()),
    *[
        pa.field(name, pa.float64())
        for name in (
            Q_MEAN_WORD_LENGTH, Q_HASH_RATIO, Q_ELLIPSIS_RATIO, Q_BULLET_LINES, Q_ELLIPSIS_LINES,
            Q_ALPHA_WORDS,
        )
    ],
    pa.field(Q_STOP_WORDS, pa.int64()),
    *[
        pa.field(name, pa.float64())
        for name in (
            Q_DUP_LINE_FRAC, Q_DUP_LINE_CHAR_FRAC, Q_DUP_PARA_FRAC, Q_DUP_PARA_CHAR_FRAC,
            *Q_TOP_NGRAM.values(), *Q_DUP_NGRAM.values(),
        )
    ],
    pa.field(Q_C4_SENTENCES, pa.int64()),
    pa.field(Q_C4_KEPT_CHAR_FRAC, pa.float64()),
    pa.field(Q_C4_LOREM_IPSUM, pa.int64()),
    pa.field(Q_C4_CURLY_BRACES, pa.int64()),
    *[
        pa.field(name, pa.float64())
        for name in (
            Q_C4_JAVASCRIPT_LINES, Q_C4_POLICY_LINES, Q_LINE_PUNCT_FRAC, Q_SHORT_LINE_FRAC,
            Q_FW_DUP_LINE_CHAR_FRAC, Q_NEWLINE_WORD_RATIO,
        )
    ],
    pa.field(LANGUAGE, pa.string()),
    pa.field(LANGUAGE_SCORE, pa.float64()),
    pa.field(QUALITY_SCORE, pa.float64()),
    pa.field(QUALITY_FAILED, pa.list_(pa.string())),
]  # fmt: skip

# --- fidelity scores (fidelity stage: added to rewrite rows, kept and dropped alike) -------
# Definitions and thresholds: pipeline/text_fidelity/scores.py, judge.py, rewrite_dedup.py.
F_LENGTH_RATIO = "f_length_ratio"  # characters of the rewrite / of its source text
F_COPIED_NGRAM_RATIO = "f_copied_ngram_ratio"  # share of the rewrite's n-grams in the source
F_NOVEL_NUMBERS = "f_novel_numbers"  # numbers in the rewrite that the source lacks
F_ENTITIES = "f_entities"  # capitalised non-initial words in the rewrite
F_NOVEL_ENTITY_RATIO = "f_novel_entity_ratio"  # share of those absent from the source
F_NOVEL_TERMS = "f_novel_terms"  # the novel numbers and entities themselves (browsing)
# Novel entities paired with source entities the rewrite lacks: "novel 'X' while 'Y' is missing"
F_ENTITY_SWAPS = "f_entity_swaps"
# Novel names standing where the source has another name: "'X' where the source has 'Y'"
F_NAME_SWAPS = "f_name_swaps"
F_DUP_5GRAM_CHAR_FRAC = "f_dup_5gram_char_frac"
F_COMPRESSION_RATIO = "f_compression_ratio"  # zlib size / UTF-8 size
F_BOILERPLATE = "f_boilerplate"  # meta-commentary phrases found
F_REFUSAL = "f_refusal"
F_TRUNCATED = "f_truncated"
JUDGE_SCORE = "judge_score"  # 1-5 from the LLM judge; null when not sampled
JUDGE_REASON = "judge_reason"
DUPLICATE_OF = "duplicate_of"  # the rewrite this one near-duplicates (rewrite dedup)
FIDELITY_FAILED = "fidelity_failed"  # every fidelity rule that failed, in rule order

FIDELITY_FIELDS = [
    pa.field(F_LENGTH_RATIO, pa.float64()),
    pa.field(F_COPIED_NGRAM_RATIO, pa.float64()),
    pa.field(F_NOVEL_NUMBERS, pa.int64()),
    pa.field(F_ENTITIES, pa.int64()),
    pa.field(F_NOVEL_ENTITY_RATIO, pa.float64()),
    pa.field(F_NOVEL_TERMS, pa.list_(pa.string())),
    pa.field(F_ENTITY_SWAPS, pa.list_(pa.string())),
    pa.field(F_NAME_SWAPS, pa.list_(pa.string())),
    pa.field(F_DUP_5GRAM_CHAR_FRAC, pa.float64()),
    pa.field(F_COMPRESSION_RATIO, pa.float64()),
    pa.field(F_BOILERPLATE, pa.list_(pa.string())),
    pa.field(F_REFUSAL, pa.bool_()),
    pa.field(F_TRUNCATED, pa.bool_()),
    pa.field(JUDGE_SCORE, pa.int64()),
    pa.field(JUDGE_REASON, pa.string()),
    pa.field(DUPLICATE_OF, pa.string()),
    pa.field(FIDELITY_FAILED, pa.list_(pa.string())),
]
FIDELITY_SCHEMA = pa.schema([*REWRITES_SCHEMA, *FIDELITY_FIELDS])

# --- what each stage keeps, by stage name (Stage.name): the rows of <run>/<stage>/data --------
# For readers of a finished run (pipeline/run_view.py), which need no stage code, nor Ray.
STAGE_OUTPUTS = {
    "ingest": DOCS_SCHEMA,
    "dedup": DEDUP_SCHEMA,
    "quality": pa.schema([*DOCS_SCHEMA, *QUALITY_FIELDS]),  # plus dedup's columns, if it ran
    "rewrite": REWRITES_SCHEMA,
    "fidelity": FIDELITY_SCHEMA,
    "tokenize": token_shard_schema("uint16"),  # uint32 where the vocabulary needs it
}
