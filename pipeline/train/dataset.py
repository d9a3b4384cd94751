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
    input_ids   (B, S) int64: the batch's tokens, padding last;
    cu_seqlens  (n + 1,) int32: document-boundary information, compact. 0 = c_0 < ... < c_n =
                B * S are the bounds of the batch's sequences in the flattened (B * S) batch
                (flash-attn's varlen convention): a sequence starts at every document start,
                every row start and where padding starts, so none spans two rows;
    tokens      (int): real tokens; flat positions >= tokens are padding (segment -1);
    epoch, batch (ints).
Dense per-token boundaries cost more to build than the tokens themselves (12 bytes per token
against 8), so the loader leaves them to the consumer: `with_dense_boundaries(batch)` adds
    segment_ids (B, S) int32 (0, 1, ... per document piece in a row, -1 for padding) and
    position_ids (B, S) int64 (restarting at 0 at each sequence start),
which the training loop asks for (positions only for document-masked attention).

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
    dense = with_dense_boundaries(batch)  # + segment_ids, position_ids
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
# Batches built per kernel call while iterating: the call's cost (~50 us) spread over them; a
# consumer holding one batch keeps its block (64 x batch_size x seq_len int64) alive.
BLOCK_BATCHES = 64


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
        self.group_weights = packing.group_weights(
            self._split.groups, source_weights or {}, kind_weights or {}
        )
        self.weights = {"sources": dict(source_weights or {}), "kinds": dict(kind_weights or {})}
        self.epoch, self.batch = 0, 0  # position: next batch to yield
        self._plans: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._layouts: dict[int, packing.EpochLayout] = {}
        self._chunks = _chunk_table(self._split)

    # --- the plan -------------------------------------------------------------------------
    def _tokens(self) -> SplitTokens:
        if self._split is None:  # unpickled in a worker: map the files again (already verified)
            self._split = open_split(self.directory, self.split_name, False, None)
            self._chunks = _chunk_table(self._split)
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

    def _layout(self, epoch: int) -> packing.EpochLayout:
        """The epoch's plan in the form make_batch reads (computed once per epoch, per process)."""
        if epoch not in self._layouts:
            split = self._tokens()
            order, lengths, _ = self.plan(epoch)
            size = self.batch_size * self.seq_len
            batches = np.arange(self.batches_per_epoch(epoch), dtype=np.int64)
            starts = (batches * self.world_size + self.rank) * size
            self._layouts = {
                epoch: packing.epoch_layout(
                    order, lengths, split.doc_chunk, split.doc_offset, starts, size
                )
            }
        return self._layouts[epoch]

    def make_batch(self, epoch: int, batch: int) -> dict[str, Any]:
        """Batch `batch` of this rank in `epoch` (the same on every call; format above)."""
        return self.make_batches(epoch, [batch])[0]

    def make_batches(self, epoch: int, batches: list[int]) -> list[dict[str, Any]]:
        """Batches of this rank in `epoch`, built by one kernel call.

        A batch's windows are consecutive in the stream, so a batch is one stream range:
        packing.fill_batches copies each document piece of each batch out of the mapped
        shards into one (K, B, S) int64 block and writes each batch's sequence bounds; the
        batches are views of that block (a call per batch cost as much as the copy itself).
        """
        layout = self._layout(epoch)  # a fresh worker maps the shards (self._tokens) here
        size = self.batch_size * self.seq_len
        index = np.asarray(batches, dtype=np.int64)
        starts = np.minimum((index * self.world_size + self.rank) * size, layout.total)
        stops = np.minimum(starts + size, layout.total)
        empty = stops <= starts
        firsts = np.where(empty, 0, layout.first[index])
        lasts = np.where(empty, -1, layout.last[index])
        rooms = lasts - firsts + self.batch_size + 3
        ids = np.empty((len(index), self.batch_size, self.seq_len), dtype=np.int64)
        cu = np.empty(int(rooms.sum()), dtype=np.int32)
        counts = packing.fill_batches(
            *self._chunks, layout.table, firsts, lasts, starts, stops, self.pad_id,
            self.seq_len, ids.reshape(len(index), -1), cu, rooms,
        )  # fmt: skip
        inputs = torch.from_numpy(ids).unbind(0)
        bounds = torch.from_numpy(cu[: counts.sum()]).split(counts.tolist())
        tokens = (stops - starts).tolist()
        return [
            {
                "input_ids": inputs[k],
                "cu_seqlens": bounds[k],
                "tokens": tokens[k],
                "epoch": epoch,
                "batch": batch,
            }
            for k, batch in enumerate(index.tolist())
        ]

    def batch_documents(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """Where a batch's tokens come from (for inspection; make_batch never calls it): per
        document piece, in batch order, its shard file and row (the key of the lineage table
        beside the shards, pipeline/tokens/lineage.py), the piece's token range in the
        document ([begin, end), BOS included) and its first position in the flattened batch."""
        epoch, index = int(batch["epoch"]), int(batch["batch"])
        order, lengths, ends = self.plan(epoch)
        total = int(ends[-1]) if len(ends) else 0
        size = self.batch_size * self.seq_len
        start = min((index * self.world_size + self.rank) * size, total)
        stop = min(start + size, total)
        shards = self.manifest["splits"][self.split_name]["shards"]
        first_row = np.cumsum([0] + [s["rows"] for s in shards])
        out = []
        for i in range(int(np.searchsorted(ends, start, side="right")), len(ends)):
            doc_start = int(ends[i] - lengths[i])
            if doc_start >= stop:
                break
            if lengths[i] == 0:
                continue
            doc = int(order[i])
            k = int(np.searchsorted(first_row, doc, side="right")) - 1
            source, kind = self._split.groups[int(self._split.doc_group[doc])]
            out.append(
                {
                    "source": source,
                    "kind": kind,
                    "shard": shards[k]["file"],
                    "row": doc - int(first_row[k]),
                    "begin": max(start, doc_start) - doc_start,
                    "end": min(stop, int(ends[i])) - doc_start,
                    "position": max(start, doc_start) - start,
                }
            )
        return out

    def tokens_by_kind(self, batch: dict[str, Any]) -> dict[str, int]:
        """Tokens of each kind (raw, rewrite) in a batch: what a run actually trained on."""
        counts: dict[str, int] = {}
        for piece in self.batch_documents(batch):
            counts[piece["kind"]] = counts.get(piece["kind"], 0) + piece["end"] - piece["begin"]
        return counts

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
        mine = range(start + worker, self.batches_per_epoch(epoch), workers)
        for block in range(0, len(mine), BLOCK_BATCHES):
            yield from self.make_batches(epoch, list(mine[block : block + BLOCK_BATCHES]))

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
        state.update(_split=None, _chunks=None, _plans={}, _layouts={})
        return state


def with_dense_boundaries(batch: dict[str, Any], positions: bool = True) -> dict[str, Any]:
    """The batch plus dense `segment_ids` and (when asked) `position_ids`, from its cu_seqlens."""
    windows, seq_len = batch["input_ids"].shape
    cu_seqlens = batch["cu_seqlens"].numpy()
    dense = {"segment_ids": packing.dense_segments(cu_seqlens, batch["tokens"], windows, seq_len)}
    if positions:
        dense["position_ids"] = packing.dense_positions(cu_seqlens, windows, seq_len)
    return {**batch, **{key: torch.from_numpy(value) for key, value in dense.items()}}


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


def _chunk_table(split: SplitTokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """packing.fill_batch's view of the mapped token arrays (addresses, sizes, dtype); `split`
    keeps the arrays, hence the addresses, alive."""
    values = split.values
    return (
        np.array([v.__array_interface__["data"][0] for v in values], dtype=np.int64),
        np.array([len(v) for v in values], dtype=np.int64),
        np.zeros(0, dtype=split.manifest["token_dtype"]),
    )
