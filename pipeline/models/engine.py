"""The generation engine: vLLM's offline `LLM` behind a small interface.

It serves the rewrite stage and the fidelity stage's LLM judge (pipeline/quality/judge.py),
two peers, so it lives here below both. Everything around the engine (prompts, chunking,
cache, post-processing) talks to `Engine`, so unit tests can pass a fake one and the stages
run the real one. The CPU build here and the
CUDA build on a cluster are the same code path: every argument of `vllm.LLM` comes from the
model config (`model.engine`), and `model.env` is set before vLLM is imported.

    engine = VLLMEngine(model_cfg, model_cache=Path(".cache/models"))
    prompt = engine.render(messages)                  # chat template applied, as text
    [gen] = engine.generate([prompt], {"temperature": 0.7, "max_tokens": 256, "seed": 0})
    gen.text, gen.finish_reason, gen.prompt_tokens, gen.output_tokens

Streaming (continuous batching): `submit` puts one request into the running engine, `step`
runs one engine step and returns the requests that finished in it. The rewriter keeps the
engine full this way: a document's next chunk goes in as soon as its previous one returns,
while every other request keeps decoding. An engine with only `generate` (a test fake) is
streamed by `CallBatcher`: everything submitted goes in one call at the next step.

    key = engine.submit(prompt, {"temperature": 0.7, "max_tokens": 256, "seed": 0})
    while engine.in_flight():
        for key, generation in engine.step(): ...     # Generation, or PromptRejected
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.config import ModelConfig
from pipeline.models.build import resolve_model_path
from pipeline.models.weights import weights_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str | None  # "stop", "length" (hit max_tokens), ...
    prompt_tokens: int
    output_tokens: int


class PromptRejected(ValueError):
    """The engine refused one of the prompts (too long for the context, invalid input).

    The prompt's own problem: the rewriter records it on that row and goes on. Any other
    exception from `generate` means the engine itself failed; the stage lets it end the
    actor, which Ray restarts and whose batch it retries (see pipeline.rewrite.stage)."""


class Engine(Protocol):
    model_id: str
    max_model_len: int

    def render(self, messages: list[dict[str, str]]) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def tail_tokens(self, text: str, n: int) -> str: ...

    def generate(
        self, prompts: list[str], sampling: dict[str, Any], seeds: list[int] | None = None
    ) -> list[Generation]:
        """`seeds`: a base seed per prompt (best-of-n attempts in one call), else
        sampling["seed"] for all."""
        ...


class Stream(Protocol):
    """An engine fed request by request (pipeline.rewrite.rewriter drives it)."""

    def submit(self, prompt: str, sampling: dict[str, Any]) -> Hashable:
        """Queue one request (seeded from sampling["seed"] and the prompt); its key. Raises
        PromptRejected if the engine refuses the prompt."""
        ...

    def step(self) -> list[tuple[Hashable, Generation | PromptRejected]]:
        """One engine step: the requests that finished in it."""
        ...

    def in_flight(self) -> int:
        """Requests submitted and not yet returned by `step`."""
        ...


@dataclass
class EngineClock:
    """How busy the engine was: each step's duration and the requests in flight during it.

    busy fraction = seconds inside engine steps / seconds from the first request submitted
    to the last one returned; what is left is the engine idling while the rewriter works
    (gate, cache, prompts) or waits for its next batch."""

    first: float | None = None  # perf_counter at the first submit
    last: float | None = None  # at the end of the last step
    busy_s: float = 0.0
    steps: int = 0
    in_flight_sum: int = 0  # sum over steps of the requests in flight: mean = sum / steps
    max_in_flight: int = 0
    # (seconds since first, requests in flight) at most every `sample_every` s; past
    # MAX_SAMPLES, every other one goes and the interval doubles (a day-long run stays small).
    samples: list[tuple[float, int]] = field(default_factory=list)
    sample_every: float = 1.0
    MAX_SAMPLES = 240

    def submitted(self, now: float) -> None:
        if self.first is None:
            self.first = now

    def stepped(self, start: float, end: float, in_flight: int) -> None:
        self.busy_s += end - start
        self.steps += 1
        self.in_flight_sum += in_flight
        self.max_in_flight = max(self.max_in_flight, in_flight)
        self.last = end
        t = start - (self.first if self.first is not None else start)
        if not self.samples or t - self.samples[-1][0] >= self.sample_every:
            self.samples.append((round(t, 2), in_flight))
            if len(self.samples) > self.MAX_SAMPLES:
                self.samples = self.samples[::2]
                self.sample_every *= 2

    def summary(self) -> dict[str, Any]:
        window = (self.last - self.first) if self.first is not None and self.last else 0.0
        return {
            "window_s": round(window, 3),
            "busy_s": round(self.busy_s, 3),
            "busy_fraction": round(self.busy_s / window, 4) if window > 0 else None,
            "steps": self.steps,
            "mean_in_flight": round(self.in_flight_sum / self.steps, 2) if self.steps else None,
            "max_in_flight": self.max_in_flight,
            "in_flight_over_time": self.samples,
        }


class CallBatcher:
    """`Stream` over an engine that only has `generate`: what is submitted before a step goes
    in one call per distinct sampling but the seed (attempts differ only in seed and share a
    call). A call the engine rejects is retried prompt by prompt, so one bad prompt costs its
    own request only; any other exception (the engine failed) propagates."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._queued: list[tuple[int, str, dict[str, Any]]] = []
        self._next = 0

    def submit(self, prompt: str, sampling: dict[str, Any]) -> int:
        self._next += 1
        self._queued.append((self._next, prompt, sampling))
        return self._next

    def in_flight(self) -> int:
        return len(self._queued)

    def step(self) -> list[tuple[Hashable, Generation | PromptRejected]]:
        queued, self._queued = self._queued, []
        groups: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
        for item in queued:
            unseeded = {k: v for k, v in item[2].items() if k != "seed"}
            groups.setdefault(json.dumps(unseeded, sort_keys=True), []).append(item)
        out: list[tuple[Hashable, Generation | PromptRejected]] = []
        for group in groups.values():
            try:
                out += zip([key for key, _, _ in group], self._call(group), strict=True)
            except PromptRejected:
                for item in group:
                    try:
                        out.append((item[0], self._call([item])[0]))
                    except PromptRejected as e:
                        out.append((item[0], e))
        return out

    def _call(self, group: list[tuple[int, str, dict[str, Any]]]) -> list[Generation]:
        """One engine call; per-request seeds only when they differ (engines without the
        `seeds` argument, e.g. test fakes, then still see the plain call)."""
        prompts = [prompt for _, prompt, _ in group]
        seeds = [sampling.get("seed", 0) for _, _, sampling in group]
        if len(set(seeds)) == 1:
            return self.engine.generate(prompts, group[0][2])
        return self.engine.generate(prompts, group[0][2], seeds=seeds)


def as_stream(engine: Engine) -> Stream:
    """The engine itself if it streams (VLLMEngine), else a CallBatcher around it."""
    return engine if hasattr(engine, "submit") else CallBatcher(engine)  # type: ignore[return-value]


def request_seed(base_seed: int, prompt: str) -> int:
    """A per-request seed from the prompt: the same chunk samples the same text whatever
    batch, actor or rerun it lands in (which is what makes reruns byte-identical)."""
    digest = hashlib.sha256(f"{base_seed}\0{prompt}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class VLLMEngine:
    def __init__(self, model: ModelConfig, model_cache: Path):
        for key, value in model.env.items():
            # The model config wins over what the worker inherited (Ray's OMP_NUM_THREADS):
            # vLLM and its OpenMP runtime read these when they are first imported.
            os.environ[key] = str(value)
        from vllm import LLM  # the optional engine: imported only where one is started

        path = resolve_model_path(model.path, Path(model_cache), model.num_experts, model.top_k)
        tokenizer = (
            resolve_model_path(model.tokenizer, Path(model_cache)) if model.tokenizer else path
        )
        self.llm = LLM(
            model=path,
            tokenizer=tokenizer,
            trust_remote_code=model.trust_remote_code,
            **dict(model.engine),
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.model_id = model.name
        self.model_path = path
        self.max_model_len = int(self.llm.model_config.max_model_len)
        self.clock = EngineClock()
        self._in_flight = 0

    @functools.cached_property
    def model_hash(self) -> str | None:
        """sha256 of the weight files (lineage); None for a hub id (pipeline/models/weights.py)."""
        return weights_sha256(self.model_path)

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def tail_tokens(self, text: str, n: int) -> str:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return text if len(ids) <= n else self.tokenizer.decode(ids[-n:]) if n > 0 else ""

    def generate(
        self, prompts: list[str], sampling: dict[str, Any], seeds: list[int] | None = None
    ) -> list[Generation]:
        from vllm import SamplingParams

        bases = seeds if seeds is not None else [int(sampling.get("seed", 0))] * len(prompts)
        params = [
            SamplingParams(**{**sampling, "seed": request_seed(base, p)})
            for p, base in zip(prompts, bases, strict=True)
        ]
        started = time.perf_counter()
        try:
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
        except ValueError as e:  # vLLM's input validation: prompt too long, bad parameters
            raise PromptRejected(str(e)) from e
        seconds = time.perf_counter() - started
        generated = sum(len(out.outputs[0].token_ids) for out in outputs)
        log.info(
            "generated %d tokens for %d requests in %.1f s (%.0f tokens/s)",
            generated,
            len(prompts),
            seconds,
            generated / max(seconds, 1e-9),
        )
        return [_generation(out) for out in outputs]

    # --- streaming -------------------------------------------------------------------------

    def submit(self, prompt: str, sampling: dict[str, Any]) -> str:
        from vllm import SamplingParams

        params = SamplingParams(
            **{**sampling, "seed": request_seed(int(sampling.get("seed", 0)), prompt)}
        )
        self.clock.submitted(time.perf_counter())
        try:
            [internal] = self.llm.enqueue([prompt], [params], use_tqdm=False)
        except ValueError as e:  # vLLM's input validation: prompt too long, bad parameters
            raise PromptRejected(str(e)) from e
        self._in_flight += 1
        # vLLM makes the id unique inside the engine ("5-ba0ea2a7"); outputs carry the id
        # LLM gave the request ("5").
        return internal.rsplit("-", 1)[0]

    def in_flight(self) -> int:
        return self._in_flight

    def step(self) -> list[tuple[Hashable, Generation | PromptRejected]]:
        started = time.perf_counter()
        outputs = self.llm.llm_engine.step()
        self.clock.stepped(started, time.perf_counter(), self._in_flight)
        done = [out for out in outputs if out.finished]
        self._in_flight -= len(done)
        return [(out.request_id, _generation(out)) for out in done]


def _generation(out: Any) -> Generation:
    """A finished vllm.RequestOutput as a Generation."""
    return Generation(
        text=out.outputs[0].text,
        finish_reason=out.outputs[0].finish_reason,
        prompt_tokens=len(out.prompt_token_ids or []),
        output_tokens=len(out.outputs[0].token_ids),
    )
