"""The fidelity gate on its evaluation set: human paraphrases it must keep, texts on the same
topic and planted factual changes it must drop (built by jobs/build_fidelity_eval.py from
public-domain Bible translations; provenance there).

    cases = load_cases("tests/quality/fidelity_eval.jsonl", split="report")
    results = judge_cases(cases, FidelityConfig())
    print(format_report(summarise(results)))    # kept/dropped per kind, each rule's share

bench/fidelity_gate.py prints it for both splits; tests/quality/test_fidelity_eval.py holds
the report split to the goals below.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipeline.config.fidelity import FidelityConfig
from pipeline.score_rules import failing_rules
from pipeline.text_fidelity.scores import fidelity_rules, fidelity_scores

FAITHFUL, UNFAITHFUL, PLANTED = "faithful", "unfaithful", "planted"
# The goals: share kept of faithful rewrites, share dropped of the other two kinds.
GOALS = {FAITHFUL: 0.8, UNFAITHFUL: 0.95, PLANTED: 0.9}
# The human paraphrases are whole passages in plain prose: the default length bounds judge
# them, as they judge wikipedia/student/expert rewrites (length_ratio_by_style has no entry).
EVAL_STYLE = "wikipedia"


@dataclass(frozen=True)
class Case:
    id: str
    split: str
    kind: str  # FAITHFUL, UNFAITHFUL or PLANTED
    pair: str  # "modernised:kjv->nheb", ...
    change: str | None  # planted: "name", "number" or "date"
    source: str
    rewrite: str


@dataclass(frozen=True)
class Result:
    case: Case
    failed: list[str]  # rule names, the first is the drop reason
    detail: str | None  # the first rule's explanation

    @property
    def dropped(self) -> bool:
        return bool(self.failed)


def load_cases(path: str | Path, split: str | None = None) -> list[Case]:
    """Every case of the set (or of one split): per passage its faithful rewrite, its
    unfaithful text and each planted change applied to the faithful rewrite."""
    cases = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if split is not None and row["split"] != split:
            continue
        common = {"split": row["split"], "pair": row["pair"], "source": row["source"]}
        faithful = row["faithful"]
        cases.append(Case(row["id"], kind=FAITHFUL, change=None, rewrite=faithful, **common))
        cases.append(
            Case(
                f"{row['id']}~{row['unfaithful']['ref']}",
                kind=UNFAITHFUL,
                change=None,
                rewrite=row["unfaithful"]["text"],
                **common,
            )
        )
        for edit in row["planted"]:
            assert faithful[edit["start"] : edit["end"]] == edit["old"], (row["id"], edit)
            text = faithful[: edit["start"]] + edit["new"] + faithful[edit["end"] :]
            cases.append(
                Case(
                    f"{row['id']}#{edit['change']}:{edit['old']}->{edit['new']}",
                    kind=PLANTED,
                    change=edit["change"],
                    rewrite=text,
                    **common,
                )
            )
    return cases


def score_cases(cases: list[Case], cfg: FidelityConfig) -> list[dict]:
    """Every fidelity score of each case; the thresholds are not used, so one scoring serves
    every threshold tried (bench/fidelity_gate.py)."""
    return [fidelity_scores(c.rewrite, c.source, finish_reasons=["stop"], cfg=cfg) for c in cases]


def judge_cases(
    cases: list[Case],
    cfg: FidelityConfig,
    style: str = EVAL_STYLE,
    scores: list[dict] | None = None,
) -> list[Result]:
    """The gate's verdict on each case (`scores`: from score_cases, to skip rescoring)."""
    rules = fidelity_rules(cfg, style)
    results = []
    for case, case_scores in zip(cases, scores or score_cases(cases, cfg), strict=True):
        failed = failing_rules(case_scores, rules)
        detail = failed[0].explain(case_scores.get(failed[0].column)) if failed else None
        results.append(Result(case, [r.name for r in failed], detail))
    return results


def summarise(results: list[Result]) -> dict:
    """{"rates": {kind: share meeting the goal}, "n": {kind: cases}, "by_group": {kind or
    pair or change: (right, n)}, "drop_reasons": {kind: {rule: drops}}}."""
    n: Counter = Counter()
    right: Counter = Counter()
    groups: dict[str, list[int]] = {}
    reasons: dict[str, Counter] = {FAITHFUL: Counter(), UNFAITHFUL: Counter(), PLANTED: Counter()}
    for r in results:
        kind = r.case.kind
        ok = (not r.dropped) if kind == FAITHFUL else r.dropped
        n[kind] += 1
        right[kind] += ok
        group = f"{kind} {r.case.change or r.case.pair}"
        groups.setdefault(group, [0, 0])
        groups[group][0] += ok
        groups[group][1] += 1
        if r.dropped:
            reasons[kind][r.failed[0]] += 1
    return {
        "rates": {k: right[k] / n[k] for k in n},
        "n": dict(n),
        "by_group": {g: tuple(v) for g, v in sorted(groups.items())},
        "drop_reasons": {k: dict(v.most_common()) for k, v in reasons.items()},
    }


def format_report(summary: dict, title: str = "") -> str:
    lines = [title] if title else []
    for kind, goal in GOALS.items():
        if kind not in summary["n"]:
            continue
        verb = "kept" if kind == FAITHFUL else "dropped"
        rate = summary["rates"][kind]
        mark = "ok" if rate >= goal else "BELOW GOAL"
        lines.append(
            f"{kind:<10} {verb} {rate:.3f} of {summary['n'][kind]:>4}  (goal >= {goal}) {mark}"
        )
    lines.append("by pair / change:")
    for group, (ok, total) in summary["by_group"].items():
        lines.append(f"  {group:<34} {ok:>4}/{total:<4} {ok / total:.3f}")
    for kind, reasons in summary["drop_reasons"].items():
        total = sum(reasons.values())
        if total:
            shares = ", ".join(f"{rule} {n / total:.2f} ({n})" for rule, n in reasons.items())
            lines.append(f"drops of {kind} ({total}): {shares}")
    return "\n".join(lines)
