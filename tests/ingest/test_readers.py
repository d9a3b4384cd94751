"""Readers: good records with keys and locations, and every bad kind as a Record with a Reason."""

from __future__ import annotations

import gzip
import json
import os
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from pipeline.ingest.readers import Reason, Record, format_of, read_file

MAX = 10_000


def read(path: Path, fmt: str = "auto", *, max_doc_bytes: int = MAX, **kw) -> list[Record]:
    kw.setdefault("text_field", "text")
    kw.setdefault("id_field", "id")
    return list(read_file(path, fmt, max_doc_bytes=max_doc_bytes, **kw))


def jsonl(*objs) -> bytes:
    """One line per item: dicts and lists are dumped, bytes and str are written as they are."""
    out = []
    for obj in objs:
        if isinstance(obj, bytes):
            out.append(obj)
        elif isinstance(obj, str):
            out.append(obj.encode("utf-8"))
        else:
            out.append(json.dumps(obj).encode("utf-8"))
    return b"\n".join(out) + b"\n"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def write_jsonl(tmp_path: Path, *objs, name: str = "a.jsonl") -> Path:
    return write(tmp_path, name, jsonl(*objs))


def only_bad(records: list[Record]) -> Record:
    """The single record of a one-line file, asserted bad."""
    assert len(records) == 1, records
    (record,) = records
    assert record.reason is not None and record.text is None
    assert record.detail
    return record


COMPRESS = {"": lambda b: b, ".gz": gzip.compress, ".zst": zstandard.ZstdCompressor().compress}
GOOD = [{"id": "a", "text": "first"}, {"id": 7, "text": "second"}, {"text": "no id"}]


# --- format_of ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.jsonl", "jsonl"),
        ("a.json", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.jsonl.gz", "jsonl"),
        ("a.jsonl.gzip", "jsonl"),
        ("a.json.zst", "jsonl"),
        ("a.ndjson.zstd", "jsonl"),
        ("A.JSONL.GZ", "jsonl"),
        ("a.parquet", "parquet"),
        ("a.txt", "text"),
        ("a.txt.gz", "text"),
        ("dir.jsonl/a.txt", "text"),
    ],
)
def test_format_of(name, fmt):
    assert format_of(Path(name)) == fmt


@pytest.mark.parametrize("name", ["a.csv", "a.gz", "README", "a.jsonl.bz2", "a.zst"])
def test_format_of_unknown_extension_raises(name):
    with pytest.raises(ValueError, match="unknown file type"):
        format_of(Path(name))


def test_auto_format_sets_aside_a_file_of_unknown_type(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("a,b\n")
    (record,) = read(path, "auto")
    assert record.reason == Reason.UNKNOWN_FORMAT and "unknown file type" in record.detail


def test_unknown_explicit_format_raises(tmp_path):
    path = write_jsonl(tmp_path, *GOOD)
    with pytest.raises(ValueError, match="unknown format"):
        read(path, "csv")


# --- JSONL: good records --------------------------------------------------------------------


@pytest.mark.parametrize("suffix", COMPRESS)
def test_jsonl_good_records_with_keys_and_line_numbers(tmp_path, suffix):
    path = write(tmp_path, "a.jsonl" + suffix, COMPRESS[suffix](jsonl(*GOOD)))
    assert read(path) == [
        Record(1, key="a", text="first"),
        Record(2, key="7", text="second"),
        Record(3, key=None, text="no id"),
    ]


def test_jsonl_explicit_format_ignores_extension(tmp_path):
    path = write(tmp_path, "data.log", jsonl(*GOOD))
    assert [r.text for r in read(path, "jsonl")] == ["first", "second", "no id"]


def test_jsonl_blank_lines_are_skipped_but_counted(tmp_path):
    data = b'\n{"text": "a"}\n   \n\t\r\n{"text": "b"}\n\n'
    path = write(tmp_path, "a.jsonl", data)
    assert [(r.location, r.text) for r in read(path)] == [(2, "a"), (5, "b")]


def test_jsonl_last_line_without_newline_and_crlf_line_ends(tmp_path):
    path = write(tmp_path, "a.jsonl", b'{"text": "a"}\r\n{"text": "b"}')
    assert [(r.location, r.text) for r in read(path)] == [(1, "a"), (2, "b")]


def test_jsonl_custom_fields_and_no_id_field(tmp_path):
    path = write_jsonl(tmp_path, {"body": "x", "uid": "u1", "id": "ignored"})
    assert read(path, text_field="body", id_field="uid") == [Record(1, key="u1", text="x")]
    assert read(path, text_field="body", id_field=None) == [Record(1, key=None, text="x")]


def test_jsonl_null_id_means_no_key(tmp_path):
    path = write_jsonl(tmp_path, {"id": None, "text": "x"})
    assert read(path) == [Record(1, key=None, text="x")]


def test_jsonl_unicode_text_and_escapes(tmp_path):
    path = write_jsonl(tmp_path, '{"text": "caf\\u00e9 \\ud83d\\ude00 \\u4e2d"}')
    assert read(path)[0].text == "café 😀 中"


def test_jsonl_text_exactly_at_the_limit_is_good(tmp_path):
    path = write_jsonl(tmp_path, {"text": "é" * 50})  # 100 UTF-8 bytes
    assert read(path, max_doc_bytes=100)[0].text == "é" * 50
    assert read(path, max_doc_bytes=99)[0].reason == Reason.TOO_LARGE


# --- JSONL: bad records ---------------------------------------------------------------------


def test_invalid_json(tmp_path):
    path = write_jsonl(tmp_path, '{"text": "a",}')
    bad = only_bad(read(path))
    assert (bad.location, bad.reason) == (1, Reason.INVALID_JSON)
    assert "Expecting property name" in bad.detail
    assert "column 14" in bad.detail
    assert bad.snippet.startswith('{"text": "a",}')


def test_invalid_json_does_not_stop_the_file(tmp_path):
    path = write_jsonl(tmp_path, {"text": "a"}, "{oops", {"text": "b"})
    records = read(path)
    assert [(r.location, r.reason, r.text) for r in records] == [
        (1, None, "a"),
        (2, Reason.INVALID_JSON, None),
        (3, None, "b"),
    ]


@pytest.mark.parametrize("line", ["[" * 100_000, '{"a":' * 100_000])
def test_deeply_nested_json_is_invalid_json_not_a_crash(tmp_path, line):
    path = write_jsonl(tmp_path, line, {"text": "after"})
    records = read(path, max_doc_bytes=1_000_000)
    assert records[0].reason == Reason.INVALID_JSON
    assert records[0].location == 1
    assert len(records[0].snippet) <= 200
    assert records[1] == Record(2, text="after")


def test_recursion_error_detail_says_nested(tmp_path):
    path = write_jsonl(tmp_path, "[" * 100_000 + "]" * 100_000)
    bad = only_bad(read(path, max_doc_bytes=1_000_000))
    assert bad.reason == Reason.INVALID_JSON
    assert "nested too deeply" in bad.detail


def test_invalid_utf8_latin1_byte_in_a_line(tmp_path):
    path = write_jsonl(tmp_path, {"text": "ok"}, b'{"text": "caf\xe9"}', {"text": "ok too"})
    records = read(path)
    assert [r.reason for r in records] == [None, Reason.INVALID_UTF8, None]
    bad = records[1]
    assert bad.location == 2
    assert "can't decode byte 0xe9" in bad.detail
    assert "\\xe9" in bad.snippet  # the raw byte, shown escaped


def test_lone_surrogate_escape_in_text_is_invalid_utf8(tmp_path):
    path = write_jsonl(tmp_path, '{"id": "s1", "text": "bad \\ud800 half"}')
    bad = only_bad(read(path))
    assert (bad.location, bad.reason, bad.key) == (1, Reason.INVALID_UTF8, "s1")
    assert "surrogates not allowed" in bad.detail
    assert bad.snippet.encode("utf-8")  # the snippet itself is storable


def test_lone_surrogate_escape_in_id_is_invalid_utf8(tmp_path):
    path = write_jsonl(tmp_path, '{"id": "\\udc00", "text": "fine"}')
    bad = only_bad(read(path))
    assert bad.reason == Reason.INVALID_UTF8
    assert "'id'" in bad.detail
    assert bad.key is None


def test_paired_surrogate_escape_is_fine(tmp_path):
    path = write_jsonl(tmp_path, '{"text": "\\ud83d\\ude00"}')
    assert read(path)[0].text == "😀"


@pytest.mark.parametrize(
    ("line", "kind"),
    [("[1, 2, 3]", "list"), ("42", "int"), ('"just a string"', "str"), ("null", "NoneType")],
)
def test_not_an_object(tmp_path, line, kind):
    bad = only_bad(read(write_jsonl(tmp_path, line)))
    assert bad.reason == Reason.NOT_AN_OBJECT
    assert bad.detail == f"a JSON {kind}, not an object"
    assert bad.snippet == line + "\n"


@pytest.mark.parametrize("obj", [{"id": 1}, {"id": 1, "text": None}, {"body": "x"}])
def test_missing_text(tmp_path, obj):
    bad = only_bad(read(write_jsonl(tmp_path, obj)))
    assert bad.reason == Reason.MISSING_TEXT
    assert "'text'" in bad.detail


@pytest.mark.parametrize(
    ("value", "kind"), [(5, "int"), (1.5, "float"), (["a"], "list"), ({"a": 1}, "dict")]
)
def test_non_string_text(tmp_path, value, kind):
    bad = only_bad(read(write_jsonl(tmp_path, {"text": value})))
    assert bad.reason == Reason.NON_STRING_TEXT
    assert bad.detail == f"'text' is a {kind}, not a string"


@pytest.mark.parametrize(
    ("value", "kind"), [({"a": 1}, "dict"), (True, "bool"), ([1], "list"), (1.0, "float")]
)
def test_invalid_id(tmp_path, value, kind):
    bad = only_bad(read(write_jsonl(tmp_path, {"id": value, "text": "x"})))
    assert bad.reason == Reason.INVALID_ID
    assert bad.detail == f"'id' is a {kind}, not a string or integer"


def test_jsonl_text_above_max_doc_bytes_is_too_large(tmp_path):
    path = write_jsonl(tmp_path, {"id": "big", "text": "x" * 500}, {"text": "small"})
    records = read(path, max_doc_bytes=100)
    bad = records[0]
    assert (bad.location, bad.reason, bad.key) == (1, Reason.TOO_LARGE, "big")
    assert bad.detail == "500 bytes > corpus.max_doc_bytes=100"
    assert bad.snippet == "x" * 200
    assert records[1] == Record(2, text="small")


def test_jsonl_line_far_above_the_limit_is_skipped_without_reading_it_whole(tmp_path):
    max_doc_bytes = 1_000  # a line limit of 6 * 1000 + 4096 bytes
    huge = b'{"text": "' + b"y" * 16_000_000 + b'"}'
    path = write_jsonl(tmp_path, {"text": "before"}, huge, {"id": "n", "text": "after"})
    tracemalloc.start()
    try:
        records = read(path, max_doc_bytes=max_doc_bytes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert records[0] == Record(1, text="before")
    assert records[1].location == 2
    assert records[1].reason == Reason.TOO_LARGE
    assert records[1].detail == f"line of {len(huge) + 1} bytes"
    assert records[2] == Record(3, key="n", text="after")
    assert peak < 6_000_000, f"peak {peak} bytes: the 16 MB line was held whole"


def test_jsonl_overlong_last_line_without_newline(tmp_path):
    path = write(tmp_path, "a.jsonl", b'{"text": "a"}\n' + b"z" * 50_000)
    records = read(path, max_doc_bytes=100)
    assert records[1].reason == Reason.TOO_LARGE
    assert records[1].detail == "line of 50000 bytes"


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_overlong_line_inside_an_archive_is_skipped(tmp_path, suffix):
    data = jsonl({"text": "a"}, "q" * 200_000, {"text": "b"})
    path = write(tmp_path, "a.jsonl" + suffix, COMPRESS[suffix](data))
    records = read(path, max_doc_bytes=100)
    assert [(r.location, r.reason) for r in records] == [
        (1, None),
        (2, Reason.TOO_LARGE),
        (3, None),
    ]


# --- archives -------------------------------------------------------------------------------


def many_lines(n: int) -> list[dict]:
    # Varied text so the archive is large enough to hold many blocks before any cut.
    return [{"id": i, "text": os.urandom(150).hex()} for i in range(n)]


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_truncated_archive_keeps_records_before_the_cut(tmp_path, suffix):
    objs = many_lines(6000)
    data = COMPRESS[suffix](jsonl(*objs))
    path = write(tmp_path, "a.jsonl" + suffix, data[: len(data) // 2])
    records = read(path, max_doc_bytes=1000)
    *good, last = records
    assert len(good) > 1000
    assert all(r.reason is None for r in good)
    assert [r.text for r in good] == [o["text"] for o in objs[: len(good)]]
    assert [r.location for r in good] == list(range(1, len(good) + 1))
    assert last.reason == Reason.TRUNCATED_ARCHIVE
    assert last.location == len(good) + 1
    assert "ended" in last.detail


def test_gzip_cut_in_the_trailer_keeps_every_record(tmp_path):
    objs = many_lines(2000)
    path = write(tmp_path, "a.jsonl.gz", gzip.compress(jsonl(*objs))[:-1])
    *good, last = read(path, max_doc_bytes=1000)
    assert [r.text for r in good] == [o["text"] for o in objs]
    assert (last.location, last.reason) == (2001, Reason.TRUNCATED_ARCHIVE)


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_small_archive_cut_at_the_last_byte_is_truncated(tmp_path, suffix):
    data = COMPRESS[suffix](jsonl(*GOOD))
    path = write(tmp_path, "a.jsonl" + suffix, data[:-1])
    records = read(path)
    assert records[-1].reason == Reason.TRUNCATED_ARCHIVE
    assert all(r.reason is None for r in records[:-1])


def test_zstd_cut_inside_second_frame_keeps_first_frame(tmp_path):
    cctx = zstandard.ZstdCompressor()
    second = cctx.compress(jsonl(*many_lines(10)))
    data = cctx.compress(jsonl(*GOOD)) + second[: len(second) // 2]
    records = read(write(tmp_path, "a.jsonl.zst", data))
    assert [r.text for r in records[:3]] == ["first", "second", "no id"]
    assert (records[3].location, records[3].reason) == (4, Reason.TRUNCATED_ARCHIVE)


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_garbage_archive_is_corrupt(tmp_path, suffix):
    path = write(tmp_path, "a.jsonl" + suffix, b"not an archive at all\n" * 20)
    bad = only_bad(read(path))
    assert (bad.location, bad.reason) == (1, Reason.CORRUPT_ARCHIVE)
    assert "corrupt" in bad.detail


def test_gzip_with_trailing_garbage_keeps_records_then_corrupt(tmp_path):
    path = write(tmp_path, "a.jsonl.gz", gzip.compress(jsonl(*GOOD)) + b"trailing junk")
    records = read(path)
    assert [r.text for r in records[:3]] == ["first", "second", "no id"]
    assert (records[3].location, records[3].reason) == (4, Reason.CORRUPT_ARCHIVE)


# --- Parquet --------------------------------------------------------------------------------


def write_parquet(tmp_path: Path, table: pa.Table, name: str = "a.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(table, path, row_group_size=2)
    return path


def test_parquet_good_rows_with_keys_and_zero_based_rows(tmp_path):
    table = pa.table({"id": ["a", None, "c"], "text": ["one", "two", "three"], "x": [1, 2, 3]})
    assert read(write_parquet(tmp_path, table)) == [
        Record(0, key="a", text="one"),
        Record(1, key=None, text="two"),
        Record(2, key="c", text="three"),
    ]


def test_parquet_integer_ids_and_large_string_text(tmp_path):
    table = pa.table(
        {"id": pa.array([10, 11], pa.int64()), "text": pa.array(["a", "b"], pa.large_string())}
    )
    assert read(write_parquet(tmp_path, table)) == [
        Record(0, key="10", text="a"),
        Record(1, key="11", text="b"),
    ]


def test_parquet_without_id_column(tmp_path):
    table = pa.table({"text": ["a", "b"]})
    assert [r.key for r in read(write_parquet(tmp_path, table))] == [None, None]


def test_parquet_rows_across_many_batches_keep_counting(tmp_path):
    table = pa.table({"text": [f"t{i}" for i in range(2500)]})
    records = read(write_parquet(tmp_path, table))
    assert [r.location for r in records] == list(range(2500))
    assert records[-1].text == "t2499"


def test_parquet_null_text_is_missing(tmp_path):
    table = pa.table({"id": ["a", "b"], "text": ["ok", None]})
    records = read(write_parquet(tmp_path, table))
    assert records[0] == Record(0, key="a", text="ok")
    assert (records[1].location, records[1].reason) == (1, Reason.MISSING_TEXT)


def test_parquet_without_text_column_gives_one_missing_text_per_row(tmp_path):
    table = pa.table({"body": ["a", "b", "c"]})
    records = read(write_parquet(tmp_path, table), id_field=None)
    assert [(r.location, r.reason) for r in records] == [(i, Reason.MISSING_TEXT) for i in range(3)]
    assert all("'text'" in r.detail for r in records)


def test_parquet_without_text_column_but_with_id_column(tmp_path):
    table = pa.table({"id": ["a", "b"], "body": ["x", "y"]})
    records = read(write_parquet(tmp_path, table))
    assert [(r.location, r.reason) for r in records] == [
        (0, Reason.MISSING_TEXT),
        (1, Reason.MISSING_TEXT),
    ]


def test_parquet_integer_text_column_is_non_string(tmp_path):
    table = pa.table({"text": pa.array([1, 2], pa.int32())})
    records = read(write_parquet(tmp_path, table))
    assert [r.reason for r in records] == [Reason.NON_STRING_TEXT] * 2
    assert records[0].detail == "'text' is a int, not a string"


def test_parquet_text_above_max_doc_bytes(tmp_path):
    table = pa.table({"id": ["s", "l"], "text": ["short", "x" * 300]})
    records = read(write_parquet(tmp_path, table), max_doc_bytes=100)
    assert records[0].text == "short"
    assert (records[1].location, records[1].reason, records[1].key) == (
        1,
        Reason.TOO_LARGE,
        "l",
    )


def test_parquet_float_id_is_invalid(tmp_path):
    table = pa.table({"id": [1.5], "text": ["x"]})
    bad = only_bad(read(write_parquet(tmp_path, table)))
    assert bad.reason == Reason.INVALID_ID


def test_corrupt_parquet_is_unreadable(tmp_path):
    path = write(tmp_path, "a.parquet", b"PAR1 this is not really parquet")
    bad = only_bad(read(path))
    assert (bad.location, bad.reason) == (None, Reason.UNREADABLE_FILE)
    assert "Parquet" in bad.detail


def test_truncated_parquet_is_unreadable(tmp_path):
    good = write_parquet(tmp_path, pa.table({"text": ["a" * 100] * 50}))
    data = good.read_bytes()
    path = write(tmp_path, "cut.parquet", data[: len(data) // 2])
    assert only_bad(read(path)).reason == Reason.UNREADABLE_FILE


# --- text files -----------------------------------------------------------------------------


def test_text_file_is_one_record_with_the_given_key(tmp_path):
    path = write(tmp_path, "a.txt", b"Hamlet.\nTo be, or not to be.\n")
    assert read(path, key="plays/a.txt") == [
        Record(None, key="plays/a.txt", text="Hamlet.\nTo be, or not to be.\n")
    ]


def test_text_file_is_read_verbatim(tmp_path):
    data = "\ufeff  café\r\n\x00 ".encode()
    path = write(tmp_path, "a.txt", data)
    assert read(path)[0].text == data.decode("utf-8")


def test_empty_text_file_is_an_empty_good_record(tmp_path):
    assert read(write(tmp_path, "a.txt", b"")) == [Record(None, text="")]


def test_text_file_invalid_utf8(tmp_path):
    path = write(tmp_path, "a.txt", b"Caf\xe9 au lait\n")
    bad = only_bad(read(path, key="k"))
    assert (bad.location, bad.reason, bad.key) == (None, Reason.INVALID_UTF8, "k")
    assert "0xe9" in bad.detail
    assert bad.snippet == "Caf\\xe9 au lait\n"


def test_text_file_above_the_limit_is_too_large(tmp_path):
    path = write(tmp_path, "a.txt", b"w" * 5000)
    bad = only_bad(read(path, max_doc_bytes=1000, key="k"))
    assert (bad.reason, bad.key) == (Reason.TOO_LARGE, "k")
    assert bad.detail == "5000 bytes > corpus.max_doc_bytes=1000"
    assert bad.snippet == "w" * 200


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_text_file_is_decompressed(tmp_path, suffix):
    path = write(tmp_path, "a.txt" + suffix, COMPRESS[suffix]("café\n".encode()))
    assert read(path, key="k") == [Record(None, key="k", text="café\n")]


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_text_file_above_the_limit_is_too_large(tmp_path, suffix):
    path = write(tmp_path, "a.txt" + suffix, COMPRESS[suffix](b"w" * 5000))
    bad = only_bad(read(path, max_doc_bytes=1000))
    assert bad.reason == Reason.TOO_LARGE
    assert "1000" in bad.detail


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_text_file_truncated_and_corrupt(tmp_path, suffix):
    data = COMPRESS[suffix](b"some text\n" * 100)
    cut = write(tmp_path, "cut.txt" + suffix, data[:-1])
    assert only_bad(read(cut)).reason == Reason.TRUNCATED_ARCHIVE
    junk = write(tmp_path, "junk.txt" + suffix, b"junk" * 10)
    assert only_bad(read(junk)).reason == Reason.CORRUPT_ARCHIVE


# --- unreadable files -----------------------------------------------------------------------

KINDS = ["a.jsonl", "a.jsonl.gz", "a.jsonl.zst", "a.parquet", "a.txt"]


@pytest.mark.parametrize("name", KINDS)
def test_broken_symlink_is_unreadable(tmp_path, name):
    path = tmp_path / name
    path.symlink_to(tmp_path / "does-not-exist")
    bad = only_bad(read(path))
    assert (bad.location, bad.reason) == (None, Reason.UNREADABLE_FILE)
    assert "does-not-exist" in bad.detail or "No such file" in bad.detail


@pytest.mark.parametrize("name", KINDS)
def test_symlink_loop_is_unreadable(tmp_path, name):
    a, b = tmp_path / name, tmp_path / ("b_" + name)
    a.symlink_to(b)
    b.symlink_to(a)
    bad = only_bad(read(a))
    assert bad.reason == Reason.UNREADABLE_FILE
    assert "symbolic links" in bad.detail or "Too many levels" in bad.detail


@pytest.mark.parametrize("name", KINDS)
def test_directory_is_unreadable(tmp_path, name):
    path = tmp_path / name
    path.mkdir()
    assert only_bad(read(path)).reason == Reason.UNREADABLE_FILE


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
@pytest.mark.parametrize("name", KINDS)
def test_file_without_read_permission_is_unreadable(tmp_path, name):
    path = write(tmp_path, name, jsonl(*GOOD))
    path.chmod(0)
    try:
        bad = only_bad(read(path))
    finally:
        path.chmod(0o644)
    assert bad.reason == Reason.UNREADABLE_FILE
    assert "Permission" in bad.detail


def test_file_vanished_before_reading_is_unreadable(tmp_path):
    bad = only_bad(read(tmp_path / "gone.jsonl"))
    assert bad.reason == Reason.UNREADABLE_FILE
    assert bad.detail.startswith("FileNotFoundError")
