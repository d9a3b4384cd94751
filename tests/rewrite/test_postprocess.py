"""Post-processing on outputs of small instruct models, as they come back from the engine."""

from __future__ import annotations

import pytest

from pipeline.text_fidelity.cleaning import Cleaned, clean_generation

BODY = (
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was designed by "
    "Gustave Eiffel's company and completed in 1889.\n\nAt 330 metres, it was the tallest "
    "man-made structure in the world for 41 years."
)

# Outputs that are already clean come back byte for byte, with no reason.
CLEAN = [
    BODY,
    BODY + "\n",
    "\n" + BODY,
    "Question: When was the Eiffel Tower completed?\nAnswer: In 1889.\n\n"
    "Question: How tall is it?\nAnswer: 330 metres.",
    "- The Eiffel Tower is in Paris.\n- It was completed in 1889.\n- It is 330 metres tall.",
    "# The Eiffel Tower\n\n## Design\n\n* Designed by Gustave Eiffel's company.\n* Finished 1889.",
    "Here are the results of the 1889 survey, in which 40% of Parisians disliked the tower.",
    "Sure enough, the tower became a symbol of Paris.",
    "Note that the tower was repainted in 1900.\n\n" + BODY,
    BODY + "\n\nNote: heights include the antenna added in 1957.",
    BODY + "\n\nNote: World War I halted the planned demolition.",
    BODY + "\n\nIf you want to visit, the tower opens at 9:00.",
    "I can't believe the tower was almost demolished in 1909, the author writes.",
    "Unfortunately, the expedition was unable to reach the summit in 1924.",
    "Rewritten histories of the tower exist: some claim it was built in 1887.",
    "The main causes of the fire were:\n- faulty wiring\n- a gas leak",
    "Code example:\n```python\nprint(1)\n```\nand more text after.",
    "Il a été construit en 1889 par l'entreprise de Gustave Eiffel. 埃菲尔铁塔高330米。",
    "The tower is 330 metres tall. The tower is 330 metres tall. The tower is 330 metres tall.",
]


@pytest.mark.parametrize("raw", CLEAN)
def test_clean_outputs_are_byte_identical(raw: str) -> None:
    assert clean_generation(raw, "stop") == Cleaned(raw, None, ())


CASES = [
    # (raw, expected text, removed)
    ("Here is the rewritten text:\n\n" + BODY, BODY, ("preamble",)),
    ("Sure! Here's a Wikipedia-style version of the text:\n\n" + BODY, BODY, ("preamble",)),
    ("Certainly, here is the text rewritten as lecture notes:\n" + BODY, BODY, ("preamble",)),
    ("Okay, here is the rewritten passage: " + BODY, BODY, ("preamble",)),
    ("Rewritten text:\n" + BODY, BODY, ("preamble",)),
    ("**Rewritten version:**\n\n" + BODY, BODY, ("preamble",)),
    ("### Rewritten Text\n\n" + BODY, BODY, ("preamble",)),
    ("Sure!\n\n" + BODY, BODY, ("preamble",)),
    ("Here is the text rewritten for a high-school student.\n" + BODY, BODY, ("preamble",)),
    ("Rewritten Text (Wikipedia style):\n\n" + BODY, BODY, ("preamble",)),
    ("Sure! " + BODY, BODY, ("preamble",)),
    ("I'd be happy to help you rewrite this text!\n\n" + BODY, BODY, ("preamble",)),
    (
        "Here are the question-answer pairs based on the text:\n\nQuestion: When?\nAnswer: 1889.",
        "Question: When?\nAnswer: 1889.",
        ("preamble",),
    ),
    ("```\n" + BODY + "\n```", BODY, ("fence",)),
    ("```markdown\n" + BODY + "\n```\n", BODY, ("fence",)),
    ("Here is the rewritten text:\n```text\n" + BODY + "\n```", BODY, ("preamble", "fence")),
    (
        "<think>\nThe user wants a Wikipedia style. I should keep 1889.\n</think>\n\n" + BODY,
        BODY,
        ("think",),
    ),
    ("Let me think.\nKeep the numbers.\n</think>\n\n" + BODY, BODY, ("think",)),
    (
        "<think>\nOkay.\n</think>\nSure! Here is the rewritten text:\n```\n" + BODY + "\n```",
        BODY,
        ("think", "preamble", "fence"),
    ),
    (BODY + "\n\nI hope this helps! Let me know if you need any changes.", BODY, ("chatter",)),
    (
        BODY + "\n\n---\n\nNote: I have kept all the numbers from the original text.",
        BODY,
        ("chatter",),
    ),
    (
        BODY + "\n\n(Note: The rewrite preserves every name.)\nLet me know if you'd like more!",
        BODY,
        ("chatter",),
    ),
    (BODY + "\nThis rewrite keeps all facts from the source.", BODY, ("chatter",)),
    # What the 135M model writes around a usable rewrite (bench/rewrite_candidates.py).
    ("The text can be reworded to:\n\n" + BODY, BODY, ("preamble",)),
    ("The text can be rewritten as:\n\n" + BODY, BODY, ("preamble",)),
    (
        "What a challenging story! Here's a rewritten version with some changes:\n\n" + BODY,
        BODY,
        ("preamble",),
    ),
    (
        BODY + "\n\nThis reworded sentence conveys the same information more concisely.",
        BODY,
        ("chatter",),
    ),
    (
        BODY + "\n\nI made several changes to enhance clarity, including shorter sentences.",
        BODY,
        ("chatter",),
    ),
    (
        "Here is the summary:\n\n" + BODY + "\n\nFeel free to ask for another version.",
        BODY,
        ("preamble", "chatter"),
    ),
]


@pytest.mark.parametrize(("raw", "text", "removed"), CASES)
def test_strips_wrappers_and_chatter(raw: str, text: str, removed: tuple) -> None:
    assert clean_generation(raw, "stop") == Cleaned(text, None, removed)


REFUSALS = [
    "I'm sorry, but I can't help with rewriting this text.",
    "I’m sorry, I cannot fulfill this request.",
    "I cannot help with that request because it contains personal information.",
    "I can't assist with that.",
    "As an AI language model, I do not have personal opinions, but here is a rewrite: ...",
    "Sorry, but I am unable to rewrite content of this kind.",
    "I apologize, but I won't be able to paraphrase this passage.",
    "Sure! I'm sorry, but I can't rewrite this text.",
    "<think>This text is harmful.</think>\nI cannot rewrite this text.",
]


@pytest.mark.parametrize("raw", REFUSALS)
def test_refusals(raw: str) -> None:
    assert clean_generation(raw, "stop").reason == "refusal"
    assert clean_generation(raw, "length").reason == "refusal"  # not worth a retry


def test_truncated_mid_sentence_keeps_text() -> None:
    raw = "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 18"
    assert clean_generation(raw, "length") == Cleaned(raw, "truncated", ())


def test_repetition_loop_cut_by_max_tokens() -> None:
    raw = "Here is the rewritten text:\n\n" + "The tower is tall. " * 60 + "The tow"
    cleaned = clean_generation(raw, "length")
    assert cleaned.reason == "truncated" and cleaned.removed == ("preamble",)
    assert cleaned.text == ("The tower is tall. " * 60 + "The tow").strip()


def test_unclosed_fence_of_a_truncated_output() -> None:
    cleaned = clean_generation("```markdown\n# Eiffel Tower\n\nThe tower is 330", "length")
    assert cleaned == Cleaned("# Eiffel Tower\n\nThe tower is 330", "truncated", ("fence",))


def test_unclosed_think_is_all_thinking() -> None:
    raw = "<think>\nThe user wants me to rewrite. First, the tower... I need to keep"
    assert clean_generation(raw, "length") == Cleaned("", "truncated", ("think",))
    assert clean_generation(raw, "stop") == Cleaned("", "empty", ("think",))


@pytest.mark.parametrize("raw", ["", "   \n", "Here is the rewritten text:", "```\n```"])
def test_empty(raw: str) -> None:
    assert clean_generation(raw, "stop").reason == "empty"


def test_middle_is_never_touched() -> None:
    middle = (
        "Sure! Here is the rewritten text:\n```\ncode\n```\nI hope this helps.\n<think>x</think>"
    )
    raw = BODY + "\n\n" + middle + "\n\n" + BODY
    assert clean_generation(raw, None) == Cleaned(raw, None, ())
