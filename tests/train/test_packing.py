"""Packing: windows partition the epoch's token stream; boundaries and labels follow documents."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.train import packing


def _pack_all(docs: list[np.ndarray], order: np.ndarray, seq_len: int) -> list[tuple]:
    lengths = np.array([len(d) for d in docs], dtype=np.int64)[order]
    ends = np.cumsum(lengths)
    total = int(ends[-1]) if len(ends) else 0
    windows = []
    for w in range(packing.num_windows(total, seq_len)):
        start, stop = w * seq_len, min((w + 1) * seq_len, total)
        idx, begin, end = packing.window_pieces(ends, lengths, start, stop)
        tokens = [docs[order[i]][b:e] for i, b, e in zip(idx, begin, end, strict=True)]
        windows.append((idx, begin, end, tokens))
    return windows


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=0, max_size=30),
    seq_len=st.integers(1, 33),
    seed=st.integers(0, 2**16),
)
def test_packing_keeps_every_token_once(lengths, seq_len, seed):
    rng = np.random.default_rng(seed)
    # Distinct token values so a lost or duplicated token shows.
    docs, next_id = [], 0
    for n in lengths:
        docs.append(np.arange(next_id, next_id + n))
        next_id += n
    order = packing.epoch_order(np.ones(len(docs), dtype=np.int64), rng, shuffle=True)
    windows = _pack_all(docs, order, seq_len)
    flat = [t for *_, tokens in windows for piece in tokens for t in piece.tolist()]
    assert sorted(flat) == list(range(next_id))  # none lost, none twice
    # And in stream order: the concatenation of the shuffled documents.
    expected = np.concatenate([docs[i] for i in order]) if len(order) else np.zeros(0)
    assert flat == expected.tolist()
    for _, begin, end, _ in windows[:-1]:
        assert int((end - begin).sum()) == seq_len  # only the last window is short


def _boundaries_by_hand(pieces: list[int], windows: int, seq_len: int):
    """The slow reference: walk the stream token by token."""
    segments, positions = [], []
    piece, left = 0, pieces[0] if pieces else 0
    while piece < len(pieces) and left == 0:
        piece += 1
        left = pieces[piece] if piece < len(pieces) else 0
    for w in range(windows):
        seg, pos, prev_piece, pad_pos = -1, 0, None, 0
        for _ in range(seq_len):
            if piece < len(pieces):
                if piece != prev_piece:
                    seg, pos, prev_piece = seg + 1, 0, piece
                segments.append(seg)
                positions.append(pos)
                pos += 1
                left -= 1
                while piece < len(pieces) and left == 0:
                    piece += 1
                    left = pieces[piece] if piece < len(pieces) else 0
            else:
                segments.append(packing.PAD_SEGMENT)
                positions.append(pad_pos)
                pad_pos += 1
        assert len(segments) == (w + 1) * seq_len
    return segments, positions


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.integers(0, 12), min_size=0, max_size=8),
    seq_len=st.integers(1, 9),
    extra=st.integers(0, 10),
)
def test_batch_boundaries_match_a_token_by_token_walk(pieces, seq_len, extra):
    windows = max(1, -(-(sum(pieces) + extra) // seq_len))
    segments, positions = packing.batch_boundaries(np.array(pieces), windows, seq_len)
    want_segments, want_positions = _boundaries_by_hand(pieces, windows, seq_len)
    assert segments.reshape(-1).tolist() == want_segments
    assert positions.reshape(-1).tolist() == want_positions


def test_target_labels_mask_padding_and_document_starts():
    ids = np.array([[5, 6, 7, 8, 9, 0]])
    segments = np.array([[0, 0, 1, 1, 1, -1]])
    assert packing.target_labels(ids, segments).tolist() == [[5, 6, -100, 8, 9, -100]]
    assert packing.target_labels(ids, segments, mask_boundaries=False).tolist() == [
        [5, 6, 7, 8, 9, -100]
    ]


@settings(max_examples=50, deadline=None)
@given(
    groups=st.lists(st.integers(0, 2), min_size=1, max_size=60),
    weights=st.lists(st.floats(0, 3.5, allow_nan=False), min_size=3, max_size=3),
    seed=st.integers(0, 1000),
)
def test_repeat_counts_give_exact_group_shares(groups, weights, seed):
    groups = np.array(groups)
    counts = packing.repeat_counts(groups, np.array(weights), np.random.default_rng(seed))
    for g, w in enumerate(weights):
        members = groups == g
        n = int(members.sum())
        assert counts[members].sum() == int(np.floor(w)) * n + round((w - np.floor(w)) * n)
        assert set(counts[members].tolist()) <= {int(np.floor(w)), int(np.floor(w)) + 1}


def test_epoch_plan_is_deterministic_and_differs_by_epoch():
    counts = np.ones(50, dtype=np.int64)
    a = packing.epoch_order(counts, packing.epoch_rng(7, 0, 2), shuffle=True)
    b = packing.epoch_order(counts, packing.epoch_rng(7, 0, 2), shuffle=True)
    c = packing.epoch_order(counts, packing.epoch_rng(7, 1, 2), shuffle=True)
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()
    assert sorted(a.tolist()) == list(range(50))


def _chunk_table(chunks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    addresses = np.array([c.__array_interface__["data"][0] for c in chunks], dtype=np.int64)
    sizes = np.array([len(c) for c in chunks], dtype=np.int64)
    return addresses, sizes, np.zeros(0, dtype=chunks[0].dtype)


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 30), min_size=1, max_size=25),
    chunk_count=st.integers(1, 4),
    seq_len=st.integers(1, 9),
    batch_size=st.integers(1, 4),
    world_size=st.integers(1, 3),
    wide=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fill_batch_equals_window_pieces_and_sequence_bounds(
    lengths, chunk_count, seq_len, batch_size, world_size, wide, seed
):
    rng = np.random.default_rng(seed)
    dtype = np.uint32 if wide else np.uint16
    # Documents spread over several token arrays, with gaps between them.
    doc_chunk = rng.integers(0, chunk_count, size=len(lengths))
    doc_offset = np.zeros(len(lengths), dtype=np.int64)
    parts: list[list[np.ndarray]] = [[] for _ in range(chunk_count)]
    used = [0] * chunk_count
    docs = []
    for d, n in enumerate(lengths):
        c = int(doc_chunk[d])
        gap = rng.integers(0, 2**16 - 1, size=int(rng.integers(0, 3)), dtype=dtype)
        doc = rng.integers(0, 2**16 - 1, size=n, dtype=dtype) + (70000 if wide else 0)
        parts[c] += [gap, doc.astype(dtype)]
        doc_offset[d] = used[c] + len(gap)
        used[c] += len(gap) + n
        docs.append(doc.astype(dtype))
    chunks = [np.concatenate([*p, np.zeros(1, dtype)]) for p in parts]
    order = packing.epoch_order(np.ones(len(lengths), dtype=np.int64), rng, shuffle=True)
    ordered = np.array(lengths, dtype=np.int64)[order]
    ends = np.cumsum(ordered)
    size = batch_size * seq_len
    per_rank = -(-packing.num_windows(int(ends[-1]), seq_len) // (world_size * batch_size))
    for rank in range(world_size):
        starts = (np.arange(per_rank, dtype=np.int64) * world_size + rank) * size
        layout = packing.epoch_layout(
            order, ordered, doc_chunk.astype(np.int32), doc_offset, starts, size
        )
        for b in range(per_rank):
            start = min(int(starts[b]), layout.total)
            stop = min(start + size, layout.total)
            first, last = (int(layout.first[b]), int(layout.last[b])) if stop > start else (0, -1)
            ids = np.empty(size, dtype=np.int64)
            cu = np.empty(last - first + batch_size + 3, dtype=np.int32)
            n = packing.fill_batch(
                *_chunk_table(chunks), layout.table, first, last, start, stop, 7, seq_len, ids, cu
            )
            pieces, begin, end = packing.window_pieces(ends, ordered, start, stop)
            want = [
                int(t)
                for i, lo, hi in zip(pieces, begin, end, strict=True)
                for t in docs[order[i]][lo:hi]
            ]
            assert ids.tolist() == want + [7] * (size - len(want))
            assert (
                cu[:n].tolist()
                == packing.sequence_bounds(end - begin, batch_size, seq_len).tolist()
            )


def test_fill_batch_refuses_what_would_read_or_write_out_of_bounds():
    chunks = _chunk_table([np.arange(10, dtype=np.uint16)])
    table = np.array([[0, 8, 0, 5]], dtype=np.int64)  # 5 + 8 > 10 values
    ids, cu = np.empty(8, dtype=np.int64), np.empty(4, dtype=np.int32)
    with pytest.raises(IndexError, match="outside its token array"):
        packing.fill_batch(*chunks, table, 0, 0, 0, 8, 0, 8, ids, cu)
    table[0, 3] = 2  # 2 + 8 <= 10: fine
    assert packing.fill_batch(*chunks, table, 0, 0, 0, 8, 0, 8, ids, cu) == 2
    assert ids.tolist() == list(range(2, 10)) and cu[:2].tolist() == [0, 8]
    with pytest.raises(IndexError, match="no room"):
        packing.fill_batch(*chunks, table, 0, 0, 0, 8, 0, 8, ids, cu[:3])
    with pytest.raises(IndexError, match="outside the table"):
        packing.fill_batch(*chunks, table, 0, 1, 0, 8, 0, 8, ids, np.empty(9, dtype=np.int32))
    with pytest.raises(IndexError, match="outside the table"):
        packing.fill_batch(*chunks, table, 0, 0, 0, 9, 0, 8, ids, cu)  # 9 tokens, room for 8
    table[0, 2] = 1  # no chunk 1
    with pytest.raises(IndexError, match="outside its token array"):
        packing.fill_batch(*chunks, table, 0, 0, 0, 8, 0, 8, ids, cu)


def test_fill_batches_is_fill_batch_per_batch_with_bounds_one_after_another():
    chunks = _chunk_table([np.arange(100, 120, dtype=np.uint16)])
    # Two documents of 6 and 10 tokens in one stream; batches of 2 x 4 tokens.
    table = np.array([[0, 6, 0, 0], [6, 16, 0, 4]], dtype=np.int64)
    firsts, lasts = np.array([0, 1]), np.array([1, 1])
    starts, stops = np.array([0, 8]), np.array([8, 16])
    rooms = lasts - firsts + 2 + 3
    ids, cu = np.empty((2, 8), dtype=np.int64), np.empty(int(rooms.sum()), dtype=np.int32)
    counts = packing.fill_batches(
        *chunks, table, firsts, lasts, starts, stops, 0, 4, ids, cu, rooms
    )
    at = 0
    for k in range(2):
        one_ids, one_cu = np.empty(8, dtype=np.int64), np.empty(rooms[k], dtype=np.int32)
        n = packing.fill_batch(
            *chunks, table, firsts[k], lasts[k], starts[k], stops[k], 0, 4, one_ids, one_cu
        )
        assert counts[k] == n and ids[k].tolist() == one_ids.tolist()
        assert cu[at : at + n].tolist() == one_cu[:n].tolist()
        at += n
    assert ids[0].tolist() == [100, 101, 102, 103, 104, 105, 110, 111]
    with pytest.raises(IndexError, match="no room"):
        packing.fill_batches(*chunks, table, firsts, lasts, starts, stops, 0, 4, ids, cu[:4], rooms)
