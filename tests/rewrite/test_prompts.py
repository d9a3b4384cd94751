"""Prompt templates: the YAML set, stable ids and hashes, message layout, style choice."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace

import pytest

from pipeline.config.prompts import BUILTIN_PROMPTS, PromptConfig, builtin_prompts, load_prompts
from pipeline.rewrite import prompts
from pipeline.rewrite.prompts import (
    CONTEXT_HEADER,
    TEXT_HEADER,
    PromptTemplate,
    build_messages,
    choose_styles,
    get_template,
    overhead_messages,
)

STYLES = [
    "wikipedia",
    "lecture_notes",
    "qa",
    "summary",
    "knowledge_list",
    "student",
    "expert",
    "skeptic",
]
NEMOTRON_CC = [
    "nemotron_diverse_qa",
    "nemotron_distill",
    "nemotron_extract_knowledge",
    "nemotron_knowledge_list",
    "nemotron_wikipedia",
]
PROMPTS = builtin_prompts()


def template(style: str) -> PromptTemplate:
    return get_template(style, PROMPTS)


def test_builtin_set_is_the_yaml_file_with_every_style() -> None:
    assert list(PROMPTS) == STYLES + NEMOTRON_CC
    assert load_prompts(BUILTIN_PROMPTS) == PROMPTS
    mine = builtin_prompts()
    mine["qa"].version = 99  # a copy: the next caller still gets the file's templates
    assert builtin_prompts()["qa"].version == 1


def test_all_styles_present_and_consistent() -> None:
    for style in PROMPTS:
        t = template(style)
        assert t.style == style and t.key == f"{t.id}@v{t.version}" == f"{style}@v1"
        text = t.instruction.lower()
        # The fidelity rules every instruction carries.
        for rule in ("keep every fact, number and name", "add nothing", "output only"):
            assert rule in text, (style, rule)
        assert len(t.instruction.split()) < 80  # short enough for a 135M model
        assert "\n" not in t.instruction  # folded YAML: one paragraph
    assert {template(s).perspective for s in ("student", "expert", "skeptic")} == {
        "student",
        "expert",
        "skeptic",
    }
    assert len({template(s).content_hash for s in PROMPTS}) == len(PROMPTS)


def test_nemotron_cc_set_has_a_few_shot_example_on_one_source() -> None:
    sources = set()
    for style in NEMOTRON_CC:
        ((text, rewrite),) = template(style).examples
        sources.add(text)
        assert "8,849" in rewrite and "70 degrees" in rewrite  # the example keeps the numbers
    assert len(sources) == 1  # a YAML anchor: the five rewrites of one text side by side
    assert template("nemotron_knowledge_list").examples[0][1].startswith("- ")
    assert template("nemotron_diverse_qa").examples[0][1].startswith("Question: ")


def test_original_instructions_are_unchanged() -> None:
    # The hash the original templates had (id, version and instruction only) pins their text:
    # the prompts the model sees, hence the generation cache's keys, are those of before.
    def instruction_hash(t: PromptTemplate) -> str:
        canonical = json.dumps(
            {"id": t.id, "instruction": t.instruction, "version": t.version},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    assert {s: instruction_hash(template(s)) for s in STYLES} == {
        "wikipedia": "db0e01d8e8a4",
        "lecture_notes": "6997736b543b",
        "qa": "201dd1ff9558",
        "summary": "f230a2562dfb",
        "knowledge_list": "b8438bac8d85",
        "student": "c92220f86b4e",
        "expert": "7765f81e4fda",
        "skeptic": "58aad89f9f08",
    }


def test_content_hash_is_pinned() -> None:
    t = template("wikipedia")
    canonical = json.dumps(
        {
            "examples": [],
            "frame": {"context_header": CONTEXT_HEADER, "text_header": TEXT_HEADER},
            "id": t.id,
            "instruction": t.instruction,
            "version": t.version,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert t.content_hash == hashlib.sha256(canonical.encode()).hexdigest()[:12]
    # Changing this template's text must be deliberate: bump its version and this pin.
    assert (t.key, t.content_hash) == ("wikipedia@v1", "9b9e72549666")


def test_content_hash_covers_the_prompt_text_only() -> None:
    t = template("nemotron_distill")
    ((text, rewrite),) = t.examples
    changed = [
        replace(t, version=2),
        replace(t, id="distill"),
        replace(t, instruction=t.instruction + " Be brief."),
        replace(t, examples=((text + " More.", rewrite),)),
        replace(t, examples=((text, rewrite + " More."),)),
        replace(t, examples=((text, rewrite), (text, rewrite))),
        replace(t, examples=()),
    ]
    hashes = {c.content_hash for c in changed}
    assert t.content_hash not in hashes and len(hashes) == len(changed)
    assert replace(t, perspective="x").content_hash == t.content_hash  # metadata only
    assert replace(t, style="other").content_hash == t.content_hash


def test_content_hash_covers_the_frame(monkeypatch) -> None:
    before = template("qa").content_hash
    monkeypatch.setattr(prompts, "TEXT_HEADER", "Rewrite this:")
    assert template("qa").content_hash != before  # a new object: the hash is cached per object


def test_from_config_fills_id_and_style_from_the_key() -> None:
    t = PromptTemplate.from_config("poem", PromptConfig(version=3, instruction="Rhyme."))
    assert (t.id, t.style, t.key, t.examples) == ("poem", "poem", "poem@v3", ())
    named = PromptConfig(version=1, instruction="Rhyme.", id="verse", style="poetry")
    assert PromptTemplate.from_config("poem", named).key == "verse@v1"
    assert PromptTemplate.from_config("poem", named).style == "poetry"


def test_get_template_names_known_styles() -> None:
    assert get_template("qa", PROMPTS) == PromptTemplate.from_config("qa", PROMPTS["qa"])
    assert get_template("qa") == get_template("qa", PROMPTS)  # None: the built-in set
    with pytest.raises(KeyError, match=r"unknown rewrite style 'poem'.*wikipedia.*conf/prompts"):
        get_template("poem", PROMPTS)


def test_system_message_identical_across_chunks() -> None:
    t = template("lecture_notes")
    first = build_messages(t, "Chunk one.")
    second = build_messages(t, "Chunk two.", previous_rewrite="Rewrite of chunk one.")
    assert first[0] == second[0] == {"role": "system", "content": t.instruction}
    assert [m["role"] for m in first] == ["system", "user"]
    assert first[1]["content"] == f"{TEXT_HEADER}\nChunk one."


def test_previous_rewrite_only_when_given() -> None:
    t = template("wikipedia")
    with_context = build_messages(t, "Chunk two.", previous_rewrite="Earlier rewrite.")
    user = with_context[1]["content"]
    assert user == f"{CONTEXT_HEADER}\nEarlier rewrite.\n\n{TEXT_HEADER}\nChunk two."
    assert "do not repeat it" in CONTEXT_HEADER
    assert user.endswith("Chunk two.")  # the text to rewrite comes last
    for none in (None, "", "  \n"):
        assert CONTEXT_HEADER not in build_messages(t, "x", previous_rewrite=none)[1]["content"]


def test_without_system_role_instruction_opens_user_message() -> None:
    t = template("qa")
    (message,) = build_messages(t, "Text.", system_role=False)
    assert message["role"] == "user" and message["content"].startswith(t.instruction + "\n\n")


def test_few_shot_examples_come_between_instruction_and_chunk_in_the_chunk_frame() -> None:
    t = replace(template("summary"), examples=(("Ex one.", "Short one."), ("Ex two.", "Short.")))
    first = build_messages(t, "Chunk one.")
    second = build_messages(t, "Chunk two.", previous_rewrite="Prev.")
    assert [m["role"] for m in first] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert first[1:5] == [
        {"role": "user", "content": f"{TEXT_HEADER}\nEx one."},
        {"role": "assistant", "content": "Short one."},
        {"role": "user", "content": f"{TEXT_HEADER}\nEx two."},
        {"role": "assistant", "content": "Short."},
    ]
    assert first[:-1] == second[:-1]  # one shared prefix for every chunk
    assert first[-1]["content"] == f"{TEXT_HEADER}\nChunk one."
    assert second[-1]["content"] == f"{CONTEXT_HEADER}\nPrev.\n\n{TEXT_HEADER}\nChunk two."
    # No system role: the instruction opens the first user message, the example's.
    plain = build_messages(t, "Chunk one.", system_role=False)
    assert [m["role"] for m in plain] == ["user", "assistant", "user", "assistant", "user"]
    assert plain[0]["content"] == f"{t.instruction}\n\n{TEXT_HEADER}\nEx one."
    assert plain[1:] == first[2:]


def test_overhead_messages_are_the_frame_alone() -> None:
    t = template("summary")
    assert overhead_messages(t, with_context=False) == build_messages(t, "")
    frame = overhead_messages(t, with_context=True)[1]["content"]
    assert frame == f"{CONTEXT_HEADER}\n\n\n{TEXT_HEADER}\n"
    # Frame + chunk is exactly the real prompt: overhead + chunk tokens is the real length.
    real = build_messages(t, "Body.", previous_rewrite="Prev.")[1]["content"]
    assert len(real) == len(frame) + len("Body.") + len("Prev.")


def test_overhead_counts_the_few_shot_examples() -> None:
    t = template("nemotron_wikipedia")
    overhead = overhead_messages(t, with_context=False)
    assert overhead == build_messages(t, "") and len(overhead) == 4
    ((text, rewrite),) = t.examples
    assert overhead[1]["content"].endswith(text) and overhead[2]["content"] == rewrite


def test_choose_styles_deterministic_distinct_and_spread() -> None:
    a = choose_styles("wiki/1", STYLES, per_doc=3, seed=7)
    assert a == choose_styles("wiki/1", STYLES, per_doc=3, seed=7)
    assert len(a) == len(set(a)) == 3 and a == [s for s in STYLES if s in a]
    assert choose_styles("wiki/1", STYLES, per_doc=99, seed=7) == STYLES
    assert choose_styles("wiki/1", [*STYLES, "qa"], per_doc=8, seed=7) == STYLES
    assert choose_styles("wiki/1", STYLES, per_doc=0, seed=7) == []
    with pytest.raises(ValueError):
        choose_styles("wiki/1", STYLES, per_doc=-1, seed=7)
    picks = Counter(s for i in range(800) for s in choose_styles(f"d{i}", STYLES, 2, seed=0))
    assert set(picks) == set(STYLES) and min(picks.values()) > 120  # ~200 each
    seeds = {tuple(choose_styles("wiki/1", STYLES, 2, seed=s)) for s in range(20)}
    assert len(seeds) > 5


def test_adding_a_style_keeps_other_documents_choices() -> None:
    base = STYLES[:5]
    moved = 0
    for i in range(200):
        before = choose_styles(f"d{i}", base, 2, seed=1)
        after = choose_styles(f"d{i}", [*base, "expert"], 2, seed=1)
        if before != after:
            moved += 1
            assert "expert" in after
    assert 0 < moved < 200


def test_template_is_frozen() -> None:
    t = PromptTemplate("x", 1, "x", "Do it.")
    with pytest.raises(AttributeError):
        t.version = 2  # type: ignore[misc]
