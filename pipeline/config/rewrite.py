"""The `rewrite` group (conf/rewrite/): styles, chunking, sampling, retries and caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pipeline.config.prompts import PromptConfig, builtin_prompts
from pipeline.config.ranges import Checked, at_least


class RewriteMode(StrEnum):
    autoregressive = "autoregressive"  # chunks in order, each seeing the previous rewrite
    independent = "independent"  # every chunk on its own


class OnTruncated(StrEnum):
    retry = "retry"
    drop = "drop"
    keep = "keep"


@dataclass
class SamplingConfig(Checked):
    temperature: float = 0.7
    top_p: float = 0.9
    max_tokens: int = 512
    # Small models fall into repetition loops; a mild penalty keeps most rewrites out of them.
    repetition_penalty: float = 1.1
    # Each request's seed derives from this and its prompt, so outputs do not depend on
    # which batch or actor a chunk landed in.
    seed: int = 0

    def problems(self) -> list[str]:
        return at_least(self, 1, "max_tokens")


@dataclass
class RewriteConfig(Checked):
    # Styles to rewrite in: keys of `rewrite.prompts`. The Nemotron-CC set is left out of the
    # default list (experiment=nemotron_cc selects it).
    styles: list[str] = field(
        default_factory=lambda: [
            "wikipedia",
            "lecture_notes",
            "qa",
            "summary",
            "knowledge_list",
            "student",
            "expert",
            "skeptic",
        ]
    )
    # Prompt templates by style name, filled by the `prompts=` group (conf/prompts/: one file
    # per prompt set; default.yaml is the built-in set and this default).
    prompts: dict[str, PromptConfig] = field(default_factory=builtin_prompts)
    # Rewrites per source document, each in a different style (chosen per document, so a
    # document's chunks share a style and reassemble into one coherent rewrite).
    styles_per_doc: int = 1
    # "autoregressive" (K2): a document's chunks in order, each prompt carrying the previous
    # rewritten chunk as read-only context; "independent": every chunk on its own.
    mode: RewriteMode = RewriteMode.autoregressive
    # Upper bound on a chunk (tokens of the rewriter's tokenizer); the real budget is also
    # bounded by max_model_len - max_tokens - prompt overhead - context.
    max_chunk_tokens: int = 384
    context_tokens: int = 256  # the previous rewrite is cut to its last N tokens
    # Caps: documents rewritten per corpus source (exact, deterministic sample by hash),
    # chunks rewritten per document (the rest of a long document is left raw). null: all.
    max_docs_per_source: int | None = None
    max_chunks_per_doc: int | None = None
    # An output that hit max_tokens: "retry" once with twice the budget, then drop; "drop";
    # or "keep" the truncated text.
    on_truncated: OnTruncated = OnTruncated.retry
    # Best of n with the fidelity gate as verifier: a chunk whose rewrite the gate rejects
    # (fidelity.* rules, applied to the chunk alone) is sampled again with a new seed, up to
    # this many attempts in all; each rejected attempt is counted and kept in
    # quarantine/rewrite/attempts/. 1: no regeneration. Greedy sampling (temperature 0) gives
    # the same text for every seed, so it always makes one attempt.
    max_attempts: int = 4
    # Gate rules a new sample may fix; a chunk failing another rule fails at once. null: all.
    regenerate_on: list[str] | None = None
    # Documents interleaved in one actor batch: more keeps the engine's batch full (with 16,
    # 24 documents went as 16 + 8 and generation ran at 0.66x a single bare call).
    batch_docs: int = 64
    # An engine failure (not a rejected prompt) ends the actor; Ray starts a new one and
    # retries its batch, the generation cache keeping what was done. After this many
    # restarts of one actor the job fails instead of looping on a deterministic crash.
    max_engine_restarts: int = 3
    seed: int = 0
    cache_dir: str = ".cache/generations"
    model_cache: str = ".cache/models"
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def problems(self) -> list[str]:
        names = ("styles_per_doc", "max_chunk_tokens", "batch_docs", "max_attempts")
        return at_least(self, 1, *names) + at_least(
            self, 0, "max_engine_restarts", "context_tokens"
        )
