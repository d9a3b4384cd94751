"""Score histograms: bins, per-rule failure counts, the summary's compact lines."""

from __future__ import annotations

import pyarrow as pa

from pipeline.quality.histograms import bin_edges, block_counts, sparkline
from pipeline.stats import StageStats
from pipeline.summary import format_summary


def test_block_counts_bins_every_value_and_counts_every_failed_rule():
    batch = pa.table(
        {
            "x": [0.0, 0.5, 1.0, None],
            "failed": [["a", "b"], [], ["a"], ["b"]],
        }
    )
    rows = block_counts(batch, {"x": bin_edges(0.0, 1.0, 2)}, "failed").to_pylist()
    assert rows == [
        {"name": "x", "counts": [1, 2]},  # the maximum lands in the last bin
        {"name": "rule:a", "counts": [2]},
        {"name": "rule:b", "counts": [2]},
    ]
    assert block_counts(batch, {"x": bin_edges(3.0, 3.0, 5)}, None).to_pylist() == [
        {"name": "x", "counts": [3]}  # every value equal: one bin
    ]


def test_sparkline_and_summary_lines():
    assert sparkline([0, 1, 8]) == "▁▂█" and sparkline([0, 0]) == ""
    stats = StageStats(
        "quality",
        rows_in=10,
        rows_out=8,
        dropped={"gopher_too_few_words": 2},
        extra={
            "rule_fails": {"gopher_too_few_words": 3},
            "rule_columns": {"gopher_too_few_words": "q_words"},
            "score_histograms": {"q_words": {"edges": [12.0, 50.0, 900.0], "counts": [3, 7]}},
        },
    )
    text = format_summary([stats])
    assert "quality: score histograms of the rules that failed rows" in text
    line = next(x for x in text.splitlines() if x.strip().startswith("q_words"))
    assert "12" in line and "900" in line and "failed by 3 rows" in line
