"""The console: a progress line per stage when piped, Ray Data's INFO off the console, the Ray
session's logs linked from the run directory. No Ray started."""

from __future__ import annotations

import logging
import time

from pipeline.console import heartbeat, link_ray_logs, quiet_ray_data_console
from pipeline.stats import StepTimer, running_step


def beats(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "running for" in r.getMessage()]


def test_heartbeat_names_the_stage_and_its_running_step(caplog):
    steps = StepTimer("dedup")
    with (
        caplog.at_level(logging.INFO, logger="pipeline"),
        steps("verify"),
        heartbeat("[2/6] dedup", lambda: running_step("dedup"), interval=0.01),
    ):
        while not beats(caplog):  # however slow the machine: the beat comes, then we stop
            time.sleep(0.01)
    assert all(b.startswith("[2/6] dedup: running for ") for b in beats(caplog))
    assert beats(caplog)[0].endswith("(verify)")
    assert running_step("dedup") is None  # the step ended with its block
    assert "verify" not in caplog.text.replace("(verify)", "")  # steps log at DEBUG
    assert steps.seconds.keys() == {"verify"}


def test_a_short_stage_prints_no_heartbeat(caplog):
    with caplog.at_level(logging.INFO, logger="pipeline"), heartbeat("[1/6] ingest", interval=60):
        pass
    assert "running for" not in caplog.text


def test_ray_data_info_leaves_the_console_and_keeps_its_file():
    logger = logging.getLogger("ray.data")
    console, file = logging.StreamHandler(), logging.FileHandler("/dev/null", delay=True)
    saved = logger.handlers[:]
    logger.handlers = [console, file]
    try:
        quiet_ray_data_console()
        assert console.level == logging.WARNING and file.level == logging.NOTSET
    finally:
        logger.handlers = saved


def test_the_ray_logs_link_follows_the_newest_session(tmp_path):
    first, second = tmp_path / "session_1" / "logs", tmp_path / "session_2" / "logs"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    link = tmp_path / "run" / "ray-logs"
    assert link_ray_logs(str(first.parent), link) == link and link.resolve() == first
    assert link_ray_logs(str(second.parent), link) == link and link.resolve() == second
    assert link_ray_logs(None, link) is None and link.resolve() == second
    (tmp_path / "run" / "mine").mkdir()
    assert link_ray_logs(str(second.parent), tmp_path / "run" / "mine") is None
