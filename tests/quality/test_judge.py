"""The LLM judge: verdict parsing, deterministic sampling, the actor around a fake engine, and
(slow) the real default model judging through the fidelity stage with JSON-schema output."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, local_model_config
from quality_fixtures import faithful_rewrites, recorded_pairs, rewrites_run

from pipeline import schema as S
from pipeline.config import Config
from pipeline.models.engine import Generation
from pipeline.quality.fidelity_stage import FidelityStage
from pipeline.quality.judge import (
    JUDGE_REJECTED,
    VERDICT_SCHEMA,
    JudgeActor,
    judge_messages,
    parse_verdict,
    sampled,
)
from pipeline.text_fidelity.scores import SCORED_SCHEMA


def test_parse_verdict():
    assert parse_verdict('{"score": 4, "reason": "faithful"}') == (4, "faithful")
    score, why = parse_verdict('{"score": 4, "reas')  # cut by max_tokens
    assert score is None and why.startswith("unparseable verdict")
    assert parse_verdict('{"score": 9, "reason": ""}')[0] is None
    assert parse_verdict('{"score": "5"}')[0] is None


def test_sampling_is_deterministic_and_near_the_fraction():
    ids = [f"wiki/{i}#qa" for i in range(2000)]
    chosen = [i for i in ids if sampled(i, 0.1, seed=0)]
    assert chosen == [i for i in ids if sampled(i, 0.1, seed=0)]
    assert 150 < len(chosen) < 250
    assert chosen != [i for i in ids if sampled(i, 0.1, seed=1)]
    assert all(sampled(i, 1.0, 0) for i in ids[:50])


def test_the_prompt_carries_source_rewrite_and_style_and_the_schema_is_strict():
    messages = judge_messages("The source.", "The rewrite.", "qa", max_chars=100)
    assert messages[0]["role"] == "system" and "JSON" in messages[0]["content"]
    assert "Requested style: qa" in messages[1]["content"]
    assert "The source." in messages[1]["content"] and "The rewrite." in messages[1]["content"]
    assert VERDICT_SCHEMA["required"] == ["score", "reason"]


class FakeJudgeEngine:
    """Scores a rewrite 1 if it talks about "the text", else 5; one reply is broken JSON."""

    def __init__(self):
        self.prompts: list[str] = []

    def render(self, messages):
        return "\n".join(m["content"] for m in messages)

    def generate(self, prompts, sampling):
        self.prompts += prompts
        out = []
        for p in prompts:
            rewrite = p.split("Rewrite:\n", 1)[1]
            if "BROKEN" in rewrite:
                text = '{"score": 3, "rea'
            else:
                score = 1 if "the text" in rewrite.lower() else 5
                text = json.dumps({"score": score, "reason": "fake"})
            out.append(Generation(text, "stop", 10, 10))
        return out


def scored_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCORED_SCHEMA)


def test_judge_actor_judges_kept_sampled_rows_and_drops_low_scores():
    config = Config()
    config.fidelity.judge.fraction = 1.0
    engine = FakeJudgeEngine()
    actor = JudgeActor(config, model_cache="", engine=engine)
    meta = recorded_pairs()[11]  # "The text should be reworded ..."
    good = faithful_rewrites()[0]
    rows = [
        {S.REWRITE_ID: "a#student", S.STYLE: "student", S.TEXT: meta["text"],
         S.SOURCE_TEXT: meta["source"]},
        {S.REWRITE_ID: "b#knowledge_list", S.STYLE: "knowledge_list", S.TEXT: good["text"],
         S.SOURCE_TEXT: "src"},
        {S.REWRITE_ID: "c#qa", S.STYLE: "qa", S.TEXT: "BROKEN", S.SOURCE_TEXT: "src"},
        {S.REWRITE_ID: "d#qa", S.STYLE: "qa", S.TEXT: "x", S.SOURCE_TEXT: "src",
         S.DROP_REASON: "boilerplate"},  # already dropped: not sent
    ]  # fmt: skip
    out = actor(scored_table(rows)).to_pylist()
    assert len(engine.prompts) == 3
    assert [r[S.JUDGE_SCORE] for r in out] == [1, 5, None, None]
    assert [r[S.DROP_REASON] for r in out] == [JUDGE_REJECTED, None, None, "boilerplate"]
    assert out[0][S.DROP_DETAIL].startswith("judge_score=1 < 3")
    assert out[2][S.JUDGE_REASON].startswith("unparseable verdict")  # kept, counted


@pytest.mark.slow
@pytest.mark.vllm
def test_the_real_model_judges_through_the_fidelity_stage(ray_local, tmp_path):
    """vLLM's CPU build, structured (JSON schema) decoding, in a Ray actor pool."""
    config = Config()
    config.model = local_model_config()
    config.rewrite.model_cache = str(ROOT / ".cache" / "models")
    config.fidelity.judge.enabled = True
    config.fidelity.judge.fraction = 1.0
    config.fidelity.judge.max_source_chars = 1200
    # Judge every row: turn the heuristic rules off so the recorded outputs reach the judge.
    for key in (
        "min_copied_ngram_ratio",
        "max_boilerplate_hits",
        "max_novel_numbers",
        "max_novel_entity_ratio",
        "min_length_ratio",
        "max_length_ratio",
    ):
        setattr(config.fidelity, key, None)  # fmt: skip
    config.fidelity.length_ratio_by_style = {}
    ctx, n = rewrites_run(tmp_path, config, picks=(11, 9), faithful=1)
    stats = FidelityStage(config).run(ctx)
    stats.check()
    rows = pa.concat_tables(
        [pq.read_table(p) for p in sorted(ctx.run_dir.glob("fidelity/data/*.parquet"))]
        + [pq.read_table(p) for p in sorted(ctx.run_dir.glob("quarantine/fidelity/*"))],
        promote_options="default",
    ).to_pylist()
    assert len(rows) == n == stats.rows_in
    assert stats.extra["judge_verdicts"] == n
    for row in rows:  # the schema held: every verdict parsed into a 1-5 score
        assert row[S.JUDGE_SCORE] in (1, 2, 3, 4, 5), row[S.JUDGE_REASON]
        assert isinstance(row[S.JUDGE_REASON], str)
