"""The run summary table: every reason shown, long drop lists wrapped, columns aligned."""

from pipeline.stats import StageStats
from pipeline.summary import format_summary


def test_a_long_list_of_reasons_wraps_and_keeps_every_reason():
    reasons = {f"rule_number_{i}": i + 1 for i in range(8)}
    stages = [
        StageStats("ingest", rows_in=10, rows_out=10),
        StageStats("quality", rows_in=100, rows_out=64, dropped=reasons),
    ]
    table = format_summary(stages, dropped_width=40)
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["stage", "rows", "in", "rows"]
    quality = [line for line in lines[2:] if not line.startswith("ingest")]
    assert len(quality) > 1 and quality[0].startswith("quality")
    text = " ".join(quality)
    assert all(f"{name}={n}" in text for name, n in reasons.items())
    assert "36 (" in quality[0] and quality[-1].rstrip().endswith(")")
    # The numeric columns of the first quality line stay aligned with the header's.
    assert len(quality[0]) == len(lines[0])
