"""The `prompts` group (conf/prompts/): typed rewrite templates (`rewrite.prompts`) and checks.

A template is data: a YAML entry keyed by its style name, typed here, checked by
`prompt_problems` when the job starts, rendered by pipeline/rewrite/prompts.py. The built-in
set, conf/prompts/default.yaml, is also the schema's default, so a RewriteConfig built in code
holds the same templates as a composed job.

    prompts = builtin_prompts()                      # {style: PromptConfig}
    prompt_problems(prompts, ["wikipedia", "poem"])  # ["rewrite.styles: unknown style 'poem'; ..."]
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

BUILTIN_PROMPTS = Path(__file__).resolve().parents[2] / "conf" / "prompts" / "default.yaml"
# A style name ends up in rewrite ids ("<doc_id>#<style>"), stats keys and override paths.
_STYLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass
class FewShotExample:
    """One worked example, shown to the model before the real chunk."""

    text: str = ""  # a source text, framed as the chunks are
    rewrite: str = ""  # the answer the model should imitate


@dataclass
class PromptConfig:
    """One rewrite style's template (the YAML entry in conf/prompts/)."""

    # >= 1; bump it whenever the text the model sees changes (lineage: prompt_id "<id>@v<N>").
    version: int = 0
    instruction: str = ""  # the system message: one fixed text for every chunk
    id: str | None = None  # null: the style's key in rewrite.prompts
    style: str | None = None  # value of the rows' `style` column; null: the key
    perspective: str | None = None  # the reader a perspective variant writes for (metadata)
    # Few-shot pairs sent as earlier user/assistant turns, in the order given.
    examples: list[FewShotExample] = field(default_factory=list)


@dataclass
class _PromptSet:
    prompts: dict[str, PromptConfig] = field(default_factory=dict)


def load_prompts(path: Path) -> dict[str, PromptConfig]:
    """A prompt-set YAML file (no defaults list) typed as {style: PromptConfig}."""
    raw = OmegaConf.load(path)
    typed = OmegaConf.merge(OmegaConf.structured(_PromptSet), {"prompts": raw})
    return OmegaConf.to_object(typed).prompts  # type: ignore[union-attr]


@functools.cache
def _builtin() -> dict[str, PromptConfig]:
    return load_prompts(BUILTIN_PROMPTS)


def builtin_prompts() -> dict[str, PromptConfig]:
    """The built-in templates (conf/prompts/default.yaml): a fresh copy the caller may edit."""
    return copy.deepcopy(_builtin())


def prompt_problems(prompts: dict[str, PromptConfig], styles: list[str]) -> list[str]:
    """What is wrong with the templates and with the styles chosen from them, one line each."""
    problems = [
        f"rewrite.styles: unknown style {s!r}; known: {sorted(prompts)} "
        "(add a template under rewrite.prompts: conf/prompts/)"
        for s in styles
        if s not in prompts
    ]
    keys: dict[str, str] = {}  # "<id>@v<N>" -> the first style holding it
    for name, p in prompts.items():
        key = f"rewrite.prompts.{name}"
        if not _STYLE_NAME.match(name):
            problems.append(f"{key}: a style name is letters, digits, '_' and '-'")
        if not p.instruction.strip():
            problems.append(f"{key}.instruction: missing or empty")
        if p.version < 1:
            problems.append(f"{key}.version: must be >= 1, got {p.version}")
        for attr in ("id", "style"):
            value = getattr(p, attr)
            if value is not None and not _STYLE_NAME.match(value):
                problems.append(f"{key}.{attr}: {value!r} is not letters, digits, '_' and '-'")
        for i, example in enumerate(p.examples):
            for attr in ("text", "rewrite"):
                if not getattr(example, attr).strip():
                    problems.append(f"{key}.examples.{i}.{attr}: missing or empty")
        prompt_id = f"{p.id or name}@v{p.version}"
        if prompt_id in keys:
            problems.append(
                f"{key}: prompt id {prompt_id!r} is also rewrite.prompts.{keys[prompt_id]}'s; "
                "give it another id or version"
            )
        keys.setdefault(prompt_id, name)
    # Rewrite ids are "<doc_id>#<style>": two chosen templates writing one style would collide.
    written: dict[str, str] = {}
    for name in dict.fromkeys(s for s in styles if s in prompts):
        style = prompts[name].style or name
        if style in written:
            problems.append(
                f"rewrite.styles: {written[style]!r} and {name!r} both write style {style!r}"
            )
        written.setdefault(style, name)
    return problems
