"""Launch continued pretraining: resolve the plan in the driver, run it on Ray Train workers.

The driver checks the shards' manifest, resolves the model (`train.init=model` builds the
local MoE on first use), hashes the model's own tokenizer file so workers refuse shards made
with another tokenizer, then runs `loop.train_worker` on `train.scaling.num_workers` Ray
Train workers (TorchTrainer: one process each, torch.distributed with gloo on CPU or NCCL on
GPUs, DDP in the loop), or in this process when num_workers is 0.

    from pipeline.train.ray_train import resolve_plan, run_training
    plan = resolve_plan(config)                 # config: pipeline.config.Config
    summary = run_training(plan, ray_ready=True)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pipeline.config import Config, ConfigError
from pipeline.models.build import resolve_model_path
from pipeline.plumbing.hashing import file_sha256
from pipeline.token_shards.manifest import ManifestError, load_manifest, read_manifest
from pipeline.train.checkpoint import incompatibility, latest_checkpoint
from pipeline.train.loop import METRICS, SUMMARY, TrainPlan, train_worker
from pipeline.train.model import set_trainable, skeleton, vocab_size
from pipeline.train.progress import MetricsTail

log = logging.getLogger("pipeline.train")
# What the tokenize stage hashes for each tokenizer kind (pipeline/tokens/tokenizers.py).
TOKENIZER_FILES = {"hf": "tokenizer.json", "sentencepiece": "tokenizer.model"}


def resolve_plan(config: Config) -> TrainPlan:
    """Absolute paths, the model's folder and its tokenizer hash; ConfigError for user mistakes."""
    t = config.train
    shards = Path(t.data.shards).resolve()
    try:
        manifest = read_manifest(shards)
    except ManifestError as e:
        raise ConfigError(
            f"train.data.shards: {e}\n  (run the pipeline with the tokenize stage first, "
            "e.g. jobs/run.py run.name=<name>, then jobs/train.py run.name=<name>)"
        ) from e
    init_path = trust = None
    if t.init == "model":
        cache = Path(config.rewrite.model_cache).resolve()
        m = config.model
        init_path = resolve_model_path(m.path, cache, m.num_experts, m.top_k)
        trust = m.trust_remote_code
    elif t.init != "tiny":
        if not Path(t.init).is_dir() and not _looks_like_hub_id(t.init):
            raise ConfigError(f"train.init: {t.init!r} is neither 'model', 'tiny' nor a folder")
        init_path = str(Path(t.init).resolve()) if Path(t.init).is_dir() else t.init
    tokenizer_sha = None
    if t.data.check_tokenizer and init_path and Path(init_path).is_dir():
        kind = manifest["tokenizer"]["kind"]
        file = Path(init_path) / TOKENIZER_FILES[kind]
        if file.is_file():
            tokenizer_sha = file_sha256(file)
        else:
            log.warning("%s has no %s: the shards' tokenizer is not checked", init_path, file.name)
    _check_model(t, init_path, bool(trust), manifest["tokenizer"]["vocab_size"])
    try:  # once here, so a corrupted shard is a clean message, not a worker's traceback
        load_manifest(shards, verify=t.data.verify, tokenizer_sha256=tokenizer_sha)
    except ManifestError as e:
        raise ConfigError(f"train.data.shards: {e}") from e
    output_dir = Path(t.output_dir).resolve()
    latest = latest_checkpoint(output_dir) if t.resume else None
    if latest is not None:
        expected = {
            "init": init_path or "tiny",
            "trainable": list(t.trainable),
            "world_size": max(t.scaling.num_workers, 1),
        }
        saved = json.loads((latest / "meta.json").read_text())
        if problem := incompatibility(latest, saved, expected):
            raise ConfigError(f"train.output_dir: {problem}")
    return TrainPlan(
        train=t,
        shards=str(shards),
        output_dir=str(output_dir),
        init_path=init_path,
        trust_remote_code=bool(trust),
        tokenizer_sha256=tokenizer_sha,
        verified=True,
        extra_meta={
            "shards": str(shards),
            "model": config.model.name if t.init == "model" else t.init,
        },
    )


def run_training(plan: TrainPlan) -> dict[str, Any]:
    """Train in this process (num_workers=0) or on Ray Train (Ray must be initialised)."""
    scaling = plan.train.scaling
    Path(plan.output_dir).mkdir(parents=True, exist_ok=True)
    if scaling.num_workers == 0:
        with MetricsTail(Path(plan.output_dir) / METRICS, plan.train.max_steps):
            return train_worker(plan)
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    backend = scaling.backend
    if backend == "auto":
        backend = "nccl" if scaling.use_gpu else "gloo"
    resources: dict[str, float] = {"CPU": scaling.cpus_per_worker}
    if scaling.use_gpu:
        resources["GPU"] = 1
    under_ray = TrainPlan(**{**plan.__dict__, "under_ray": True})
    trainer = TorchTrainer(
        _ray_entry,
        train_loop_config={"plan": under_ray},
        scaling_config=ScalingConfig(
            num_workers=scaling.num_workers, use_gpu=scaling.use_gpu, resources_per_worker=resources
        ),
        torch_config=TorchConfig(backend=backend),
        run_config=RunConfig(
            name="ray-train",
            storage_path=str(Path(plan.output_dir) / "ray"),
            worker_runtime_env={"env_vars": _worker_env(plan)},
        ),
    )
    with MetricsTail(Path(plan.output_dir) / METRICS, plan.train.max_steps):
        trainer.fit()
    return json.loads((Path(plan.output_dir) / SUMMARY).read_text())


def _ray_entry(config: dict[str, Any]) -> None:
    train_worker(config["plan"])


def _worker_env(plan: TrainPlan) -> dict[str, str]:
    """Threads per worker: Ray sets OMP_NUM_THREADS to the worker's CPUs (1 for fractions)."""
    scaling = plan.train.scaling
    threads = scaling.threads_per_worker or max(1, round(scaling.cpus_per_worker))
    env = {"OMP_NUM_THREADS": str(threads)}
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "PIPELINE_MODEL_CACHE"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _check_model(t, init_path: str | None, trust: bool, shard_vocab: int) -> None:
    """What would otherwise fail inside every worker: a vocabulary the model lacks, a
    trainable pattern matching nothing (checked on a weightless skeleton of the model)."""
    bare = skeleton(init_path, t.tiny, shard_vocab, trust)
    if vocab_size(bare) < shard_vocab:
        raise ConfigError(
            f"train.data.shards: the shards' tokenizer has {shard_vocab} ids, the model's "
            f"embedding {vocab_size(bare)}: they were tokenized for another model"
        )
    try:
        set_trainable(bare, list(t.trainable))
    except ValueError as e:
        raise ConfigError(str(e)) from e


def _looks_like_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/", "~"))
