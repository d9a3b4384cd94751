"""The `shards` group (conf/shards/): how token shards are cut, held out and mixed.

python jobs/run.py shards.rewrite_share=0.5        # WRAP's 1:1 raw:rewrite tokens
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.ranges import Checked, at_least, within

# `tokens` is a list<...> with int32 offsets: one shard holds fewer than 2**31 tokens.
MAX_SHARD_TOKENS = (1 << 31) - 1


@dataclass
class ShardsConfig(Checked):
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

    def problems(self) -> list[str]:
        problems = within(self, 1, MAX_SHARD_TOKENS, "target_tokens")
        problems += at_least(self, 0, "min_tokens")
        problems += within(self, 0, 1, "heldout_fraction", high_open=True)
        return problems + within(self, 0, 1, "rewrite_share", low_open=True, high_open=True)
