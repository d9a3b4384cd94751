"""The run summary: one row per stage (in, out, dropped by reason, bytes, time, tokens/s),
then the tokens written per kind, source and style, and the score histograms of the rules
that dropped rows.

Written to `<run_dir>/summary.json` for notebooks and printed as a table at the end of a run.
Tokens/s is measured where a stage counts tokens (rewrite: tokens generated; tokenize: tokens
written); for the others it is estimated from the bytes they read, at the bytes per token
the tokenize stage measured in this run, and marked "~".
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.quality.histograms import sparkline
from pipeline.stats import StageStats

_HEADER = ("stage", "rows in", "rows out", "dropped", "MB in", "MB out", "time", "tokens/s")


def format_summary(stages: Sequence[StageStats], dropped_width: int = 56) -> str:
    """The table; the dropped-by-reason column wraps at `dropped_width` characters."""
    rows: list[tuple[str, ...]] = [_HEADER]
    bytes_per_token = _bytes_per_token(stages)
    for s in stages:
        dropped = [f"{reason}={n:,}" for reason, n in s.dropped.items()]
        cells = _wrap(f"{s.rows_dropped:,}", dropped, dropped_width)
        rows.append(
            (
                s.stage,
                f"{s.rows_in:,}",
                f"{s.rows_out:,}",
                cells[0],
                f"{s.bytes_in / 1e6:.1f}",
                f"{s.bytes_out / 1e6:.1f}",
                f"{s.seconds:.1f}s",
                _tokens_per_second(s, bytes_per_token),
            )
        )
        rows += [("", "", "", more, "", "", "", "") for more in cells[1:]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
    # Text columns left-aligned, numbers right-aligned.
    left = {0, 3}
    lines = [
        "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if any(r[-1] for r in rows[1:]):
        lines.append(
            "tokens/s: rewrite = generated, tokenize = written, ~ = estimated from the bytes read"
        )
    return "\n".join(
        lines + _attempt_lines(stages) + _token_lines(stages) + _histogram_lines(stages)
    )


def _attempt_lines(stages: Sequence[StageStats]) -> list[str]:
    """Best-of-n rewriting: chunks the gate accepted, within how many samples, and why the
    others were rejected (rewrite stage, stats.extra["attempts"])."""
    extra = next((s.extra for s in stages if s.stage == "rewrite"), None)
    attempts = (extra or {}).get("attempts")
    if not attempts or not attempts.get("chunks"):
        return []
    yields = ", ".join(
        f"#{k} {y:.0%}" for k, y in attempts["yield_by_attempt"].items() if y is not None
    )
    rejected = ", ".join(f"{r}={n:,}" for r, n in attempts["rejected_by_rule"].items())
    return [
        "",
        f"rewrite attempts  {attempts['chunks_accepted']:,} of {attempts['chunks']:,} chunks "
        f"accepted ({attempts['acceptance']:.0%}) within {extra['max_attempts']} attempts, "
        f"{attempts['samples']:,} samples drawn",
        f"  yield by attempt  {yields}",
        f"  rejected samples  {rejected or 'none'} (quarantine/rewrite/attempts)",
        *_engine_lines(extra.get("engine")),
    ]


def _engine_lines(engine: dict | None) -> list[str]:
    """How full the rewrite engine was kept (stats.extra["engine"], from each actor's clock)."""
    if not engine or engine.get("busy_fraction") is None:
        return []
    return [
        f"  engine            busy {engine['busy_fraction']:.1%} of its window, "
        f"{engine['mean_in_flight']} sequences in flight on average (max "
        f"{engine['max_in_flight']}), {engine['actors']} actor(s)"
    ]


def _bytes_per_token(stages: Sequence[StageStats]) -> float | None:
    """Text bytes per token as the run's tokenize stage measured them (None: no such stage)."""
    for s in stages:
        tokens = s.extra.get("tokens_written")
        if s.stage == "tokenize" and tokens and s.bytes_in:
            return s.bytes_in / tokens
    return None


def _tokens_per_second(s: StageStats, bytes_per_token: float | None) -> str:
    if s.seconds <= 0:
        return ""
    if s.stage == "rewrite" and "output_tokens" in s.extra:
        return f"{s.extra['output_tokens'] / s.seconds:,.0f}"
    if s.stage == "tokenize" and "tokens_written" in s.extra:
        return f"{s.extra['tokens_written'] / s.seconds:,.0f}"
    if bytes_per_token and s.bytes_in:
        return f"~{s.bytes_in / bytes_per_token / s.seconds:,.0f}"
    return ""


def _token_lines(stages: Sequence[StageStats]) -> list[str]:
    """The tokens the tokenize stage wrote (train and held-out), by kind, source and style."""
    extra = next((s.extra for s in stages if s.stage == "tokenize"), None)
    if not extra or "tokens_written" not in extra:
        return []

    def counts(key: str) -> str:
        found = extra.get(key) or {}
        return ", ".join(f"{name} {n:,}" for name, n in sorted(found.items())) or "none"

    return [
        "",
        f"tokens written  {extra['tokens_written']:,} (train and held-out)",
        f"  train by kind    {counts('tokens_by_kind')}",
        f"  train by source  {counts('tokens_by_source')}",
        f"  train by style   {counts('tokens_by_style')}",
    ]


def _wrap(total: str, reasons: list[str], width: int) -> list[str]:
    """'12 (a=5, b=7)' over as many lines as it takes, continuation lines indented."""
    if not reasons:
        return ["0"]
    lines, line = [], f"{total} ("
    for i, reason in enumerate(reasons):
        piece = reason + (")" if i == len(reasons) - 1 else ",")
        if len(line) + len(piece) + 1 > width and not line.endswith("("):
            lines.append(line)
            line = " " * (len(total) + 2) + piece
        else:
            line += ("" if line.endswith("(") else " ") + piece
    return [*lines, line]


def _histogram_lines(stages: Sequence[StageStats]) -> list[str]:
    """Score histograms (stats.extra["score_histograms"]) of the columns whose rules failed
    some row, one line each: column, min, bars, max, rows failing. All of them: summary.json."""
    lines: list[str] = []
    for s in stages:
        histograms = s.extra.get("score_histograms") or {}
        columns = s.extra.get("rule_columns") or {}
        failing: dict[str, int] = {}
        for rule, n in (s.extra.get("rule_fails") or {}).items():
            if columns.get(rule) in histograms:
                failing[columns[rule]] = failing.get(columns[rule], 0) + n
        if not failing:
            continue
        lines += ["", f"{s.stage}: score histograms of the rules that failed rows"]
        width = max(map(len, failing))
        for column, n in failing.items():
            h = histograms[column]
            lo, hi = h["edges"][0], h["edges"][-1]
            lines.append(
                f"  {column.ljust(width)}  {lo:>8.3g} {sparkline(h['counts']):<10} {hi:<8.3g}"
                f"  failed by {n:,} rows"
            )
    return lines
