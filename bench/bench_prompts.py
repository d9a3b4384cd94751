"""Prompt variants compared by bench/rewrite_candidates.py (a bench-local experiment).

current  today's templates: the style's instruction as the system message, the chunk after
         "Text to rewrite:"
fewshot  the same, plus one worked example (a source paragraph and its rewrite in the style)
         as a prior user/assistant turn
short    a one-line task in the user message itself (no system message), plus the example
"""

from __future__ import annotations

from pipeline.rewrite.prompts import TEXT_HEADER, get_template

EXAMPLE_SOURCE = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris. It was "
    "designed by the company of engineer Gustave Eiffel and built from 1887 to 1889 as the "
    "entrance to the 1889 World's Fair. The tower is 330 metres tall, and it was the tallest "
    "man-made structure in the world until the Chrysler Building in New York was finished in "
    "1930."
)
EXAMPLES = {
    "qa": (
        "Question: What is the Eiffel Tower, and where does it stand?\n"
        "Answer: It is a wrought-iron lattice tower on the Champ de Mars in Paris.\n\n"
        "Question: Who designed it, and when was it built?\n"
        "Answer: The company of engineer Gustave Eiffel designed it, and it was built from "
        "1887 to 1889 as the entrance to the 1889 World's Fair.\n\n"
        "Question: How tall is the tower?\n"
        "Answer: It is 330 metres tall. It was the tallest man-made structure in the world "
        "until the Chrysler Building in New York was finished in 1930."
    ),
    "knowledge_list": (
        "- The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris.\n"
        "- The company of engineer Gustave Eiffel designed the tower.\n"
        "- The tower was built from 1887 to 1889 as the entrance to the 1889 World's Fair.\n"
        "- The Eiffel Tower is 330 metres tall.\n"
        "- It was the tallest man-made structure in the world until the Chrysler Building in "
        "New York was finished in 1930."
    ),
    "summary": (
        "The Eiffel Tower, a 330-metre wrought-iron lattice tower in Paris designed by the "
        "company of Gustave Eiffel, was built from 1887 to 1889 for the 1889 World's Fair and "
        "was the tallest man-made structure in the world until the Chrysler Building in New "
        "York was finished in 1930."
    ),
    "wikipedia": (
        "The Eiffel Tower is a wrought-iron lattice tower located on the Champ de Mars in "
        "Paris. Designed by the engineering company of Gustave Eiffel, it was constructed "
        "between 1887 and 1889 to serve as the entrance to the 1889 World's Fair. At 330 "
        "metres in height, it remained the tallest man-made structure in the world until the "
        "completion of the Chrysler Building in New York in 1930."
    ),
    "student": (
        "The Eiffel Tower is a tall tower made of wrought iron, a kind of iron that can be "
        "bent and shaped. It stands on the Champ de Mars, a big park in Paris. The company of "
        "an engineer named Gustave Eiffel designed it. Workers built it from 1887 to 1889, and "
        "it was the entrance to the 1889 World's Fair. The tower is 330 metres tall. Until "
        "the Chrysler Building in New York was finished in 1930, nothing built by people "
        "anywhere in the world was taller."
    ),
}
SHORT_TASKS = {
    "qa": "Turn the text into questions and answers. Use only facts from the text.",
    "knowledge_list": "List the facts in the text, one per line, each starting with '- '.",
    "summary": "Summarize the text in a few sentences. Keep the names and numbers.",
    "wikipedia": "Rewrite the text in the style of a Wikipedia article. Keep every fact.",
    "student": "Explain the text to a student in simple words. Keep every fact.",
}
VARIANTS = {
    "current": list(EXAMPLES),
    "fewshot": list(EXAMPLES),
    "short": list(EXAMPLES),
}


def build(variant: str, style: str, text: str) -> list[dict[str, str]]:
    if variant == "current":
        return [
            {"role": "system", "content": get_template(style).instruction},
            {"role": "user", "content": f"{TEXT_HEADER}\n{text}"},
        ]
    if variant == "fewshot":
        return [
            {"role": "system", "content": get_template(style).instruction},
            {"role": "user", "content": f"{TEXT_HEADER}\n{EXAMPLE_SOURCE}"},
            {"role": "assistant", "content": EXAMPLES[style]},
            {"role": "user", "content": f"{TEXT_HEADER}\n{text}"},
        ]
    task = SHORT_TASKS[style]
    return [
        {"role": "user", "content": f"{task}\n\nText:\n{EXAMPLE_SOURCE}"},
        {"role": "assistant", "content": EXAMPLES[style]},
        {"role": "user", "content": f"{task}\n\nText:\n{text}"},
    ]
