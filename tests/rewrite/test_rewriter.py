"""The rewriter's orchestration with a fake engine: order, context, cache, retries, failures.

The fake stands in for vLLM only to test the logic around it; the real model is exercised in
tests/rewrite/test_stage.py.
"""

from __future__ import annotations

import pytest

from pipeline import schema as S
from pipeline.config import RewriteConfig
from pipeline.models.engine import Generation, PromptRejected
from pipeline.rewrite.cache import GenerationCache
from pipeline.rewrite.prompts import CONTEXT_HEADER, TEXT_HEADER
from pipeline.rewrite.rewriter import Rewriter


class FakeEngine:
    """Words are tokens; the 'rewrite' upper-cases the text to rewrite."""

    model_id = "fake"
    max_model_len = 400

    def __init__(
        self, truncate_first: int = 0, fail_on: str | None = None, crash_on: str | None = None
    ):
        self.calls: list[list[str]] = []
        self.truncate_first = truncate_first
        self.fail_on = fail_on
        self.crash_on = crash_on

    def render(self, messages):
        return "\n".join(f"<{m['role']}>{m['content']}" for m in messages) + "\n<assistant>"

    def count_tokens(self, text):
        return len(text.split())

    def tail_tokens(self, text, n):
        return " ".join(text.split()[-n:]) if n else ""

    def generate(self, prompts, sampling):
        if self.fail_on and any(self.fail_on in p for p in prompts):
            raise PromptRejected("prompt exploded")
        if self.crash_on and any(self.crash_on in p for p in prompts):
            raise RuntimeError("engine core died")
        self.calls.append(prompts)
        out = []
        for p in prompts:
            body = p.split(TEXT_HEADER + "\n", 1)[1].rsplit("\n<assistant>", 1)[0]
            if self.truncate_first and sampling["max_tokens"] < 100:
                self.truncate_first -= 1
                out.append(Generation(body.upper()[:10], "length", len(p.split()), 5))
            else:
                out.append(Generation(body.upper(), "stop", len(p.split()), len(body.split())))
        return out


def doc(i: int, paragraphs: int = 3) -> dict:
    text = "\n\n".join(f"Paragraph {p} of document {i} has some words." for p in range(paragraphs))
    return {S.DOC_ID: f"d/{i}", S.SOURCE: "d", S.WEIGHT: 1.0, S.TEXT: text}


def config(**kw) -> RewriteConfig:
    cfg = RewriteConfig(
        **{"styles": ["wikipedia"], "max_chunk_tokens": 9, "context_tokens": 20, **kw}
    )
    cfg.sampling.max_tokens = 50
    return cfg


def test_chunks_go_in_order_with_the_previous_rewrite_as_context():
    engine = FakeEngine()
    rows = Rewriter(engine, config()).rewrite([doc(0), doc(1)])
    # Three rounds (one chunk per paragraph), each holding both documents.
    assert [len(c) for c in engine.calls] == [2, 2, 2]
    first, second = engine.calls[0][0], engine.calls[1][0]
    assert CONTEXT_HEADER not in first
    assert CONTEXT_HEADER in second and "PARAGRAPH 0 OF DOCUMENT 0" in second
    row0 = rows[0]
    assert row0[S.DROP_REASON] is None
    assert row0[S.TEXT] == "\n\n".join(
        f"PARAGRAPH {p} OF DOCUMENT 0 HAS SOME WORDS." for p in range(3)
    )
    assert row0[S.N_CHUNKS] == 3 and row0[S.CHUNK_SOURCES][1].startswith("Paragraph 1")
    assert row0[S.SOURCE_TEXT] == doc(0)[S.TEXT]
    assert row0[S.PROMPT_ID] == "wikipedia@v1" and row0[S.MODEL] == "fake"


def test_independent_mode_sends_every_chunk_at_once():
    engine = FakeEngine()
    Rewriter(engine, config(mode="independent")).rewrite([doc(0), doc(1)])
    assert [len(c) for c in engine.calls] == [6]
    assert all(CONTEXT_HEADER not in p for p in engine.calls[0])


def test_a_rerun_is_served_by_the_cache(tmp_path):
    cache = GenerationCache(tmp_path)
    first = Rewriter(FakeEngine(), config(), cache).rewrite([doc(0)])
    engine = FakeEngine()
    again = Rewriter(engine, config(), GenerationCache(tmp_path)).rewrite([doc(0)])
    assert engine.calls == [] and again[0][S.CACHED] == again[0][S.REQUESTS] == 3
    assert again[0][S.TEXT] == first[0][S.TEXT]


def test_a_truncated_chunk_is_retried_with_a_wider_budget():
    engine = FakeEngine(truncate_first=1)
    (row,) = Rewriter(engine, config(mode="independent")).rewrite([doc(0, paragraphs=1)])
    assert row[S.DROP_REASON] is None and row[S.TEXT].startswith("PARAGRAPH 0")
    assert len(engine.calls) == 2


def test_truncation_drops_the_rewrite_when_retries_are_off():
    engine = FakeEngine(truncate_first=5)
    (row,) = Rewriter(engine, config(on_truncated="drop")).rewrite([doc(0, paragraphs=1)])
    assert row[S.DROP_REASON] == "truncated"


def test_an_engine_error_costs_only_its_own_row():
    engine = FakeEngine(fail_on="document 1 ")
    rows = Rewriter(engine, config()).rewrite([doc(0), doc(1)])
    assert rows[0][S.DROP_REASON] is None
    assert rows[1][S.DROP_REASON] == "engine_error" and "exploded" in rows[1][S.DROP_DETAIL]


def test_an_engine_failure_is_not_blamed_on_the_rows():
    # A dead engine fails every prompt: recording that per row would lose the batch. It must
    # reach the actor, which restarts (pipeline.rewrite.stage) and the batch is retried.
    engine = FakeEngine(crash_on="document 1 ")
    with pytest.raises(RuntimeError, match="engine core died"):
        Rewriter(engine, config()).rewrite([doc(0), doc(1)])


def test_several_styles_per_document_and_chunk_caps():
    cfg = config(max_chunks_per_doc=2)
    cfg.styles = ["wikipedia", "qa", "summary"]
    cfg.styles_per_doc = 2
    rows = Rewriter(FakeEngine(), cfg).rewrite([doc(0)])
    assert len(rows) == 2 and len({r[S.STYLE] for r in rows}) == 2
    assert all(r[S.N_CHUNKS] == 2 for r in rows)
    assert {r[S.REWRITE_ID] for r in rows} == {f"d/0#{r[S.STYLE]}" for r in rows}


class SeededEngine(FakeEngine):
    """Records each request's seed; the output is the upper-cased text plus the seed."""

    def __init__(self):
        super().__init__()
        self.seeds: list[int] = []

    def generate(self, prompts, sampling, seeds=None):
        seeds = seeds or [sampling.get("seed", 0)] * len(prompts)
        self.seeds += seeds
        return [
            Generation(f"{g.text} seed{seed}", g.finish_reason, 1, 1)
            for g, seed in zip(super().generate(prompts, sampling), seeds, strict=True)
        ]


def reject_seeds_below(n: int, rule: str = "copied_source"):
    """A verifier that rejects every sample drawn with a seed below n."""

    def verify(text, source, finish_reason, style):
        seed = int(text.rsplit("seed", 1)[1])
        return (rule, f"seed {seed} < {n}") if seed < n else None

    return verify


def test_a_rejected_chunk_is_sampled_again_with_a_new_seed_until_the_gate_accepts():
    engine = SeededEngine()
    cfg = config(max_attempts=4)
    [row] = Rewriter(engine, cfg, verify=reject_seeds_below(2)).rewrite([doc(0, paragraphs=1)])
    assert row[S.DROP_REASON] is None
    assert engine.seeds == [0, 1, 2]  # attempt k draws with seed sampling.seed + k - 1
    assert row[S.TEXT].endswith("seed2")
    assert row[S.CHUNK_ATTEMPTS] == [3]
    assert [(r["attempt"], r["reason"]) for r in row[S.REJECTED_ATTEMPTS]] == [
        (1, "copied_source"),
        (2, "copied_source"),
    ]
    assert row[S.REQUESTS] == 3


def test_a_first_chunk_out_of_attempts_fails_its_document_and_later_chunks_are_not_drawn():
    engine = SeededEngine()
    [row] = Rewriter(engine, config(max_attempts=3), verify=reject_seeds_below(99)).rewrite(
        [doc(0, paragraphs=3)]
    )
    assert row[S.DROP_REASON] == "copied_source"
    assert "attempt 3" in row[S.DROP_DETAIL]
    assert row[S.CHUNK_ATTEMPTS] == [3, 0, 0]
    assert len(row[S.REJECTED_ATTEMPTS]) == 3
    assert engine.seeds == [0, 1, 2]


def reject_chunk(index_word: str):
    """A verifier that rejects every sample of the chunk whose text holds `index_word`."""

    def verify(text, source, finish_reason, style):
        return ("unfaithful", "no") if index_word in source else None

    return verify


@pytest.mark.parametrize("mode", ["autoregressive", "independent"])
def test_a_later_chunk_out_of_attempts_keeps_the_accepted_chunks_before_it(mode):
    engine = SeededEngine()
    cfg = config(max_attempts=2, mode=mode)
    [row] = Rewriter(engine, cfg, verify=reject_chunk("Paragraph 1 ")).rewrite([doc(0, 3)])
    assert row[S.DROP_REASON] is None
    assert row[S.N_CHUNKS] == 1 and row[S.TEXT].startswith("PARAGRAPH 0 OF DOCUMENT 0")
    assert row[S.SOURCE_TEXT].strip() == "Paragraph 0 of document 0 has some words."
    assert [span["index"] for span in row[S.CHUNK_SPANS]] == [0]
    assert row[S.CHUNK_ATTEMPTS][:2] == [1, 2]
    assert [r["index"] for r in row[S.REJECTED_ATTEMPTS]] == [1, 1]


def test_a_retry_of_one_document_shares_the_engine_call_with_anothers_next_chunk():
    engine = SeededEngine()
    verify = reject_chunk("document 0 ")  # document 0 never passes; document 1 always does
    rows = Rewriter(engine, config(max_attempts=3), verify=verify).rewrite([doc(0, 2), doc(1, 2)])
    # call 1: both first chunks; call 2: doc 0 attempt 2 with doc 1 chunk 2; call 3: attempt 3
    assert [len(c) for c in engine.calls] == [2, 2, 1]
    assert engine.seeds == [0, 0, 1, 0, 2]
    assert rows[0][S.DROP_REASON] == "unfaithful" and rows[1][S.N_CHUNKS] == 2


def test_a_rule_outside_regenerate_on_fails_at_once():
    engine = SeededEngine()
    cfg = config(max_attempts=4, regenerate_on=["repetition"])
    [row] = Rewriter(engine, cfg, verify=reject_seeds_below(2)).rewrite([doc(0, paragraphs=1)])
    assert row[S.DROP_REASON] == "copied_source"
    assert row[S.CHUNK_ATTEMPTS] == [1]


def test_greedy_sampling_draws_once_since_every_seed_gives_the_same_text():
    engine = SeededEngine()
    cfg = config(max_attempts=4)
    cfg.sampling.temperature = 0.0
    [row] = Rewriter(engine, cfg, verify=reject_seeds_below(2)).rewrite([doc(0, paragraphs=1)])
    assert row[S.DROP_REASON] == "copied_source" and engine.seeds == [0]


def test_every_attempt_is_cached_under_its_own_key(tmp_path):
    cache = GenerationCache(tmp_path)
    first = SeededEngine()
    Rewriter(first, config(), cache=cache, verify=reject_seeds_below(2)).rewrite([doc(0, 1)])
    again = SeededEngine()
    [row] = Rewriter(again, config(), cache=cache, verify=reject_seeds_below(2)).rewrite(
        [doc(0, 1)]
    )
    assert again.seeds == [] and row[S.CACHED] == 3 and row[S.TEXT].endswith("seed2")
