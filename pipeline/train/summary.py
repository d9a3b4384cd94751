"""The few lines a training job prints at the end (from summary.json's fields).

print(format_summary(summary, wall_seconds))
"""

from __future__ import annotations

from typing import Any


def format_summary(summary: dict[str, Any], wall_seconds: float | None = None) -> str:
    def loss(key: str) -> str:
        value = summary.get(key)
        return "n/a" if value is None else f"{value:.4f}"

    before, after = summary.get("eval_loss_before"), summary.get("eval_loss_after")
    change = f"  ({after - before:+.4f})" if before is not None and after is not None else ""
    params = summary["trainable_params"] + summary["frozen_params"]
    lines = [
        f"held-out loss   before {loss('eval_loss_before')}  "
        f"after {loss('eval_loss_after')}{change}",
        f"train loss      first step {loss('train_loss_first')}  "
        f"last step {loss('train_loss_last')}",
        f"steps           {summary['steps']} x {summary['tokens_per_step']} tokens "
        f"(seq_len {summary['seq_len']}, {summary['world_size']} worker(s))",
        f"parameters      {summary['trainable_params'] / 1e6:.1f}M trained of {params / 1e6:.1f}M",
    ]
    if summary.get("tokens_per_s"):
        lines.append(
            f"throughput      {summary['tokens_per_s']:.0f} tokens/s over "
            f"{summary['tokens_this_run']} tokens in {summary['seconds_this_run']} s of steps"
        )
    if summary.get("tokens_by_kind"):
        kinds = ", ".join(f"{k} {n:,}" for k, n in summary["tokens_by_kind"].items())
        lines.append(f"trained on      {kinds} tokens (this run)")
    if wall_seconds is not None:
        lines.append(f"job time        {wall_seconds:.0f} s (model load and evaluations included)")
    return "\n".join(lines)
