"""The wait between stages for a free CPU (pipeline/plumbing/resources.py). No Ray started:
the cluster's free CPUs are scripted."""

from __future__ import annotations

from pipeline.plumbing import resources


def script_free_cpus(monkeypatch, counts: list[float]) -> list[float]:
    """ray.available_resources() answers with `counts` in turn, then the last one forever."""
    answers = list(counts)

    def available() -> dict[str, float]:
        return {"CPU": answers.pop(0) if len(answers) > 1 else answers[0]}

    monkeypatch.setattr(resources.ray, "available_resources", available)
    return answers


def test_waits_until_the_previous_stage_releases_a_cpu(monkeypatch):
    answers = script_free_cpus(monkeypatch, [0, 0, 0.5, 2])
    assert resources.wait_for_a_free_cpu(timeout_s=10, poll_s=0.001)
    assert answers == [2]  # it asked until a whole CPU was free, and not after


def test_gives_up_on_a_cluster_that_stays_busy(monkeypatch):
    script_free_cpus(monkeypatch, [0])
    assert not resources.wait_for_a_free_cpu(timeout_s=0.01, poll_s=0.001)
