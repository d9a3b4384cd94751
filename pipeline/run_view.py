"""Read a run directory back for notebooks and scripts: summary, stage outputs, quarantine.

from pipeline.run_view import Run
run = Run("outputs/demo")
run.funnel()                  # one row per stage: in, out, dropped
run.dropped_by_reason()       # (stage, reason) -> count
run.quarantine("ingest")      # the set-aside rows with reason, detail, path, location
run.data("ingest")            # the stage's kept rows (a pyarrow.Table)
run.dropped("quality", "gopher_stop_words")   # dropped rows of one reason, scores included
run.rejected_attempts()       # every rewrite sample the gate rejected: rule, detail, text
run.lineage("shard-00000.arrow", 17)          # where a token-shard row came from (a dict)
run.trace("shard-00000.arrow", 17)            # ... joined to its source text, chunks, prompt
run.locate("wiki/42#qa")                      # the (shard, row) holding a document or rewrite
run.decode(tokens)                            # token ids as text, with the shards' tokenizer
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.provenance import Provenance, Trace
from pipeline.rewrite.attempts import ATTEMPTS_DIR, ATTEMPTS_SCHEMA
from pipeline.schema import CLUSTERS_SCHEMA, STAGE_OUTPUTS, with_drop_columns
from pipeline.stats import StageStats


class Run:
    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        summary = self.run_dir / "summary.json"
        if not summary.is_file():
            raise FileNotFoundError(f"{summary}: not a finished run directory")
        self.summary = json.loads(summary.read_text())
        self.stages = [StageStats.from_dict(s) for s in self.summary["stages"]]
        self.provenance = Provenance(self.run_dir, [s.stage for s in self.stages])

    def has(self, stage: str) -> bool:
        return any(s.stage == stage for s in self.stages)

    def stats(self, stage: str) -> StageStats:
        for s in self.stages:
            if s.stage == stage:
                return s
        raise KeyError(f"{self.run_dir}: no stage {stage!r} in this run")

    def funnel(self) -> pa.Table:
        return pa.table(
            {
                "stage": [s.stage for s in self.stages],
                "rows_in": [s.rows_in for s in self.stages],
                "rows_out": [s.rows_out for s in self.stages],
                "rows_dropped": [s.rows_dropped for s in self.stages],
                "seconds": [s.seconds for s in self.stages],
            }
        )

    def dropped_by_reason(self) -> dict[tuple[str, str], int]:
        return {(s.stage, reason): n for s in self.stages for reason, n in s.dropped.items()}

    def data(self, stage: str, columns: list[str] | None = None) -> pa.Table:
        """The stage's kept rows; none kept: an empty table with the stage's columns."""
        return _read_parts(self.run_dir / stage / "data", columns, _stage_schema(stage))

    def quarantine(self, stage: str, columns: list[str] | None = None) -> pa.Table:
        schema = _stage_schema(stage)
        return _read_parts(
            self.run_dir / "quarantine" / stage,
            columns,
            with_drop_columns(schema) if schema is not None else None,
        )

    def rejected_attempts(self) -> pa.Table:
        """Every sample the rewrite stage's gate rejected (a chunk drawn again with a new seed,
        or out of attempts): one row each, with its rule, detail and text."""
        directory = self.run_dir / "quarantine" / "rewrite" / ATTEMPTS_DIR
        return _read_parts(directory, None, ATTEMPTS_SCHEMA)

    def dropped(self, stage: str, reason: str | None = None) -> pa.Table:
        """A stage's quarantined rows (of one reason if given) with every column they carry:
        the quality and fidelity stages keep all their scores and `*_failed` rule lists."""
        import pyarrow.compute as pc

        rows = self.quarantine(stage)
        if reason is None or rows.num_rows == 0:
            return rows
        return rows.filter(pc.equal(rows["reason"], reason))

    def clusters(self, columns: list[str] | None = None) -> pa.Table:
        return _read_parts(self.run_dir / "dedup" / "clusters", columns, CLUSTERS_SCHEMA)

    # --- lineage of the token shards (pipeline/provenance.py) --------------------------------

    def lineage(self, shard: str | None = None, row: int | None = None) -> pa.Table | dict:
        """The lineage table beside the shards: every shard's (with `shard`, `row` columns),
        one shard's, or one row's (a dict). Checked against manifest.json's sha256."""
        if shard is None:
            return self.provenance.all()
        if row is None:
            return self.provenance.table(shard)
        return self.provenance.row(shard, row)

    def trace(self, shard: str, row: int) -> Trace:
        """A shard row's lineage with its source document's text, the chunks it rewrote,
        the prompt template and the rewrite's own text."""
        return self.provenance.trace(shard, row)

    def locate(self, doc_id: str) -> list[tuple[str, int]]:
        return self.provenance.locate(doc_id)

    def decode(self, tokens: list[int]) -> str:
        """Token ids (from a shard or a loader batch) as text, BOS/EOS left out."""
        return self.provenance.decode(tokens)


def _stage_schema(stage: str) -> pa.Schema | None:
    return STAGE_OUTPUTS.get(stage)


def _read_parts(
    directory: Path, columns: list[str] | None, schema: pa.Schema | None = None
) -> pa.Table:
    parts = sorted(directory.glob("*.parquet"))
    if not parts:
        if schema is None:
            return pa.table({})
        empty = schema.empty_table()
        return empty.select([c for c in columns if c in schema.names]) if columns else empty
    return pa.concat_tables(
        [pq.read_table(p, columns=columns) for p in parts], promote_options="default"
    )
