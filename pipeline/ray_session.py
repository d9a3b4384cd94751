"""Start or join Ray for one run, quietly, on loopback unless a cluster is configured.

    with ray_session(cfg.cluster, progress=True):
        ...  # Ray Data work

A session that finds Ray already initialised (a test fixture, a notebook, `ray job submit`
connecting the driver) uses it and leaves it running.

A local head (cluster.address null) is always a new Ray of this process's own: it never joins
another Ray found on the machine (another run's, or one from `ray start`), so two runs at once
do not share, or stop, each other's cluster. Its servers listen on cluster.host only; with the
default 127.0.0.1 nothing of it is reachable from the network.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import ClusterConfig, ConfigError
from pipeline.console import link_ray_logs, piped, quiet_ray_data_console

# Ray binds its gRPC servers (GCS, raylet, workers, agents) to every interface and advertises
# the machine's network address, whatever `_node_ip_address` says: it maps 127.0.0.1 to the
# "reachable" address. Its macOS/Windows mode keeps a single-machine Ray on loopback, and this
# switch turns that mode on (measured with Ray 2.60: every listening socket on 127.0.0.1).
_LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

# Read by every process a local head starts. Measured idle on 2 cores (Ray 2.60, its daemons
# and two idle workers): 0.068 of a core with both on, 0.056 with both off.
_METRICS_OFF = {"RAY_enable_metrics_collection": "0", "RAY_event_stats": "0"}

# Ray 2.60 reads Parquet through its V2 datasource by default (ListFiles -> ReadFiles), whose
# read tasks' memory grew with the number of input parts (how ReadFiles groups them was not
# pinned down): quality's largest worker reached 783-812 MiB of private memory at 80k
# documents and 962-1,132 MiB at 320k (1.23-1.39x), in ReadFiles tasks, while its scoring
# tasks stayed at ~680. The V1 datasource reads one file per task: 468 -> 536 MiB (1.15x).
# It cost time at 80k (35-38 s against 28-32 s), not at 320k (bench/scale.py, BENCHMARKS.md).
# A value the user exported in this variable still wins.
_PARQUET_V2_SWITCH = "RAY_DATA_USE_DATASOURCE_V2"


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
    read_parquet_one_file_per_task(ctx)
    if piped():
        # Not a terminal: Ray Data would log a block of progress lines every 10 s for each
        # execution, several per stage. They go to its log file only; the runner prints one
        # line per stage instead (pipeline/console.py).
        quiet_ray_data_console()


def read_parquet_one_file_per_task(ctx) -> None:
    """Ray Data reads Parquet through its V1 datasource (see _PARQUET_V2_SWITCH), unless the
    user chose in the environment or the installed Ray has no such switch."""
    if hasattr(ctx, "use_datasource_v2") and _PARQUET_V2_SWITCH not in os.environ:
        ctx.use_datasource_v2 = False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def init_kwargs(cfg: ClusterConfig) -> dict:
    """Arguments for ray.init: a new local head bound to cfg.host, or a cluster address."""
    common = {
        "namespace": cfg.namespace,
        "log_to_driver": cfg.log_to_driver,
        "logging_level": logging.WARNING,
        "configure_logging": True,
    }
    if cfg.address is not None:
        return {"address": cfg.address, **common}
    return {
        # "local", not None: None would join a Ray that RAY_ADDRESS or `ray start` left behind.
        "address": "local",
        "num_cpus": cfg.num_cpus,
        "include_dashboard": cfg.include_dashboard,
        "dashboard_host": cfg.host,
        # None lets Ray take 8265 or the next free port, so a second local run can start.
        "dashboard_port": cfg.dashboard_port,
        "object_store_memory": cfg.object_store_memory,
        # The address the head advertises; where it listens is bound_to_host's work.
        "_node_ip_address": cfg.host,
        **common,
    }


def local_head_env(cfg: ClusterConfig) -> dict[str, str]:
    """Environment defaults for the processes a local head starts (none for a cluster)."""
    if cfg.address is not None:
        return {}
    # A local head has no callers but this process: token auth would only get in the way.
    env = {"RAY_AUTH_MODE": "disabled"}
    return env if cfg.ray_metrics else {**env, **_METRICS_OFF}


@contextmanager
def bound_to_host(cfg: ClusterConfig) -> Iterator[None]:
    """While open, a local head that this process starts listens on loopback only (when
    cfg.host is a loopback address); the switch is restored on exit.

    The switch is read by the Ray processes about to start (from the environment) and by this
    process's Ray (from a module constant it set at import).
    """
    if cfg.address is not None or not is_loopback(cfg.host):
        yield
        return
    from ray._private import ray_constants

    saved = os.environ.get(_LOOPBACK_SWITCH), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_LOOPBACK_SWITCH] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved[0] is None:
            os.environ.pop(_LOOPBACK_SWITCH, None)
        else:
            os.environ[_LOOPBACK_SWITCH] = saved[0]
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]


def check_dashboard_port(cfg: ClusterConfig) -> None:
    """A fixed dashboard port that is already taken: a clear config error, not Ray's traceback."""
    if cfg.address is not None or not cfg.include_dashboard or cfg.dashboard_port is None:
        return
    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((cfg.host, cfg.dashboard_port))
        except OSError as e:
            raise ConfigError(
                f"cluster.dashboard_port: {cfg.host}:{cfg.dashboard_port} is taken ({e.strerror}),"
                " perhaps by another run's dashboard; set cluster.dashboard_port=null to take"
                " the next free port, or cluster.include_dashboard=false"
            ) from None


def stop_log_monitor() -> None:
    """Stop the local head's log monitor: with cluster.log_to_driver off it has no reader.

    Its one job is to tail every worker's log file and publish the new lines for drivers
    that print them. It globs the session's log folder and reads the files every 0.1 s
    whether anyone listens or not: 0.013-0.018 of a core measured on 2 cores during a
    rewrite (Ray 2.60), CPU the engine then lacks. `ray.init` has no switch for it, so it is
    stopped through the node that init started. The files stay where they were written
    (`<run>/ray_logs`).
    """
    import ray

    node = ray._private.worker._global_node
    if node is not None and hasattr(node, "kill_log_monitor"):
        node.kill_log_monitor(check_alive=False)


@contextmanager
def ray_session(
    cfg: ClusterConfig, progress: bool = True, logs_link: Path | None = None
) -> Iterator[None]:
    """Ray for the duration; a Ray this opens gets its session's logs linked at `logs_link`
    (the console shows none of them: cfg.log_to_driver is off by default)."""
    import ray

    if ray.is_initialized():
        configure_ray_data(progress, cfg.shuffle_strategy)
        yield
        return
    if cfg.address is None:
        for key, value in local_head_env(cfg).items():
            os.environ.setdefault(key, value)  # a value the user exported wins
        check_dashboard_port(cfg)
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    with bound_to_host(cfg):
        started = ray.init(**init_kwargs(cfg))
        if cfg.address is None and not cfg.log_to_driver:
            stop_log_monitor()
        configure_ray_data(progress, cfg.shuffle_strategy)
        if logs_link is not None:
            link_ray_logs(started.address_info.get("session_dir"), logs_link)
        try:
            yield
        finally:
            ray.shutdown()
