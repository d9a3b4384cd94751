"""The run summary: one row per stage (in, out, dropped by reason, bytes, time).

Written to `<run_dir>/summary.json` for notebooks and printed as a table at the end of a run.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.stats import StageStats

_HEADER = ("stage", "rows in", "rows out", "dropped", "MB in", "MB out", "time")


def format_summary(stages: Sequence[StageStats]) -> str:
    rows = [_HEADER]
    for s in stages:
        dropped = ", ".join(f"{reason}={n:,}" for reason, n in s.dropped.items()) or "-"
        rows.append(
            (
                s.stage,
                f"{s.rows_in:,}",
                f"{s.rows_out:,}",
                f"{s.rows_dropped:,} ({dropped})" if s.dropped else "0",
                f"{s.bytes_in / 1e6:.1f}",
                f"{s.bytes_out / 1e6:.1f}",
                f"{s.seconds:.1f}s",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
    # Text columns left-aligned, numbers right-aligned.
    left = {0, 3}
    lines = [
        "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
