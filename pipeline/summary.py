"""The run summary: one row per stage (in, out, dropped by reason, bytes, time).

Written to `<run_dir>/summary.json` for notebooks and printed as a table at the end of a run.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.stats import StageStats

_HEADER = ("stage", "rows in", "rows out", "dropped", "MB in", "MB out", "time")


def format_summary(stages: Sequence[StageStats], dropped_width: int = 56) -> str:
    """The table; the dropped-by-reason column wraps at `dropped_width` characters."""
    rows: list[tuple[str, ...]] = [_HEADER]
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
            )
        )
        rows += [("", "", "", more, "", "", "") for more in cells[1:]]
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
    return "\n".join(lines + _histogram_lines(stages))


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
    from pipeline.quality.histograms import sparkline

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
