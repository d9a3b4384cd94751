"""The quality stage on Ray Data: heuristic rules on deduplicated raw documents, before rewrite.

Reads the latest upstream documents (`ctx.output_of(DOCS)`: dedup's, or ingest's), scores
each document in `map_batches` (pipeline/quality/scoring.py: Gopher quality and repetition,
C4, FineWeb, language, optional fastText classifier), and writes through the accounting sink:
kept documents with their score columns to quality/data, dropped ones with the same columns
and the first failing rule as `reason` to quarantine/quality. Stats: drops per rule, failures
per rule counted independently (`rule_fails`), score histograms, kept documents per source.

    python jobs/run.py 'run.stages=[ingest,dedup,quality,rewrite]'
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schema as S
from pipeline.config import Config
from pipeline.plumbing.hashing import file_sha256
from pipeline.quality.histograms import score_stats
from pipeline.quality.rules import quality_rules
from pipeline.quality.scoring import score_documents
from pipeline.ray_ops import count_rows, parquet_parts, read_parts, sum_column
from pipeline.stage import DOCS, RunContext, Stage
from pipeline.stats import StageStats, StepTimer

# Documents per map task, in batches of quality.batch_rows. Parquet parts arrive as one block
# each (ingest writes ~10k documents per part, ~11 s of scoring), and Ray Data gives a block to
# one task: at 75 MB (2 parts read as one block) one core scored everything while the other
# idled. Blocks of 2 batches (~2 s each) keep every core busy to the end; each map task
# writes one output part.
BATCHES_PER_TASK = 2

# Scores worth a histogram: the continuous ones (language is a label).
HISTOGRAM_COLUMNS = [
    f.name for f in S.QUALITY_FIELDS if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)
]


def output_schema_for(input_schema: pa.Schema) -> pa.Schema:
    """The input's document columns (ingest's or dedup's), then the quality score columns."""
    ours = set(S.DROP_COLUMNS) | {f.name for f in S.QUALITY_FIELDS}
    return pa.schema([f for f in input_schema if f.name not in ours] + S.QUALITY_FIELDS)


def _input_schema(directory: Path) -> pa.Schema:
    parts = parquet_parts(directory)
    return pq.read_schema(parts[0]) if parts else S.DOCS_SCHEMA


class QualityStage(Stage):
    name = "quality"
    produces = DOCS

    @classmethod
    def check(cls, config: Config) -> list[str]:
        path = config.quality.classifier.path
        if path is None or Path(path).is_file():
            return []
        return [f"quality.classifier.path: no file {path!r}"]

    def settings(self):
        cfg = self.config.quality
        # A retrained classifier at the same path must rerun the stage: hash its bytes.
        path = cfg.classifier.path
        digest = file_sha256(path) if path else None
        return {"quality": cfg, "classifier_sha256": digest}

    def run(self, ctx: RunContext) -> StageStats:
        cfg, steps = self.config.quality, StepTimer(self.name)
        source_dir = ctx.output_of(DOCS)
        input_schema = _input_schema(source_dir)
        sink = self.sink(ctx, output_schema_for(input_schema))
        with steps("score"):
            rows = cfg.batch_rows * BATCHES_PER_TASK
            read_parts(source_dir, input_schema).repartition(
                target_num_rows_per_block=rows
            ).map_batches(
                score_documents,
                batch_size=cfg.batch_rows,
                batch_format="pyarrow",
                fn_kwargs={"cfg": cfg},
            ).write_datasink(sink)
        with steps("histograms"):
            scores = score_stats(
                self.written_parts(ctx), HISTOGRAM_COLUMNS, S.QUALITY_FAILED, cfg.histogram_bins
            )
        with steps("input"):
            rows_in, bytes_in = count_rows(source_dir), sum_column(source_dir, S.N_BYTES)
        return self.stats(
            sink.result,
            rows_in=rows_in,
            bytes_in=bytes_in,
            extra={
                "step_seconds": steps.seconds,
                "kept_by_source": sink.result.rows_out_by,
                "rule_fails": scores["rule_fails"],
                "score_histograms": scores["histograms"],
                "skip_rules": {k: list(v) for k, v in cfg.skip_rules.items()},
                "rule_columns": {r.name: r.column for r in quality_rules(cfg)},
            },
        )
