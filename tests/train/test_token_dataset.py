"""TokenShardDataset: exact coverage across ranks and workers, resume, mixture, verification."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from train_shards import BOS, TOKENIZER_SHA256, make_docs, split_documents, write_shard_dir

from pipeline.tokenize.manifest import ManifestError
from pipeline.train.dataset import TokenShardDataset, TokenShardLoader
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
                real = batch["segment_ids"][i] != PAD_SEGMENT
                windows[index] = batch["input_ids"][i][real].tolist()
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


def test_segments_and_positions_follow_documents(shard_dir):
    directory, _ = shard_dir
    for batch in _dataset(directory):
        ids, segments, positions = batch["input_ids"], batch["segment_ids"], batch["position_ids"]
        starts = np.zeros(ids.shape, dtype=bool)
        starts[:, 1:] = (segments[:, 1:] != segments[:, :-1]).numpy()
        real_starts = starts & (segments != PAD_SEGMENT).numpy()
        # A segment starts inside a window exactly where a document starts (at its BOS).
        assert (ids.numpy()[real_starts] == BOS).all()
        assert (positions.numpy()[starts] == 0).all() and (positions[:, 0] == 0).all()
        assert batch["tokens"] == int((segments != PAD_SEGMENT).sum())


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
        assert a["input_ids"].equal(b["input_ids"]) and a["segment_ids"].equal(b["segment_ids"])


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
