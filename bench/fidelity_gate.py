"""Fidelity gate calibration: set thresholds on the evaluation set's calibration split, report
the report split.

    python bench/fidelity_gate.py                # calibrate, compare with the defaults, report
    python bench/fidelity_gate.py --misses 10    # also list 10 wrong verdicts per kind
    python bench/fidelity_gate.py --aliases      # the renames behind name_aliases' default

The evaluation set (tests/quality/fidelity_eval.jsonl, built by
jobs/build_fidelity_eval.py from public-domain Bible translations on PyPI): per passage a
faithful human paraphrase (the same verses in another translation), an unfaithful text (another
passage of the same chapter or book) and planted factual changes (a name, a number or a date
changed in the faithful paraphrase). The split is by book.

Calibration sets five thresholds on the calibration split, every other rule as FidelityConfig
has it: 1. `min_copied_ngram_ratio`, the one that gets the most faithful rewrites kept plus
unfaithful ones dropped (ties: the stricter); 2. with it, the entity rules together,
`max_name_swaps`, `name_swap_reach`, `max_entity_swaps` and `max_novel_entity_ratio`: among
the settings that keep >= GOALS[faithful] + MARGIN of the faithful rewrites and drop
>= GOALS[unfaithful] + MARGIN of the unfaithful ones, the one with the most right verdicts on
faithful rewrites and planted changes together, each case counting once (ties: more planted
changes dropped, then more faithful kept, then the looser). Counting cases, not the planted
rate alone, keeps the pick off the bound: once the entity rules have room (name_aliases,
name_swap_reach's titles), the setting that drops the most planted changes (0.901 against
0.897) pays 10 faithful paraphrases for 1 planted change and lands on 0.82 exactly. The
report split is then scored with FidelityConfig's
defaults, never tuned on. `name_aliases` is data, not a threshold: --aliases lists the renames
name_swap finds in the calibration split's faithful paraphrases (no aliases, the default
reach), and its default holds those found in at least ALIAS_PASSAGES passages.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import schema as S  # noqa: E402
from pipeline.config.fidelity import FidelityConfig  # noqa: E402
from pipeline.quality.fidelity_eval import (  # noqa: E402
    FAITHFUL,
    GOALS,
    PLANTED,
    UNFAITHFUL,
    format_report,
    judge_cases,
    load_cases,
    score_cases,
    summarise,
)
from pipeline.text_fidelity.scores import alias_pairs, name_swaps  # noqa: E402

EVAL_SET = ROOT / "tests" / "quality" / "fidelity_eval.jsonl"
# Held back from the goals on the calibration split, so that a setting that only just meets
# them there is not picked: the report split's books differ.
MARGIN = 0.02
MIN_COPIED = [round(0.03 + 0.01 * i, 2) for i in range(10)]  # 0.03 .. 0.12
MAX_ENTITY_RATIO: list[float | None] = [round(0.1 + 0.05 * i, 2) for i in range(9)] + [None]
MAX_ENTITY_SWAPS: list[int | None] = [0, 1, 2, None]
MAX_NAME_SWAPS: list[int | None] = [0, 1, 2, None]
NAME_SWAP_REACH: list[int | None] = [None, 4, 8, 12, 16, 20]
CALIBRATED = (
    "min_copied_ngram_ratio", "max_novel_entity_ratio", "max_entity_swaps", "max_name_swaps",
    "name_swap_reach",
)  # fmt: skip
ALIAS_PASSAGES = 2  # a rename found in this many passages or more goes into name_aliases


def _with(base: FidelityConfig, **thresholds) -> FidelityConfig:
    return dataclasses.replace(base, **thresholds)


def _with_reach(cases, scores: list[dict], cfg: FidelityConfig) -> list[dict]:
    """`scores` with the name swaps found at cfg's name_swap_reach (the rest does not depend
    on it)."""
    aliases = alias_pairs(cfg.name_aliases)
    return [
        {**s, S.F_NAME_SWAPS: name_swaps(c.rewrite, c.source, reach=cfg.name_swap_reach,
                                         aliases=aliases)}
        for c, s in zip(cases, scores, strict=True)
    ]  # fmt: skip


def calibrate(cases, base: FidelityConfig) -> tuple[FidelityConfig, list[str]]:
    """The calibration pick, and one line per setting tried."""
    scores = score_cases(cases, base)

    def rates(cfg: FidelityConfig, scores: list[dict] = scores) -> dict[str, float]:
        return summarise(judge_cases(cases, cfg, scores=scores))["rates"]

    n = Counter(c.kind for c in cases)

    lines = []
    # 1. Faithful against unfaithful: the most right of both together (ties: the stricter).
    copied = []
    for value in MIN_COPIED:
        r = rates(_with(base, min_copied_ngram_ratio=value))
        copied.append((r[FAITHFUL] + r[UNFAITHFUL], value))
        lines.append(f"  min_copied_ngram_ratio={value:<5} {_fmt(r)}")
    min_copied = max(copied)[1]
    # 2. The entity rules: within the goals plus MARGIN, the most right verdicts on faithful
    # rewrites and planted changes together.
    tried = []
    for reach in NAME_SWAP_REACH:
        reached = _with_reach(cases, scores, _with(base, name_swap_reach=reach))
        for names in MAX_NAME_SWAPS:
            for swaps in MAX_ENTITY_SWAPS:
                for ratio in MAX_ENTITY_RATIO:
                    entity = {
                        "max_name_swaps": names,
                        "name_swap_reach": reach,
                        "max_entity_swaps": swaps,
                        "max_novel_entity_ratio": ratio,
                    }
                    r = rates(_with(base, min_copied_ngram_ratio=min_copied, **entity), reached)
                    ok = all(r[k] >= round(GOALS[k] + MARGIN, 6) for k in (FAITHFUL, UNFAITHFUL))
                    looseness = (_loose(names), -_loose(reach), _loose(swaps), _loose(ratio))
                    right = round(r[FAITHFUL] * n[FAITHFUL] + r[PLANTED] * n[PLANTED])
                    tried.append((ok, right, r[PLANTED], r[FAITHFUL], looseness, entity))
                    lines.append(f"  max_name_swaps={names!s:<4} name_swap_reach={reach!s:<4} "
                                 f"max_entity_swaps={swaps!s:<4} "
                                 f"max_novel_entity_ratio={ratio!s:<4} "
                                 f"{_fmt(r)}{'' if ok else ' (outside)'}")  # fmt: skip
    entity = max(tried, key=lambda t: t[:5])[-1]
    return _with(base, min_copied_ngram_ratio=min_copied, **entity), lines


def aliases(cases, base: FidelityConfig) -> list[tuple[tuple[str, str], int]]:
    """The renames name_swap finds in the faithful paraphrases (no aliases, base's reach),
    most passages first: ((new, old), passages)."""
    found: dict[frozenset[str], set[str]] = {}
    for c in cases:
        if c.kind != FAITHFUL:
            continue
        for swap in name_swaps(c.rewrite, c.source, reach=base.name_swap_reach):
            new, old = swap.split("'")[1], swap.split("'")[-2]
            found.setdefault(frozenset((new, old)), set()).add(c.id)
    pairs = [(tuple(sorted(pair)), len(ids)) for pair, ids in found.items()]
    return sorted(pairs, key=lambda p: (-p[1], p[0]))


def _loose(threshold: float | None) -> float:
    """Order of thresholds from strict to off (None)."""
    return float("inf") if threshold is None else threshold


def _fmt(r: dict[str, float]) -> str:
    return " ".join(f"{k} {r[k]:.3f}" for k in (FAITHFUL, UNFAITHFUL, PLANTED))


def _thresholds(cfg: FidelityConfig) -> str:
    return " ".join(f"{k}={getattr(cfg, k)}" for k in CALIBRATED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-set", default=str(EVAL_SET))
    parser.add_argument("--misses", type=int, default=0, help="wrong verdicts listed per kind")
    parser.add_argument(
        "--aliases", action="store_true", help="list the calibration split's renames and stop"
    )
    args = parser.parse_args(argv)
    defaults = FidelityConfig()
    calibration = load_cases(args.eval_set, split="calibration")
    report = load_cases(args.eval_set, split="report")
    if args.aliases:
        print("renames in the calibration split's faithful paraphrases (passages):")
        for (a, b), n in aliases(calibration, defaults):
            mark = "  in name_aliases" if (a.lower(), b.lower()) in alias_pairs(
                defaults.name_aliases) else ""  # fmt: skip
            print(f"  {a} / {b}: {n}{' >= ALIAS_PASSAGES' if n >= ALIAS_PASSAGES else ''}{mark}")
        return 0
    started = time.perf_counter()
    pick, lines = calibrate(calibration, defaults)
    print(f"calibration split: {len(calibration)} cases; kept (faithful) or dropped (others):")
    print("\n".join(lines))
    print(f"  pick: {_thresholds(pick)}")
    same = _thresholds(pick) == _thresholds(defaults)
    print(
        "  FidelityConfig defaults match the pick"
        if same
        else f"  FidelityConfig defaults DIFFER: {_thresholds(defaults)}"
    )
    print(format_report(summarise(judge_cases(calibration, defaults)), "\n[calibration split]"))
    results = judge_cases(report, defaults)
    print(format_report(summarise(results), "\n[report split, FidelityConfig defaults]"))
    print(f"\n{time.perf_counter() - started:.1f} s")
    if args.misses:
        for kind in (FAITHFUL, UNFAITHFUL, PLANTED):
            wrong = [r for r in results if r.case.kind == kind and r.dropped == (kind == FAITHFUL)]
            print(f"\n{kind}: {len(wrong)} wrong, first {args.misses}")
            for r in wrong[: args.misses]:
                print(f"  {r.case.id}: {r.failed or 'kept'} {r.detail or ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
