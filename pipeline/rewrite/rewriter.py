"""Rewrite documents with an engine: styles, chunks, context, cache, cleaning.

Pure orchestration around an injected `Engine` (pipeline.models.engine): no Ray, no vLLM
import, so the logic is tested with a fake engine and run in the stage with the real one.

Every request is independent in the engine (continuous batching): the rewriter submits it,
and when a step returns it, queues what follows at once. Chunk-wise autoregressive mode (Kimi
K2): a document's chunks go in order, each prompt carrying the document's previous accepted
rewrite as read-only context, so chunk k+1 enters as soon as chunk k is accepted while the
other documents keep decoding. Independent mode submits every chunk at the start. Best of n:
an injected verifier (the fidelity gate) judges each chunk, and a rejected one is sampled
again.

    rewriter = Rewriter(engine, rewrite_cfg, cache=GenerationCache(".cache/generations"))
    rows = rewriter.rewrite([{"doc_id": "wiki/1", "source": "wiki", "weight": 1.0, "text": ...}])
    # one row per (document, style): schema.REWRITES_SCHEMA columns + reason/detail/snippet

    a, b = rewriter.start(docs_a), rewriter.start(docs_b)   # both share the engine
    while not (a.done and b.done):
        rewriter.advance()                                  # one engine step
    rows_a = a.rows()
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline import schema as S
from pipeline.config import RewriteConfig
from pipeline.models.engine import Engine, Generation, PromptRejected, as_stream
from pipeline.rewrite.cache import GenerationCache, generation_key
from pipeline.rewrite.chunking import Chunk, chunk_document, join_rewrites, prompt_budget
from pipeline.rewrite.prompts import (
    PromptTemplate,
    build_messages,
    choose_styles,
    get_template,
    overhead_messages,
)
from pipeline.text_fidelity.cleaning import clean_generation

CHUNK_TOO_LONG = "chunk_too_long"
ENGINE_ERROR = "engine_error"

Verifier = Callable[[str, str, "str | None", str], "tuple[str, str] | None"]
"""(chunk rewrite, chunk source, finish reason, style) -> None if accepted, else the
(rule, detail) it fails: the fidelity gate on one chunk (pipeline/text_fidelity/chunk_gate.py)."""


@dataclass
class _Job:
    """One document in one style: its chunks and what came back for each."""

    doc: dict
    template: PromptTemplate
    chunks: list[Chunk]
    rewrites: list[str | None] = field(default_factory=list)
    finish: list[str | None] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    cached: int = 0
    failure: tuple[str, str] | None = None  # (reason, detail)
    attempts: list[int] = field(default_factory=list)  # samples drawn per chunk
    # Chunks given up on: index -> (rule, detail). The rewrite keeps the accepted chunks
    # before the first of them; the rest of the document stays raw text only.
    chunk_failures: dict[int, tuple[str, str]] = field(default_factory=dict)
    rejected: list[dict] = field(default_factory=list)  # schema.REJECTED_ATTEMPT_TYPE rows
    open: int = 0  # requests queued or in the engine

    def __post_init__(self) -> None:
        self.rewrites = [None] * len(self.chunks)
        self.finish = [None] * len(self.chunks)
        self.attempts = [0] * len(self.chunks)


@dataclass
class _Request:
    job: _Job
    index: int  # chunk index
    prompt: str
    sampling: dict[str, Any]
    attempt: int = 1  # 1 + the samples of this chunk rejected before
    widened: bool = False  # the truncation retry, at twice the output budget
    cache_key: str = ""  # set when sent


@dataclass
class Batch:
    """The documents of one `Rewriter.start`: done once none of its requests is open."""

    jobs: list[_Job]
    rewriter: Rewriter

    @property
    def done(self) -> bool:
        return all(job.open == 0 for job in self.jobs)

    def rows(self) -> list[dict]:
        """One row per (document, style), in the order the documents came."""
        return [self.rewriter._row(job) for job in self.jobs]


class Rewriter:
    def __init__(
        self,
        engine: Engine,
        cfg: RewriteConfig,
        cache: GenerationCache | None = None,
        system_role: bool = True,
        verify: Verifier | None = None,
    ):
        self.engine = engine
        self.cfg = cfg
        self.cache = cache
        self.system_role = system_role
        self.verify = verify
        # A new seed changes nothing under greedy decoding: one attempt then.
        greedy = cfg.sampling.temperature == 0
        self.max_attempts = 1 if greedy else cfg.max_attempts
        self.regenerate_on = None if cfg.regenerate_on is None else set(cfg.regenerate_on)
        self.sampling = asdict(cfg.sampling)
        self.sampling_json = json.dumps(self.sampling, sort_keys=True)
        self.autoregressive = cfg.mode == "autoregressive"
        self._budgets: dict[str, int] = {}
        self.stream = as_stream(engine)
        self._queued: list[_Request] = []  # waiting for the next `advance` to send them
        self._in_flight: dict[Hashable, _Request] = {}  # in the engine, by its key

    def chunk_budget(self, template: PromptTemplate) -> int:
        """Tokens a chunk may have: what the model's context leaves, capped by config."""
        if template.key not in self._budgets:
            frame = self.engine.render(
                overhead_messages(template, self.autoregressive, system_role=self.system_role)
            )
            context = self.cfg.context_tokens if self.autoregressive else 0
            budget = prompt_budget(
                self.engine.max_model_len,
                self.cfg.sampling.max_tokens,
                self.engine.count_tokens(frame),
                context,
            )
            self._budgets[template.key] = min(budget, self.cfg.max_chunk_tokens)
        return self._budgets[template.key]

    def rewrite(self, docs: list[dict]) -> list[dict]:
        """Every document's chunks through the engine until each is accepted or spent."""
        batch = self.start(docs)
        while not batch.done:
            self.advance()
        return batch.rows()

    def start(self, docs: list[dict]) -> Batch:
        """Queue the first requests of `docs`; `advance` until the batch is done. Batches
        started before others finish share the engine: that is what keeps it full."""
        jobs = [job for doc in docs for job in self._jobs(doc)]
        live = [j for j in jobs if j.failure is None]
        if self.autoregressive:
            first = [self._request(j, 0) for j in live if j.chunks]
        else:
            first = [self._request(j, i) for j in live for i in range(len(j.chunks))]
        for request in first:
            self._queue_request(request)
        return Batch(jobs, self)

    def advance(self) -> None:
        """Send every queued request (the cache answers those it holds, and what follows them
        is queued in turn), then run one engine step and queue what follows each request
        that finished: a chunk's next attempt, its truncation retry, or (autoregressive)
        the document's next chunk. Documents move at their own pace; no one waits for a
        round to end."""
        while self._queued:
            self._send()
        if self.stream.in_flight():
            finished = self.stream.step()
            fresh = []
            for key, result in finished:
                request = self._in_flight.pop(key)
                if isinstance(result, Generation):
                    fresh.append((request.cache_key, asdict(result)))
                self._finish(request, result)
            if self.cache is not None and fresh:
                self.cache.put_many(fresh)

    # --- building requests ---------------------------------------------------------------

    def _jobs(self, doc: dict) -> list[_Job]:
        jobs = []
        for style in choose_styles(
            doc[S.DOC_ID], self.cfg.styles, self.cfg.styles_per_doc, self.cfg.seed
        ):
            template = get_template(style, self.cfg.prompts)
            budget = self.chunk_budget(template)
            chunks = chunk_document(doc[S.DOC_ID], doc[S.TEXT], self.engine.count_tokens, budget)
            if self.cfg.max_chunks_per_doc:
                chunks = chunks[: self.cfg.max_chunks_per_doc]
            job = _Job(doc, template, chunks)
            if over := [c for c in chunks if c.n_tokens > budget]:
                detail = f"chunk {over[0].index} has {over[0].n_tokens} tokens > budget {budget}"
                job.failure = (CHUNK_TOO_LONG, detail)
            jobs.append(job)
        return jobs

    def _request(self, job: _Job, index: int, sampling: dict | None = None) -> _Request:
        previous = None
        if self.autoregressive and index > 0:
            previous = self.engine.tail_tokens(
                job.rewrites[index - 1] or "", self.cfg.context_tokens
            )
        messages = build_messages(
            job.template, job.chunks[index].text, previous, system_role=self.system_role
        )
        return _Request(job, index, self.engine.render(messages), sampling or self.sampling)

    # --- generating ------------------------------------------------------------------------

    def _queue_request(self, request: _Request) -> None:
        request.job.open += 1
        self._queued.append(request)

    def _send(self) -> None:
        """The queued requests to the cache, the misses to the engine."""
        queued, self._queued = self._queued, []
        for r in queued:
            r.cache_key = generation_key(r.prompt, self.engine.model_id, r.sampling)
            r.job.requests += 1
        found = self.cache.get_many([r.cache_key for r in queued]) if self.cache else {}
        for request in queued:
            if request.cache_key in found:
                request.job.cached += 1
                self._finish(request, Generation(**found[request.cache_key]))
                continue
            try:
                self._in_flight[self.stream.submit(request.prompt, request.sampling)] = request
            except PromptRejected as e:
                self._finish(request, e)

    def _finish(self, request: _Request, result: Generation | PromptRejected) -> None:
        """What follows one returned request, queued."""
        job, index = request.job, request.index
        job.open -= 1
        if isinstance(result, PromptRejected):
            job.failure = (ENGINE_ERROR, f"chunk {index}: {result}")
            return
        if result.finish_reason == "length" and self._may_retry(request):
            self._queue_request(self._widened(request, result))
        elif (again := self._accept(request, result)) is not None:
            self._queue_request(again)
        elif self._continues(job, index):
            self._queue_request(self._request(job, index + 1))

    def _continues(self, job: _Job, index: int) -> bool:
        """Autoregressive: the next chunk goes once this one is accepted (its rewrite is the
        next prompt's context)."""
        accepted = job.failure is None and job.rewrites[index] is not None
        return self.autoregressive and accepted and index + 1 < len(job.chunks)

    def _may_retry(self, request: _Request) -> bool:
        return self.cfg.on_truncated == "retry" and not request.widened

    def _widened(self, request: _Request, generation: Generation) -> _Request:
        """The same prompt with twice the output budget (bounded by the model's context)."""
        room = self.engine.max_model_len - generation.prompt_tokens
        max_tokens = min(2 * self.cfg.sampling.max_tokens, room)
        request.job.input_tokens += generation.prompt_tokens
        request.job.output_tokens += generation.output_tokens
        sampling = {**request.sampling, "max_tokens": max_tokens}
        return _Request(
            request.job, request.index, request.prompt, sampling, request.attempt, widened=True
        )

    def _accept(self, request: _Request, generation: Generation) -> _Request | None:
        """Keep a chunk's cleaned output if the verifier accepts it; else record the rejected
        attempt and return the chunk's next attempt (a new seed), or fail the document once
        the attempts are spent or the rule is not one a new sample may fix."""
        job, index = request.job, request.index
        job.input_tokens += generation.prompt_tokens
        job.output_tokens += generation.output_tokens
        job.attempts[index] = request.attempt
        cleaned = clean_generation(generation.text, generation.finish_reason)
        job.removed.update(cleaned.removed)
        job.finish[index] = generation.finish_reason
        reason, detail = cleaned.reason, repr(cleaned.text[:200])
        if reason == "truncated" and self.cfg.on_truncated == "keep":
            reason = None
        if reason is None and self.verify is not None:
            verdict = self.verify(
                cleaned.text, job.chunks[index].text, generation.finish_reason, job.template.style
            )
            if verdict is not None:
                reason, detail = verdict
        if reason is None:
            job.rewrites[index] = cleaned.text
            return None
        job.rejected.append(
            {
                "index": index,
                "attempt": request.attempt,
                "reason": reason,
                "detail": detail,
                "text": cleaned.text or generation.text,
            }
        )
        fixable = self.regenerate_on is None or reason in self.regenerate_on
        # Independent mode: once an earlier chunk is given up on, this one is past the kept
        # prefix, and another sample of it would be thrown away.
        moot = any(i < index for i in job.chunk_failures)
        if fixable and not moot and request.attempt < self.max_attempts:
            return self._next_attempt(request)
        job.chunk_failures[index] = (reason, f"chunk {index}, attempt {request.attempt}: {detail}")
        return None

    def _next_attempt(self, request: _Request) -> _Request:
        """The same prompt sampled again: attempt k draws with seed `sampling.seed + k - 1`,
        so every attempt is reproducible and cached under its own key."""
        attempt = request.attempt + 1
        sampling = {**self.sampling, "seed": self.sampling.get("seed", 0) + attempt - 1}
        return _Request(request.job, request.index, request.prompt, sampling, attempt)

    # --- output rows -----------------------------------------------------------------------

    def _row(self, job: _Job) -> dict:
        doc, style = job.doc, job.template.style
        # The chunks before the first one given up on: a rewrite of that much of the document.
        kept = next((i for i, t in enumerate(job.rewrites) if t is None), len(job.rewrites))
        if job.failure is None and kept == 0 and job.chunk_failures:
            job.failure = job.chunk_failures[min(job.chunk_failures)]
        chunks = job.chunks[:kept] if job.failure is None else job.chunks
        source_text = doc[S.TEXT][chunks[0].start : chunks[-1].end] if chunks else ""
        text = "" if job.failure else join_rewrites([t or "" for t in job.rewrites[:kept]])
        row = {
            S.REWRITE_ID: f"{doc[S.DOC_ID]}#{style}",
            S.DOC_ID: doc[S.DOC_ID],
            S.SOURCE: doc[S.SOURCE],
            S.WEIGHT: doc[S.WEIGHT],
            S.STYLE: style,
            S.PROMPT_ID: job.template.key,
            S.PROMPT_HASH: job.template.content_hash,
            S.MODEL: self.engine.model_id,
            # Engines without weights on this machine (test fakes) have no hash: null.
            S.MODEL_HASH: getattr(self.engine, "model_hash", None),
            S.SAMPLING: self.sampling_json,
            S.MODE: self.cfg.mode,
            S.N_CHUNKS: len(chunks),
            S.TEXT: text,
            S.SOURCE_TEXT: source_text,
            S.CHUNK_SOURCES: [c.text for c in chunks],
            S.CHUNK_REWRITES: [t or "" for t in job.rewrites[: len(chunks)]],
            S.CHUNK_SPANS: [{"index": c.index, "start": c.start, "end": c.end} for c in chunks],
            S.FINISH_REASONS: job.finish[: len(chunks)],
            S.CHUNK_ATTEMPTS: job.attempts,
            S.REJECTED_ATTEMPTS: job.rejected,
            S.INPUT_TOKENS: job.input_tokens,
            S.OUTPUT_TOKENS: job.output_tokens,
            S.REQUESTS: job.requests,
            S.CACHED: job.cached,
            S.REMOVED: sorted(job.removed),
            S.N_BYTES: len(text.encode("utf-8")),
            S.DROP_REASON: None,
            S.DROP_DETAIL: None,
            S.SNIPPET: None,
        }
        if job.failure is None and not chunks:
            job.failure = ("empty_text", "no chunk to rewrite")
        if job.failure is not None:
            row[S.DROP_REASON], row[S.DROP_DETAIL] = job.failure
            row[S.SNIPPET] = source_text[:200]
        return row
