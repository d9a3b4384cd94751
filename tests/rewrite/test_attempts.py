"""Counting and setting aside rejected samples (pipeline/rewrite/attempts.py)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schema as S
from pipeline.rewrite.attempts import attempt_counts, rejected_rows, set_aside


def rows() -> pa.Table:
    def rejected(index, attempt, reason):
        return {"index": index, "attempt": attempt, "reason": reason, "detail": "d", "text": "t"}

    table = [
        # two chunks: accepted at attempt 1, and at attempt 3 after two rejections
        ([1, 3], [rejected(1, 1, "boilerplate"), rejected(1, 2, "copied_source")]),
        # one chunk out of 2 attempts, the next never drawn
        ([2, 0], [rejected(0, 1, "repetition"), rejected(0, 2, "repetition")]),
        ([1], []),
    ]
    return pa.table(
        {
            S.REWRITE_ID: [f"d/{i}#qa" for i in range(3)],
            S.DOC_ID: [f"d/{i}" for i in range(3)],
            S.SOURCE: ["d"] * 3,
            S.STYLE: ["qa"] * 3,
            S.PROMPT_ID: ["qa@v1"] * 3,
            S.MODEL: ["m"] * 3,
            S.CHUNK_ATTEMPTS: pa.array([a for a, _ in table], pa.list_(pa.int32())),
            S.REJECTED_ATTEMPTS: pa.array([r for _, r in table], S.REJECTED_ATTEMPT_TYPE),
        }
    )


def test_counts_give_acceptance_and_the_yield_of_each_attempt():
    summary = attempt_counts(rows()).summary()
    assert summary["chunks"] == 4 and summary["chunks_accepted"] == 3
    assert summary["samples"] == 1 + 3 + 2 + 1
    assert summary["accepted_by_attempt"] == {"1": 2, "3": 1}
    # attempt 1: 2 of 4 chunks; attempt 2: none of 2; attempt 3: 1 of the 2 that reached it
    assert summary["yield_by_attempt"] == {"1": 0.5, "2": 0.0, "3": 0.5}
    assert summary["rejected_by_rule"] == {"boilerplate": 1, "copied_source": 1, "repetition": 2}


def test_every_rejected_sample_becomes_one_row_with_its_lineage(tmp_path):
    flat = rejected_rows(rows())
    assert flat.num_rows == 4
    assert flat[S.DROP_REASON].to_pylist() == [
        "boilerplate",
        "copied_source",
        "repetition",
        "repetition",
    ]
    assert flat[S.PROMPT_ID].to_pylist() == ["qa@v1"] * 4
    part = tmp_path / "data" / "part-00000.parquet"
    part.parent.mkdir()
    pq.write_table(rows(), part)
    counts = set_aside(str(part), str(tmp_path / "out"))
    assert counts.chunks == 4
    assert pq.read_table(tmp_path / "out" / "data-part-00000.parquet").num_rows == 4
