"""The continued-pretraining loop: loss falls, resume is exact, Ray Train with 2 gloo workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from train_shards import make_learnable_docs, write_shard_dir

from pipeline.config import ConfigError, to_config
from pipeline.config.train import TinyModelConfig
from pipeline.train.checkpoint import latest_checkpoint
from pipeline.train.metrics import read_metrics
from pipeline.train.model import tiny_mixtral
from pipeline.train.ray_train import resolve_plan, run_training

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("loop")
    return write_shard_dir(
        root / "shards", make_learnable_docs(60), make_learnable_docs(6, seed=1), docs_per_shard=20
    )


def tiny_config(shards: Path, out: Path, *overrides: str):
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose(
            "train_job",
            overrides=[
                "train=tiny",
                f"train.data.shards={shards}",
                f"train.output_dir={out}",
                *overrides,
            ],
        )
    return to_config(cfg)


def test_loss_falls_in_process(shards, tmp_path):
    config = tiny_config(shards, tmp_path / "out", "train.scaling.num_workers=0")
    summary = run_training(resolve_plan(config))
    assert summary["eval_loss_after"] < summary["eval_loss_before"] - 0.5
    assert summary["train_loss_last"] < summary["train_loss_first"] - 0.5
    train_rows, eval_rows = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert [r["step"] for r in train_rows] == list(range(1, 21))
    assert [r["step"] for r in eval_rows] == [0, 10, 20]
    assert all(r["aux_loss"] > 0 and r["tokens_per_s"] > 0 for r in train_rows)
    assert train_rows[0]["lr"] < train_rows[2]["lr"]  # warmup, then cosine decay
    assert train_rows[-1]["lr"] < train_rows[5]["lr"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["steps"] == 20


def test_resume_after_a_stop_continues_exactly(shards, tmp_path):
    common = (
        "train.scaling.num_workers=0",
        "train.max_steps=8",
        "train.eval_every=0",
        "train.checkpoint_every=0",
        "train.data.loader_workers=2",
    )
    whole = run_training(resolve_plan(tiny_config(shards, tmp_path / "a", *common)))
    first = run_training(
        resolve_plan(tiny_config(shards, tmp_path / "b", *common, "train.stop_after_steps=3"))
    )
    assert first["steps"] == 3
    assert latest_checkpoint(tmp_path / "b").name == "step-00000003"
    resumed = run_training(resolve_plan(tiny_config(shards, tmp_path / "b", *common)))
    assert resumed["steps"] == 8
    rows_a, evals_a = read_metrics(tmp_path / "a" / "metrics.jsonl")
    rows_b, evals_b = read_metrics(tmp_path / "b" / "metrics.jsonl")
    assert [r["step"] for r in rows_b] == list(range(1, 9))
    for a, b in zip(rows_a, rows_b, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5), a["step"]
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-9)
        assert a["tokens"] == b["tokens"]
    assert evals_b[-1]["eval_loss"] == pytest.approx(evals_a[-1]["eval_loss"], rel=1e-5)
    assert resumed["eval_loss_before"] == whole["eval_loss_before"]  # kept from the first part


def test_a_checkpoint_of_another_setup_is_refused_before_training(shards, tmp_path):
    out = tmp_path / "out"
    first = ("train.scaling.num_workers=0", "train.max_steps=2", "train.eval_every=0")
    run_training(resolve_plan(tiny_config(shards, out, *first)))
    other_params = tiny_config(
        shards, out, "train.scaling.num_workers=0", "train.trainable=[model\\.layers\\.1\\.]"
    )
    with pytest.raises(ConfigError, match=r"train\.output_dir: .*trainable=\[\]"):
        resolve_plan(other_params)
    with pytest.raises(ConfigError, match="world_size=1, this run has 2"):
        resolve_plan(tiny_config(shards, out))  # train=tiny: 2 Ray workers
    resolve_plan(tiny_config(shards, out, "train.resume=false"))  # starting over is fine


def test_user_mistakes_are_config_errors(shards, tmp_path):
    with pytest.raises(ConfigError, match=r"train\.data\.shards: .*no manifest"):
        resolve_plan(tiny_config(tmp_path / "nowhere", tmp_path / "out"))
    with pytest.raises(ConfigError, match=r"train\.init"):
        resolve_plan(tiny_config(shards, tmp_path / "out", "train.init=./no/such/dir"))
    # Checked on a weightless skeleton of the model, before any worker starts.
    with pytest.raises(ConfigError, match="matches no parameter"):
        resolve_plan(tiny_config(shards, tmp_path / "out", "train.trainable=[nothing_matches]"))
    with pytest.raises(ConfigError, match=r"300 ids, the model's embedding 100"):
        _vocab_mismatch(shards, tmp_path)


def _vocab_mismatch(shards: Path, tmp_path: Path) -> None:
    """A model whose embedding is smaller than the shards' vocabulary (300 ids)."""
    small = tmp_path / "small-model"
    tiny_mixtral(TinyModelConfig(), vocab_size=100, seed=0).save_pretrained(small)
    resolve_plan(tiny_config(shards, tmp_path / "out", f"train.init={small}"))


@pytest.mark.slow
def test_ray_train_two_gloo_workers_loss_falls(shards, tmp_path, ray_local):
    """Two Ray Train workers (0.5 CPU each on the 2-CPU test Ray), DDP over gloo."""
    config = tiny_config(shards, tmp_path / "out")
    assert config.train.scaling.num_workers == 2
    summary = run_training(resolve_plan(config))
    assert summary["world_size"] == 2
    assert summary["tokens_per_step"] == 2 * 64 * 4 * 2
    assert summary["eval_loss_after"] < summary["eval_loss_before"] - 0.5
    train_rows, _ = read_metrics(tmp_path / "out" / "metrics.jsonl")
    assert train_rows[-1]["loss"] < train_rows[0]["loss"] - 0.5
    assert latest_checkpoint(tmp_path / "out").name == "step-00000020"
