"""The lineage table beside the token shards: where every shard row's text came from.

One Parquet file per shard, `lineage/<shard stem>.parquet` in the shard directory, whose row i
describes row i of the shard (schema.LINEAGE_SCHEMA; the same doc_id in both, so a reader can
check the pairing). The shards stay lean: the loader maps tokens only and never opens these.
The columns ride along with each row through the stage: read with the input (inputs.py),
parked in the parts (parts.py) and written by the same task that writes the row's shard
(sink.py), so nothing per row crosses the driver. manifest.json names each file with its rows,
bytes and sha256 (`lineage_entry`); `verify_lineage` checks them.

    info = write_lineage(data_dir, "shard-00000.arrow", rows)   # rows in shard order
    table = read_lineage(data_dir, manifest, "shard-00000.arrow")
    table.slice(17, 1).to_pylist()      # the lineage of shard-00000.arrow row 17

Like the shards, the bytes are deterministic: the same rows give the same file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schema as S
from pipeline.plumbing.atomic import commit, temp_path
from pipeline.plumbing.hashing import file_sha256
from pipeline.token_shards.files import SHARD_SUFFIX
from pipeline.token_shards.manifest import ManifestError
from pipeline.tokens.mixing import PARENT_ID

FROM_REWRITE = (
    S.PROMPT_ID,
    S.PROMPT_HASH,
    S.MODEL,
    S.MODEL_HASH,
    S.SAMPLING,
    S.CHUNK_SPANS,
    S.CHUNK_ATTEMPTS,
)
LINEAGE_DIR = "lineage"
LINEAGE_SUFFIX = ".parquet"
# Carried from the input through the parts, besides the shard's own doc_id, source, kind and
# style; PARENT_ID becomes SOURCE_DOC_ID.
CARRIED_FIELDS = [
    pa.field(PARENT_ID, pa.string()),
    *[f.with_nullable(True) for f in S.LINEAGE_SCHEMA if f.name in (S.PATH, S.LOCATION)],
    *[f for f in S.LINEAGE_SCHEMA if f.name in FROM_REWRITE],
]
CARRIED = [f.name for f in CARRIED_FIELDS]
# Which carried columns each input kind has (the rest are null): a raw document's place in
# the corpus; a rewrite's prompt, model, sampling and chunks.
FROM_INPUT = {
    S.KIND_RAW: (S.PATH, S.LOCATION),
    S.KIND_REWRITE: FROM_REWRITE,
}
# Parquet, not IPC: the table is read for inspection, not mapped, and its repeated strings
# (sampling JSON, model, paths) shrink to almost nothing with dictionary pages and zstd.
_WRITE_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": False}


@dataclass(frozen=True)
class LineageInfo:
    """What the manifest records about one lineage file (`file` relative to the shards)."""

    shard: str
    file: str
    rows: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lineage_file(shard_file: str) -> str:
    """lineage/shard-00000.parquet for shard-00000.arrow (relative to the shard directory)."""
    stem = shard_file[: -len(SHARD_SUFFIX)] if shard_file.endswith(SHARD_SUFFIX) else shard_file
    return f"{LINEAGE_DIR}/{stem}{LINEAGE_SUFFIX}"


def carried_columns(batch: pa.Table, kind: str) -> dict[str, pa.Array | pa.ChunkedArray]:
    """The CARRIED columns (but PARENT_ID) of DOCS or REWRITES input rows: those the kind has,
    if the input has them (older outputs may not), else nulls."""
    n = batch.num_rows
    out = {}
    for f in CARRIED_FIELDS:
        if f.name == PARENT_ID:
            continue
        if f.name in FROM_INPUT[kind] and f.name in batch.column_names:
            out[f.name] = batch[f.name].cast(f.type)
        else:
            out[f.name] = pa.nulls(n, f.type)
    return out


def lineage_table(rows: pa.Table) -> pa.Table:
    """LINEAGE_SCHEMA rows of shard rows (the shard's columns plus CARRIED), in their order.
    Every column is rebuilt from its values, so chunking and slicing leave no trace."""
    source_ids = rows[PARENT_ID]
    columns = {S.SOURCE_DOC_ID: source_ids}
    for f in S.LINEAGE_SCHEMA:
        if f.name != S.SOURCE_DOC_ID:
            columns[f.name] = rows[f.name]
    return pa.table(
        [pa.array(columns[f.name].to_pylist(), f.type) for f in S.LINEAGE_SCHEMA],
        schema=S.LINEAGE_SCHEMA,
    )


def write_lineage(directory: Path, shard_file: str, rows: pa.Table) -> LineageInfo:
    """Write the lineage of `shard_file`'s rows (in shard order): temp file, sha256, rename."""
    table = lineage_table(rows)
    name = lineage_file(shard_file)
    final = Path(directory) / name
    tmp = temp_path(final)
    try:
        # One row group: the file is read whole, and its layout depends on the rows alone.
        pq.write_table(table, tmp, row_group_size=max(1, table.num_rows), **_WRITE_OPTIONS)
        info = LineageInfo(shard_file, name, table.num_rows, tmp.stat().st_size, file_sha256(tmp))
        commit(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return info


def lineage_entry(infos: Sequence[LineageInfo]) -> dict[str, Any]:
    """The manifest's `lineage` block: how rows pair up, and each shard's file."""
    return {
        "key": "row i of a shard's lineage file describes row i of the shard (same doc_id)",
        "columns": S.LINEAGE_SCHEMA.names,
        "files": {
            i.shard: {k: v for k, v in i.to_dict().items() if k != "shard"}
            for i in sorted(infos, key=lambda i: i.shard)
        },
    }


def verify_lineage(directory: Path, manifest: Mapping[str, Any], shard: str | None = None) -> None:
    """Check the lineage file of `shard` (every shard's if None): listed, present, its size,
    sha256 and rows as the manifest says. Raises ManifestError naming the file."""
    directory = Path(directory)
    files = _files(directory, manifest)
    rows = {s["file"]: s["rows"] for split in manifest["splits"].values() for s in split["shards"]}
    for name in rows if shard is None else [shard]:
        if name not in files:
            raise ManifestError(f"{directory}: manifest.json lists no lineage for {name}")
        entry = files[name]
        path = directory / entry["file"]
        if not path.is_file():
            raise ManifestError(f"{path}: listed in manifest.json (lineage of {name}) but missing")
        if path.stat().st_size != entry["bytes"] or file_sha256(path) != entry["sha256"]:
            raise ManifestError(f"{path}: differs from manifest.json's size or sha256")
        if entry["rows"] != rows.get(name):
            raise ManifestError(f"{path}: {entry['rows']} rows for {rows.get(name)} in {name}")


def read_lineage(directory: Path, manifest: Mapping[str, Any], shard: str) -> pa.Table:
    """The verified lineage table of one shard (LINEAGE_SCHEMA, in shard row order)."""
    verify_lineage(directory, manifest, shard)
    entry = _files(Path(directory), manifest)[shard]
    return pq.read_table(Path(directory) / entry["file"], schema=S.LINEAGE_SCHEMA)


def _files(directory: Path, manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    block = manifest.get("lineage")
    if not block:
        raise ManifestError(
            f"{directory}: manifest.json has no lineage block (shards written before lineage "
            "tables existed: rerun the tokenize stage)"
        )
    return block["files"]
