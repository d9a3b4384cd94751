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
    # (No tokens/s here: the line ends with the time column, right-aligned under "time".)
    assert quality[0].endswith("0.0s")
    assert len(quality[0]) == lines[0].index("time") + len("time")


def test_tokens_per_second_and_the_tokens_written_by_kind_source_and_style():
    stages = [
        StageStats("ingest", rows_in=4, rows_out=4, bytes_in=8_000, seconds=2.0),
        StageStats("rewrite", rows_in=4, rows_out=2, seconds=10.0, extra={"output_tokens": 500}),
        StageStats(
            "tokenize",
            rows_in=6,
            rows_out=6,
            bytes_in=8_000,
            seconds=1.0,
            extra={
                "tokens_written": 2_000,
                "tokens_by_kind": {"raw": 1_500, "rewrite": 400},
                "tokens_by_source": {"news": 1_900},
                "tokens_by_style": {"student": 400},
            },
        ),
    ]
    lines = format_summary(stages).splitlines()
    rates = {line.split()[0]: line.split()[-1] for line in lines[2:5]}
    # ingest: 8,000 bytes at tokenize's 4 bytes per token, in 2 s; measured for the others.
    assert rates == {"ingest": "~1,000", "rewrite": "50", "tokenize": "2,000"}
    text = "\n".join(lines)
    assert "tokens written  2,000 (train and held-out)" in text
    assert "train by kind    raw 1,500, rewrite 400" in text
    assert "train by source  news 1,900" in text and "train by style   student 400" in text


def test_without_a_tokenize_stage_there_is_no_estimate():
    lines = format_summary([StageStats("ingest", rows_in=1, rows_out=1, bytes_in=9, seconds=1.0)])
    assert lines.splitlines()[2].split()[-1] == "1.0s"
    assert "tokens written" not in lines


def test_rewrite_attempts_show_acceptance_yield_per_attempt_and_rejections():
    attempts = {
        "chunks": 24,
        "chunks_accepted": 12,
        "acceptance": 0.5,
        "samples": 60,
        "accepted_by_attempt": {"1": 6, "2": 4, "4": 2},
        "yield_by_attempt": {"1": 0.25, "2": 0.2222, "3": 0.0, "4": 0.1429},
        "rejected_by_rule": {"copied_source": 30, "novel_numbers": 18},
    }
    stages = [
        StageStats(
            "rewrite", rows_in=12, rows_out=8, dropped={"copied_source": 4},
            extra={"attempts": attempts, "max_attempts": 4},
        )
    ]  # fmt: skip
    text = format_summary(stages)
    assert "12 of 24 chunks accepted (50%) within 4 attempts, 60 samples drawn" in text
    assert "#1 25%, #2 22%, #3 0%, #4 14%" in text
    assert "copied_source=30, novel_numbers=18" in text


def test_the_rewrite_engine_line_shows_how_full_it_was_kept():
    attempts = {"chunks": 2, "chunks_accepted": 1, "acceptance": 0.5, "samples": 2}
    attempts |= {"yield_by_attempt": {"1": 0.5}, "rejected_by_rule": {}}
    engine = {"busy_fraction": 0.9961, "mean_in_flight": 84.13, "max_in_flight": 129}
    stages = [
        StageStats(
            "rewrite", rows_in=1, rows_out=1,
            extra={"attempts": attempts, "max_attempts": 1, "engine": {**engine, "actors": 1}},
        )
    ]  # fmt: skip
    text = format_summary(stages)
    assert "busy 99.6% of its window, 84.13 sequences in flight on average (max 129)" in text
    no_clock = {**engine, "busy_fraction": None, "actors": 0}
    stages[0].extra["engine"] = no_clock
    assert "engine" not in format_summary(stages).split("rejected samples")[1]
