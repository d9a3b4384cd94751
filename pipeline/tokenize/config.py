"""Typed config of the tokenize stage: which tokenizer (`tokenizer.*`) and how the token
shards are cut, split and mixed (`shards.*`). YAML presets: conf/tokenizer/, conf/shards/.

    python jobs/run.py tokenizer=mistral_v1            # the Mixtral-8x7B SentencePiece model
    python jobs/run.py tokenizer.train=true            # a 4k BPE model trained on the corpus
    python jobs/run.py shards.rewrite_share=0.5        # WRAP's 1:1 raw:rewrite tokens
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOKENIZER_KINDS = ("model", "sentencepiece", "hf")
TRAIN_MODEL_TYPES = ("bpe", "unigram")


@dataclass
class TokenizerConfig:
    # "model": the target model preset's own tokenizer (model.tokenizer, else model.path; a
    # folder's tokenizer.json); "sentencepiece": a .model file at `path`; "hf": a
    # tokenizer.json (or a folder holding one) at `path`.
    kind: str = "model"
    # The tokenizer file for kind sentencepiece/hf; "package:<module>/<file>" names a file an
    # installed package ships (conf/tokenizer/mistral_v1.yaml).
    path: str | None = None
    # Recorded in the manifest; null: the model preset's name, or the file name.
    name: str | None = None
    # One BOS before every document (Llama/Mistral pretraining layout) ...
    add_bos: bool = True
    # ... and one EOS after it, so a packed training sequence shows where documents end.
    add_eos: bool = True
    # BOS by its text; null: the tokenizer's own (the SentencePiece model's id, or the
    # bos_token of tokenizer_config.json beside an HF tokenizer.json).
    bos_token: str | None = None
    # EOS by its text; null: the tokenizer's own (as bos_token).
    eos_token: str | None = None
    # Recorded in the manifest for the loader's padding; null: the tokenizer's own, if any.
    pad_token: str | None = None
    # Train a new SentencePiece model on the stage's input documents instead (kind and path
    # are then ignored); stored in <run>/tokenize/tokenizer/ and recorded in the manifest.
    train: bool = False
    # 4k BPE: trains in well under a second on a few MB (../shared/FACTS.md) and still
    # compresses English to ~4 characters a token; ids fit uint16.
    train_vocab_size: int = 4096
    # "bpe" or "unigram" (SentencePiece's two subword algorithms).
    train_model_type: str = "bpe"
    # Text fed to the trainer, at most (a deterministic sample of documents by row-id hash),
    # held by the driver. Measured on one core: 2 MB of sample text train a 4k BPE model in
    # 1.2 s, 8 MB in 2.7 s; 50 MB should take ~20 s.
    train_max_bytes: int = 50_000_000
    # Documents per tokenizer call in a worker: large enough to amortise the per-batch
    # overhead, small enough that a batch of long documents stays a few MB.
    batch_rows: int = 256


@dataclass
class ShardsConfig:
    # Tokens per shard, at most (a single longer document gets a shard of its own). 2**24
    # tokens is 32 MiB as uint16: memory-mapped at once, few files, and one Ray Data block
    # (128 MiB) holds a whole shard.
    target_tokens: int = 16_777_216
    # Documents with fewer tokens (BOS/EOS not counted) are set aside as too_short: a
    # fragment teaches little and costs its special tokens. 16 keeps every document of the
    # sample corpus (the shortest has 51 tokens with the local model's tokenizer).
    min_tokens: int = 16
    # Share of raw documents held out for eval loss (by a hash of doc_id; at least one when
    # there are raw documents). 2% of the 457-document sample: ~9 documents, ~15k tokens.
    heldout_fraction: float = 0.02
    # Rewrites of a held-out document are set aside (heldout_source): training on a
    # paraphrase of an eval document would flatter the eval loss.
    heldout_exclude_rewrites: bool = True
    # Target share of rewrite tokens in the training split. null: keep everything and only
    # report the share. 0.5 is WRAP's 1:1 (Maini et al. 2024): whichever kind is in excess
    # is sampled down by a hash of the row id, the rest set aside as mixture_ratio.
    # To up-weight scarce rewrites without discarding raw text, keep null and weight kinds
    # in the loader (TokenShardDataset mixture weights).
    rewrite_share: float | None = None
    # Seeds the held-out choice, the mixture sample and the row order within shards.
    seed: int = 0


def tokenize_problems(cfg: Any) -> list[str]:
    """'key: problem' strings for cfg.tokenizer and cfg.shards (empty when all is well)."""
    from pipeline.tokenize.shards import MAX_SHARD_TOKENS
    from pipeline.tokenize.tokenizers import TokenizerError, read_path

    t: TokenizerConfig = cfg.tokenizer
    s: ShardsConfig = cfg.shards
    problems = []
    if t.kind not in TOKENIZER_KINDS:
        problems.append(f"tokenizer.kind: {t.kind!r} not in {TOKENIZER_KINDS}")
    elif t.kind != "model" and not t.train:
        if not t.path:
            problems.append(f"tokenizer.path: needed for tokenizer.kind={t.kind}")
        else:
            try:
                read_path(t.path)
            except TokenizerError as err:
                problems.append(f"tokenizer.path: {err}")
    if t.train_model_type not in TRAIN_MODEL_TYPES:
        problems.append(
            f"tokenizer.train_model_type: {t.train_model_type!r} not in {TRAIN_MODEL_TYPES}"
        )
    # Byte fallback needs 256 byte pieces and 3 specials before any merge.
    if not 300 <= t.train_vocab_size <= 1 << 20:
        problems.append(
            f"tokenizer.train_vocab_size: must be in [300, 2**20], got {t.train_vocab_size}"
        )
    for key, value in {
        "tokenizer.batch_rows": t.batch_rows,
        "tokenizer.train_max_bytes": t.train_max_bytes,
        "shards.target_tokens": s.target_tokens,
    }.items():
        if value < 1:
            problems.append(f"{key}: must be >= 1, got {value}")
    if s.target_tokens > MAX_SHARD_TOKENS:
        problems.append(f"shards.target_tokens: at most {MAX_SHARD_TOKENS}, got {s.target_tokens}")
    if s.min_tokens < 0:
        problems.append(f"shards.min_tokens: must be >= 0, got {s.min_tokens}")
    if not 0 <= s.heldout_fraction < 1:
        problems.append(f"shards.heldout_fraction: must be in [0, 1), got {s.heldout_fraction}")
    if s.rewrite_share is not None and not 0 < s.rewrite_share < 1:
        problems.append(f"shards.rewrite_share: must be in (0, 1) or null, got {s.rewrite_share}")
    return problems
