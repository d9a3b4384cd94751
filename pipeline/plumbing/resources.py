"""Ray resources, from the config, for every stage's Ray calls: one place decides them.

    ray.remote(**task_resources())(fn)                      # a plain task
    ds.map_batches(fn, **task_resources())                  # a map task per item
    ds.groupby(key, num_partitions=shuffle_partitions(config))
    ds.map_batches(Actor, **engine_actor_args(config.model))   # an inference engine per actor

What the config sets: `cluster.shuffle_partitions` (every hash shuffle: dedup's key and pair
files, fidelity's buckets and caps, ingest's doc-id check), `cluster.num_cpus` (the cores a
local Ray has, so the defaults that follow from them), the model preset's actors, CPUs and
GPUs per actor and engine environment.
"""

from __future__ import annotations

import time
from typing import Any

import ray

from pipeline.config import Config, ModelConfig

# A map task or plain task holds one core: every stage's task body is one Python thread (the
# numba kernels too), so more would idle cores and fewer would oversubscribe them.
TASK_CPUS = 1


def cluster_cpus() -> int:
    """The CPUs of the Ray this process is connected to (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def wait_for_a_free_cpu(timeout_s: float = 5.0, poll_s: float = 0.1) -> bool:
    """Wait until the cluster has a CPU free; False if none came within `timeout_s`.

    A stage's actors (a shuffle's aggregators, the engine pool) are released shortly after
    its last write, not at once. A stage that starts before then finds no CPU free, and Ray
    Data warns that "the Dataset job will hang" (seen on every demo run, after fidelity or
    rewrite). On a cluster busy with other work the wait gives up and the stage queues."""
    deadline = time.monotonic() + timeout_s
    while ray.available_resources().get("CPU", 0) < 1:
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def task_resources() -> dict[str, Any]:
    """`ray.remote` / `map_batches` arguments for a task that does one item's work."""
    return {"num_cpus": TASK_CPUS}


def default_partitions() -> int:
    """Twice the cluster's CPUs: enough to spread the work, few enough that per-partition
    overhead (an actor, a task, a file) stays small on a laptop."""
    return max(2, 2 * cluster_cpus())


def shuffle_partitions(config: Config) -> int:
    """Hash partitions of a shuffle (groupby, cogroup, partitioned files): as configured
    (`cluster.shuffle_partitions`), else `default_partitions()`."""
    return config.cluster.shuffle_partitions or default_partitions()


def engine_actor_args(model: ModelConfig, calls_per_actor: int = 1) -> dict[str, Any]:
    """`map_batches` arguments for an actor pool that holds one inference engine per actor
    (rewrite, judge): resources and the engine's environment from the model preset.

    The engine is called on the thread that built it. vLLM's CPU engine binds its OpenMP team
    to the cores from the constructor's thread, and a call from another thread starts a second
    team: 4 compute threads on 2 cores, and generation 12-15% slower than bare vLLM
    (bench/rewrite.py: 0.83x before, 0.93x after). A synchronous UDF (the judge), one call at
    a time: "true multi-threading" runs each call on the actor's main thread. An async UDF
    (the rewriter) runs every call on the actor's one event loop and builds its engine there;
    `calls_per_actor` of them at once (the batches in flight on an engine).
    """
    return {
        "compute": ray.data.ActorPoolStrategy(
            size=model.num_actors,
            enable_true_multi_threading=True,
            max_concurrent_calls_per_actor=calls_per_actor if calls_per_actor > 1 else None,
        ),
        "num_cpus": model.num_cpus_per_actor,
        "num_gpus": model.num_gpus_per_actor,
        # vLLM's INFO lines (engine config, each request batch) would fill the worker logs;
        # its warnings and errors stay. A preset's env may say otherwise.
        "runtime_env": {
            "env_vars": {"VLLM_LOGGING_LEVEL": "WARNING"}
            | {k: str(v) for k, v in model.env.items()}
        },
    }
