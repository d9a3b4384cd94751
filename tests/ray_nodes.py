"""Ray nodes of a test's own on 127.0.0.1: `ray start --block` in its own process group, free
ports, its own temp dir, stopped by signalling that process.

Never `ray stop`: it stops every Ray on the machine, the test session's and other users' included.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
# Single-machine mode: `ray start` otherwise swaps 127.0.0.1 for the machine's address.
HEAD_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# The servers of a node that joins a head (the GCS, dashboard and client server are the head's).
NODE_PORTS = (
    "node-manager-port",
    "object-manager-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "metrics-export-port",
    "runtime-env-agent-port",
)
HEAD_PORTS = ("port", "dashboard-port", "ray-client-server-port", *NODE_PORTS)

# `ray start --address` refuses to join in single-machine mode ("Multi-node Ray clusters are not
# supported on Windows and OSX"), and without that mode it swaps 127.0.0.1 for the machine's
# address, which a loopback head does not listen on. The refusal is the command line's own check
# (ray/scripts/scripts.py); this runs the same `ray` command with only that check passed, the
# node itself still in single-machine mode, so every server of it stays on 127.0.0.1.
_JOIN_ON_LOOPBACK = """\
import sys, types
import ray._private.ray_constants as constants
import ray.scripts.scripts as scripts

class Constants(types.ModuleType):
    ENABLE_RAY_CLUSTER = True
    def __getattr__(self, name):
        return getattr(constants, name)

scripts.ray_constants = Constants("ray_constants")
sys.exit(scripts.main())
"""
RAY_JOIN = [sys.executable, "-c", _JOIN_ON_LOOPBACK]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_started(node: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Until `ray start` reports the node up (its raylet registered with the GCS)."""
    deadline = time.monotonic() + timeout
    while "Ray runtime started." not in (text := log.read_text()):
        if node.poll() is not None:
            raise RuntimeError(f"ray start exited {node.returncode}:\n{text[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"ray start not up after {timeout:.0f} s:\n{text[-3000:]}")
        time.sleep(0.2)


def stop_node(node: subprocess.Popen) -> list[psutil.Process]:
    """SIGTERM to `ray start --block` makes it drain and stop its own children; kill stragglers.

    Returns the processes still running after that (none, normally)."""
    try:
        family = [psutil.Process(node.pid), *psutil.Process(node.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    node.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=60)
    for proc in alive:
        proc.kill()
    _, alive = psutil.wait_procs(alive, timeout=10)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
