"""Prompt templates for the rewriter, and the chat messages built from them.

The templates are data: YAML entries of the Hydra group conf/prompts/, typed as
`rewrite.prompts` (pipeline/config/prompts.py). `get_template` resolves one into a frozen
`PromptTemplate`: a fixed instruction (the system message, identical for every chunk so an
engine with prefix caching computes it once), optional few-shot examples (earlier user and
assistant turns, also identical for every chunk), then the chunk in a shared user-message frame.
Change what the model sees => bump the version; the content hash in every output row's lineage
tells old rewrites from new ones even when a version was not bumped.

    template = get_template("wikipedia", cfg.rewrite.prompts)
    messages = build_messages(template, chunk.text, previous_rewrite=None)
    template.key, template.content_hash      # -> "wikipedia@v1", "9b9e72549666" (lineage columns)
    choose_styles("wiki/42", ["wikipedia", "qa", "summary"], per_doc=2, seed=0)
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.config.prompts import PromptConfig, builtin_prompts

# The user-message frame, around every chunk and every few-shot example's text. It is part of
# the prompt text, hence of the content hash and of the generation cache key.
CONTEXT_HEADER = "Previous part, already rewritten (read-only context: do not repeat it):"
TEXT_HEADER = "Text to rewrite:"


@dataclass(frozen=True)
class PromptTemplate:
    """A resolved template: the key in `rewrite.prompts` filled in for a missing id or style."""

    id: str
    version: int
    style: str  # the value of the `style` column of the rewrites it produces
    instruction: str
    perspective: str | None = None  # the reader a perspective variant writes for
    examples: tuple[tuple[str, str], ...] = ()  # few-shot (text, rewrite) pairs, in order

    @classmethod
    def from_config(cls, name: str, cfg: PromptConfig) -> PromptTemplate:
        return cls(
            id=cfg.id or name,
            version=cfg.version,
            style=cfg.style or name,
            instruction=cfg.instruction,
            perspective=cfg.perspective,
            examples=tuple((e.text, e.rewrite) for e in cfg.examples),
        )

    @property
    def key(self) -> str:
        return f"{self.id}@v{self.version}"

    @functools.cached_property
    def content_hash(self) -> str:
        """First 12 hex digits of sha256 over canonical JSON of everything that makes the
        prompt text (id, version, instruction, examples, frame); perspective and style are
        metadata and left out."""
        canonical = json.dumps(
            {
                "examples": [{"rewrite": r, "text": t} for t, r in self.examples],
                "frame": {"context_header": CONTEXT_HEADER, "text_header": TEXT_HEADER},
                "id": self.id,
                "instruction": self.instruction,
                "version": self.version,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def get_template(style: str, prompts: Mapping[str, PromptConfig] | None = None) -> PromptTemplate:
    """The template `rewrite.styles` names `style`, from the composed `rewrite.prompts` (a job's
    templates: pass them); None: the built-in set, conf/prompts/default.yaml."""
    if prompts is None:
        prompts = builtin_prompts()
    try:
        cfg = prompts[style]
    except KeyError:
        raise KeyError(
            f"unknown rewrite style {style!r}; known: {sorted(prompts)} "
            "(templates live in rewrite.prompts: conf/prompts/)"
        ) from None
    return PromptTemplate.from_config(style, cfg)


def build_messages(
    template: PromptTemplate,
    chunk_text: str,
    previous_rewrite: str | None = None,
    *,
    system_role: bool = True,
) -> list[dict[str, str]]:
    """Chat messages for one chunk: the fixed instruction first, the few-shot examples, the
    chunk's text last.

    `previous_rewrite` (chunk-wise autoregressive mode) is the rewrite of the preceding chunk,
    shown as read-only context before the chunk. `system_role=False` is for chat templates
    without a system role: the instruction then opens the first user message (still a shared
    prefix).
    """
    context = previous_rewrite if previous_rewrite and previous_rewrite.strip() else None
    return _messages(template, chunk_text, context, system_role)


def overhead_messages(
    template: PromptTemplate, with_context: bool, *, system_role: bool = True
) -> list[dict[str, str]]:
    """The messages with an empty chunk (and empty context): render them with the model's
    chat template (generation prompt included) and count tokens to get the prompt overhead,
    few-shot examples included."""
    return _messages(template, "", "" if with_context else None, system_role)


def _user_message(text: str, context: str | None = None) -> str:
    head = "" if context is None else f"{CONTEXT_HEADER}\n{context}\n\n"
    return f"{head}{TEXT_HEADER}\n{text}"


def _messages(
    template: PromptTemplate, chunk_text: str, context: str | None, system_role: bool
) -> list[dict[str, str]]:
    # Examples go in the chunk's own frame (without context): the model sees the form it must
    # answer, and every message before the last is the same for every chunk (prefix cache).
    messages = []
    for text, rewrite in template.examples:
        messages.append({"role": "user", "content": _user_message(text)})
        messages.append({"role": "assistant", "content": rewrite})
    messages.append({"role": "user", "content": _user_message(chunk_text, context)})
    if system_role:
        return [{"role": "system", "content": template.instruction}, *messages]
    first = messages[0]
    messages[0] = {"role": "user", "content": f"{template.instruction}\n\n{first['content']}"}
    return messages


def choose_styles(doc_id: str, styles: list[str], per_doc: int, seed: int) -> list[str]:
    """`per_doc` distinct styles for a document, deterministic in (doc_id, seed), in list order.

    Rendezvous hashing: each style gets a score sha256(seed, doc_id, style) and the top
    `per_doc` win. Every style is equally likely, and adding a style to the list only moves
    the documents it now wins, so earlier rewrites stay valid in the cache.
    """
    if per_doc < 0:
        raise ValueError(f"styles per document must be >= 0, got {per_doc}")
    unique = list(dict.fromkeys(styles))
    if per_doc >= len(unique):
        return unique

    def score(style: str) -> bytes:
        return hashlib.sha256(
            f"{seed}\0{doc_id}\0{style}".encode("utf-8", "surrogatepass")
        ).digest()

    chosen = set(sorted(unique, key=score)[:per_doc])
    return [s for s in unique if s in chosen]
