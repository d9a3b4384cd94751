"""The fidelity gate on one chunk: the verifier of the rewriter's best-of-n regeneration.

The fidelity stage judges a whole rewrite against its source after the fact; this applies
the same scores and rules (pipeline/text_fidelity/scores.py, thresholds from `fidelity.*`) to a
single chunk's cleaned output while the engine is still up, so a rejected sample can be
drawn again instead of costing its document.

    gate = ChunkGate(FidelityConfig())
    gate("Question: ...", source_chunk, "stop", "qa")   # None, or ("copied_source", "0.97 > 0.9")
"""

from __future__ import annotations

from pipeline.config.fidelity import FidelityConfig
from pipeline.score_rules import Rule, failing_rules
from pipeline.text_fidelity.scores import fidelity_rules, fidelity_scores


class ChunkGate:
    def __init__(self, cfg: FidelityConfig):
        self.cfg = cfg
        self._rules: dict[str, list[Rule]] = {}

    def warm_up(self) -> None:
        """Judge one tiny sample: numba loads the shingling kernels on their first call
        (seconds), which belongs to the actor's start, not to its first batch."""
        self("A warm-up sentence of a few words.", "A warm-up sentence of a few words.", "stop", "")

    def rule_names(self, style: str | None = None) -> list[str]:
        return [r.name for r in self._style_rules(style or "")]

    def _style_rules(self, style: str) -> list[Rule]:
        if style not in self._rules:
            self._rules[style] = fidelity_rules(self.cfg, style)
        return self._rules[style]

    def __call__(
        self, rewrite: str, source: str, finish_reason: str | None, style: str
    ) -> tuple[str, str] | None:
        scores = fidelity_scores(
            rewrite,
            source,
            finish_reasons=[finish_reason],
            chunk_rewrites=[rewrite],
            cfg=self.cfg,
        )
        failed = failing_rules(scores, self._style_rules(style))
        if not failed:
            return None
        first = failed[0]
        return first.name, first.explain(scores.get(first.column))
