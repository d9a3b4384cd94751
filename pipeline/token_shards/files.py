"""Token shards: one Arrow IPC *file* per shard, uncompressed, one row per document.

The contract (pipeline/schema.py `token_shard_schema`, manifest in manifest.py): columns
doc_id, source, kind, style, n_tokens, tokens (list<uint16> when the vocabulary fits in 16
bits, else list<uint32>). A shard is one record batch, so a reader memory-maps it and gets
the token values as one contiguous zero-copy buffer:

    from pipeline.token_shards.files import open_shard, write_shard
    info = write_shard(out_dir, "shard-00000.arrow", table, "uint16")  # temp file + rename
    info.sha256, info.bytes, info.rows, info.tokens
    shard = open_shard(out_dir / "shard-00000.arrow")                   # pa.memory_map, no copy
    values = shard["tokens"].chunk(0).values.to_numpy()                 # all tokens, uint16
    offsets = shard["tokens"].chunk(0).offsets.to_numpy()               # document boundaries

Bytes are deterministic: `shard_table` rebuilds every column from its values, so the same
rows in the same order give the same file whatever chunking, slicing or validity bitmaps
the input table carried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.config.shards import MAX_SHARD_TOKENS
from pipeline.plumbing.atomic import commit, temp_path
from pipeline.plumbing.hashing import file_sha256

TRAIN = "train"
HELDOUT = "heldout"
SPLITS = (TRAIN, HELDOUT)
# File name prefixes per split: shard-00000.arrow (train), heldout-00000.arrow.
SPLIT_PREFIX = {TRAIN: "shard", HELDOUT: "heldout"}
SHARD_SUFFIX = ".arrow"
# uint16 holds ids 0..65535: a vocabulary of up to 65536 entries.
UINT16_VOCAB_LIMIT = 1 << 16
_STRING_COLUMNS = (S.DOC_ID, S.SOURCE, S.KIND, S.STYLE)


@dataclass(frozen=True)
class ShardInfo:
    """What the manifest records about one shard file (`file` is a name, not a path)."""

    file: str
    rows: int
    tokens: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardInfo:
        return cls(**{k: data[k] for k in ("file", "rows", "tokens", "bytes", "sha256")})


def token_dtype_for(vocab_size: int) -> str:
    """ "uint16" when every id of a `vocab_size` vocabulary fits in 16 bits, else "uint32"."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return "uint16" if vocab_size <= UINT16_VOCAB_LIMIT else "uint32"


def shard_file_name(split: str, index: int) -> str:
    """A split's index-th shard name: shard-00000.arrow (train), heldout-00003.arrow."""
    if split not in SPLIT_PREFIX:
        raise ValueError(f"unknown split {split!r}; known: {SPLITS}")
    return f"{SPLIT_PREFIX[split]}-{index:05d}{SHARD_SUFFIX}"


def shard_table(table: pa.Table, token_dtype: str) -> pa.Table:
    """The canonical shard table of `table`'s rows, in their order.

    `table` needs doc_id, source, kind, style and tokens (a list of any integer type);
    n_tokens, if present, must equal the list lengths. Raises ValueError for a null token
    list, an id that does not fit `token_dtype`, or more than MAX_SHARD_TOKENS tokens.
    """
    schema = S.token_shard_schema(token_dtype)
    tokens = table[S.TOKENS]
    if tokens.null_count:
        raise ValueError("a row has a null token list")
    lengths = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    if S.N_TOKENS in table.column_names:
        given = table[S.N_TOKENS].to_numpy(zero_copy_only=False)
        if not np.array_equal(given, lengths):
            raise ValueError("n_tokens differs from the length of tokens")
    total = int(lengths.sum())
    if total > MAX_SHARD_TOKENS:
        raise ValueError(f"{total} tokens in one shard: at most {MAX_SHARD_TOKENS} fit")
    values = pc.list_flatten(tokens).to_numpy(zero_copy_only=False)
    np_dtype = np.dtype(token_dtype)
    if values.size and (values.min() < 0 or values.max() > np.iinfo(np_dtype).max):
        raise ValueError(
            f"token ids span {values.min()}..{values.max()}: they do not fit {token_dtype}"
        )
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    columns = {name: pa.array(table[name].to_pylist(), pa.string()) for name in _STRING_COLUMNS}
    columns[S.N_TOKENS] = pa.array(lengths.astype(np.int32))
    columns[S.TOKENS] = pa.ListArray.from_arrays(
        pa.array(offsets), pa.array(values.astype(np_dtype, copy=False))
    )
    return pa.table([columns[f.name] for f in schema], schema=schema)


def write_shard(directory: Path, file_name: str, table: pa.Table, token_dtype: str) -> ShardInfo:
    """Write `table`'s rows (in order) as `directory/file_name` and return its ShardInfo.

    The file is an uncompressed Arrow IPC file holding one record batch, written to a
    temporary name beside the target, hashed, fsynced and renamed into place (a reader never
    sees half a shard). Raises ValueError for an empty table or a bad table (see shard_table).
    """
    if table.num_rows == 0:
        raise ValueError(f"{file_name}: a shard needs at least one row")
    canonical = shard_table(table, token_dtype)
    final = Path(directory) / file_name
    tmp = temp_path(final)
    try:
        options = pa.ipc.IpcWriteOptions(compression=None)
        with (
            pa.OSFile(str(tmp), "wb") as sink,
            pa.ipc.new_file(sink, canonical.schema, options=options) as writer,
        ):
            writer.write_table(canonical)
        info = ShardInfo(
            file=file_name,
            rows=canonical.num_rows,
            tokens=int(pc.sum(canonical[S.N_TOKENS]).as_py() or 0),
            bytes=tmp.stat().st_size,
            sha256=file_sha256(tmp),
        )
        commit(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return info


def open_shard(path: Path) -> pa.Table:
    """A shard as a memory-mapped table: no copy, pages are read as they are touched."""
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def shard_starts(
    n_tokens: Sequence[int], target_tokens: int, keys: Sequence | None = None
) -> list[int]:
    """Where to cut rows (already in shard order) into shards of at most `target_tokens`.

    Returns the index of each shard's first row ([] for no rows). A shard closes before the
    row that would take it past the target, so every shard holds <= target_tokens unless a
    single row is larger. Rows with equal `keys` stay in one shard (a reader can then find a
    row's shard from the first key of each shard alone).
    """
    if target_tokens < 1:
        raise ValueError(f"target_tokens must be >= 1, got {target_tokens}")
    starts: list[int] = []
    current = 0
    for i, n in enumerate(n_tokens):
        same_key = keys is not None and i > 0 and keys[i] == keys[i - 1]
        if not starts or (current > 0 and current + n > target_tokens and not same_key):
            starts.append(i)
            current = 0
        current += int(n)
    return starts
