"""Versioned prompt templates for the rewriter, and the chat messages built from them.

Each template is one fixed instruction (the system message, identical for every chunk so
an engine with prefix caching computes it once) plus a shared frame for the user message.
Change an instruction => bump its version: the content hash in every output row's lineage
then tells old rewrites from new ones.

    template = get_template("wikipedia")
    messages = build_messages(template, chunk.text, previous_rewrite=None)
    template.key, template.content_hash      # -> "wikipedia@v1", "db0e01d8e8a4" (lineage columns)
    choose_styles("wiki/42", ["wikipedia", "qa", "summary"], per_doc=2, seed=0)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

# Said once, in every instruction: small models drift into inventing, summarising away
# numbers, and chatting ("Here is ..."); postprocess strips chatter, but asking costs less.
_RULES = (
    "Keep every fact, number and name from the text. "
    "Add nothing that is not in the text. "
    "Do not write an introduction or closing remarks: output only the rewritten text."
)

# The user-message frame. It is part of the prompt text, hence of the generation cache key.
CONTEXT_HEADER = "Previous part, already rewritten (read-only context: do not repeat it):"
TEXT_HEADER = "Text to rewrite:"


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: int
    style: str  # the value of the `style` column of the rewrites it produces
    instruction: str
    perspective: str | None = None  # the reader a perspective variant writes for

    @property
    def key(self) -> str:
        return f"{self.id}@v{self.version}"

    @property
    def content_hash(self) -> str:
        """First 12 hex digits of sha256 over canonical JSON of id, version and instruction."""
        canonical = json.dumps(
            {"id": self.id, "instruction": self.instruction, "version": self.version},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _template(
    style: str, task: str, perspective: str | None = None, version: int = 1
) -> PromptTemplate:
    return PromptTemplate(style, version, style, f"{task} {_RULES}", perspective)


_TEMPLATES = [
    _template(
        "wikipedia",
        "Rewrite the text as a passage of a Wikipedia article: neutral, encyclopedic tone "
        "and clear, well-organized prose.",
    ),
    _template(
        "lecture_notes",
        "Rewrite the text as lecture notes for a class: short sections with headings, the "
        "main points in order, and each key term explained where it first appears.",
    ),
    _template(
        "qa",
        "Rewrite the text as question-and-answer pairs, each written as 'Question: ...' "
        "then 'Answer: ...'. Every answer must come from the text, and together the pairs "
        "must cover all of its information.",
    ),
    _template(
        "summary",
        "Distill the text into a shorter, dense passage: remove repetition and filler, but "
        "no information.",
    ),
    _template(
        "knowledge_list",
        "Rewrite the text as a list of facts, one per line, each starting with '- ' and "
        "understandable on its own.",
    ),
    _template(
        "student",
        "Explain the text to a high-school student: plain words, short sentences, and a "
        "short explanation of each technical term.",
        perspective="student",
    ),
    _template(
        "expert",
        "Rewrite the text for an expert in its field: precise technical terminology, "
        "concise and formal, without basic explanations.",
        perspective="expert",
    ),
    _template(
        "skeptic",
        "Rewrite the text as a critical reading: state each claim it makes, the evidence "
        "the text gives for it, and the caveats or open questions the text itself shows. "
        "Judge nothing with outside knowledge.",
        perspective="skeptic",
    ),
]

PROMPTS: dict[str, PromptTemplate] = {t.style: t for t in _TEMPLATES}
"""The current template of each style, by style name (what configs list)."""


def get_template(style: str) -> PromptTemplate:
    try:
        return PROMPTS[style]
    except KeyError:
        raise KeyError(f"unknown rewrite style {style!r}; known: {sorted(PROMPTS)}") from None


def build_messages(
    template: PromptTemplate,
    chunk_text: str,
    previous_rewrite: str | None = None,
    *,
    system_role: bool = True,
) -> list[dict[str, str]]:
    """Chat messages for one chunk: the fixed instruction first, the chunk's text last.

    `previous_rewrite` (chunk-wise autoregressive mode) is the rewrite of the preceding chunk,
    shown as read-only context between the two. `system_role=False` is for chat templates
    without a system role: the instruction then opens the user message (still a shared prefix).
    """
    context = previous_rewrite if previous_rewrite and previous_rewrite.strip() else None
    return _messages(template, chunk_text, context, system_role)


def overhead_messages(
    template: PromptTemplate, with_context: bool, *, system_role: bool = True
) -> list[dict[str, str]]:
    """The messages with an empty chunk (and empty context): render them with the model's
    chat template (generation prompt included) and count tokens to get the prompt overhead."""
    return _messages(template, "", "" if with_context else None, system_role)


def _messages(
    template: PromptTemplate, chunk_text: str, context: str | None, system_role: bool
) -> list[dict[str, str]]:
    parts = [] if context is None else [f"{CONTEXT_HEADER}\n{context}\n\n"]
    parts.append(f"{TEXT_HEADER}\n{chunk_text}")
    user = "".join(parts)
    if system_role:
        return [
            {"role": "system", "content": template.instruction},
            {"role": "user", "content": user},
        ]
    return [{"role": "user", "content": f"{template.instruction}\n\n{user}"}]


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
