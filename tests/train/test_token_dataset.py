"""TokenShardDataset: exact coverage across ranks and workers, resume, mixture, verification."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from train_shards import BOS, TOKENIZER_SHA256, make_docs, split_documents, write_shard_dir

from pipeline.token_shards.files import open_shard
from pipeline.token_shards.manifest import ManifestError
from pipeline.train import packing
from pipeline.train.dataset import TokenShardDataset, TokenShardLoader, with_dense_boundaries
from pipeline.train.packing import PAD_SEGMENT

SEQ_LEN, BATCH = 16, 3


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory) -> tuple[Path, list[dict]]:
    docs = make_docs(41, seed=3)
    directory = write_shard_dir(tmp_path_factory.mktemp("shards"), docs, make_docs(4, seed=9))
    return directory, docs


def _dataset(directory: Path, rank: int = 0, world_size: int = 1, **kwargs) -> TokenShardDataset:
    options = {"seq_len": SEQ_LEN, "batch_size": BATCH, "seed": 11} | kwargs
    return TokenShardDataset(directory, rank=rank, world_size=world_size, **options)


def _global_stream(batches_by_rank: dict[int, list[dict]], world_size: int) -> list[int]:
    """Real tokens of every window, in the order of the epoch's stream."""
    windows = {}
    for rank, batches in batches_by_rank.items():
        for batch in batches:
            for i in range(BATCH):
                index = (batch["batch"] * world_size + rank) * BATCH + i
                real = batch["tokens"] - i * SEQ_LEN  # padding is the batch's tail
                windows[index] = batch["input_ids"][i][: max(real, 0)].tolist()
    return [t for index in sorted(windows) for t in windows[index]]


def test_every_token_once_per_epoch_across_2_ranks_x_2_workers(shard_dir):
    directory, docs = shard_dir
    loaders = {r: TokenShardLoader(_dataset(directory, r, 2), num_workers=2) for r in (0, 1)}
    streams = []
    for _epoch in range(2):
        batches = {r: list(loader) for r, loader in loaders.items()}
        assert len(batches[0]) == len(batches[1])  # ranks take the same number of steps
        assert [b["batch"] for b in batches[0]] == list(range(len(batches[0])))
        stream = _global_stream(batches, 2)
        # Every document exactly once (split at BOS: an independent reassembly).
        assert Counter(split_documents(stream)) == Counter(tuple(d["tokens"]) for d in docs)
        assert len(stream) == sum(len(d["tokens"]) for d in docs)
        streams.append(stream)
    assert streams[0] != streams[1]  # each epoch has its own order


def _reference_batch(ds: TokenShardDataset, epoch: int, batch: int) -> tuple[list, list, int]:
    """The batch built the plain way: window_pieces over its stream range, one piece at a time."""
    order, lengths, ends = ds.plan(epoch)
    size = ds.batch_size * ds.seq_len
    total = int(ends[-1]) if len(ends) else 0
    start = min((batch * ds.world_size + ds.rank) * size, total)
    stop = min(start + size, total)
    pieces, begin, end = packing.window_pieces(ends, lengths, start, stop)
    split = ds._tokens()
    ids = [
        t for i, b, e in zip(pieces, begin, end, strict=True) for t in split.tokens(order[i], b, e)
    ]
    ids += [ds.pad_id] * (size - len(ids))
    bounds = packing.sequence_bounds(end - begin, ds.batch_size, ds.seq_len)
    return ids, bounds.tolist(), stop - start


@pytest.mark.parametrize(
    ("seq_len", "batch_size", "rank", "world_size", "vocab"),
    [
        (16, 3, 0, 1, 300),
        (5, 2, 1, 2, 300),
        (7, 4, 2, 3, 300),
        (64, 1, 0, 1, 300),
        (1, 5, 0, 2, 300),
        (9, 3, 1, 2, 70_000),  # uint32 tokens
    ],
)
def test_batches_equal_the_plain_construction(
    tmp_path, seq_len, batch_size, rank, world_size, vocab
):
    # Empty documents among them (they take no room), shards of 5 documents (several arrays).
    docs = make_docs(30, seed=5, vocab_size=vocab)
    for i in (0, 7, 8, 29):
        docs[i]["tokens"] = []
    heldout = make_docs(2, seed=1, vocab_size=vocab)
    directory = write_shard_dir(tmp_path / "shards", docs, heldout, vocab, docs_per_shard=5)
    ds = TokenShardDataset(
        directory,
        seq_len,
        batch_size,
        rank=rank,
        world_size=world_size,
        seed=4,
        source_weights={"web": 1.5},
    )
    assert ds._tokens().values[0].dtype == (np.uint32 if vocab > 2**16 else np.uint16)
    for epoch in (0, 1):
        for index in range(ds.batches_per_epoch(epoch)):
            batch = ds.make_batch(epoch, index)
            ids, bounds, tokens = _reference_batch(ds, epoch, index)
            assert batch["input_ids"].dtype == torch.int64
            assert batch["input_ids"].reshape(-1).tolist() == ids
            assert batch["cu_seqlens"].dtype == torch.int32
            assert batch["cu_seqlens"].tolist() == bounds
            assert batch["tokens"] == tokens


def test_dense_boundaries_follow_documents(shard_dir):
    directory, _ = shard_dir
    for raw in _dataset(directory):
        batch = with_dense_boundaries(raw)
        ids, segments, positions = batch["input_ids"], batch["segment_ids"], batch["position_ids"]
        starts = np.zeros(ids.shape, dtype=bool)
        starts[:, 1:] = (segments[:, 1:] != segments[:, :-1]).numpy()
        real_starts = starts & (segments != PAD_SEGMENT).numpy()
        # A segment starts inside a window exactly where a document starts (at its BOS).
        assert (ids.numpy()[real_starts] == BOS).all()
        assert (positions.numpy()[starts] == 0).all() and (positions[:, 0] == 0).all()
        assert batch["tokens"] == int((segments != PAD_SEGMENT).sum())
        without_positions = with_dense_boundaries(raw, positions=False)
        assert "position_ids" not in without_positions
        assert without_positions["segment_ids"].equal(segments)


@pytest.mark.parametrize("stop_after", [1, 4, 7])
def test_resume_yields_the_batches_of_an_uninterrupted_run(shard_dir, stop_after):
    directory, _ = shard_dir
    per_epoch = _dataset(directory, 1, 2).batches_per_epoch()
    assert stop_after <= per_epoch
    uninterrupted = TokenShardLoader(_dataset(directory, 1, 2), num_workers=2)
    expected = list(uninterrupted) + list(uninterrupted)  # two epochs

    first = TokenShardLoader(_dataset(directory, 1, 2), num_workers=2)
    got = []
    for batch in first:
        got.append(batch)
        if len(got) == stop_after:
            break
    state = first.state_dict()
    resumed = TokenShardLoader(_dataset(directory, 1, 2), num_workers=2)
    resumed.load_state_dict(state)
    while len(got) < len(expected):
        got.extend(resumed)
    assert [(b["epoch"], b["batch"]) for b in got] == [(b["epoch"], b["batch"]) for b in expected]
    for a, b in zip(got, expected, strict=True):
        assert a["input_ids"].equal(b["input_ids"]) and a["cu_seqlens"].equal(b["cu_seqlens"])


def test_resume_refuses_a_different_plan(shard_dir):
    directory, _ = shard_dir
    state = _dataset(directory, 0, 2).state_dict()
    with pytest.raises(ValueError, match="world_size: saved 2, now 1"):
        _dataset(directory, 0, 1).load_state_dict(state)
    with pytest.raises(ValueError, match="seq_len"):
        _dataset(directory, 0, 2, seq_len=8).load_state_dict(state)


def test_mixture_weights_repeat_and_subsample_by_source_and_kind(shard_dir):
    directory, docs = shard_dir
    weights = {"source_weights": {"web": 2.0}, "kind_weights": {"rewrite": 0.5}}
    ds = _dataset(directory, **weights)
    stream = _global_stream({0: list(ds)}, 1)
    seen = Counter(split_documents(stream))
    by_group = Counter()
    for doc in docs:
        by_group[(doc["source"], doc["kind"])] += seen[tuple(doc["tokens"])]
    n = Counter((d["source"], d["kind"]) for d in docs)
    assert by_group[("web", "raw")] == 2 * n[("web", "raw")]
    assert by_group[("wiki", "raw")] == n[("wiki", "raw")]
    assert by_group[("web", "rewrite")] == n[("web", "rewrite")]  # 2 x 0.5
    assert by_group[("wiki", "rewrite")] == round(0.5 * n[("wiki", "rewrite")])
    with pytest.raises(ValueError, match="source 'wbe'"):
        _dataset(directory, source_weights={"wbe": 2.0})


def test_unshuffled_heldout_split_is_the_documents_in_order(shard_dir):
    directory, _ = shard_dir
    ds = _dataset(directory, split="heldout", shuffle=False)
    stream = _global_stream({0: list(ds)}, 1)
    assert split_documents(stream) == [tuple(d["tokens"]) for d in make_docs(4, seed=9)]


def test_reads_are_zero_copy_views_of_the_mapped_file(shard_dir):
    directory, _ = shard_dir
    values = _dataset(directory)._tokens().values
    assert all(not v.flags.owndata and not v.flags.writeable for v in values)
    assert values[0].dtype == np.uint16


def test_flipped_byte_is_refused_naming_the_file(tmp_path):
    directory = write_shard_dir(tmp_path / "shards", make_docs(20), make_docs(2, seed=1))
    target = directory / "shard-00001.arrow"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"shard-00001\.arrow: sha256 .* corrupted"):
        _dataset(directory)


def test_tokenizer_mismatch_and_missing_shard_are_refused(tmp_path):
    directory = write_shard_dir(tmp_path / "shards", make_docs(20), make_docs(2, seed=1))
    _dataset(directory, tokenizer_sha256=TOKENIZER_SHA256)  # the right one passes
    with pytest.raises(ManifestError, match=r"tokenizer\.sha256"):
        _dataset(directory, tokenizer_sha256="0" * 64)
    (directory / "heldout-00000.arrow").unlink()
    with pytest.raises(ManifestError, match=r"heldout-00000\.arrow: listed .* but missing"):
        _dataset(directory)


def test_batch_documents_name_the_shard_row_of_every_token(shard_dir):
    directory, docs = shard_dir
    rows = {}
    for path in directory.glob("shard-*.arrow"):
        for i, r in enumerate(open_shard(path).to_pylist()):
            rows[(path.name, i)] = r
    ds = _dataset(directory, rank=1, world_size=2)
    seen = 0
    for batch in TokenShardLoader(ds):
        flat = batch["input_ids"].reshape(-1).tolist()
        pieces = ds.batch_documents(batch)
        assert sum(p["end"] - p["begin"] for p in pieces) == batch["tokens"]
        for p in pieces:
            row = rows[(p["shard"], p["row"])]
            tokens = row["tokens"][p["begin"] : p["end"]]
            assert flat[p["position"] : p["position"] + len(tokens)] == tokens
            assert (p["source"], p["kind"]) == (row["source"], row["kind"])
        by_kind = Counter()
        for p in pieces:
            by_kind[p["kind"]] += p["end"] - p["begin"]
        assert ds.tokens_by_kind(batch) == dict(by_kind)
        seen += len(pieces)
    assert seen >= len(docs) // 2


def test_a_rewrite_weight_is_no_typo_when_the_shards_hold_no_rewrite(tmp_path):
    raw_only = [d for d in make_docs(20) if d["kind"] == "raw"]
    directory = write_shard_dir(tmp_path / "shards", raw_only, make_docs(2, seed=1))
    assert _dataset(directory, kind_weights={"rewrite": 20.0}).batches_per_epoch() > 0
    with pytest.raises(ValueError, match="kind 'rewrtie'"):
        _dataset(directory, kind_weights={"rewrtie": 2.0})
