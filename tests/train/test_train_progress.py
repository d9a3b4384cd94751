"""The driver's console shows each training step and evaluation as rank 0 writes them."""

import json
import logging

from pipeline.train.progress import MetricsTail, format_row
from pipeline.train.summary import format_summary


def test_rows_written_while_tailing_are_logged_once_each(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 1, "loss": 9.0, "lr": 1.0}) + "\n")  # earlier attempt
    caplog.set_level(logging.INFO, logger="pipeline.train")
    with MetricsTail(path, max_steps=3, interval=0.05), path.open("a") as fh:
        fh.write(json.dumps({"step": 2, "loss": 2.5, "aux_loss": 2.0, "lr": 1e-4}) + "\n")
        fh.write(json.dumps({"step": 2, "eval_loss": 3.25}) + "\n")
        fh.write('{"step": 3, "lo')  # half a line: not logged yet
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "step 2/3, loss 2.5000, router loss 2.0000, lr 1.00e-04",
        "step 2/3: held-out loss 3.2500",
    ]


def test_format_row_shows_throughput():
    row = {"step": 4, "loss": 1.0, "lr": 2e-4, "tokens_per_s": 1234.5}
    assert format_row(row, 10) == "step 4/10, loss 1.0000, lr 2.00e-04, 1,234 tokens/s"


def test_the_summary_says_how_many_tokens_of_each_kind_were_trained_on():
    summary = {
        "eval_loss_before": 3.6,
        "eval_loss_after": 3.5,
        "train_loss_first": 3.2,
        "train_loss_last": 3.1,
        "steps": 20,
        "tokens_per_step": 512,
        "seq_len": 256,
        "world_size": 1,
        "trainable_params": 69e6,
        "frozen_params": 300e6,
        "tokens_by_kind": {"raw": 9000, "rewrite": 1240},
    }
    assert "trained on      raw 9,000, rewrite 1,240 tokens (this run)" in format_summary(summary)
