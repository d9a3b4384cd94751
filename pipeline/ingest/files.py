"""Ingest core: expand the configured sources into files, and one file into Arrow batches.

Pure Python and Arrow, no Ray: `pipeline.ingest.stage` runs `FileIngest` once per file in Ray
tasks. Each batch has the documents schema plus the drop columns (schema.INGEST_SCHEMA):
rows with a reason are quarantined by the sink, the rest become documents.

    for task in plan_files(corpus_cfg):
        ingest = FileIngest(task, corpus_cfg)
        for batch in ingest.batches():
            ...
        ingest.stats  # records seen, bytes read, normalisations applied
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa

from pipeline import schema as S
from pipeline.config import CorpusConfig
from pipeline.ingest.normalize import normalize_text
from pipeline.ingest.readers import Reason, Record, read_file


@dataclass(frozen=True)
class FileTask:
    """One input file of one source: the unit of work (and of retry) for ingest."""

    source: str
    path: str
    key: str  # the path relative to its glob's base: a text file's record key
    fmt: str
    weight: float
    text_field: str
    id_field: str | None

    @property
    def task_id(self) -> str:
        """A stable name for this file's outputs, independent of listing order."""
        return hashlib.sha1(f"{self.source}\0{self.path}".encode()).hexdigest()[:16]


@dataclass
class FileStats:
    source: str
    path: str
    records: int = 0
    bytes_in: int = 0
    normalized: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def plan_files(corpus: CorpusConfig) -> list[FileTask]:
    """Every file the sources' globs match, once per source, in a deterministic order."""
    tasks: list[FileTask] = []
    for name in sorted(corpus.sources):
        source = corpus.sources[name]
        seen: set[str] = set()
        for pattern in source.paths:
            base = _glob_base(pattern)
            for path in _distinct_files(glob.iglob(pattern, recursive=True), seen):
                key = os.path.relpath(path, base) if base else path
                tasks.append(
                    FileTask(
                        source=name,
                        path=path,
                        key=Path(key).as_posix(),
                        fmt=source.format,
                        weight=float(source.weight),
                        text_field=source.text_field,
                        id_field=source.id_field,
                    )
                )
    return tasks


def _distinct_files(paths: Iterable[str], seen: set[str]) -> list[str]:
    """The paths that are not directories, each file once (sorted), recording it in `seen`.

    Not is_file(): a broken link or a loop must reach the reader and be reported. Once by
    real path: under ** a link to a parent directory lists each file ~40 times, and the
    shallowest route is the one to name it by. realpath follows links without the kernel's
    40-link limit, so the deepest route (a directory the kernel gives up on) is seen as one.
    """
    chosen = []
    for path in sorted(paths, key=lambda p: (p.count(os.sep), p)):
        real = os.path.realpath(path)
        if os.path.isdir(real) or real in seen:
            continue
        seen.add(real)
        chosen.append(path)
    return sorted(chosen)


def _glob_base(pattern: str) -> str:
    """The directory part of a glob before its first wildcard ('' if none)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else ""


def content_id(text: str) -> str:
    return "h:" + hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


class FileIngest:
    """Reads one file into INGEST_SCHEMA batches of at most `batch_rows` rows."""

    def __init__(self, task: FileTask, corpus: CorpusConfig):
        self.task = task
        self.corpus = corpus
        self.stats = FileStats(source=task.source, path=task.path)
        self._normalized: Counter[str] = Counter()

    def batches(self) -> Iterator[pa.Table]:
        rows: list[dict] = []
        for record in self._records():
            self.stats.records += 1
            rows.append(self._row(record))
            if len(rows) >= self.corpus.batch_rows:
                yield pa.Table.from_pylist(rows, schema=S.INGEST_SCHEMA)
                rows = []
        if rows:
            yield pa.Table.from_pylist(rows, schema=S.INGEST_SCHEMA)
        self.stats.normalized = dict(sorted(self._normalized.items()))

    def _records(self) -> Iterator[Record]:
        path = Path(self.task.path)
        with contextlib.suppress(OSError):  # the reader reports an unreadable file itself
            self.stats.bytes_in = path.stat().st_size
        yield from read_file(
            path,
            self.task.fmt,
            text_field=self.task.text_field,
            id_field=self.task.id_field,
            max_doc_bytes=self.corpus.max_doc_bytes,
            key=self.task.key,
        )

    def _row(self, record: Record) -> dict:
        task = self.task
        row = {
            S.SOURCE: task.source,
            S.PATH: task.path,
            S.LOCATION: record.location,
            S.WEIGHT: task.weight,
        }
        if record.reason is not None:
            return row | _dropped(record.reason, record.detail, record.snippet)
        text, changes = normalize_text(record.text or "", self.corpus.normalize)
        if not text.strip():
            return row | _dropped(Reason.EMPTY_TEXT, "no text after normalisation", record.text)
        self._normalized.update(changes)
        key = record.key if record.key is not None else content_id(text)
        return row | {
            S.DOC_ID: f"{task.source}/{key}",
            S.TEXT: text,
            S.N_BYTES: len(text.encode("utf-8")),
            S.NORMALIZED: list(changes),
        }


def _dropped(reason: str, detail: str | None, snippet: str | None) -> dict:
    return {
        S.DROP_REASON: reason,
        S.DROP_DETAIL: detail,
        S.SNIPPET: snippet[:200] if snippet else snippet,
    }
