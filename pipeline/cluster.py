"""Start or join Ray for one run, quietly, on loopback unless a cluster is configured.

    with ray_session(cfg.cluster, progress=True):
        ...  # Ray Data work

A session that finds Ray already initialised (a test fixture, a notebook, `ray job submit`
connecting the driver) uses it and leaves it running.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.config import ClusterConfig


def configure_ray_data(progress: bool, shuffle_strategy: str = "sort_shuffle_pull_based") -> None:
    from ray.data import DataContext
    from ray.data.context import ShuffleStrategy

    ctx = DataContext.get_current()
    ctx.shuffle_strategy = ShuffleStrategy(shuffle_strategy)
    ctx.enable_progress_bars = progress
    ctx.enable_operator_progress_bars = progress
    # The plan Ray prints at each execution start is noise next to our own stage lines.
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False


def init_kwargs(cfg: ClusterConfig) -> dict:
    """Arguments for ray.init: a local head bound to cfg.host, or a cluster address."""
    common = {
        "namespace": cfg.namespace,
        "log_to_driver": cfg.log_to_driver,
        "logging_level": logging.WARNING,
        "configure_logging": True,
    }
    if cfg.address is not None:
        return {"address": cfg.address, **common}
    return {
        "num_cpus": cfg.num_cpus,
        "include_dashboard": cfg.include_dashboard,
        "dashboard_host": cfg.host,
        "dashboard_port": cfg.dashboard_port,
        "object_store_memory": cfg.object_store_memory,
        # Bind the head's own ports to the configured host, not every interface.
        "_node_ip_address": cfg.host,
        **common,
    }


@contextmanager
def ray_session(cfg: ClusterConfig, progress: bool = True) -> Iterator[None]:
    import ray

    if ray.is_initialized():
        configure_ray_data(progress, cfg.shuffle_strategy)
        yield
        return
    if cfg.address is None:
        # A local head has no callers but this process: token auth would only get in the way.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    ray.init(**init_kwargs(cfg))
    configure_ray_data(progress, cfg.shuffle_strategy)
    try:
        yield
    finally:
        ray.shutdown()
