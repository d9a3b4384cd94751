"""The `shards` group (conf/shards/): how token shards are cut, held out and mixed; and the
checks of both tokenize groups (`tokenizer.*`, `shards.*`).

    python jobs/run.py shards.rewrite_share=0.5        # WRAP's 1:1 raw:rewrite tokens
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config.tokenizer import TOKENIZER_KINDS, TRAIN_MODEL_TYPES, TokenizerConfig

# `tokens` is a list<...> with int32 offsets: one shard holds fewer than 2**31 tokens.
MAX_SHARD_TOKENS = (1 << 31) - 1


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
    t: TokenizerConfig = cfg.tokenizer
    s: ShardsConfig = cfg.shards
    problems = []
    if t.kind not in TOKENIZER_KINDS:
        problems.append(f"tokenizer.kind: {t.kind!r} not in {TOKENIZER_KINDS}")
    elif t.kind != "model" and not t.train and not t.path:
        problems.append(f"tokenizer.path: needed for tokenizer.kind={t.kind}")
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
