"""A corpus of hostile input, one or more files per kind, with the outcome each must have.

`build(root)` writes every kind under `root` and returns the `Kind`s: which files make it up,
what it is, and how many of its records must come out kept and with which quarantine
reasons. One source reads it all with `format: auto` and the glob `root/**/*`, the way a
user points the pipeline at a directory they did not check first.

    kinds = build(tmp_path / "hostile")
    print(outcome_table(kinds))          # kind -> expected outcome, for the report
"""

from __future__ import annotations

import gzip
import json
import os
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

HUGE_BYTES = 50 * 1024 * 1024  # "a single 50 MB line": 25x the default corpus.max_doc_bytes
DEEP = 100_000  # nesting levels: far past the interpreter's recursion limit
KEPT = "kept"


@dataclass
class Kind:
    name: str
    what: str
    files: list[Path] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)  # KEPT or a reason -> rows
    note: str = ""

    @property
    def rows(self) -> int:
        return sum(self.expected.values())


def jl(*records: object) -> bytes:
    """JSONL bytes: dicts are dumped, bytes lines written as they are."""
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


def good(kind: str, n: int = 1) -> list[dict]:
    """Valid records with ids and texts unique to `kind`."""
    return [{"id": f"{kind}-ok{i}", "text": f"A fine document {i} of {kind}."} for i in range(n)]


def _classify(line: bytes) -> str:
    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "invalid_utf8"
    except (ValueError, RecursionError):
        return "invalid_json"
    return KEPT if isinstance(obj, dict) else "not_an_object"


def build(root: Path) -> list[Kind]:
    root.mkdir(parents=True, exist_ok=True)
    kinds: list[Kind] = []

    def add(name: str, what: str, files: dict[str, bytes], expected: dict, note: str = ""):
        paths = []
        for rel, data in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            paths.append(path)
        kinds.append(Kind(name, what, paths, expected, note))
        return paths

    add("invalid_json", "a line cut mid-string, trailing garbage after an object",
        {"invalid_json.jsonl": jl(*good("ij"), b'{"id": "ij1", "text": "bro',
                                  b'{"id": "ij2", "text": "x"} trailing')},
        {KEPT: 1, "invalid_json": 2})  # fmt: skip
    add("invalid_utf8", "latin-1 bytes in a JSONL line and in a .txt file",
        {"invalid_utf8.jsonl": jl(*good("iu"), b'{"id": "iu1", "text": "caf\xe9"}'),
         "invalid_utf8.txt": b"Latin-1 \xe9 is not UTF-8.\n"},
        {KEPT: 1, "invalid_utf8": 2})  # fmt: skip
    add("lone_surrogate", "a \\ud800 escape in the text and in the id",
        {"surrogate.jsonl": jl(b'{"id": "ls1", "text": "a\\ud800b"}',
                               b'{"id": "ls\\udfff", "text": "fine"}')},
        {"invalid_utf8": 2})  # fmt: skip
    add("nul_bytes", "NUL as a JSON escape (kept, removed), raw inside a string (invalid "
        "JSON per RFC 8259), and in a .txt file (kept, removed)",
        {"nul.jsonl": jl({"id": "nul1", "text": "before\u0000after"},
                         b'{"id": "nul2", "text": "raw\x00nul"}'),
         "nul.txt": b"text\x00with\x00nuls\n"},
        {KEPT: 2, "invalid_json": 1})  # fmt: skip
    add("bom", "a UTF-8 BOM starting a JSONL file, starting a text field, starting a .txt",
        {"bom.jsonl": b"\xef\xbb\xbf" + jl(*good("bom", 2)),
         "bom_field.jsonl": jl({"id": "bomf", "text": "\ufeffText with a BOM."}),
         "bom.txt": b"\xef\xbb\xbfA book with a byte-order mark.\n"},
        {KEPT: 4})  # fmt: skip
    add("utf16", "a UTF-16 file named .jsonl: its text is not UTF-8, and the NUL half of its "
        "newline starts a line of its own",
        {"utf16.jsonl": '{"id": "u16", "text": "wide"}\n'.encode("utf-16")},
        {"invalid_utf8": 1, "invalid_json": 1})  # fmt: skip
    add("crlf", "CRLF line ends, CR and CRLF inside the text, a lone CR line",
        {"crlf.jsonl": b'{"id": "cr1", "text": "one\\r\\ntwo\\rthree"}\r\n\r\n'
                       b'{"id": "cr2", "text": "four"}\r\n'},
        {KEPT: 2})  # fmt: skip
    add("empty_text", "empty, whitespace-only and control-characters-only text; a zero-byte "
        ".txt; blank and whitespace-only lines (not records)",
        {"empty.jsonl": jl({"id": "e1", "text": ""}, {"id": "e2", "text": " \t\n\u3000 "},
                           {"id": "e3", "text": "\u0000\u0001\u007f"}, b"   ", b"", b"\t"),
         "empty.txt": b""},
        {"empty_text": 4})  # fmt: skip
    huge = b'{"id": "huge", "text": "' + b"a" * HUGE_BYTES + b'"}'
    add("huge_line", "one 50 MB line (plain, gzip) and a 50 MB .txt; good lines around it",
        {"huge.jsonl": jl(huge, *good("huge")),
         "huge.jsonl.gz": gzip.compress(jl(*good("hugegz"), huge), compresslevel=1),
         "huge.txt": b"b" * HUGE_BYTES},
        {KEPT: 2, "too_large": 3})  # fmt: skip
    deep = b"[" * DEEP + b"]" * DEEP
    nested_200 = json.loads("[" * 200 + "]" * 200)
    add("deep_nesting", "100,000 nested arrays, alone and inside a metadata field; "
        "200 levels (within limits) is fine",
        {"deep.jsonl": jl(deep, b'{"id": "deep1", "text": "t", "meta": ' + deep + b"}",
                          {"id": "deep2", "text": "ok", "meta": nested_200})},
        {KEPT: 1, "invalid_json": 2})  # fmt: skip
    add("huge_number", "an integer id of 5,000 digits (Python's int limit: ValueError); "
        "1e999 in another field (inf: harmless)",
        {"number.jsonl": jl(b'{"id": ' + b"9" * 5000 + b', "text": "t"}',
                            b'{"id": "num2", "text": "t2", "score": 1e999}')},
        {"invalid_json": 1, KEPT: 1})  # fmt: skip
    add("wrong_types", "text as number/list/object/bool/NaN/null/missing; id as "
        "float/bool/list/object/NaN",
        {"types.jsonl": jl({"id": "t1", "text": 5}, {"id": "t2", "text": ["a"]},
                           {"id": "t3", "text": {"a": 1}}, {"id": "t4", "text": True},
                           b'{"id": "t5", "text": NaN}', {"id": "t6", "text": None},
                           {"id": "t7", "body": "x"}, {"id": 1.5, "text": "x"},
                           {"id": True, "text": "x"}, {"id": [1], "text": "x"},
                           {"id": {"a": 1}, "text": "x"}, b'{"id": NaN, "text": "x"}')},
        {"non_string_text": 5, "missing_text": 2, "invalid_id": 5})  # fmt: skip
    add("not_an_object", "lines that are JSON arrays, numbers, strings, null, booleans",
        {"scalars.jsonl": jl(b"[1, 2]", b"42", b'"str"', b"null", b"true")},
        {"not_an_object": 5})  # fmt: skip
    add("duplicate_keys", 'an object with "text" twice: JSON parsers keep the last',
        {"dupkeys.jsonl": jl(b'{"id": "dk", "text": "first", "text": "last"}')},
        {KEPT: 1})  # fmt: skip
    add("duplicate_ids", "the same id on different texts in one file and across files, an "
        "exact repeat, id 7 vs '7', id-less identical texts: the first by (path, line) keeps it",
        {"dup_a.jsonl": jl({"id": "d1", "text": "first d1"}, {"id": "d1", "text": "second d1"},
                           {"id": 7, "text": "int seven"}, {"id": "d2", "text": "same"},
                           {"id": "d2", "text": "same"}, {"text": "no id, same text"},
                           {"text": "no id, same text"}),
         "dup_b.jsonl": jl({"id": "d1", "text": "third d1"}, {"id": "7", "text": "str seven"})},
        {KEPT: 4, "duplicate_id": 5})  # fmt: skip
    hostile_ids = ["../../../../tmp/escaped", "/etc/passwd", "a/../../b", "..", ".",
                   "nul\u0000id", "line\nbreak", "C:\\Windows\\system32", "~root/.ssh",
                   "%2e%2e%2f", "x" * 10_000]  # fmt: skip
    add("hostile_ids", "ids with ../, /, NUL, newline, backslashes, 10,000 characters: kept "
        "verbatim as doc ids, never a path",
        {"ids.jsonl": jl(*({"id": i, "text": f"id {n}"} for n, i in enumerate(hostile_ids)))},
        {KEPT: len(hostile_ids)})  # fmt: skip
    data = gzip.compress(jl(*good("tgz", 300)))
    add(
        "truncated_gzip",
        "a .jsonl.gz cut in half: the records before the cut are kept",
        {"trunc.jsonl.gz": data[: len(data) // 2]},
        {},
    )  # counted below
    # Flushed every 25 records, like a streaming writer: the cut leaves whole blocks before it.
    zst = zstandard.ZstdCompressor().compressobj()
    records = good("tzs", 300)
    data = (
        b"".join(
            zst.compress(jl(*records[i : i + 25])) + zst.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            for i in range(0, 300, 25)
        )
        + zst.flush()
    )
    add("truncated_zstd", "a .jsonl.zst cut in half", {"trunc.jsonl.zst": data[: len(data) // 2]},
        {})  # fmt: skip
    add("corrupt_archive", "garbage named .jsonl.gz and .jsonl.zst",
        {"garbage.jsonl.gz": b"\x1f\x8b\x08\x00" + b"garbage" * 100,
         "garbage.jsonl.zst": b"\x28\xb5\x2f\xfd" + b"garbage" * 100},
        {"corrupt_archive": 2})  # fmt: skip
    add("empty_archives", "zero-byte .gz and .zst, a gzip of nothing: no records",
        {"zero.jsonl.gz": b"", "zero.jsonl.zst": b"", "nothing.jsonl.gz": gzip.compress(b"")},
        {})  # fmt: skip
    add("zero_byte_files", "zero-byte .jsonl (no records) and .parquet (not Parquet)",
        {"zero.jsonl": b"", "zero.parquet": b""}, {"unreadable_file": 1})  # fmt: skip
    rng = random.Random(8)
    blob = bytes(rng.getrandbits(8) for _ in range(64 * 1024))
    lines = [line for line in blob.split(b"\n") if line.strip()]
    binary: dict[str, int] = {}
    for line in lines:
        binary[_classify(line)] = binary.get(_classify(line), 0) + 1
    add("binary_as_jsonl", "64 KB of random bytes named .jsonl: every line quarantined",
        {"binary.jsonl": blob}, binary)  # fmt: skip
    add("unknown_extension", "a .csv in the folder (format auto): set aside, not fatal",
        {"stray.csv": b"id,text\n1,hello\n"}, {"unknown_format": 1})  # fmt: skip
    _parquet(root, add)
    _filesystem(root, kinds)
    for kind in kinds:
        if kind.name == "truncated_gzip":
            kind.expected = {KEPT: _survivors(kind.files[0]), "truncated_archive": 1}
        if kind.name == "truncated_zstd":
            kind.expected = {KEPT: _survivors(kind.files[0]), "truncated_archive": 1}
    return kinds


def _survivors(path: Path) -> int:
    """Complete lines in what the cut archive still decodes to (decoded here without the
    pipeline's reader): the records a streaming reader must keep."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        decoded = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
    else:
        decoded = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return decoded.count(b"\n")


def _parquet(root: Path, add) -> None:
    def table_bytes(table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return sink.getvalue().to_pybytes()

    add("parquet_wrong_types", "Parquet with int64 text, binary text, float ids, no text "
        "column, and a file cut short",
        {"int_text.parquet": table_bytes(pa.table({"id": ["pi0", "pi1"], "text": [1, 2]})),
         "bin_text.parquet": table_bytes(pa.table({"id": ["pb0"], "text": [b"bytes"]})),
         "float_id.parquet": table_bytes(pa.table({"id": [1.5], "text": ["float id"]})),
         "no_text.parquet": table_bytes(pa.table({"id": ["pn0", "pn1"], "body": ["a", "b"]})),
         "cut.parquet": table_bytes(pa.table({"id": ["pc0"], "text": ["cut"]}))[:-20]},
        {"non_string_text": 3, "invalid_id": 1, "missing_text": 2,
         "unreadable_file": 1})  # fmt: skip


def _filesystem(root: Path, kinds: list[Kind]) -> None:
    """Kinds that are about the file, not its bytes."""
    (root / "loop_a.jsonl").symlink_to(root / "loop_b.jsonl")
    (root / "loop_b.jsonl").symlink_to(root / "loop_a.jsonl")
    loop = [root / "loop_a.jsonl", root / "loop_b.jsonl"]
    kinds.append(Kind("symlink_loop", "two links pointing at each other", loop,
                      {"unreadable_file": 2}))  # fmt: skip
    (root / "dangling.jsonl").symlink_to(root / "nowhere.jsonl")
    kinds.append(Kind("broken_symlink", "a link to a missing file", [root / "dangling.jsonl"],
                      {"unreadable_file": 1}))  # fmt: skip
    (root / "nest").mkdir()
    (root / "nest" / "inner.jsonl").write_bytes(jl(*good("nest")))
    (root / "nest" / "up").symlink_to("..")
    kinds.append(Kind("directory_loop", "a link to its parent under a ** glob: each file "
                      "once, not once per route", [root / "nest" / "inner.jsonl"],
                      {KEPT: 1}))  # fmt: skip
    (root / "folder.jsonl").mkdir()
    kinds.append(Kind("directory_named_jsonl", "an empty directory named folder.jsonl: skipped "
                      "(no records)", [root / "folder.jsonl"], {}))  # fmt: skip
    fifo = root / "pipe.jsonl"
    os.mkfifo(fifo)
    kinds.append(Kind("fifo", "a named pipe called pipe.jsonl (opening it would block forever)",
                      [fifo], {"unreadable_file": 1}))  # fmt: skip
    if Path("/dev/zero").exists():
        (root / "zeros.jsonl").symlink_to("/dev/zero")
        kinds.append(Kind("device", "a link to /dev/zero called zeros.jsonl (never ends)",
                          [root / "zeros.jsonl"], {"unreadable_file": 1}))  # fmt: skip
    locked = root / "locked.jsonl"
    locked.write_bytes(jl(*good("locked", 2)))
    locked.chmod(0)
    if os.geteuid() == 0:
        note = "run as root, which reads any file: kept; test_permission_denied covers it"
        kinds.append(Kind("unreadable_file", "chmod 000", [locked], {KEPT: 2}, note))
    else:
        kinds.append(Kind("unreadable_file", "chmod 000", [locked], {"unreadable_file": 1}))


def outcome_table(kinds: list[Kind]) -> str:
    lines = ["| kind | what | outcome |", "|---|---|---|"]
    for k in kinds:
        outcome = ", ".join(f"{n} {r}" for r, n in sorted(k.expected.items())) or "no records"
        lines.append(f"| {k.name} | {k.what} | {outcome}{' (' + k.note + ')' if k.note else ''} |")
    return "\n".join(lines)
