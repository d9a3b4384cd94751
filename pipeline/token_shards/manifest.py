"""manifest.json of a token-shard directory: build, write (last, atomically), read, verify.

The tokenize stage writes it after every shard is in place, so its presence means the
directory is complete. Readers call `load_manifest`, which checks the format version and
structure, that every listed shard exists with the recorded size, its sha256 (verify=True)
and schema, and the tokenizer's sha256 when the caller passes one; any mismatch raises
ManifestError naming the file or field.

    from pipeline.token_shards.manifest import load_manifest
    m = load_manifest("outputs/run/tokenize/data", tokenizer_sha256=tok.sha256)
    m.token_dtype, m.tokenizer["eos_id"], m.paths("train"), m.shards("heldout")

Layout (format_version 1): {format_version, tokenizer: {kind, name, sha256, vocab_size,
bos_id, eos_id, pad_id, add_bos, add_eos, ...}, token_dtype, splits: {train|heldout:
{shards: [{file, rows, tokens, bytes, sha256}], documents, tokens}}, totals: {by_source,
by_kind, by_style: {name: {documents, tokens}}} of the training split, and the same three under
totals.heldout for the held-out split, mixture: {...}, config: {...}, and (optional, so older
manifests still load) lineage: {key, columns, files: {shard file: {file, rows, bytes, sha256}}}
naming each shard's lineage table (pipeline/tokens/lineage.py; the loader never reads it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline import schema as S
from pipeline.plumbing.atomic import atomic_write_text
from pipeline.plumbing.hashing import file_sha256
from pipeline.token_shards.files import SHARD_SUFFIX, SPLITS, ShardInfo

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
TOKENIZER_KINDS = ("sentencepiece", "hf")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ManifestError(ValueError):
    """A shard directory does not match its manifest (or has none); the message says where."""


def split_entry(shards: list[ShardInfo]) -> dict[str, Any]:
    """One split's manifest entry: its shards in order and their document and token sums."""
    return {
        "shards": [s.to_dict() for s in shards],
        "documents": sum(s.rows for s in shards),
        "tokens": sum(s.tokens for s in shards),
    }


def build_manifest(
    *,
    tokenizer: Mapping[str, Any],
    token_dtype: str,
    splits: Mapping[str, list[ShardInfo]],
    totals: Mapping[str, Any],
    mixture: Mapping[str, Any],
    config: Mapping[str, Any],
    lineage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest dict (format_version 1); `splits` maps "train"/"heldout" to ShardInfos,
    `lineage` is lineage.lineage_entry(...) of the shards' lineage files."""
    manifest = {
        "format_version": FORMAT_VERSION,
        "tokenizer": dict(tokenizer),
        "token_dtype": token_dtype,
        "splits": {split: split_entry(list(splits.get(split, []))) for split in SPLITS},
        "totals": dict(totals),
        "mixture": dict(mixture),
        "config": dict(config),
    }
    if lineage is not None:
        manifest["lineage"] = dict(lineage)
    check_structure(manifest)
    return manifest


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> Path:
    """Check `manifest`'s structure and write directory/manifest.json atomically (sorted keys,
    so the same content gives the same bytes). Call it after every shard is written."""
    check_structure(manifest)
    path = Path(directory) / MANIFEST_NAME
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(location: Path | str) -> dict[str, Any]:
    """Parse and structure-check manifest.json (`location`: the shard directory or the file).
    Does not touch the shards; see verify_shards / load_manifest."""
    path = Path(location)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(
            f"{path}: no manifest (the tokenize stage writes it last; did it finish?)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: not valid JSON ({err})") from err
    check_structure(manifest, where=str(path))
    return manifest


def check_structure(manifest: Any, where: str = MANIFEST_NAME) -> None:
    """Raise ManifestError naming the first missing or ill-typed field."""

    def fail(field: str, problem: str) -> None:
        raise ManifestError(f"{where}: {field}: {problem}")

    if not isinstance(manifest, Mapping):
        fail("(top level)", "not a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        fail("format_version", f"{version!r} is not supported (this reader knows {FORMAT_VERSION})")
    for key in ("tokenizer", "token_dtype", "splits", "totals", "mixture", "config"):
        if key not in manifest:
            fail(key, "missing")
    tok = manifest["tokenizer"]
    if not isinstance(tok, Mapping):
        fail("tokenizer", "not an object")
    if tok.get("kind") not in TOKENIZER_KINDS:
        fail("tokenizer.kind", f"{tok.get('kind')!r} not in {TOKENIZER_KINDS}")
    if not isinstance(tok.get("name"), str):
        fail("tokenizer.name", "missing or not a string")
    if not _HEX64.match(str(tok.get("sha256", ""))):
        fail("tokenizer.sha256", f"{tok.get('sha256')!r} is not a hex sha256")
    vocab = tok.get("vocab_size")
    if not _is_count(vocab) or vocab < 1:
        fail("tokenizer.vocab_size", f"{vocab!r} is not a positive integer")
    for key in ("bos_id", "eos_id", "pad_id"):
        value = tok.get(key)
        if value is not None and not (_is_count(value) and value < vocab):
            fail(f"tokenizer.{key}", f"{value!r} is not null or an id below vocab_size {vocab}")
    for key in ("add_bos", "add_eos"):
        if not isinstance(tok.get(key), bool):
            fail(f"tokenizer.{key}", "missing or not true/false")
    dtype = manifest["token_dtype"]
    if dtype not in S.TOKEN_DTYPES:
        fail("token_dtype", f"{dtype!r} not in {tuple(S.TOKEN_DTYPES)}")
    if dtype == "uint16" and vocab > 1 << 16:
        fail("token_dtype", f"uint16 cannot hold ids of a {vocab}-entry vocabulary")
    splits = manifest["splits"]
    seen: set[str] = set()
    for split in SPLITS:
        entry = splits.get(split) if isinstance(splits, Mapping) else None
        if not isinstance(entry, Mapping) or not isinstance(entry.get("shards"), list):
            fail(f"splits.{split}", "missing, or without a shards list")
        for i, shard in enumerate(entry["shards"]):
            field = f"splits.{split}.shards[{i}]"
            if not isinstance(shard, Mapping):
                fail(field, "not an object")
            name = shard.get("file")
            if not (
                isinstance(name, str) and _SHARD_NAME.match(name) and name.endswith(SHARD_SUFFIX)
            ):
                fail(f"{field}.file", f"{name!r} is not a plain *{SHARD_SUFFIX} file name")
            if name in seen:
                fail(f"{field}.file", f"{name} is listed twice")
            seen.add(name)
            for key in ("rows", "tokens", "bytes"):
                if not _is_count(shard.get(key)):
                    fail(f"{field}.{key}", f"{shard.get(key)!r} is not a non-negative integer")
            if not _HEX64.match(str(shard.get("sha256", ""))):
                fail(f"{field}.sha256", f"{shard.get('sha256')!r} is not a hex sha256")
        for key in ("documents", "tokens"):
            listed = sum(s[key if key == "tokens" else "rows"] for s in entry["shards"])
            if entry.get(key) != listed:
                fail(f"splits.{split}.{key}", f"{entry.get(key)!r} != {listed}, the shards' sum")
    if "lineage" in manifest:
        _check_lineage(manifest["lineage"], seen, fail)


def _check_lineage(block: Any, shards: set[str], fail) -> None:
    """The optional lineage block: one file per shard, each a relative name with counts and
    a sha256 (the files themselves: lineage.verify_lineage)."""
    files = block.get("files") if isinstance(block, Mapping) else None
    if not isinstance(files, Mapping):
        fail("lineage.files", "missing or not an object")
    if set(files) != shards:
        fail("lineage.files", f"names {sorted(files)}, the shards are {sorted(shards)}")
    for shard, entry in files.items():
        field = f"lineage.files.{shard}"
        name = entry.get("file") if isinstance(entry, Mapping) else None
        if not (isinstance(name, str) and all(_SHARD_NAME.match(p) for p in name.split("/"))):
            fail(f"{field}.file", f"{name!r} is not a relative file name")
        for key in ("rows", "bytes"):
            if not _is_count(entry.get(key)):
                fail(f"{field}.{key}", f"{entry.get(key)!r} is not a non-negative integer")
        if not _HEX64.match(str(entry.get("sha256", ""))):
            fail(f"{field}.sha256", f"{entry.get('sha256')!r} is not a hex sha256")


def verify_shards(directory: Path, manifest: Mapping[str, Any], verify_sha256: bool = True) -> None:
    """Check every listed shard: exists, has the recorded size, sha256 (if asked) and schema."""
    directory = Path(directory)
    schema = S.token_shard_schema(manifest["token_dtype"])
    for split in SPLITS:
        for shard in manifest["splits"][split]["shards"]:
            path = directory / shard["file"]
            if not path.is_file():
                raise ManifestError(
                    f"{path}: listed in {MANIFEST_NAME} ({split} split) but missing"
                )
            size = path.stat().st_size
            if size != shard["bytes"]:
                raise ManifestError(
                    f"{path}: {size} bytes on disk, {MANIFEST_NAME} says {shard['bytes']} "
                    "(truncated or replaced?)"
                )
            if verify_sha256 and (digest := file_sha256(path)) != shard["sha256"]:
                raise ManifestError(
                    f"{path}: sha256 {digest[:16]}... does not match {MANIFEST_NAME}'s "
                    f"{shard['sha256'][:16]}...: the file is corrupted or was modified"
                )
            try:
                found = pa.ipc.open_file(pa.memory_map(str(path), "r")).schema
            except pa.ArrowInvalid as err:
                raise ManifestError(f"{path}: not an Arrow IPC file ({err})") from err
            if not found.equals(schema):
                raise ManifestError(
                    f"{path}: schema {found} differs from the token shard schema {schema}"
                )


def check_tokenizer(manifest: Mapping[str, Any], tokenizer_sha256: str) -> None:
    """Raise ManifestError unless the shards were tokenized with the tokenizer of that sha256."""
    tok = manifest["tokenizer"]
    if tok["sha256"] != tokenizer_sha256:
        raise ManifestError(
            f"tokenizer.sha256: the shards were tokenized with {tok['kind']} tokenizer "
            f"{tok['name']!r} (sha256 {tok['sha256'][:16]}...), the given tokenizer's sha256 "
            f"is {tokenizer_sha256[:16]}...; use the tokenizer the shards were made with"
        )


@dataclass(frozen=True)
class Manifest:
    """A checked manifest and the directory it describes."""

    directory: Path
    data: dict[str, Any]

    @property
    def token_dtype(self) -> str:
        return self.data["token_dtype"]

    @property
    def tokenizer(self) -> dict[str, Any]:
        return self.data["tokenizer"]

    def shards(self, split: str = "train") -> list[ShardInfo]:
        return [ShardInfo.from_dict(s) for s in self.data["splits"][split]["shards"]]

    def paths(self, split: str = "train") -> list[Path]:
        return [self.directory / s.file for s in self.shards(split)]

    def documents(self, split: str = "train") -> int:
        return self.data["splits"][split]["documents"]

    def tokens(self, split: str = "train") -> int:
        return self.data["splits"][split]["tokens"]


def load_manifest(
    directory: Path | str, verify: bool = True, tokenizer_sha256: str | None = None
) -> Manifest:
    """Read and check a shard directory's manifest and shards (sizes always, sha256 when
    `verify`, the tokenizer when `tokenizer_sha256` is given). Raises ManifestError."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if tokenizer_sha256 is not None:
        check_tokenizer(manifest, tokenizer_sha256)
    verify_shards(directory, manifest, verify_sha256=verify)
    return Manifest(directory=directory, data=manifest)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
