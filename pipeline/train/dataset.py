"""TokenShardDataset: packed, shuffled, rank- and worker-split batches from token shards.

Each epoch is planned the same way in every process (pipeline.train.packing): mixture repeats
and a shuffle drawn from (seed, epoch), documents concatenated with their BOS/EOS, cut into
windows of `seq_len` tokens. Global batch g holds windows [g*R*B, (g+1)*R*B) for R ranks and
B windows per rank; rank r takes the r-th B of them, so every window belongs to exactly one
rank. Within a rank, DataLoader worker w builds the rank's batches b with b % W == w, and the
DataLoader interleaves workers round-robin, so a rank sees batches 0, 1, 2, ... in order
whatever W is. The last global batch is filled with padding windows (segment -1, never a
target) so that all ranks take the same number of steps; nothing is dropped.

The dataset yields whole batches (use `batch_size=None` in a DataLoader, or TokenShardLoader):
    input_ids (B, S) int64, segment_ids (B, S) int32, position_ids (B, S) int64,
    epoch, batch (ints), tokens (non-padding tokens in the batch).

Mixture weights multiply per (source, kind): a document of source s and kind k occurs
`source_weights[s] * kind_weights[k]` times per epoch (packing.repeat_counts: 2.0 twice, 0.5
half of the group's documents, chosen per epoch; missing names weigh 1).

Resume: the state is (epoch, batches consumed) in the *main* process, updated as batches are
consumed (TokenShardLoader does this), never in the workers, whose prefetching runs ahead.
A new iteration starts every worker from that position, so a resumed run yields exactly the
batches an uninterrupted one would.

    ds = TokenShardDataset("outputs/demo/tokenize/data", seq_len=256, batch_size=4,
                           rank=0, world_size=2, seed=0, source_weights={"wiki": 2.0})
    loader = TokenShardLoader(ds, num_workers=2)
    for batch in loader: ...          # one epoch from the current position
    state = loader.state_dict()       # later: ds.load_state_dict(state)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pipeline.train import packing
from pipeline.train.reader import SplitTokens, open_split

STATE_VERSION = 1
# Keys of the state that must match for a resume to mean the same stream of batches.
_PLAN_KEYS = ("split", "seq_len", "batch_size", "world_size", "seed", "shuffle", "weights")


class TokenShardDataset(IterableDataset):
    def __init__(
        self,
        directory: str | Path,
        seq_len: int,
        batch_size: int,
        split: str = "train",
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        source_weights: dict[str, float] | None = None,
        kind_weights: dict[str, float] | None = None,
        verify: bool = True,
        tokenizer_sha256: str | None = None,
        pad_id: int | None = None,
    ):
        if seq_len < 1 or batch_size < 1:
            raise ValueError(f"seq_len and batch_size must be >= 1, got {seq_len}, {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.directory = Path(directory)
        self.split_name = split
        self.seq_len, self.batch_size = seq_len, batch_size
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle = seed, shuffle
        self.verify, self.tokenizer_sha256 = verify, tokenizer_sha256
        self._split: SplitTokens | None = open_split(directory, split, verify, tokenizer_sha256)
        self.manifest = self._split.manifest
        tokenizer = self.manifest["tokenizer"]
        # Padding is never attended across nor a target; any id will do, the tokenizer's own
        # pad (or EOS) keeps decoded samples readable.
        candidates = (pad_id, tokenizer.get("pad_id"), tokenizer.get("eos_id"), 0)
        self.pad_id = int(next(i for i in candidates if i is not None))
        self.group_weights = _group_weights(
            self._split.groups, source_weights or {}, kind_weights or {}
        )
        self.weights = {"sources": dict(source_weights or {}), "kinds": dict(kind_weights or {})}
        self.epoch, self.batch = 0, 0  # position: next batch to yield
        self._plans: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    # --- the plan -------------------------------------------------------------------------
    def _tokens(self) -> SplitTokens:
        if self._split is None:  # unpickled in a worker: map the files again (already verified)
            self._split = open_split(self.directory, self.split_name, False, None)
        return self._split

    def plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(order, lengths, ends): the epoch's document occurrences, their token counts and
        the cumulative end of each in the epoch's token stream."""
        if epoch not in self._plans:
            split = self._tokens()
            counts = packing.repeat_counts(
                split.doc_group, self.group_weights, packing.epoch_rng(self.seed, epoch, 1)
            )
            order = packing.epoch_order(
                counts, packing.epoch_rng(self.seed, epoch, 2), self.shuffle
            )
            lengths = split.doc_length[order]
            self._plans = {epoch: (order, lengths, np.cumsum(lengths))}
        return self._plans[epoch]

    def epoch_tokens(self, epoch: int) -> int:
        ends = self.plan(epoch)[2]
        return int(ends[-1]) if len(ends) else 0

    def batches_per_epoch(self, epoch: int = 0) -> int:
        windows = packing.num_windows(self.epoch_tokens(epoch), self.seq_len)
        return -(-windows // (self.world_size * self.batch_size))

    def make_batch(self, epoch: int, batch: int) -> dict[str, Any]:
        """Batch `batch` of this rank in `epoch` (the same on every call).

        Its windows are consecutive in the stream, so the batch is one stream range: the
        document pieces in it are copied out of the mapped shards slice by slice (one numpy
        copy per piece), and the boundary arrays are computed for the range at once.
        """
        split = self._tokens()
        order, lengths, ends = self.plan(epoch)
        size = self.batch_size * self.seq_len
        total = int(ends[-1]) if len(ends) else 0
        start = min((batch * self.world_size + self.rank) * size, total)
        stop = min(start + size, total)
        pieces, begin, end = packing.window_pieces(ends, lengths, start, stop)
        ids = np.full(size, self.pad_id, dtype=np.int64)
        if len(pieces):
            spans = zip(order[pieces].tolist(), begin.tolist(), end.tolist(), strict=True)
            parts = [split.tokens(doc, lo, hi) for doc, lo, hi in spans]
            ids[: stop - start] = np.concatenate(parts)
        segments, positions = packing.batch_boundaries(end - begin, self.batch_size, self.seq_len)
        return {
            "input_ids": torch.from_numpy(ids.reshape(self.batch_size, self.seq_len)),
            "segment_ids": torch.from_numpy(segments),
            "position_ids": torch.from_numpy(positions),
            "epoch": epoch,
            "batch": batch,
            "tokens": stop - start,
        }

    # --- iteration --------------------------------------------------------------------------
    def _start(self) -> tuple[int, int]:
        epoch, batch = self.epoch, self.batch
        if batch >= self.batches_per_epoch(epoch):  # the saved position ended an epoch
            epoch, batch = epoch + 1, 0
        return epoch, batch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The rest of the current epoch from the current position; this worker's share."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        epoch, start = self._start()
        for batch in range(start + worker, self.batches_per_epoch(epoch), workers):
            yield self.make_batch(epoch, batch)

    def mark_consumed(self, batch: dict[str, Any]) -> None:
        """Advance the position past a batch the consumer has taken (main process)."""
        self.epoch, self.batch = int(batch["epoch"]), int(batch["batch"]) + 1

    # --- state ------------------------------------------------------------------------------
    def _plan_state(self) -> dict[str, Any]:
        return {
            "split": self.split_name,
            "seq_len": self.seq_len,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "weights": self.weights,
            # The shards themselves: their sha256s as the manifest lists them.
            "shards": hashlib.sha256(
                json.dumps(self.manifest["splits"][self.split_name], sort_keys=True).encode()
            ).hexdigest()[:16],
        }

    def state_dict(self) -> dict[str, Any]:
        """Position and what it means; the same on every rank (ranks step together)."""
        position = {"version": STATE_VERSION, "epoch": self.epoch, "batch": self.batch}
        return {**position, **self._plan_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"loader state version {state.get('version')} != {STATE_VERSION}")
        mine = self._plan_state()
        wrong = [
            f"{key}: saved {state.get(key)!r}, now {value!r}"
            for key, value in mine.items()
            if state.get(key) != value
        ]
        if wrong:
            raise ValueError(
                "cannot resume the loader: the batches would differ (" + "; ".join(wrong) + ")"
            )
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps do not pickle; a worker maps the (already verified) files itself.
        state = self.__dict__.copy()
        state["_split"], state["_plans"] = None, {}
        return state


class TokenShardLoader:
    """A DataLoader over a TokenShardDataset that keeps the dataset's position exact.

    Batches come out in batch order (a small reorder buffer makes that hold even if workers
    answer out of turn); the dataset's position advances only when a batch is handed to the
    caller. Iterating yields the rest of the current epoch.
    """

    def __init__(self, dataset: TokenShardDataset, num_workers: int = 0, **loader_kwargs: Any):
        if loader_kwargs.get("persistent_workers"):
            # Kept-alive workers would go on from where they were, not from the saved position.
            raise ValueError("TokenShardLoader does not support persistent_workers")
        self.dataset = dataset
        self.num_workers = num_workers
        self.loader_kwargs = loader_kwargs

    def __iter__(self) -> Iterator[dict[str, Any]]:
        epoch, expected = self.dataset._start()
        loader = DataLoader(
            self.dataset, batch_size=None, num_workers=self.num_workers, **self.loader_kwargs
        )
        waiting: dict[int, dict[str, Any]] = {}
        for batch in loader:
            waiting[int(batch["batch"])] = batch
            while expected in waiting:
                ready = waiting.pop(expected)
                self.dataset.mark_consumed(ready)
                expected += 1
                yield ready
        if waiting:
            raise RuntimeError(f"loader lost batches before {sorted(waiting)} in epoch {epoch}")

    def __len__(self) -> int:
        epoch, start = self.dataset._start()
        return self.dataset.batches_per_epoch(epoch) - start

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dataset.load_state_dict(state)


def _group_weights(
    groups: list[tuple[str, str]], sources: dict[str, float], kinds: dict[str, float]
) -> np.ndarray:
    """Weight of each (source, kind) group; a name absent from the shards is a typo: refuse it."""
    known_sources = sorted({s for s, _ in groups})
    known_kinds = sorted({k for _, k in groups})
    unknown = [f"source {s!r}" for s in sources if s not in known_sources] + [
        f"kind {k!r}" for k in kinds if k not in known_kinds
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
