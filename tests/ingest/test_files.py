"""plan_files and FileIngest: which files are read, and the INGEST_SCHEMA rows they become."""

from __future__ import annotations

import gzip
import json
import os
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline import schema as S
from pipeline.config import CorpusConfig, NormalizeConfig, SourceConfig
from pipeline.ingest.files import FileIngest, FileTask, content_id, plan_files
from pipeline.ingest.readers import Reason

# content_id("hello world"): pinned so that a change of hash function or digest size, which
# would silently change every doc_id of every earlier run, fails here.
HELLO_WORLD_ID = "h:878633aa32a3b150"


def touch(path: Path, data: bytes = b'{"text": "x"}\n') -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def corpus(**sources: SourceConfig) -> CorpusConfig:
    return CorpusConfig(name="test", sources=dict(sources))


def task_for(
    path: Path,
    *,
    source: str = "src",
    fmt: str = "auto",
    weight: float = 1.0,
    key: str | None = None,
    id_field: str | None = "id",
) -> FileTask:
    return FileTask(
        source=source,
        path=str(path),
        key=key if key is not None else path.name,
        fmt=fmt,
        weight=weight,
        text_field="text",
        id_field=id_field,
    )


def ingest(task: FileTask, **corpus_kw) -> tuple[pa.Table, FileIngest]:
    job = FileIngest(task, CorpusConfig(name="test", **corpus_kw))
    batches = list(job.batches())
    for batch in batches:
        assert batch.schema == S.INGEST_SCHEMA
    table = pa.concat_tables(batches) if batches else S.INGEST_SCHEMA.empty_table()
    return table, job


def write_jsonl(path: Path, *objs) -> Path:
    lines = [o if isinstance(o, str) else json.dumps(o) for o in objs]
    return touch(path, ("\n".join(lines) + "\n").encode("utf-8"))


def good(table: pa.Table) -> list[dict]:
    return [r for r in table.to_pylist() if r[S.DROP_REASON] is None]


def dropped(table: pa.Table) -> list[dict]:
    return [r for r in table.to_pylist() if r[S.DROP_REASON] is not None]


# --- plan_files -----------------------------------------------------------------------------


def test_plan_files_across_sources_in_sorted_order(tmp_path):
    for name in ["b.jsonl", "a.jsonl", "c.jsonl"]:
        touch(tmp_path / "web" / name)
    touch(tmp_path / "books" / "z.txt", b"z")
    touch(tmp_path / "books" / "y.txt", b"y")
    cfg = corpus(
        web=SourceConfig(paths=[str(tmp_path / "web" / "*.jsonl")], weight=2.0),
        books=SourceConfig(paths=[str(tmp_path / "books" / "*.txt")], format="text"),
    )
    tasks = plan_files(cfg)
    assert [(t.source, Path(t.path).name) for t in tasks] == [
        ("books", "y.txt"),
        ("books", "z.txt"),
        ("web", "a.jsonl"),
        ("web", "b.jsonl"),
        ("web", "c.jsonl"),
    ]
    assert {t.source: (t.fmt, t.weight) for t in tasks} == {
        "books": ("text", 1.0),
        "web": ("auto", 2.0),
    }
    assert plan_files(cfg) == tasks  # deterministic


def test_plan_files_carries_the_source_fields(tmp_path):
    touch(tmp_path / "a.jsonl")
    cfg = corpus(
        s=SourceConfig(paths=[str(tmp_path / "*.jsonl")], text_field="body", id_field=None)
    )
    (task,) = plan_files(cfg)
    assert (task.text_field, task.id_field, task.weight) == ("body", None, 1.0)
    assert isinstance(task.weight, float)


def test_path_matched_by_two_patterns_appears_once(tmp_path):
    touch(tmp_path / "a.jsonl")
    touch(tmp_path / "b.jsonl")
    cfg = corpus(
        s=SourceConfig(
            paths=[str(tmp_path / "a.*"), str(tmp_path / "*.jsonl"), str(tmp_path / "**/*.jsonl")]
        )
    )
    assert [Path(t.path).name for t in plan_files(cfg)] == ["a.jsonl", "b.jsonl"]


def test_same_file_in_two_sources_appears_once_per_source(tmp_path):
    touch(tmp_path / "a.jsonl")
    pattern = str(tmp_path / "*.jsonl")
    cfg = corpus(x=SourceConfig(paths=[pattern]), y=SourceConfig(paths=[pattern]))
    tasks = plan_files(cfg)
    assert [t.source for t in tasks] == ["x", "y"]
    assert tasks[0].task_id != tasks[1].task_id


def test_directories_are_skipped(tmp_path):
    touch(tmp_path / "a.jsonl")
    (tmp_path / "dir.jsonl").mkdir()
    touch(tmp_path / "sub" / "b.jsonl")
    cfg = corpus(s=SourceConfig(paths=[str(tmp_path / "**")]))
    assert [t.key for t in plan_files(cfg)] == ["a.jsonl", "sub/b.jsonl"]


def test_broken_symlink_and_loop_are_planned_to_be_reported(tmp_path):
    touch(tmp_path / "a.jsonl")
    (tmp_path / "broken.jsonl").symlink_to(tmp_path / "missing.jsonl")
    (tmp_path / "loop1.jsonl").symlink_to(tmp_path / "loop2.jsonl")
    (tmp_path / "loop2.jsonl").symlink_to(tmp_path / "loop1.jsonl")
    cfg = corpus(s=SourceConfig(paths=[str(tmp_path / "*.jsonl")]))
    tasks = plan_files(cfg)
    assert [t.key for t in tasks] == ["a.jsonl", "broken.jsonl", "loop1.jsonl", "loop2.jsonl"]
    table, _ = ingest(tasks[1])
    assert table.column(S.DROP_REASON).to_pylist() == [Reason.UNREADABLE_FILE]


def test_key_is_relative_to_the_glob_base(tmp_path):
    touch(tmp_path / "data" / "plays" / "hamlet.txt", b"h")
    touch(tmp_path / "data" / "poems" / "deep" / "ode.txt", b"o")
    cfg = corpus(s=SourceConfig(paths=[str(tmp_path / "data" / "**" / "*.txt")]))
    assert [t.key for t in plan_files(cfg)] == ["plays/hamlet.txt", "poems/deep/ode.txt"]


def test_key_base_stops_at_the_first_wildcard_directory(tmp_path):
    touch(tmp_path / "data" / "p1" / "x" / "a.txt", b"a")
    cfg = corpus(s=SourceConfig(paths=[str(tmp_path / "data" / "p*" / "x" / "*.txt")]))
    assert [t.key for t in plan_files(cfg)] == ["p1/x/a.txt"]


def test_key_of_a_literal_path_is_its_name(tmp_path):
    touch(tmp_path / "data" / "a.txt", b"a")
    cfg = corpus(s=SourceConfig(paths=[str(tmp_path / "data" / "a.txt")]))
    (task,) = plan_files(cfg)
    assert (task.key, task.path) == ("a.txt", str(tmp_path / "data" / "a.txt"))


def test_relative_patterns(tmp_path, monkeypatch):
    touch(tmp_path / "corpus" / "sub" / "a.jsonl")
    touch(tmp_path / "top.jsonl")
    monkeypatch.chdir(tmp_path)
    cfg = corpus(
        nested=SourceConfig(paths=["corpus/**/*.jsonl"]),
        top=SourceConfig(paths=["*.jsonl"]),
    )
    assert [(t.source, t.path, t.key) for t in plan_files(cfg)] == [
        ("nested", "corpus/sub/a.jsonl", "sub/a.jsonl"),
        ("top", "top.jsonl", "top.jsonl"),
    ]


def test_pattern_matching_nothing_plans_nothing(tmp_path):
    assert plan_files(corpus(s=SourceConfig(paths=[str(tmp_path / "*.jsonl")]))) == []


def test_task_id_is_stable_and_depends_on_source_and_path():
    a = FileTask("s", "/d/a.jsonl", "a.jsonl", "auto", 1.0, "text", "id")
    assert a.task_id == FileTask("s", "/d/a.jsonl", "k", "jsonl", 2.0, "t", None).task_id
    assert a.task_id != FileTask("t", "/d/a.jsonl", "a.jsonl", "auto", 1.0, "text", "id").task_id
    assert len(a.task_id) == 16
    int(a.task_id, 16)


# --- FileIngest: rows -----------------------------------------------------------------------


def test_rows_follow_the_ingest_schema(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", {"id": "x", "text": "hello"}, "{bad")
    table, _ = ingest(task_for(path, source="web", weight=0.25))
    assert table.schema == S.INGEST_SCHEMA
    assert table.to_pylist() == [
        {
            S.DOC_ID: "web/x",
            S.SOURCE: "web",
            S.TEXT: "hello",
            S.WEIGHT: 0.25,
            S.PATH: str(path),
            S.LOCATION: 1,
            S.N_BYTES: 5,
            S.NORMALIZED: [],
            S.DROP_REASON: None,
            S.DROP_DETAIL: None,
            S.SNIPPET: None,
        },
        {
            S.DOC_ID: None,
            S.SOURCE: "web",
            S.TEXT: None,
            S.WEIGHT: 0.25,
            S.PATH: str(path),
            S.LOCATION: 2,
            S.N_BYTES: None,
            S.NORMALIZED: None,
            S.DROP_REASON: Reason.INVALID_JSON,
            S.DROP_DETAIL: table.column(S.DROP_DETAIL)[1].as_py(),
            S.SNIPPET: "{bad\n",
        },
    ]
    assert table.column(S.DROP_DETAIL)[1].as_py().startswith("Expecting")


def test_doc_id_uses_the_record_id(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", {"id": "abc", "text": "t"}, {"id": 42, "text": "u"})
    table, _ = ingest(task_for(path, source="wiki"))
    assert table.column(S.DOC_ID).to_pylist() == ["wiki/abc", "wiki/42"]


def test_doc_id_without_id_is_a_content_hash(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", {"text": "hello world"})
    table, _ = ingest(task_for(path, source="web"))
    assert table.column(S.DOC_ID).to_pylist() == [f"web/{HELLO_WORLD_ID}"]


def test_content_id_is_pinned():
    assert content_id("hello world") == HELLO_WORLD_ID
    assert content_id("café").startswith("h:")
    assert len(content_id("café")) == 2 + 16


def test_same_text_gets_the_same_id_across_files_and_runs(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", {"text": "same"}, {"text": "other"}, {"text": "same"})
    b = write_jsonl(tmp_path / "b.jsonl", {"text": "same"})
    ids_a = ingest(task_for(a))[0].column(S.DOC_ID).to_pylist()
    ids_b = ingest(task_for(b))[0].column(S.DOC_ID).to_pylist()
    assert ids_a[0] == ids_a[2] == ids_b[0] == "src/" + content_id("same")
    assert ids_a[1] != ids_a[0]
    assert ingest(task_for(a))[0].column(S.DOC_ID).to_pylist() == ids_a


def test_content_hash_is_of_the_normalized_text(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", {"text": "  hello world\r\n"})
    table, _ = ingest(task_for(path))
    assert table.column(S.DOC_ID).to_pylist() == [f"src/{HELLO_WORLD_ID}"]


def test_id_field_none_hashes_even_when_an_id_is_present(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", {"id": "ignored", "text": "hello world"})
    table, _ = ingest(task_for(path, id_field=None))
    assert table.column(S.DOC_ID).to_pylist() == [f"src/{HELLO_WORLD_ID}"]


def test_text_file_doc_id_is_its_key(tmp_path):
    path = touch(tmp_path / "plays" / "hamlet.txt", b"To be.\n")
    table, _ = ingest(task_for(path, source="lit", fmt="text", key="plays/hamlet.txt"))
    row = table.to_pylist()[0]
    assert (row[S.DOC_ID], row[S.TEXT], row[S.LOCATION]) == ("lit/plays/hamlet.txt", "To be.", None)


def test_weight_is_carried_on_every_row(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", {"text": "a"}, "[]", {"text": "b"})
    table, _ = ingest(task_for(path, weight=0.3))
    assert table.column(S.WEIGHT).to_pylist() == [0.3, 0.3, 0.3]


def test_normalization_is_applied_and_counted(tmp_path):
    path = write_jsonl(
        tmp_path / "a.jsonl",
        {"text": "\ufeffcafe\u0301\r\nnext  "},
        {"text": "a\r\nb"},
        {"text": "clean"},
        {"text": "x\x00y"},
    )
    table, job = ingest(task_for(path))
    assert table.column(S.TEXT).to_pylist() == ["café\nnext", "a\nb", "clean", "xy"]
    assert table.column(S.NORMALIZED).to_pylist() == [
        ["bom", "newlines", "nfc", "strip"],
        ["newlines"],
        [],
        ["control_chars"],
    ]
    assert table.column(S.N_BYTES).to_pylist() == [10, 3, 5, 2]
    assert job.stats.normalized == {
        "bom": 1,
        "control_chars": 1,
        "newlines": 2,
        "nfc": 1,
        "strip": 1,
    }
    assert job.stats.to_dict()["normalized"] == job.stats.normalized


def test_normalization_follows_the_config(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", {"text": " a\r\nb "})
    off = NormalizeConfig(nfc=False, newlines=False, control_chars=False, strip=False)
    table, job = ingest(task_for(path), normalize=off)
    assert table.column(S.TEXT).to_pylist() == [" a\r\nb "]
    assert job.stats.normalized == {}


@pytest.mark.parametrize("text", ["", "   ", "\r\n\t ", "\ufeff", "\x00\x01"])
def test_empty_or_whitespace_only_text_is_dropped(tmp_path, text):
    path = write_jsonl(tmp_path / "a.jsonl", {"id": "e", "text": text}, {"text": "kept"})
    table, job = ingest(task_for(path))
    (drop,) = dropped(table)
    assert drop[S.DROP_REASON] == Reason.EMPTY_TEXT
    assert drop[S.DOC_ID] is None and drop[S.TEXT] is None
    assert drop[S.LOCATION] == 1
    assert [r[S.TEXT] for r in good(table)] == ["kept"]
    assert job.stats.normalized == {}  # a dropped record's normalisation is not counted


def test_reader_reasons_become_drop_rows(tmp_path):
    path = write_jsonl(
        tmp_path / "a.jsonl",
        {"text": "ok"},
        "not json",
        "[1]",
        {"id": 1},
        {"text": 5},
        {"id": True, "text": "t"},
        {"text": "x" * 300},
    )
    table, _ = ingest(task_for(path), max_doc_bytes=100)
    assert table.column(S.DROP_REASON).to_pylist() == [
        None,
        Reason.INVALID_JSON,
        Reason.NOT_AN_OBJECT,
        Reason.MISSING_TEXT,
        Reason.NON_STRING_TEXT,
        Reason.INVALID_ID,
        Reason.TOO_LARGE,
    ]
    assert table.column(S.LOCATION).to_pylist() == list(range(1, 8))
    assert all(len(s) <= 200 for s in table.column(S.SNIPPET).to_pylist() if s)


def test_lone_surrogate_id_is_dropped_not_a_crash(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", '{"id": "\\ud800", "text": "t"}', {"text": "ok"})
    table, _ = ingest(task_for(path))
    assert table.column(S.DROP_REASON).to_pylist() == [Reason.INVALID_UTF8, None]


def test_truncated_gzip_keeps_good_rows_then_a_drop_row(tmp_path):
    objs = [{"id": i, "text": f"doc {i} " + os.urandom(40).hex()} for i in range(3000)]
    data = "".join(json.dumps(o) + "\n" for o in objs)
    path = touch(tmp_path / "a.jsonl.gz", gzip.compress(data.encode())[:-4])
    table, job = ingest(task_for(path))
    assert len(good(table)) == 3000
    (drop,) = dropped(table)
    assert (drop[S.DROP_REASON], drop[S.LOCATION]) == (Reason.TRUNCATED_ARCHIVE, 3001)
    assert job.stats.records == 3001


def test_stats_count_records_and_bytes(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", {"text": "a"}, "", {"text": ""}, "oops", {"text": "b"})
    table, job = ingest(task_for(path, source="s"))
    assert job.stats.records == table.num_rows == 4  # the blank line is no record
    assert len(good(table)) + len(dropped(table)) == job.stats.records
    assert (len(good(table)), len(dropped(table))) == (2, 2)
    assert job.stats.bytes_in == path.stat().st_size
    assert (job.stats.source, job.stats.path) == ("s", str(path))


def test_unreadable_file_is_one_drop_row_and_no_bytes(tmp_path):
    table, job = ingest(task_for(tmp_path / "missing.jsonl"))
    assert table.column(S.DROP_REASON).to_pylist() == [Reason.UNREADABLE_FILE]
    assert (job.stats.records, job.stats.bytes_in) == (1, 0)


def test_empty_file_yields_no_batches(tmp_path):
    path = touch(tmp_path / "a.jsonl", b"")
    job = FileIngest(task_for(path), CorpusConfig(name="t"))
    assert list(job.batches()) == []
    assert job.stats.records == 0


@pytest.mark.parametrize(("n", "batch_rows"), [(1, 1), (10, 3), (12, 4), (100, 7), (5, 1000)])
def test_batches_never_exceed_batch_rows(tmp_path, n, batch_rows):
    path = write_jsonl(tmp_path / "a.jsonl", *({"id": i, "text": f"t{i}"} for i in range(n)))
    job = FileIngest(task_for(path), CorpusConfig(name="t", batch_rows=batch_rows))
    sizes = [b.num_rows for b in job.batches()]
    assert all(0 < s <= batch_rows for s in sizes)
    assert sizes[:-1] == [batch_rows] * (len(sizes) - 1)  # only the last one is short
    assert sum(sizes) == n == job.stats.records


def test_ingest_reads_parquet(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": ["p", None], "text": ["one ", None]}), path)
    table, _ = ingest(task_for(path, source="pq"))
    rows = table.to_pylist()
    assert (rows[0][S.DOC_ID], rows[0][S.TEXT], rows[0][S.LOCATION]) == ("pq/p", "one", 0)
    assert (rows[1][S.DROP_REASON], rows[1][S.LOCATION]) == (Reason.MISSING_TEXT, 1)


# --- memory ---------------------------------------------------------------------------------


def test_ingest_streams_a_large_file_in_bounded_memory(tmp_path):
    path = tmp_path / "big.jsonl"
    filler = "lorem ipsum dolor sit amet " * 37  # ~1 KB of text per record
    n = 30_000
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": i, "text": f"{i} {filler}"}) + "\n")
    assert path.stat().st_size > 29_000_000

    # Warm up first: the first Arrow conversion imports modules (pandas) worth ~28 MB.
    small = write_jsonl(tmp_path / "small.jsonl", {"id": 0, "text": filler})
    list(FileIngest(task_for(small), CorpusConfig(name="t", batch_rows=256)).batches())

    job = FileIngest(task_for(path), CorpusConfig(name="t", batch_rows=256))
    rows = 0
    tracemalloc.start()
    try:
        for batch in job.batches():
            assert batch.num_rows <= 256
            rows += batch.num_rows
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == job.stats.records == n
    assert job.stats.normalized == {"strip": n}  # the filler's trailing space
    assert peak < 16_000_000, f"peak {peak / 1e6:.1f} MB for a 30 MB file: not streaming"
