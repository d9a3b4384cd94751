"""Readers for JSONL (plain, .gz, .zst), Parquet and text files: records or reasons, never both.

Each reader turns one file into a stream of `Record`s. A good record has text; a bad one has
a reason from `Reason` and a detail, so the ingest stage can quarantine it and count it.
Nothing here raises for bad *data*: a file that cannot be opened or ends early becomes one
more record with a reason, and every record that was read before stays good. Only regular
files are opened: a FIFO or a device behind a data file's name would block or never end.

    for record in read_file(Path("a.jsonl.gz"), "jsonl", text_field="text", id_field="id",
                            max_doc_bytes=2_000_000):
        ...
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ingest.compression import (
    CorruptArchive,
    TruncatedArchive,
    compression_of,
    open_binary,
)
from pipeline.plumbing.snippets import SNIPPET_CHARS, snippet

# A JSON line may carry escapes (\uXXXX is 6 bytes for one character) and other fields.
_LINE_OVERHEAD = 6
_SKIP_CHUNK = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"


class Reason:
    """Why a record was set aside; these names appear in stats and in quarantine/."""

    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_TEXT = "missing_text"
    NON_STRING_TEXT = "non_string_text"
    INVALID_ID = "invalid_id"
    EMPTY_TEXT = "empty_text"
    TOO_LARGE = "too_large"
    TRUNCATED_ARCHIVE = "truncated_archive"
    CORRUPT_ARCHIVE = "corrupt_archive"
    UNREADABLE_FILE = "unreadable_file"
    UNKNOWN_FORMAT = "unknown_format"
    DUPLICATE_ID = "duplicate_id"  # set by pipeline.ingest.duplicate_ids, after all files are read


@dataclass(frozen=True, slots=True)
class Record:
    location: int | None  # 1-based line (JSONL), 0-based row (Parquet), None (text file)
    key: str | None = None  # the record's own id, when it has one
    text: str | None = None
    reason: str | None = None
    detail: str | None = None
    snippet: str | None = None


def format_of(path: Path) -> str:
    """The reader for a path by its extension, looking through .gz / .zst."""
    name = path.name.lower()
    for suffix in (".gz", ".gzip", ".zst", ".zstd"):
        name = name.removesuffix(suffix)
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".txt"):
        return "text"
    raise ValueError(f"{path}: unknown file type; set the source's format explicitly")


def read_file(
    path: Path,
    fmt: str,
    *,
    text_field: str,
    id_field: str | None,
    max_doc_bytes: int,
    key: str | None = None,
) -> Iterator[Record]:
    """All records of one file. `key` names a text file's single document."""
    if fmt == "auto":
        try:
            fmt = format_of(path)
        except ValueError as e:  # a stray file in a matched folder: set aside, not fatal
            yield Record(None, reason=Reason.UNKNOWN_FORMAT, detail=str(e))
            return
    try:
        # A FIFO or a device (a link to /dev/zero named x.jsonl) would block or never end.
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            yield Record(None, reason=Reason.UNREADABLE_FILE, detail=f"{path}: {kind}")
            return
        if fmt == "jsonl":
            yield from _read_jsonl(path, text_field, id_field, max_doc_bytes)
        elif fmt == "parquet":
            yield from _read_parquet(path, text_field, id_field, max_doc_bytes)
        elif fmt == "text":
            yield from _read_text(path, key, max_doc_bytes)
        else:
            raise ValueError(f"unknown format {fmt!r}")
    except OSError as e:  # unreadable, vanished, a directory, a symlink loop...
        yield Record(None, reason=Reason.UNREADABLE_FILE, detail=f"{type(e).__name__}: {e}")


# --- JSONL --------------------------------------------------------------------------------


def _read_jsonl(path: Path, text_field: str, id_field: str | None, max_doc_bytes: int):
    max_line = max_doc_bytes * _LINE_OVERHEAD + 4096
    line_no = 0
    with open_binary(path) as fh:
        try:
            for line_no, line, size in _lines(fh, max_line):
                if line_no == 1 and line is not None and line.startswith(_UTF8_BOM):
                    line = line[len(_UTF8_BOM) :]  # Windows tools start files with one
                if line is None:
                    yield Record(line_no, reason=Reason.TOO_LARGE, detail=f"line of {size} bytes")
                elif line.strip():  # blank lines separate nothing in JSONL: not records
                    yield _parse_json_line(line_no, line, text_field, id_field, max_doc_bytes)
        except TruncatedArchive as e:
            yield Record(line_no + 1, reason=Reason.TRUNCATED_ARCHIVE, detail=str(e))
        except CorruptArchive as e:
            yield Record(line_no + 1, reason=Reason.CORRUPT_ARCHIVE, detail=str(e))


def _lines(fh: BinaryIO, max_line: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, bytes, size); bytes is None for a line over max_line, never held whole."""
    line_no = 0
    while line := fh.readline(max_line + 1):
        line_no += 1
        if len(line) <= max_line or line.endswith(b"\n"):
            yield line_no, line, len(line)
            continue
        size = len(line)
        while rest := fh.readline(_SKIP_CHUNK):
            size += len(rest)
            if rest.endswith(b"\n"):
                break
        yield line_no, None, size


def _parse_json_line(
    line_no: int, line: bytes, text_field: str, id_field: str | None, max_doc_bytes: int
) -> Record:
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return Record(line_no, reason=Reason.INVALID_UTF8, detail=str(e), snippet=_snip(line))
    try:
        obj = json.loads(decoded)
    except (ValueError, RecursionError) as e:
        # ValueError beyond JSONDecodeError: an integer of over 4300 digits (Python's limit).
        detail = str(e) if isinstance(e, ValueError) else "nested too deeply"
        return Record(line_no, reason=Reason.INVALID_JSON, detail=detail, snippet=_snip(decoded))
    if not isinstance(obj, dict):
        return Record(
            line_no,
            reason=Reason.NOT_AN_OBJECT,
            detail=f"a JSON {type(obj).__name__}, not an object",
            snippet=_snip(decoded),
        )
    return _from_fields(line_no, obj, text_field, id_field, max_doc_bytes, decoded)


def _from_fields(
    location: int,
    obj: dict[str, Any],
    text_field: str,
    id_field: str | None,
    max_doc_bytes: int,
    raw: str | None = None,
) -> Record:
    snippet = _snip(raw) if raw is not None else None
    if text_field not in obj or obj[text_field] is None:
        return Record(
            location,
            reason=Reason.MISSING_TEXT,
            detail=f"{text_field!r} is null" if text_field in obj else f"no {text_field!r} field",
            snippet=snippet,
        )
    text = obj[text_field]
    if not isinstance(text, str):
        detail = f"{text_field!r} is a {type(text).__name__}, not a string"
        return Record(location, reason=Reason.NON_STRING_TEXT, detail=detail, snippet=snippet)
    key = None
    if id_field is not None and obj.get(id_field) is not None:
        raw_key = obj[id_field]
        if isinstance(raw_key, bool) or not isinstance(raw_key, (str, int)):
            detail = f"{id_field!r} is a {type(raw_key).__name__}, not a string or integer"
            return Record(location, reason=Reason.INVALID_ID, detail=detail, snippet=snippet)
        key = str(raw_key)
        try:
            key.encode("utf-8")
        except UnicodeEncodeError as e:  # a \ud800 escape in the id: Arrow cannot store it
            detail = f"{id_field!r}: {e}"
            return Record(location, reason=Reason.INVALID_UTF8, detail=detail, snippet=snippet)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as e:  # a JSON \ud800 escape decodes to a lone surrogate
        return Record(location, key=key, reason=Reason.INVALID_UTF8, detail=str(e), snippet=snippet)
    if size > max_doc_bytes:
        detail = f"{size} bytes > corpus.max_doc_bytes={max_doc_bytes}"
        return Record(
            location, key=key, reason=Reason.TOO_LARGE, detail=detail, snippet=_snip(text)
        )
    return Record(location, key=key, text=text)


# --- Parquet ------------------------------------------------------------------------------


def _read_parquet(path: Path, text_field: str, id_field: str | None, max_doc_bytes: int):
    try:
        pfile = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        yield Record(
            None, reason=Reason.UNREADABLE_FILE, detail=f"not a readable Parquet file: {e}"
        )
        return
    names = set(pfile.schema_arrow.names)
    columns = [c for c in (text_field, id_field) if c is not None and c in names]
    row = 0
    try:
        if not columns:  # no text column at all: every row is missing its text
            for row in range(pfile.metadata.num_rows):
                yield Record(row, reason=Reason.MISSING_TEXT, detail=f"no {text_field!r} column")
            return
        for batch in pfile.iter_batches(batch_size=1024, columns=columns):
            for obj in batch.to_pylist():
                yield _from_fields(row, obj, text_field, id_field, max_doc_bytes)
                row += 1
    except (pa.ArrowException, OSError) as e:
        yield Record(
            row, reason=Reason.UNREADABLE_FILE, detail=f"Parquet read failed at row {row}: {e}"
        )


# --- text files ---------------------------------------------------------------------------


def _read_text(path: Path, key: str | None, max_doc_bytes: int):
    if compression_of(path) is not None:  # format_of looks through .gz / .zst: so do we
        yield _read_compressed_text(path, key, max_doc_bytes)
        return
    size = path.stat().st_size
    if size > max_doc_bytes:
        detail = f"{size} bytes > corpus.max_doc_bytes={max_doc_bytes}"
        with open(path, "rb") as fh:
            head = fh.read(SNIPPET_CHARS)
        yield Record(None, key=key, reason=Reason.TOO_LARGE, detail=detail, snippet=_snip(head))
        return
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        yield Record(None, key=key, reason=Reason.INVALID_UTF8, detail=str(e), snippet=_snip(data))
        return
    yield Record(None, key=key, text=text)


def _read_compressed_text(path: Path, key: str | None, max_doc_bytes: int) -> Record:
    with open_binary(path) as fh:
        try:
            data = fh.read(max_doc_bytes + 1)  # never more than one byte past the limit
        except TruncatedArchive as e:
            return Record(None, key=key, reason=Reason.TRUNCATED_ARCHIVE, detail=str(e))
        except CorruptArchive as e:
            return Record(None, key=key, reason=Reason.CORRUPT_ARCHIVE, detail=str(e))
    if len(data) > max_doc_bytes:
        detail = f"over corpus.max_doc_bytes={max_doc_bytes} bytes once decompressed"
        return Record(None, key=key, reason=Reason.TOO_LARGE, detail=detail, snippet=_snip(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return Record(None, key=key, reason=Reason.INVALID_UTF8, detail=str(e), snippet=_snip(data))
    return Record(None, key=key, text=text)


def _snip(value: str | bytes) -> str:
    if isinstance(value, bytes):
        value = value[: SNIPPET_CHARS * 4].decode("utf-8", "backslashreplace")
    return snippet(value)
