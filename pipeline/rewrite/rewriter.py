"""Rewrite a batch of documents with an engine: styles, chunks, context, cache, cleaning.

Pure orchestration around an injected `Engine` (pipeline.rewrite.engine): no Ray, no vLLM
import, so the logic is tested with a fake engine and run in the stage with the real one.

Chunk-wise autoregressive mode (Kimi K2): a document's chunks go in order, each prompt carrying
the document's previous accepted rewrite as read-only context; each engine call holds the next
request of every document in the batch (a chunk, or a new sample of one the gate rejected).
Independent mode sends every chunk of the batch in the first call. Best of n: an injected
verifier (the fidelity gate) judges each chunk, and a rejected one is sampled again.

    rewriter = Rewriter(engine, rewrite_cfg, cache=GenerationCache(".cache/generations"))
    rows = rewriter.rewrite([{"doc_id": "wiki/1", "source": "wiki", "weight": 1.0, "text": ...}])
    # one row per (document, style): schema.REWRITES_SCHEMA columns + reason/detail/snippet
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline import schema as S
from pipeline.config import RewriteConfig
from pipeline.rewrite.cache import GenerationCache, generation_key
from pipeline.rewrite.chunking import Chunk, chunk_document, join_rewrites, prompt_budget
from pipeline.rewrite.engine import Engine, Generation, PromptRejected
from pipeline.rewrite.postprocess import clean_generation
from pipeline.rewrite.prompts import (
    PromptTemplate,
    build_messages,
    choose_styles,
    get_template,
    overhead_messages,
)

CHUNK_TOO_LONG = "chunk_too_long"
ENGINE_ERROR = "engine_error"

Verifier = Callable[[str, str, "str | None", str], "tuple[str, str] | None"]
"""(chunk rewrite, chunk source, finish reason, style) -> None if accepted, else the
(rule, detail) it fails: the fidelity gate on one chunk (pipeline/quality/chunk_gate.py)."""


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
        """Every document's chunks through the engine until each is accepted or spent.

        Each step is one engine call holding the next request of every document: a chunk's
        next attempt, its truncation retry, or (autoregressive) the next chunk once the
        previous one is accepted. Documents move at their own pace, so a retry of one
        document's first chunk shares a call with another's second chunk."""
        jobs = [job for doc in docs for job in self._jobs(doc)]
        live = [j for j in jobs if j.failure is None]
        if self.autoregressive:
            pending = [self._request(j, 0) for j in live if j.chunks]
        else:
            pending = [self._request(j, i) for j in live for i in range(len(j.chunks))]
        while pending:
            pending = self._step(pending)
        return [self._row(j) for j in jobs]

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

    def _step(self, requests: list[_Request]) -> list[_Request]:
        """Generate `requests`; return what follows them."""
        follow = []
        for request, generation in zip(requests, self._generate_cached(requests), strict=True):
            job, index = request.job, request.index
            if isinstance(generation, Exception):
                job.failure = (ENGINE_ERROR, f"chunk {index}: {generation}")
                continue
            if generation.finish_reason == "length" and self._may_retry(request):
                follow.append(self._widened(request, generation))
            elif (again := self._accept(request, generation)) is not None:
                follow.append(again)
            elif self._continues(job, index):
                follow.append(self._request(job, index + 1))
        return follow

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

    def _generate_cached(self, requests: list[_Request]) -> list[Generation | Exception]:
        keys = [generation_key(r.prompt, self.engine.model_id, r.sampling) for r in requests]
        found = self.cache.get_many(keys) if self.cache is not None else {}
        results: list[Generation | Exception | None] = [None] * len(requests)
        misses = []
        for i, key in enumerate(keys):
            requests[i].job.requests += 1
            if key in found:
                results[i] = Generation(**found[key])
                requests[i].job.cached += 1
            else:
                misses.append(i)
        fresh = self._generate([requests[i] for i in misses])
        for i, generation in zip(misses, fresh, strict=True):
            results[i] = generation
        if self.cache is not None:
            self.cache.put_many(
                [
                    (keys[i], asdict(g))
                    for i, g in zip(misses, fresh, strict=True)
                    if isinstance(g, Generation)
                ]
            )
        return results  # type: ignore[return-value]

    def _generate(self, requests: list[_Request]) -> list[Generation | Exception]:
        """One engine call per distinct sampling but the seed (attempts differ only in seed,
        and share a call). A batch the engine rejects is retried row by row, so one bad
        prompt costs its own row only; an engine failure propagates."""
        out: list[Generation | Exception | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            unseeded = {k: v for k, v in r.sampling.items() if k != "seed"}
            groups.setdefault(json.dumps(unseeded, sort_keys=True), []).append(i)
        for indices in groups.values():
            try:
                for i, g in zip(indices, self._call([requests[i] for i in indices]), strict=True):
                    out[i] = g
            except PromptRejected:
                for i in indices:
                    try:
                        out[i] = self._call([requests[i]])[0]
                    except PromptRejected as e:
                        out[i] = e
        return out  # type: ignore[return-value]

    def _call(self, requests: list[_Request]) -> list[Generation]:
        """One engine call; per-request seeds only when they differ (engines without the
        `seeds` argument, e.g. test fakes, then still see the plain call)."""
        sampling = requests[0].sampling
        prompts = [r.prompt for r in requests]
        seeds = [r.sampling.get("seed", 0) for r in requests]
        if len(set(seeds)) == 1:
            return self.engine.generate(prompts, sampling)
        return self.engine.generate(prompts, sampling, seeds=seeds)

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
