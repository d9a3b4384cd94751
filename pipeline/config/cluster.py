"""The `cluster` group (conf/cluster/): a local Ray or the address of a cluster to join."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pipeline.config.ranges import Checked, positive


class ShuffleStrategy(StrEnum):
    """Ray Data's shuffle strategies (ray.data.context.ShuffleStrategy)."""

    sort_shuffle_pull_based = "sort_shuffle_pull_based"
    sort_shuffle_push_based = "sort_shuffle_push_based"
    hash_shuffle = "hash_shuffle"
    shuffle_v2 = "shuffle_v2"


@dataclass
class ClusterConfig(Checked):
    # null: start a local Ray inside the job. "auto" or "ray://host:10001": join a cluster.
    address: str | None = None
    num_cpus: int | None = None  # local Ray only; null = all cores
    include_dashboard: bool = True
    # Loopback by default: a local head must not listen on the network.
    host: str = "127.0.0.1"
    # null: 8265, or the next free port when another run's dashboard holds it (two local
    # runs at once); a fixed port that is taken stops the job with a config error.
    dashboard_port: int | None = None
    namespace: str = "rewrite-pipeline"
    # Ray's worker logs on the driver's console; off keeps the progress bars readable.
    log_to_driver: bool = False
    # Ray's metrics export (Prometheus, every process every 10 s) and its event-loop stats, on
    # a local head (a cluster you join keeps its own). Off by default: nothing scrapes a local
    # run's metrics, and on 2 cores the ~0.01 of a core they take is the vLLM engine's.
    ray_metrics: bool = False
    # Ray Data's object store, in bytes (local Ray only); null = Ray's default.
    object_store_memory: int | None = None
    # Ray Data's shuffle for groupby and cogroup. Measured on 2 cores: a sort-based pull
    # shuffle runs a small groupby in ~0.3 s, the hash shuffle's aggregator actors ~1-5 s.
    # Clusters with large shuffles want "hash_shuffle" (conf/cluster/remote.yaml).
    shuffle_strategy: ShuffleStrategy = ShuffleStrategy.sort_shuffle_pull_based
    # Hash partitions of every shuffle: dedup's key and pair files, fidelity's buckets and
    # caps, ingest's doc-id check. null = twice the cluster's CPUs; for dedup, one per 20k
    # documents when that is more (a worker's share stays bounded as the corpus grows).
    shuffle_partitions: int | None = None

    def problems(self) -> list[str]:
        return positive(self, "num_cpus", "shuffle_partitions")
