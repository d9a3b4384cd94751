"""Packing documents into fixed-length samples: numpy and one numba kernel; no torch, no files.

An epoch is a sequence of document occurrences (mixture repeats, then a seeded shuffle). Their
tokens, concatenated in that order, form the epoch's token stream; sample i is the window
[i * seq_len, (i + 1) * seq_len) of it. Windows partition the stream, so every token of every
occurrence is an input exactly once per epoch; the last window is padded. Labels are the
inputs themselves (the loss shifts by one inside a window), so the first token of each window
is never a target: 1 in seq_len tokens (0.4% at 256).

Document boundaries travel with each batch in compact form: `cu_seqlens`, the cumulative
boundaries of its sequences in the flattened (windows * seq_len) batch, flash-attn's varlen
convention. A sequence is a maximal run of tokens inside one document piece and one window, or
the padding of one window; with the count of real tokens (padding is always the batch's tail)
that is all the boundary information there is. `segment_ids` (0, 1, ... per document piece in
the window; -1 for padding) and `position_ids` (restarting at 0 where a document starts and at
the window start) are derived from it when a consumer needs them dense, e.g. to confine
attention to each document.

    counts = repeat_counts(groups, np.array([1.0, 0.5]), rng)  # group 0 once, group 1 half
    order = epoch_order(counts, rng, shuffle=True)             # document occurrences
    ends = np.cumsum(lengths[order])
    docs, begin, end = window_pieces(ends, lengths[order], start=0, stop=256)
    cu = sequence_bounds(end - begin, windows=1, seq_len=256)
    segments = dense_segments(cu, tokens=int((end - begin).sum()), windows=1, seq_len=256)

A loader builds a whole batch with one `fill_batch` call over the epoch's `epoch_layout`: the
same tokens and bounds as window_pieces + sequence_bounds, without Python work per document.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from pipeline.schema import KIND_RAW, KIND_REWRITE

PAD_SEGMENT = -1  # segment id of padding tokens
IGNORE_INDEX = -100  # label value the cross-entropy skips (torch's default ignore_index)


def epoch_rng(seed: int, epoch: int, purpose: int) -> np.random.Generator:
    """A generator that depends only on (seed, epoch, purpose): same draws on every rank/worker."""
    return np.random.default_rng([seed, epoch, purpose])


def repeat_counts(groups: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Occurrences of each document in one epoch, from its group's weight.

    A weight w gives every document of the group floor(w) occurrences, plus one more for
    round(frac(w) * n) of its n documents, picked by a seeded permutation: the group's share
    of documents is exact, not a coin flip per document. Weight 1: each document once; 0: none.
    """
    groups = np.asarray(groups, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if (weights < 0).any():
        raise ValueError(f"mixture weights must be >= 0, got {weights.tolist()}")
    counts = np.floor(weights[groups]).astype(np.int64)
    for group, weight in enumerate(weights):
        extra_share = weight - np.floor(weight)
        if extra_share == 0:
            continue
        members = np.flatnonzero(groups == group)
        extra = round(extra_share * len(members))
        counts[members[rng.permutation(len(members))[:extra]]] += 1
    return counts


def group_weights(
    groups: list[tuple[str, str]], sources: dict[str, float], kinds: dict[str, float]
) -> np.ndarray:
    """Weight of each (source, kind) group; a name absent from the shards is a typo: refuse it."""
    known_sources = sorted({s for s, _ in groups})
    known_kinds = sorted({k for _, k in groups})
    # raw and rewrite are the kinds there are: weighting rewrites in shards that hold none
    # (every rewrite rejected) is no typo.
    unknown = [f"source {s!r}" for s in sources if s not in known_sources] + [
        f"kind {k!r}" for k in kinds if k not in (*known_kinds, KIND_RAW, KIND_REWRITE)
    ]
    if unknown:
        raise ValueError(
            f"mixture weights name {', '.join(unknown)}, absent from the shards "
            f"(sources {known_sources}, kinds {known_kinds})"
        )
    weights = [float(sources.get(s, 1.0)) * float(kinds.get(k, 1.0)) for s, k in groups]
    if any(w < 0 for w in weights):
        raise ValueError(f"mixture weights must be >= 0: {sources} {kinds}")
    return np.asarray(weights, dtype=np.float64)


def epoch_order(counts: np.ndarray, rng: np.random.Generator, shuffle: bool) -> np.ndarray:
    """Document indices of one epoch: each document `counts[d]` times, shuffled when asked."""
    order = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    if shuffle:
        order = order[rng.permutation(len(order))]
    return order


def num_windows(total_tokens: int, seq_len: int) -> int:
    return -(-int(total_tokens) // seq_len)


def window_pieces(
    ends: np.ndarray, lengths: np.ndarray, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pieces of the stream [start, stop): (occurrence index, begin, end within the doc).

    `ends` is the cumulative sum of the occurrences' lengths (`lengths`, in epoch order).
    Empty documents take no room and yield no piece.
    """
    if stop <= start:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    first = int(np.searchsorted(ends, start, side="right"))
    last = int(np.searchsorted(ends, stop - 1, side="right"))
    idx = np.arange(first, min(last, len(ends) - 1) + 1, dtype=np.int64)
    doc_starts = ends[idx] - lengths[idx]
    begin = np.maximum(start, doc_starts) - doc_starts
    end = np.minimum(stop, ends[idx]) - doc_starts
    keep = end > begin
    return idx[keep], begin[keep], end[keep]


@dataclass
class EpochLayout:
    """An epoch's plan as a batch builder reads it (TokenShardDataset.make_batch)."""

    table: np.ndarray  # (occurrences, 4) int64: stream start, stream end, chunk, shift
    total: int  # tokens in the epoch's stream
    first: np.ndarray  # per batch: its first row of `table`
    last: np.ndarray  # and its last


def epoch_layout(
    order: np.ndarray,
    lengths: np.ndarray,
    doc_chunk: np.ndarray,
    doc_offset: np.ndarray,
    batch_starts: np.ndarray,
    batch_tokens: int,
) -> EpochLayout:
    """One row per non-empty occurrence (empty documents take no room: no piece, no sequence):
    its span [start, end) in the stream, the values array (`chunk`) that holds the document,
    and `shift`, which maps a stream position to an index into that array (the document
    starts at `doc_offset` there). Batches start at `batch_starts` and hold `batch_tokens`
    (clipped to the stream); `first`/`last` are the rows each one touches."""
    keep = lengths > 0
    occurrences, lengths = order[keep], lengths[keep]
    ends = np.cumsum(lengths)
    starts = ends - lengths
    table = np.empty((len(ends), 4), dtype=np.int64)
    table[:, 0], table[:, 1], table[:, 2] = starts, ends, doc_chunk[occurrences]
    np.subtract(doc_offset[occurrences], starts, out=table[:, 3])
    total = int(ends[-1]) if len(ends) else 0
    begin = np.minimum(batch_starts, total)
    bounds = np.searchsorted(
        ends, np.concatenate([begin, np.minimum(begin + batch_tokens, total) - 1]), side="right"
    )
    return EpochLayout(table, total, bounds[: len(begin)], bounds[len(begin) :])


@intrinsic
def _void_pointer(typingctx, address):
    """An integer address as a void* (numba.carray needs a pointer)."""

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


@njit(cache=True, inline="always")
def _add_bound(cu, n, next_row, bound, seq_len):
    """Append `bound` to cu after the row starts below it (each bound once); new (n, next_row)."""
    while next_row < bound:
        cu[n] = next_row
        n, next_row = n + 1, next_row + seq_len
    if next_row == bound:
        next_row += seq_len
    cu[n] = bound
    return n + 1, next_row


@njit(cache=True, inline="always")
def _widen(dst, src):
    """dst[:] = src, element by element: LLVM vectorises this loop over two views, where
    numba's slice assignment between dtypes (uint16 into int64) ran at half the speed
    (bench/tokenize_load.py: 6.2 against 4.1 us per 8,192-token batch)."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@njit(cache=True, nogil=True)
def fill_batches(
    addresses, sizes, like, table, firsts, lasts, starts, stops, pad_id, seq_len, ids, cu, rooms
):
    """fill_batch for K batches in one call (a call costs more than a batch's copy): batch
    k's range [starts[k], stops[k]) and rows firsts[k]..lasts[k] into ids[k]; the batches'
    cu_seqlens one after another in `cu` (batch k has room for rooms[k]). Returns each
    batch's cu_seqlens count."""
    counts = np.empty(ids.shape[0], dtype=np.int64)
    at = 0
    for k in range(ids.shape[0]):
        if at + rooms[k] > cu.shape[0]:
            raise IndexError("fill_batches: cu has no room for every batch")
        counts[k] = fill_batch(
            addresses, sizes, like, table, firsts[k], lasts[k], starts[k], stops[k],
            pad_id, seq_len, ids[k], cu[at : at + rooms[k]],
        )  # fmt: skip
        at += counts[k]
    return counts


@njit(cache=True, nogil=True)
def fill_batch(addresses, sizes, like, table, first, last, start, stop, pad_id, seq_len, ids, cu):
    """Copy the stream range [start, stop) into `ids` (flat, int64, padded with pad_id) and
    write its cu_seqlens into `cu` (room for last - first + rows + 3); return their count.
    Rows first..last of the epoch's layout `table` are the documents the range touches.

    The token arrays are passed as addresses and sizes (chunk c is `sizes[c]` values of
    `like.dtype` at `addresses[c]`): a list of arrays costs per call, this does not. The caller
    keeps the arrays alive. numba does not check indices, so this checks every read and the
    room in `ids` and `cu` itself: a bad argument raises instead of touching other memory.
    """
    size = ids.shape[0]
    rows = -(-size // seq_len)
    if first < 0 or last >= table.shape[0] or not 0 <= stop - start <= size:
        raise IndexError("fill_batch: rows or range outside the table or the batch")
    if cu.shape[0] < last - first + rows + 3:
        raise IndexError("fill_batch: cu has no room for every bound")
    n, next_row = 0, 0
    for row in range(first, last + 1):
        chunk, shift = table[row, 2], table[row, 3]
        lo, hi = max(table[row, 0], start), min(table[row, 1], stop)
        if not 0 <= chunk < sizes.shape[0] or shift + lo < 0 or shift + hi > sizes[chunk]:
            raise IndexError("fill_batch: a document's span lies outside its token array")
        tokens = numba.carray(_void_pointer(addresses[chunk]), sizes[chunk], like.dtype)
        _widen(ids[lo - start : hi - start], tokens[shift + lo : shift + hi])
        n, next_row = _add_bound(cu, n, next_row, lo - start, seq_len)
    used = stop - start
    ids[used:] = pad_id
    if used < size:
        n, next_row = _add_bound(cu, n, next_row, used, seq_len)
    while next_row < size:
        cu[n] = next_row
        n, next_row = n + 1, next_row + seq_len
    cu[n] = size
    return n + 1


def sequence_bounds(piece_lengths: np.ndarray, windows: int, seq_len: int) -> np.ndarray:
    """cu_seqlens (int32) of consecutive windows of the stream whose document pieces (in stream
    order, not cut at window edges) have these lengths: 0, every start of a sequence (a piece
    start, a window start, the padding start), then windows * seq_len. The reference for the
    loader's own per-batch computation (TokenShardDataset.make_batch)."""
    total = windows * seq_len
    piece_lengths = np.asarray(piece_lengths, dtype=np.int64)
    used = int(piece_lengths.sum())
    if used > total:
        raise ValueError(f"pieces hold {used} tokens, more than {windows} x {seq_len}")
    piece_starts = np.cumsum(piece_lengths) - piece_lengths
    run_starts = np.union1d(piece_starts[piece_starts < used], np.arange(0, total, seq_len))
    if used < total:
        run_starts = np.union1d(run_starts, [used])
    return np.append(run_starts, total).astype(np.int32)


def dense_positions(cu_seqlens: np.ndarray, windows: int, seq_len: int) -> np.ndarray:
    """position_ids (windows, seq_len) int64: 0, 1, ... from each sequence start (padding too,
    so a model that splits sequences on position resets keeps it apart from the last
    document). Per-run work, then one np.repeat: a few memory passes per token."""
    cu = np.asarray(cu_seqlens, dtype=np.int64)
    starts = np.repeat(cu[:-1], np.diff(cu))
    return (np.arange(windows * seq_len, dtype=np.int64) - starts).reshape(windows, seq_len)


def dense_segments(cu_seqlens: np.ndarray, tokens: int, windows: int, seq_len: int) -> np.ndarray:
    """segment_ids (windows, seq_len) int32: 0, 1, ... per sequence within each window, -1
    (PAD_SEGMENT) for the padding, which starts at flat index `tokens`."""
    cu = np.asarray(cu_seqlens, dtype=np.int64)
    starts = cu[:-1]
    window = starts // seq_len
    segment = np.arange(len(starts)) - np.searchsorted(window, window)
    segment[starts >= tokens] = PAD_SEGMENT
    return np.repeat(segment.astype(np.int32), np.diff(cu)).reshape(windows, seq_len)


def batch_boundaries(
    piece_lengths: np.ndarray, windows: int, seq_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Dense (segment_ids, position_ids) of windows holding these document pieces (see
    sequence_bounds, dense_segments, dense_positions)."""
    cu = sequence_bounds(piece_lengths, windows, seq_len)
    used = int(np.asarray(piece_lengths, dtype=np.int64).sum())
    return dense_segments(cu, used, windows, seq_len), dense_positions(cu, windows, seq_len)


def target_labels(
    input_ids: np.ndarray, segment_ids: np.ndarray, mask_boundaries: bool = True
) -> np.ndarray:
    """Labels for a causal LM whose loss predicts token t from tokens < t (shift inside).

    Padding is never a target. With mask_boundaries, the first token of a document that
    starts inside a window is not a target either: it would be predicted from the previous
    document, which document-masked attention does not even show.
    """
    labels = np.where(segment_ids == PAD_SEGMENT, IGNORE_INDEX, input_ids).astype(np.int64)
    if mask_boundaries:
        starts = np.zeros(segment_ids.shape, dtype=bool)
        starts[..., 1:] = segment_ids[..., 1:] != segment_ids[..., :-1]
        labels[starts] = IGNORE_INDEX
    return labels
