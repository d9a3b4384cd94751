"""An LLM judge of rewrites through the rewriter's vLLM engine, with JSON-schema output.

A deterministic sample (`fidelity.judge.fraction`, by a hash of rewrite_id and the seed) of the
rewrites that passed the heuristic rules is sent to the engine with vLLM's structured outputs
(the JSON schema below, enforced while decoding), greedy; the verdict's 1-5 score becomes the
`judge_score` column and a score under `fidelity.judge.min_score` drops the rewrite as
`judge_rejected`. Off by default: the 135M default model is a weak judge; on a cluster, point
`model` at a large MoE and the same step judges with it.

    sampled("wiki/1#qa", fraction=0.1, seed=0)          # deterministic membership
    messages = judge_messages(source_text, rewrite_text, style="qa")
    parse_verdict('{"score": 4, "reason": "faithful"}')  # -> (4, "faithful")
    JudgeActor(config, model_cache)(batch)              # in a Ray Data actor pool
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema as S
from pipeline.config.fidelity import JudgeConfig
from pipeline.models.engine import VLLMEngine
from pipeline.plumbing.hashing import stable_fraction

JUDGE_REJECTED = "judge_rejected"
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "reason": {"type": "string", "maxLength": 160},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}
_INSTRUCTION = (
    "You check a rewrite against its source text. Score 5 if every fact, number and name in "
    "the rewrite comes from the source and the rewrite is fluent text (not comments about the "
    "text); 3 if it is mostly faithful with small errors; 1 if it invents facts, repeats "
    'itself or talks about the text instead of rewriting it. Answer with JSON: {"score": '
    '1-5, "reason": "a few words"}.'
)


def sampled(rewrite_id: str, fraction: float, seed: int) -> bool:
    return stable_fraction(seed, rewrite_id) < fraction


def judge_messages(source: str, rewrite: str, style: str, max_chars: int) -> list[dict]:
    user = (
        f"Requested style: {style}\n\nSource text:\n{source[:max_chars]}\n\n"
        f"Rewrite:\n{rewrite[:max_chars]}"
    )
    return [{"role": "system", "content": _INSTRUCTION}, {"role": "user", "content": user}]


def parse_verdict(text: str) -> tuple[int | None, str]:
    """(score, reason); (None, what went wrong) when the output is not a valid verdict
    (structured decoding makes that rare: a max_tokens cut is the usual cause)."""
    try:
        verdict = json.loads(text)
        score = verdict["score"]
        if not isinstance(score, int) or not 1 <= score <= 5:
            raise ValueError(f"score {score!r} not in 1-5")
        return score, str(verdict.get("reason", ""))[:200]
    except (ValueError, KeyError, TypeError) as e:
        return None, f"unparseable verdict ({e}): {text[:80]!r}"


def judge_sampling(cfg: JudgeConfig) -> dict[str, Any]:
    from vllm.sampling_params import StructuredOutputsParams

    return {
        "temperature": 0.0,
        "max_tokens": cfg.max_tokens,
        "structured_outputs": StructuredOutputsParams(json=VERDICT_SCHEMA),
    }


def apply_verdicts(
    batch: pa.Table, verdicts: dict[int, tuple[int | None, str]], min_score: int | None
) -> pa.Table:
    """Set judge_score/judge_reason of the judged rows; drop those under min_score."""
    scores = batch[S.JUDGE_SCORE].to_pylist()
    reasons = batch[S.JUDGE_REASON].to_pylist()
    drop = batch[S.DROP_REASON].to_pylist()
    detail = batch[S.DROP_DETAIL].to_pylist()
    for i, (score, reason) in verdicts.items():
        scores[i], reasons[i] = score, reason
        if score is not None and min_score is not None and score < min_score and not drop[i]:
            drop[i] = JUDGE_REJECTED
            detail[i] = f"judge_score={score} < {min_score}: {reason}"
    columns = {
        S.JUDGE_SCORE: pa.array(scores, pa.int64()),
        S.JUDGE_REASON: pa.array(reasons, pa.string()),
        S.DROP_REASON: pa.array(drop, pa.string()),
        S.DROP_DETAIL: pa.array(detail, pa.string()),
    }
    for name, values in columns.items():
        batch = batch.set_column(batch.schema.get_field_index(name), name, values)
    return batch


class JudgeActor:
    """One engine per actor (set up once); judges the sampled rows still kept in a batch."""

    def __init__(self, config, model_cache: str, engine=None):
        self.cfg: JudgeConfig = config.fidelity.judge
        self.engine = engine or VLLMEngine(config.model, Path(model_cache))
        self.sampling = judge_sampling(self.cfg) if engine is None else {}

    def __call__(self, batch: pa.Table) -> pa.Table:
        cfg = self.cfg
        kept = pc.is_null(batch[S.DROP_REASON]).to_pylist()
        rows = batch.select([S.REWRITE_ID, S.TEXT, S.SOURCE_TEXT, S.STYLE]).to_pylist()
        todo = [
            i
            for i, r in enumerate(rows)
            if kept[i] and sampled(r[S.REWRITE_ID], cfg.fraction, cfg.seed)
        ]
        if not todo:
            return batch
        prompts = [
            self.engine.render(
                judge_messages(
                    rows[i][S.SOURCE_TEXT], rows[i][S.TEXT], rows[i][S.STYLE], cfg.max_source_chars
                )
            )
            for i in todo
        ]
        generations = self.engine.generate(prompts, {**self.sampling, "max_tokens": cfg.max_tokens})
        verdicts = {i: parse_verdict(g.text) for i, g in zip(todo, generations, strict=True)}
        return apply_verdicts(batch, verdicts, cfg.min_score)
