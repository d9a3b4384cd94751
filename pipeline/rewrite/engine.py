"""The rewriter's engine: vLLM's offline `LLM` behind a four-method interface.

Everything around the engine (prompts, chunking, cache, post-processing) talks to `Engine`,
so unit tests can pass a fake one and the stage runs the real one. The CPU build here and the
CUDA build on a cluster are the same code path: every argument of `vllm.LLM` comes from the
model config (`model.engine`), and `model.env` is set before vLLM is imported.

    engine = VLLMEngine(model_cfg, model_cache=Path(".cache/models"))
    prompt = engine.render(messages)                  # chat template applied, as text
    [gen] = engine.generate([prompt], {"temperature": 0.7, "max_tokens": 256, "seed": 0})
    gen.text, gen.finish_reason, gen.prompt_tokens, gen.output_tokens
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline.config import ModelConfig
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
        from vllm import LLM

        from pipeline.models.build import resolve_model_path

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
        return [
            Generation(
                text=out.outputs[0].text,
                finish_reason=out.outputs[0].finish_reason,
                prompt_tokens=len(out.prompt_token_ids or []),
                output_tokens=len(out.outputs[0].token_ids),
            )
            for out in outputs
        ]
