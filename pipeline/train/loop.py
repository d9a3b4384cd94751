"""The continued-pretraining loop of one worker: the same code alone or as a Ray Train rank.

`train_worker(plan)` builds the loaders (its rank's share), the model (DDP when
torch.distributed is up: Ray Train's TorchTrainer starts it, gloo on CPU, NCCL on GPUs),
AdamW with warmup + cosine, and resumes from the newest checkpoint in the output directory.
Each step takes `grad_accum` micro-batches; the loss is the mean over every target token of the
step on every rank (not a mean of per-batch means), plus the router's load-balancing loss
times `aux_loss_coef`. Rank 0 writes metrics.jsonl (one row per logged step and per
evaluation), checkpoints and summary.json.

    plan = TrainPlan(train=TrainConfig(init="tiny", ...), shards=..., output_dir=...)
    summary = train_worker(plan)     # in-process; pipeline.train.ray_train runs it on Ray
"""

from __future__ import annotations

import itertools
import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from pipeline.config.train import TrainConfig
from pipeline.plumbing.atomic import atomic_write_text
from pipeline.schema import KIND_RAW, KIND_REWRITE
from pipeline.train.checkpoint import (
    latest_checkpoint,
    restore,
    save_checkpoint,
    trainable_state,
    warmup_cosine,
)
from pipeline.train.dataset import TokenShardDataset, TokenShardLoader, with_dense_boundaries
from pipeline.train.metrics import MetricsLog
from pipeline.train.model import (
    autocast,
    build_model,
    clip_gradients,
    forward,
    heldout_loss_sum,
    is_moe,
    lm_loss_sum,
    parameter_groups,
    prepare_batch,
    router_aux_loss,
    set_trainable,
)
from pipeline.train.packing import PAD_SEGMENT

METRICS = "metrics.jsonl"
SUMMARY = "summary.json"


@dataclass
class TrainPlan:
    """Everything a worker needs, resolved by the driver (absolute paths, the model's folder)."""

    train: TrainConfig
    shards: str
    output_dir: str
    init_path: str | None = None  # None: the tiny random model
    trust_remote_code: bool = False
    tokenizer_sha256: str | None = None
    under_ray: bool = False
    # The driver checked every shard's sha256 (resolve_plan): workers check sizes only.
    verified: bool = False
    extra_meta: dict[str, Any] = field(default_factory=dict)


class Ranks:
    """Rank, world size and sums across ranks (a no-op on one process)."""

    def __init__(self) -> None:
        self.on = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.on else 0
        self.world = dist.get_world_size() if self.on else 1

    def sum(self, *values: float) -> list[float]:
        if not self.on:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.on:
            dist.barrier()


def train_worker(plan: TrainPlan) -> dict[str, Any]:
    cfg, data = plan.train, plan.train.data
    ranks = Ranks()
    threads = cfg.scaling.threads_per_worker or math.ceil(cfg.scaling.cpus_per_worker)
    torch.set_num_threads(max(threads, 1))
    device = _device(plan)
    out = Path(plan.output_dir)
    common = {
        "seq_len": data.seq_len,
        "batch_size": data.batch_size,
        "rank": ranks.rank,
        "world_size": ranks.world,
        "seed": data.seed,
    }
    train_set = TokenShardDataset(
        plan.shards,
        split="train",
        shuffle=data.shuffle,
        source_weights=data.source_weights,
        kind_weights=data.kind_weights,
        verify=data.verify and not plan.verified,
        tokenizer_sha256=plan.tokenizer_sha256,
        **common,
    )
    # load_manifest checked every split's files above; sizes are checked again here.
    heldout = TokenShardDataset(plan.shards, split="heldout", shuffle=False, verify=False, **common)
    if train_set.batches_per_epoch() == 0:
        raise ValueError(f"{plan.shards}: the train split holds no tokens")

    model = build_model(
        plan.init_path,
        cfg.tiny,
        cfg.dtype,
        plan.trust_remote_code,
        train_set.manifest["tokenizer"]["vocab_size"],
        cfg.seed,
    )
    trained, frozen = set_trainable(model, cfg.trainable)
    model.to(device)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    moe = is_moe(model)
    ddp = (
        torch.nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
        if ranks.on
        else model
    )
    o = cfg.optim
    optimizer = torch.optim.AdamW(
        parameter_groups(model, o.weight_decay), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(o.warmup_steps, cfg.max_steps, o.min_lr_ratio)
    )
    loader = TokenShardLoader(train_set, num_workers=data.loader_workers)
    meta = {
        "init": plan.init_path or "tiny",
        "trainable": list(cfg.trainable),
        "world_size": ranks.world,
        **plan.extra_meta,
    }

    step, history = 0, {}
    latest = latest_checkpoint(out) if cfg.resume else None
    if latest is not None:
        step, history = restore(latest, meta, model, optimizer, scheduler, loader)
    log = MetricsLog(out / METRICS, enabled=ranks.rank == 0, after_step=step)

    # The loader ships compact boundaries (cu_seqlens); labels need dense segments, and
    # document-masked attention the restarting positions.
    positions = data.attention == "document"

    def dense(batch: dict[str, Any]) -> dict[str, Any]:
        return with_dense_boundaries(batch, positions=positions)

    def evaluate() -> float | None:
        heldout.epoch, heldout.batch = 0, 0
        batches = map(dense, itertools.islice(heldout, cfg.eval_batches))
        loss, tokens = heldout_loss_sum(model, batches, data.attention, device)
        loss, tokens = ranks.sum(loss, tokens)
        return loss / tokens if tokens else None

    if step == 0:
        history["eval_loss_before"] = evaluate()
        log.write({"step": 0, "eval_loss": history["eval_loss_before"]})
    batches = _forever(loader)
    started, tokens_total = time.perf_counter(), 0
    read_by_kind: dict[str, int] = {}  # tokens trained on per kind (raw, rewrite), this rank
    stop = min(cfg.max_steps, step + (cfg.stop_after_steps or cfg.max_steps))
    while step < stop:
        t0, cpu0 = time.perf_counter(), time.process_time()
        loaded = [next(batches) for _ in range(cfg.grad_accum)]
        for b in loaded:
            for kind, n in train_set.tokens_by_kind(b).items():
                read_by_kind[kind] = read_by_kind.get(kind, 0) + n
        micro = [prepare_batch(dense(b), device, data.attention) for b in loaded]
        local_targets = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro)
        (global_targets,) = ranks.sum(local_targets)
        loss_sum, aux_sum, lr = 0.0, 0.0, scheduler.get_last_lr()[0]
        for i, batch in enumerate(micro):
            sync = nullcontext() if not ranks.on or i == len(micro) - 1 else ddp.no_sync()
            with sync:
                with autocast(device, cfg.autocast):
                    outputs = forward(ddp, batch, data.attention, with_router=moe)
                lm_sum, _ = lm_loss_sum(outputs.logits, batch["labels"])
                # DDP averages gradients over ranks: scale by world to get a token mean.
                loss = lm_sum * ranks.world / max(global_targets, 1)
                aux = router_aux_loss(outputs, model, batch["segment_ids"] != PAD_SEGMENT)
                if aux is not None:
                    loss = loss + cfg.aux_loss_coef * aux / len(micro)
                    aux_sum += float(aux.detach())
                loss.backward()
                loss_sum += float(lm_sum.detach())
        grad_norm = clip_gradients(model, o.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        step_tokens = sum(b["tokens"] for b in micro)
        loss_sum, aux_sum, step_tokens = ranks.sum(loss_sum, aux_sum, step_tokens)
        tokens_total += int(step_tokens)
        elapsed = time.perf_counter() - t0
        row = {
            "step": step,
            "epoch": micro[-1]["epoch"],
            "loss": loss_sum / max(global_targets, 1),
            "aux_loss": aux_sum / (len(micro) * ranks.world) if moe else None,
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens": int(step_tokens),
            "tokens_per_s": step_tokens / elapsed,
            "step_time_s": elapsed,
            # This process's CPU seconds for the step: on a shared machine, wall time over
            # CPU time / threads shows how much of the step went to waiting for a core.
            "cpu_time_s": time.process_time() - cpu0,
        }
        history.setdefault("train_loss_first", row["loss"])
        history["train_loss_last"] = row["loss"]
        if step % cfg.log_every == 0 or step == stop:
            log.write(row)
        if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.max_steps:
            history["eval_loss_after"] = evaluate()
            log.write({"step": step, "eval_loss": history["eval_loss_after"]})
        if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == stop:
            if ranks.rank == 0:
                state = {
                    "model": trainable_state(model),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "loader": loader.state_dict(),
                    "rng": torch.get_rng_state(),
                }
                save_checkpoint(
                    out, step, state, {**meta, "history": history}, cfg.keep_checkpoints
                )
            ranks.barrier()
    wall = time.perf_counter() - started
    summary = {
        **history,
        "steps": step,
        "tokens_this_run": tokens_total,
        "tokens_by_kind": _sum_by_kind(ranks, read_by_kind),
        "seconds_this_run": round(wall, 1),
        "tokens_per_s": tokens_total / wall if wall else None,
        "trainable_params": trained,
        "frozen_params": frozen,
        "world_size": ranks.world,
        "seq_len": data.seq_len,
        "tokens_per_step": data.seq_len * data.batch_size * cfg.grad_accum * ranks.world,
    }
    _report(plan, summary)
    if ranks.rank == 0:
        atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
        if cfg.export_final:
            model.save_pretrained(out / "final")
    return summary


def _device(plan: TrainPlan) -> torch.device:
    if plan.under_ray:
        import ray.train.torch

        return ray.train.torch.get_device()
    return torch.device("cuda" if plan.train.scaling.use_gpu else "cpu")


def _forever(loader: TokenShardLoader):
    """Batches across epochs: each pass over the loader is the rest of one epoch."""
    while True:
        taken = 0
        for batch in loader:
            taken += 1
            yield batch
        if taken == 0:
            raise ValueError("an epoch of the train split is empty (mixture weights all 0?)")


def _report(plan: TrainPlan, row: dict[str, Any]) -> None:
    """The summary to Ray Train's result, once: Ray Train 2.60's report() took ~1.7 s per call
    on the 2-CPU test cluster (against ~40 ms for a tiny-model step); metrics.jsonl has the rest."""
    if plan.under_ray:
        import ray.train

        ray.train.report({k: v for k, v in row.items() if v is not None})


def _sum_by_kind(ranks, counts: dict[str, int]) -> dict[str, int]:
    """Per-kind token counts summed over ranks (every rank sums the same kinds, in order)."""
    kinds = [KIND_RAW, KIND_REWRITE]
    return dict(zip(kinds, map(int, ranks.sum(*(counts.get(k, 0) for k in kinds))), strict=True))
