"""Rules: a named threshold on one score column. The first failing rule names the drop reason;
every failing rule is recorded, so a row's quarantine entry shows all it failed.

The quality stage's rules (pipeline/quality/rules.py) and the fidelity rules on rewrites
(pipeline/text_fidelity/scores.py) are both made of these.

    failed = failing_rules(scores, rules, skip=["c4_*"])        # [Rule("gopher_stop_words"...)]
    failed[0].explain(scores[failed[0].column])                 # "q_stop_words=1 < 2"
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    name: str  # the drop reason: stable, one per rule
    column: str  # the score it reads
    op: str  # "min": fail below; "max": fail above; "in": fail when not one of `allowed`
    threshold: float = 0.0
    allowed: tuple[str, ...] = ()

    def fails(self, value: Any) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False  # not scored (family off, or nothing to judge)
        if isinstance(value, list | tuple):  # a list of hits: judged by how many
            value = len(value)
        if self.op == "min":
            return value < self.threshold
        if self.op == "max":
            return value > self.threshold
        return value not in self.allowed

    def explain(self, value: Any) -> str:
        if isinstance(value, list | tuple):
            shown = f"{len(value)} {list(value)[:5]}"
        else:
            shown = f"{value:.4g}" if isinstance(value, float) else repr(value)
        if self.op == "in":
            return f"{self.column}={shown} not in {list(self.allowed)}"
        sign = "<" if self.op == "min" else ">"
        return f"{self.column}={shown} {sign} {self.threshold:g}"


def bounded(name: str, column: str, op: str, threshold: float | None) -> list[Rule]:
    return [] if threshold is None else [Rule(name, column, op, float(threshold))]


def skipped(rule_name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(rule_name, p) for p in patterns)


def failing_rules(
    scores: Mapping[str, Any], rules: Iterable[Rule], skip: Iterable[str] = ()
) -> list[Rule]:
    skip = list(skip)
    return [r for r in rules if not skipped(r.name, skip) and r.fails(scores.get(r.column))]
