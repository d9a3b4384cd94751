"""Continuous batching: every request is independent in the engine, so a document's next chunk
enters as soon as its previous one returns, and batches started on one rewriter share the
engine. A fake streaming engine stands in for vLLM: a request takes as many steps as its
output has words, and a step returns the requests that finished in it."""

from __future__ import annotations

import pytest
from test_rewriter import FakeEngine, doc
from test_rewriter import config as paragraph_config

from pipeline import schema as S
from pipeline.config import RewriteConfig
from pipeline.models.engine import EngineClock, Generation, PromptRejected
from pipeline.rewrite.prompts import TEXT_HEADER
from pipeline.rewrite.rewriter import Rewriter


class StreamingEngine(FakeEngine):
    """FakeEngine's tokenizer and output, decoded one word per step."""

    def __init__(self, reject: str | None = None):
        super().__init__()
        self.reject = reject
        self.running: dict[int, list] = {}  # key -> [steps left, generation]
        self.log: list[tuple[int, str]] = []  # (step, first words of each submitted chunk)
        self.steps = 0
        self.in_flight_per_step: list[int] = []

    def submit(self, prompt, sampling):
        if self.reject and self.reject in prompt:
            raise PromptRejected("too long")
        body = prompt.split(TEXT_HEADER + "\n", 1)[1].rsplit("\n<assistant>", 1)[0]
        key = len(self.log)
        self.log.append((self.steps, " ".join(body.split()[:4])))
        words = len(body.split())
        self.running[key] = [words, Generation(body.upper(), "stop", len(prompt.split()), words)]
        return key

    def in_flight(self):
        return len(self.running)

    def step(self):
        self.steps += 1
        self.in_flight_per_step.append(len(self.running))
        done = []
        for key, state in list(self.running.items()):
            state[0] -= 1
            if state[0] <= 0:
                done.append((key, state[1]))
                del self.running[key]
        return done


def document(i: int, words_per_paragraph: list[int]) -> dict:
    text = "\n\n".join(
        " ".join([f"d{i}p{p}"] + ["word"] * (n - 1)) for p, n in enumerate(words_per_paragraph)
    )
    return {S.DOC_ID: f"d/{i}", S.SOURCE: "d", S.WEIGHT: 1.0, S.TEXT: text}


def config(**kw) -> RewriteConfig:
    """Chunks of up to 12 words: a paragraph of `document` each."""
    return paragraph_config(max_chunk_tokens=12, context_tokens=5, **kw)


def test_a_documents_next_chunk_enters_while_another_document_still_decodes():
    engine = StreamingEngine()
    # d/0: three chunks of 7 steps each; d/1: one chunk of 12. In rounds, d/0's second chunk
    # would wait for d/1's to end at step 12.
    rows = Rewriter(engine, config()).rewrite([document(0, [7, 7, 7]), document(1, [12])])
    submitted = {words.split()[0]: step for step, words in engine.log}
    assert submitted == {"d0p0": 0, "d1p0": 0, "d0p1": 7, "d0p2": 14}
    assert engine.steps == 21  # d/0's chain, with d/1's chunk inside it
    assert [r[S.DROP_REASON] for r in rows] == [None, None]
    assert rows[0][S.N_CHUNKS] == 3 and rows[0][S.TEXT].startswith("D0P0 WORD")


def test_batches_share_the_engine_and_their_rows_are_what_each_alone_gives():
    docs_a = [document(0, [3, 3]), document(1, [2])]
    docs_b = [document(2, [4]), document(3, [1, 1, 1])]
    alone = Rewriter(StreamingEngine(), config()).rewrite(docs_a) + Rewriter(
        StreamingEngine(), config()
    ).rewrite(docs_b)
    engine = StreamingEngine()
    rewriter = Rewriter(engine, config())
    a = rewriter.start(docs_a)
    rewriter.advance()
    b = rewriter.start(docs_b)  # the second batch arrives while the first decodes
    while not (a.done and b.done):
        rewriter.advance()
    assert a.rows() + b.rows() == alone
    # Both batches were in the engine together, and it never idled until the end.
    assert max(engine.in_flight_per_step) == 4
    assert min(engine.in_flight_per_step) >= 1


def test_a_batch_is_done_when_its_own_requests_are_though_another_is_not():
    engine = StreamingEngine()
    rewriter = Rewriter(engine, config())
    short = rewriter.start([document(0, [1])])
    long = rewriter.start([document(1, [9])])
    rewriter.advance()
    assert short.done and not long.done
    assert short.rows()[0][S.TEXT] == "D0P0"


def test_a_prompt_the_engine_refuses_costs_its_own_row_only():
    engine = StreamingEngine(reject="d1p0")
    rows = Rewriter(engine, config()).rewrite([document(0, [2]), document(1, [2])])
    assert rows[0][S.DROP_REASON] is None
    assert rows[1][S.DROP_REASON] == "engine_error" and "too long" in rows[1][S.DROP_DETAIL]


def test_an_engine_without_streaming_still_works_in_calls():
    # FakeEngine has only `generate`: each step is one call holding what was submitted.
    engine = FakeEngine()
    Rewriter(engine, paragraph_config()).rewrite([doc(0), doc(1)])
    assert [len(c) for c in engine.calls] == [2, 2, 2]


def test_the_engine_clock_reports_busy_share_and_sequences_in_flight():
    clock = EngineClock()
    clock.submitted(10.0)
    clock.stepped(10.0, 11.0, 4)
    clock.stepped(13.0, 14.0, 2)  # two idle seconds before this step
    summary = clock.summary()
    assert summary["window_s"] == 4.0 and summary["busy_s"] == 2.0
    assert summary["busy_fraction"] == 0.5
    assert summary["mean_in_flight"] == 3.0 and summary["max_in_flight"] == 4
    assert summary["in_flight_over_time"] == [(0.0, 4), (3.0, 2)]


def test_the_clock_keeps_a_bounded_timeline():
    clock = EngineClock()
    clock.submitted(0.0)
    for t in range(10 * EngineClock.MAX_SAMPLES):
        clock.stepped(float(t), t + 0.5, 1)
    assert len(clock.summary()["in_flight_over_time"]) <= EngineClock.MAX_SAMPLES
    assert clock.summary()["busy_fraction"] == pytest.approx(0.5, abs=0.01)
