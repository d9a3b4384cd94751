"""The ingest stage on Ray Data: one task per input file, streaming batches to the sink.

Each file is read by `FileIngest` in its own Ray task, which yields Arrow batches as it goes
(memory per task is one batch, whatever the file's size) and writes the file's own counts to
`<stage_dir>/files/<task_id>.json`. Rows in = records the readers saw; rows out and drops =
what the sink wrote. The two are counted apart, so the runner's check means something.

The sink writes to `<stage_dir>/scratch/`; once every file is read, `settle_duplicate_ids`
moves the parts to `data/` and quarantines records whose doc id an earlier one already took
(reason `duplicate_id`), so every later stage can join on doc_id.
"""

from __future__ import annotations

import glob
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import ray

from pipeline import schema as S
from pipeline.config import Config, CorpusConfig
from pipeline.ingest.duplicate_ids import settle_duplicate_ids
from pipeline.ingest.files import FileIngest, FileTask, plan_files
from pipeline.ingest.readers import Reason
from pipeline.plumbing.atomic import atomic_write_json
from pipeline.plumbing.resources import shuffle_partitions
from pipeline.stage import DOCS, RunContext, Stage
from pipeline.stats import StageStats, merge_counts


def _ingest_files(batch: pa.Table, corpus: CorpusConfig, files_dir: str):
    """Ray Data map_batches function: file tasks in, document batches out (a generator)."""
    for task_row in batch.to_pylist():
        ingest = FileIngest(FileTask(**task_row), corpus)
        yield from ingest.batches()
        atomic_write_json(Path(files_dir) / f"{ingest.task.task_id}.json", ingest.stats.to_dict())


class IngestStage(Stage):
    name = "ingest"
    produces = DOCS

    @classmethod
    def check(cls, config: Config) -> list[str]:
        """Every path pattern of every source matches a file."""
        return [
            f"corpus.sources.{name}.paths: no file matches {pattern!r} (relative to {Path.cwd()})"
            for name, source in config.corpus.sources.items()
            for pattern in source.paths
            if not any(Path(p).is_file() for p in glob.iglob(pattern, recursive=True))
        ]

    def settings(self):
        return self.config.corpus

    def run(self, ctx: RunContext) -> StageStats:
        corpus = self.config.corpus
        tasks = plan_files(corpus)
        files_dir = ctx.stage_dir(self.name) / "files"
        files_dir.mkdir(parents=True, exist_ok=True)
        # Parts land in scratch first: a doc_id may only be checked once every file is read.
        scratch_dir = ctx.stage_dir(self.name) / "scratch"
        sink = self.sink(ctx, S.DOCS_SCHEMA, data_dir=scratch_dir)
        (
            ray.data.from_items([asdict(t) for t in tasks], override_num_blocks=len(tasks))
            .map_batches(
                _ingest_files,
                batch_size=1,
                batch_format="pyarrow",
                fn_kwargs={"corpus": corpus, "files_dir": str(files_dir)},
            )
            .write_datasink(sink)
        )
        moved = settle_duplicate_ids(
            scratch_dir,
            ctx.data_dir(self.name),
            ctx.quarantine_dir(self.name),
            partitions=shuffle_partitions(self.config),
        )
        shutil.rmtree(scratch_dir, ignore_errors=True)
        per_file = [json.loads((files_dir / f"{t.task_id}.json").read_text()) for t in tasks]
        return StageStats(
            stage=self.name,
            rows_in=sum(f["records"] for f in per_file),
            rows_out=sink.result.rows_out - moved.rows,
            dropped=merge_counts(
                [sink.result.dropped, {Reason.DUPLICATE_ID: moved.rows} if moved.rows else {}]
            ),
            bytes_in=sum(f["bytes_in"] for f in per_file),
            bytes_out=sink.result.bytes_out - moved.bytes,
            extra={
                "files": len(tasks),
                "normalized": merge_counts(f["normalized"] for f in per_file),
                "rows_out_by_source": {
                    source: n - moved.by_source.get(source, 0)
                    for source, n in sink.result.rows_out_by.items()
                },
            },
        )
