"""What a stage is to the runner: a name, the config it depends on, and `run` -> stats.

A stage reads its input from the previous stage's data directory (or the sources), writes its
output through its accounting sink (`self.sink(ctx, schema)`), and returns the stats of what that
sink wrote (`self.stats(sink.result, rows_in=..., bytes_in=...)`). The runner does the rest:
timing, the accounting check, stats files, completion markers and resume.

Run-directory layout, one place for every stage:

    <run_dir>/<stage>/data/part-NNNNN.parquet     kept rows
    <run_dir>/quarantine/<stage>/part-NNNNN.parquet  dropped rows with reason and detail
    <run_dir>/<stage>/stats.json                   StageStats
    <run_dir>/<stage>/_SUCCESS                     completion marker (config fingerprint)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from pipeline import schema as S
from pipeline.config import Config
from pipeline.plumbing.sink import AccountingSink, SinkResult
from pipeline.ray_ops import parquet_parts
from pipeline.stats import StageStats

# What a stage's data directory holds, so a later stage can find its inputs by kind (the
# tokenizer wants the filtered documents *and* the filtered rewrites, wherever they come from).
DOCS = "docs"  # one row per source document (DOCS_SCHEMA and added columns)
REWRITES = "rewrites"  # one row per rewrite (REWRITES_SCHEMA and added columns)
SHARDS = "shards"  # token shards and their manifest


@dataclass(frozen=True)
class RunContext:
    run_dir: Path
    config: Config
    # The stage before the current one in run.stages (whose data is this stage's input).
    input_stage: str | None = None
    # (name, kind produced) of every stage before the current one in run.stages, in order.
    upstream: tuple[tuple[str, str], ...] = ()

    @property
    def input_dir(self) -> Path:
        if self.input_stage is None:
            raise ValueError("this stage needs an upstream stage; put one before it in run.stages")
        return self.data_dir(self.input_stage)

    def latest(self, kind: str) -> str | None:
        """The last stage before this one that produces `kind` (None if there is none)."""
        names = [name for name, produced in self.upstream if produced == kind]
        return names[-1] if names else None

    def output_of(self, kind: str) -> Path:
        """The data directory of the last upstream stage producing `kind`."""
        name = self.latest(kind)
        if name is None:
            raise ValueError(f"no stage before this one in run.stages produces {kind}")
        return self.data_dir(name)

    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / stage

    def data_dir(self, stage: str) -> Path:
        return self.run_dir / stage / "data"

    def quarantine_dir(self, stage: str) -> Path:
        return self.run_dir / "quarantine" / stage


class Stage(ABC):
    name: ClassVar[str]
    # DOCS, REWRITES or SHARDS: what its data directory holds.
    produces: ClassVar[str]

    def __init__(self, config: Config):
        self.config = config

    @classmethod
    def check(cls, config: Config) -> list[str]:
        """'key: problem' lines for what only this stage's code can tell (a tokenizer file);
        the runner asks every stage in run.stages before any work, after `validate`."""
        return []

    @abstractmethod
    def settings(self) -> Any:
        """The config this stage's output depends on; a change reruns the stage."""

    @abstractmethod
    def run(self, ctx: RunContext) -> StageStats:
        """Do the work and return its accounting; `seconds` is filled in by the runner."""

    def sink(
        self,
        ctx: RunContext,
        schema: pa.Schema,
        *,
        count_by: str | None = S.SOURCE,
        data_dir: Path | None = None,
    ) -> AccountingSink:
        """The stage's accounting sink: kept rows (`schema`) to its data directory, or to
        `data_dir` (a scratch directory settled later), dropped rows to its quarantine; kept
        rows counted per `count_by` value, bytes as the text's UTF-8 size (S.N_BYTES)."""
        return AccountingSink(
            data_dir or ctx.data_dir(self.name),
            ctx.quarantine_dir(self.name),
            schema,
            count_by=count_by,
            size_column=S.N_BYTES,
        )

    def written_parts(self, ctx: RunContext) -> list[str]:
        """Every Parquet part the stage wrote: its data's, then its quarantine's."""
        return parquet_parts(ctx.data_dir(self.name)) + parquet_parts(ctx.quarantine_dir(self.name))

    def stats(
        self, written: SinkResult, *, rows_in: int, bytes_in: int, extra: dict[str, Any]
    ) -> StageStats:
        """The stage's accounting: rows and bytes in as the stage counted them, rows out, drops
        by reason and bytes out as its sink wrote them (one pass, so the check means something)."""
        return StageStats(
            stage=self.name,
            rows_in=rows_in,
            rows_out=written.rows_out,
            dropped=written.dropped,
            bytes_in=bytes_in,
            bytes_out=written.bytes_out,
            extra=extra,
        )
