"""Prompt templates as config: every set composes and validates, a user adds a style without
code (an override or a set file), and a wrong template stops the job naming its key."""

from __future__ import annotations

import pytest
from conftest import ROOT, compose_config, typed_config, write_jsonl
from hydra.errors import ConfigCompositionException

from pipeline import schema as S
from pipeline.config import ConfigError, to_config, validate
from pipeline.config.prompts import FewShotExample, PromptConfig, builtin_prompts, prompt_problems
from pipeline.models.engine import Generation
from pipeline.rewrite.prompts import TEXT_HEADER, get_template
from pipeline.rewrite.rewriter import Rewriter
from pipeline.runner import STAGES

CONF = ROOT / "conf"
PROMPT_SETS = sorted(p.stem for p in (CONF / "prompts").glob("*.yaml"))
POEM = (
    "{poem: {version: 1, instruction: 'Rewrite the text as a poem.',"
    " examples: [{text: 'Rain fell.', rewrite: 'RAIN FELL.'}]}}"
)


@pytest.fixture
def corpus(tmp_path) -> list[str]:
    """Overrides for a one-file corpus, so validate checks the prompts, not the sample's files."""
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": 1, "text": "One document."}])
    return ["corpus=jsonl", f"corpus.sources.main.paths=[{path}]"]


class FakeEngine:
    """Words are tokens; the 'rewrite' upper-cases the last text to rewrite in the prompt."""

    model_id = "fake"
    max_model_len = 4096

    def __init__(self):
        self.prompts: list[str] = []

    def render(self, messages):
        return "\n".join(f"<{m['role']}>{m['content']}" for m in messages) + "\n<assistant>"

    def count_tokens(self, text):
        return len(text.split())

    def tail_tokens(self, text, n):
        return " ".join(text.split()[-n:]) if n else ""

    def generate(self, prompts, sampling):
        self.prompts += prompts
        out = []
        for p in prompts:
            body = p.rsplit(TEXT_HEADER + "\n", 1)[1].removesuffix("\n<assistant>")
            out.append(Generation(body.upper(), "stop", len(p.split()), len(body.split())))
        return out


@pytest.mark.parametrize("prompt_set", PROMPT_SETS)
def test_every_prompt_set_composes_and_validates_with_all_its_styles(prompt_set, corpus):
    config = typed_config(f"prompts={prompt_set}", *corpus)
    prompts = config.rewrite.prompts
    assert prompts and all(isinstance(p, PromptConfig) for p in prompts.values())
    assert prompt_problems(prompts, list(prompts)) == []
    config.rewrite.styles = list(prompts)
    validate(config, tuple(STAGES))


def test_the_composed_templates_are_the_schema_default(corpus):
    assert typed_config(*corpus).rewrite.prompts == builtin_prompts()
    config = typed_config("experiment=nemotron_cc", *corpus)
    assert all(s.startswith("nemotron_") for s in config.rewrite.styles)
    validate(config, tuple(STAGES))


def test_a_style_added_by_override_runs_through_the_rewriter(corpus):
    config = typed_config(f"+rewrite.prompts={POEM}", "rewrite.styles=[poem]", *corpus)
    validate(config, tuple(STAGES))
    config.rewrite.max_chunk_tokens = 20
    engine = FakeEngine()
    docs = [{S.DOC_ID: "d/1", S.SOURCE: "d", S.WEIGHT: 1.0, S.TEXT: "The sun rose over the hill."}]
    (row,) = Rewriter(engine, config.rewrite).rewrite(docs)
    template = get_template("poem", config.rewrite.prompts)
    assert row[S.DROP_REASON] is None and row[S.TEXT] == "THE SUN ROSE OVER THE HILL."
    assert (row[S.STYLE], row[S.PROMPT_ID]) == ("poem", "poem@v1")
    assert row[S.PROMPT_HASH] == template.content_hash
    # The prompt: instruction, the example's turn pair, then the chunk, in one frame.
    (prompt,) = engine.prompts
    assert prompt == (
        "<system>Rewrite the text as a poem.\n"
        f"<user>{TEXT_HEADER}\nRain fell.\n<assistant>RAIN FELL.\n"
        f"<user>{TEXT_HEADER}\nThe sun rose over the hill.\n<assistant>"
    )


def test_an_edited_template_changes_the_lineage(corpus):
    base = typed_config(*corpus).rewrite.prompts
    edited = to_config(
        compose_config("rewrite.prompts.qa.instruction='Ask and answer.'", *corpus)
    ).rewrite.prompts
    before, after = get_template("qa", base), get_template("qa", edited)
    assert after.instruction == "Ask and answer." and after.key == before.key == "qa@v1"
    assert after.content_hash != before.content_hash  # even with the version not bumped


def test_a_prompt_set_file_adds_and_replaces_styles(tmp_path, corpus):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "mine.yaml").write_text(
        "# @package rewrite.prompts\n"
        "poem: {version: 1, instruction: Rewrite the text as a poem.}\n"
        "qa: {version: 2, instruction: Ask and answer.}\n"
    )
    config = to_config(
        compose_config(
            f"hydra.searchpath=[file://{tmp_path}]",
            "prompts=mine",
            "rewrite.styles=[poem,qa]",
            *corpus,
        )
    )
    validate(config, tuple(STAGES))
    prompts = config.rewrite.prompts
    assert set(prompts) == set(builtin_prompts()) | {"poem"}
    assert get_template("qa", prompts).key == "qa@v2"
    assert prompts["wikipedia"] == builtin_prompts()["wikipedia"]


def test_a_misspelt_template_key_is_refused_while_composing(corpus):
    with pytest.raises(ConfigCompositionException) as refused:
        compose_config("+rewrite.prompts={poem: {version: 1, instrucion: x}}", *corpus)
    assert "Key 'instrucion' not in 'PromptConfig'" in str(refused.value.__cause__)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (["rewrite.styles=[qa,poem]"], r"^rewrite.styles: unknown style 'poem'; known: \[.*'qa'"),
        (["rewrite.prompts.qa.version=0"], r"^rewrite.prompts.qa.version: must be >= 1, got 0"),
        (["rewrite.prompts.qa.instruction=' '"], r"^rewrite.prompts.qa.instruction: missing"),
        (["+rewrite.prompts={poem: {instruction: x}}"], r"^rewrite.prompts.poem.version: must"),
        (["+rewrite.prompts={poem: {version: 1}}"], r"^rewrite.prompts.poem.instruction: missing"),
        (
            ["rewrite.prompts.summary.examples=[{text: 'Some text.'}]"],
            r"^rewrite.prompts.summary.examples.0.rewrite: missing",
        ),
        (["rewrite.prompts.qa.id=wikipedia"], r"^rewrite.prompts.qa: prompt id 'wikipedia@v1'"),
        (["rewrite.prompts.qa.id='q a'"], r"^rewrite.prompts.qa.id: 'q a' is not letters"),
        (
            ["rewrite.prompts.expert.style=qa", "rewrite.styles=[qa,expert]"],
            r"^rewrite.styles: 'qa' and 'expert' both write style 'qa'",
        ),
    ],
)
def test_a_wrong_template_stops_the_job_naming_its_key(overrides, problem, corpus):
    config = typed_config(*overrides, *corpus)
    with pytest.raises(ConfigError, match=f"(?m){problem}"):
        validate(config, tuple(STAGES))


def test_problems_of_a_template_built_in_code():
    prompts = {
        "ok": PromptConfig(version=1, instruction="Do it."),
        "bad name": PromptConfig(version=1, instruction="Do it."),
        "empty": PromptConfig(version=2, instruction="x", examples=[FewShotExample(text="t")]),
    }
    assert prompt_problems(prompts, ["ok"]) == [
        "rewrite.prompts.bad name: a style name is letters, digits, '_' and '-'",
        "rewrite.prompts.empty.examples.0.rewrite: missing or empty",
    ]
