"""Open one split of a token-shard directory: verified, memory-mapped, zero-copy.

The manifest is checked first by pipeline.token_shards.manifest.load_manifest (format version,
every listed shard of every split present with its size, schema and, when `verify`, its
sha256; the tokenizer hash when given): a mismatch raises ManifestError naming the file. Then each
shard is memory-mapped (`pa.memory_map` + `pa.ipc.open_file`) and its `tokens` column becomes
numpy views of the Arrow buffers: the flat values and the per-document offsets. Nothing is
copied or decoded per token; the page cache holds the data, shared by every process that maps
the same file (DataLoader workers, ranks on one node).

    split = open_split("outputs/demo/tokenize/data", "train", tokenizer_sha256=None)
    split.doc_length.sum()              # tokens in the split
    split.tokens(7)                     # numpy view of document 7's tokens
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.token_shards.manifest import ManifestError, load_manifest

# A damaged or mismatched shard raises the manifest's error type: one `except` for callers.
ShardError = ManifestError


@dataclass
class SplitTokens:
    """Every document of one split, indexed; token values stay in the memory-mapped files."""

    directory: Path
    manifest: dict
    files: list[Path]
    values: list[np.ndarray]  # one flat token array per record batch (memory-mapped views)
    doc_chunk: np.ndarray  # int32: which entry of `values` holds document d
    doc_offset: np.ndarray  # int64: where in it document d starts
    doc_length: np.ndarray  # int64: its number of tokens
    doc_group: np.ndarray  # int32: index into `groups`
    groups: list[tuple[str, str]]  # (source, kind) of each group

    def __len__(self) -> int:
        return len(self.doc_length)

    def tokens(self, doc: int, begin: int = 0, end: int | None = None) -> np.ndarray:
        start = int(self.doc_offset[doc])
        stop = start + int(self.doc_length[doc] if end is None else end)
        return self.values[int(self.doc_chunk[doc])][start + begin : stop]


def open_split(
    directory: str | Path,
    split: str = "train",
    verify: bool = True,
    tokenizer_sha256: str | None = None,
) -> SplitTokens:
    """Verify the manifest, then map every shard of `split` (see the module docstring)."""
    directory = Path(directory)
    manifest = load_manifest(directory, verify, tokenizer_sha256).data
    if split not in manifest["splits"]:
        raise ShardError(
            f"{directory / 'manifest.json'}: no split {split!r}; has {sorted(manifest['splits'])}"
        )
    dtype = np.dtype(manifest["token_dtype"])
    files = [directory / entry["file"] for entry in manifest["splits"][split]["shards"]]
    values: list[np.ndarray] = []
    offsets, lengths, keys = [], [], []
    chunks: list[np.ndarray] = []
    for path in files:
        for batch in _record_batches(path):
            column = batch.column(S.TOKENS)
            if not pa.types.is_list(column.type) or column.type.value_type != pa.from_numpy_dtype(
                dtype
            ):
                raise ShardError(
                    f"{path}: tokens are {column.type}, the manifest says list<{dtype}>"
                )
            flat = column.values.to_numpy(zero_copy_only=True)
            bounds = column.offsets.to_numpy(zero_copy_only=True).astype(np.int64)
            counts = np.diff(bounds)
            n_tokens = batch.column(S.N_TOKENS).to_numpy(zero_copy_only=False)
            if not np.array_equal(counts, n_tokens):
                row = int(np.flatnonzero(counts != n_tokens)[0])
                raise ShardError(
                    f"{path}: row {row} has {counts[row]} tokens but n_tokens says {n_tokens[row]}"
                )
            chunks.append(np.full(len(counts), len(values), dtype=np.int32))
            values.append(flat)
            offsets.append(bounds[:-1])
            lengths.append(counts)
            keys.append(
                pc.binary_join_element_wise(batch.column(S.SOURCE), batch.column(S.KIND), "\x00")
            )
    groups, doc_group = _group_codes(keys)
    empty = np.zeros(0, dtype=np.int64)
    return SplitTokens(
        directory=directory,
        manifest=manifest,
        files=files,
        values=values,
        doc_chunk=np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32),
        doc_offset=np.concatenate(offsets) if offsets else empty,
        doc_length=np.concatenate(lengths) if lengths else empty,
        doc_group=doc_group,
        groups=groups,
    )


def _record_batches(path: Path) -> list[pa.RecordBatch]:
    """Every record batch of one Arrow IPC file, memory-mapped; a damaged file names itself."""
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
        batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        for batch in batches:
            batch.validate(full=True)
    except (pa.ArrowInvalid, OSError) as e:
        raise ShardError(f"{path}: not a readable Arrow IPC file: {e}") from e
    missing = [c for c in (S.TOKENS, S.N_TOKENS, S.SOURCE, S.KIND) if c not in reader.schema.names]
    if missing:
        raise ShardError(f"{path}: columns {missing} missing; has {reader.schema.names}")
    return batches


def _group_codes(keys: list[pa.Array]) -> tuple[list[tuple[str, str]], np.ndarray]:
    """(source, kind) groups and each document's group index, without a per-row Python loop."""
    if not keys:
        return [], np.zeros(0, dtype=np.int32)
    encoded = pa.chunked_array(keys).combine_chunks().dictionary_encode()
    groups = [tuple(key.split("\x00", 1)) for key in encoded.dictionary.to_pylist()]
    return groups, encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
