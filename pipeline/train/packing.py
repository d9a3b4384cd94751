"""Packing documents into fixed-length samples: pure numpy, no torch, no files.

An epoch is a sequence of document occurrences (mixture repeats, then a seeded shuffle). Their
tokens, concatenated in that order, form the epoch's token stream; sample i is the window
[i * seq_len, (i + 1) * seq_len) of it. Windows partition the stream, so every token of every
occurrence is an input exactly once per epoch; the last window is padded. Labels are the
inputs themselves (the loss shifts by one inside a window), so the first token of each window
is never a target: 1 in seq_len tokens (0.4% at 256).

Document boundaries travel with each sample as `segment_ids` (0, 1, ... per document piece in
the window; -1 for padding) and `position_ids` (restarting at 0 where a document starts and at
the window start), from which attention can be confined to each document.

    counts = repeat_counts(groups, np.array([1.0, 0.5]), rng)  # group 0 once, group 1 half
    order = epoch_order(counts, rng, shuffle=True)             # document occurrences
    ends = np.cumsum(lengths[order])
    docs, begin, end = window_pieces(ends, lengths[order], start=0, stop=256)
"""

from __future__ import annotations

import numpy as np

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


def batch_boundaries(
    piece_lengths: np.ndarray, windows: int, seq_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """segment_ids and position_ids, shaped (windows, seq_len), of consecutive windows of the
    stream whose document pieces (in stream order, not cut at window edges) have these lengths.

    Segments count 0, 1, ... per document piece within each window; positions restart at 0
    where a document starts and at each window start. Padding after the pieces gets segment -1
    and positions counting from 0 again, so a model that splits sequences on position resets
    keeps it apart from the last document.
    """
    total = windows * seq_len
    piece_lengths = np.asarray(piece_lengths, dtype=np.int64)
    used = int(piece_lengths.sum())
    if used > total:
        raise ValueError(f"pieces hold {used} tokens, more than {windows} x {seq_len}")
    # Runs: maximal spans inside one piece and one window (and the padding). Work per run,
    # then one np.repeat per output: the per-token cost is a few memory passes.
    piece_starts = np.cumsum(piece_lengths) - piece_lengths
    run_starts = np.union1d(piece_starts[piece_starts < used], np.arange(0, total, seq_len))
    if used < total:
        run_starts = np.union1d(run_starts, [used])
    run_lengths = np.diff(np.append(run_starts, total))
    positions = np.arange(total, dtype=np.int64) - np.repeat(run_starts, run_lengths)
    run_window = run_starts // seq_len
    run_segment = np.arange(len(run_starts)) - np.searchsorted(run_window, run_window)
    run_segment[run_starts >= used] = PAD_SEGMENT
    segments = np.repeat(run_segment.astype(np.int32), run_lengths)
    return segments.reshape(windows, seq_len), positions.reshape(windows, seq_len)


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
