"""Every sample the gate rejected, set aside and counted: the yield of best-of-n rewriting.

The rewriter keeps each document's rejected attempts in its row (`rejected_attempts`). After
the stage writes its rows, one Ray task per Parquet part flattens them into
`quarantine/rewrite_attempts/` (one row per rejected sample, with its rule and text) and
returns counts, so the driver only adds numbers:

    counts = attempt_counts(part)        # pure: a rewrite part -> AttemptCounts
    summary = merge([...]).summary()     # {"chunks": 30, "accepted": 14, "yield_by_attempt": ...}
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schema as S
from pipeline.plumbing.atomic import commit, temp_path

ATTEMPTS_DIR = "attempts"  # under the stage's quarantine: quarantine/rewrite/attempts/
ATTEMPTS_SCHEMA = pa.schema(
    [
        pa.field(S.REWRITE_ID, pa.string(), nullable=False),
        pa.field(S.DOC_ID, pa.string(), nullable=False),
        pa.field(S.SOURCE, pa.string(), nullable=False),
        pa.field(S.STYLE, pa.string()),
        pa.field(S.PROMPT_ID, pa.string()),
        pa.field(S.MODEL, pa.string()),
        pa.field(S.CHUNK_INDEX, pa.int32(), nullable=False),
        pa.field(S.ATTEMPT, pa.int32(), nullable=False),
        pa.field(S.DROP_REASON, pa.string(), nullable=False),
        pa.field(S.DROP_DETAIL, pa.string()),
        pa.field(S.TEXT, pa.large_string()),
    ]
)
_COLUMNS = [S.REWRITE_ID, S.DOC_ID, S.SOURCE, S.STYLE, S.PROMPT_ID, S.MODEL]


@dataclass
class AttemptCounts:
    chunks: int = 0  # chunks that drew at least one sample
    accepted_at: Counter = field(default_factory=Counter)  # attempt -> chunks accepted there
    rejected_by: Counter = field(default_factory=Counter)  # rule -> rejected samples
    samples: int = 0  # samples drawn in all (accepted + rejected)
    most: int = 0  # the most attempts any chunk drew

    def add(self, other: AttemptCounts) -> None:
        self.chunks += other.chunks
        self.accepted_at.update(other.accepted_at)
        self.rejected_by.update(other.rejected_by)
        self.samples += other.samples
        self.most = max(self.most, other.most)

    def summary(self) -> dict:
        """Counts plus the yield of each attempt: accepted there / chunks that reached it."""
        accepted = sum(self.accepted_at.values())
        reached, yields = self.chunks, {}
        for k in range(1, self.most + 1):
            yields[str(k)] = round(self.accepted_at[k] / reached, 4) if reached else None
            reached -= self.accepted_at[k]
        return {
            "chunks": self.chunks,
            "chunks_accepted": accepted,
            "acceptance": round(accepted / self.chunks, 4) if self.chunks else None,
            "samples": self.samples,
            "accepted_by_attempt": {str(k): n for k, n in sorted(self.accepted_at.items())},
            "yield_by_attempt": yields,
            "rejected_by_rule": dict(sorted(self.rejected_by.items())),
        }


def attempt_counts(table: pa.Table) -> AttemptCounts:
    """Counts of one table of rewrite rows (kept or set aside)."""
    counts = AttemptCounts()
    for attempts, rejected in zip(
        table[S.CHUNK_ATTEMPTS].to_pylist(), table[S.REJECTED_ATTEMPTS].to_pylist(), strict=True
    ):
        failed = {(r["index"], r[S.ATTEMPT]) for r in rejected or []}
        counts.rejected_by.update(r["reason"] for r in rejected or [])
        for index, n in enumerate(attempts or []):
            if n == 0:
                continue
            counts.chunks += 1
            counts.samples += n
            counts.most = max(counts.most, n)
            if (index, n) not in failed:
                counts.accepted_at[n] += 1
    return counts


def rejected_rows(table: pa.Table) -> pa.Table:
    """One row per rejected sample, with the document's lineage columns."""
    out = {name: [] for name in ATTEMPTS_SCHEMA.names}
    for row in table.select([*_COLUMNS, S.REJECTED_ATTEMPTS]).to_pylist():
        for r in row[S.REJECTED_ATTEMPTS] or []:
            for name in _COLUMNS:
                out[name].append(row[name])
            out[S.CHUNK_INDEX].append(r["index"])
            out[S.ATTEMPT].append(r[S.ATTEMPT])
            out[S.DROP_REASON].append(r["reason"])
            out[S.DROP_DETAIL].append(r["detail"])
            out[S.TEXT].append(r["text"])
    return pa.table(out, schema=ATTEMPTS_SCHEMA)


def set_aside(part: str, out_dir: str) -> AttemptCounts:
    """Flatten one rewrite part's rejected samples into out_dir (same file name); count it."""
    table = pq.read_table(part, columns=[*_COLUMNS, S.CHUNK_ATTEMPTS, S.REJECTED_ATTEMPTS])
    rejected = rejected_rows(table)
    if rejected.num_rows:
        final = Path(out_dir) / f"{Path(part).parent.name}-{Path(part).name}"
        tmp = temp_path(final)
        pq.write_table(rejected, tmp, compression="zstd")
        commit(tmp, final)
    return attempt_counts(table)
