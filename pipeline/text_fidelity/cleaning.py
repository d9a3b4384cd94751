"""Clean a raw generation: strip thinking, wrappers and chatter; flag refusals and truncation.

Only the edges of an output are touched (leading thinking / preamble / fence, trailing
chatter); the middle is the rewrite and is never edited. An output nothing applies to is
returned byte for byte. Repetition loops are left to the quality stage.

    c = clean_generation("Sure! Here is the rewritten text:\\n\\nParis is ...", "stop")
    c.text, c.reason, c.removed      # -> "Paris is ...", None, ("preamble",)
    clean_generation("Paris is the capit", "length").reason   # -> "truncated"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Reasons, most specific first: a refusal is not worth a retry; a truncated output is.
REFUSAL, TRUNCATED, EMPTY = "refusal", "truncated", "empty"


@dataclass(frozen=True)
class Cleaned:
    text: str
    reason: str | None  # None: usable; else REFUSAL, TRUNCATED or EMPTY
    removed: tuple[str, ...]  # what was stripped ("think", "preamble", ...), each once


_I = re.IGNORECASE
_THINK_BLOCK = re.compile(r"\A\s*<(think|thinking)>.*?</\1>\s*", re.S | _I)
_THINK_OPEN = re.compile(r"\A\s*<(?:think|thinking)>", _I)
_THINK_CLOSE = re.compile(r"</(?:think|thinking)>\s*", _I)
# A fence around the whole output; one with no closing fence is a truncated wrapper.
_FENCE = re.compile(r"\A\s*```[\w+.-]*[ \t]*\n(.*?)\n?[ \t]*```\s*\Z", re.S)
_FENCE_OPEN = re.compile(r"\A\s*```[\w+.-]*[ \t]*\n")

_ACK = r"(?:sure(?: thing)?|certainly|of course|absolutely|okay|ok|alright|great|got it)"
_HERE = r"(?:here(?:'s|’s| is| are)|below (?:is|are)|the following (?:is|are))"
_HELP = (
    r"(?:I(?:'d|’d| would) be (?:happy|glad) to|I(?:'ll|’ll| will) (?:now )?"
    r"(?:rewrite|paraphrase|help you|help with)|let me (?:rewrite|paraphrase|help you))"
)
# Words that make a "Here is ..." line talk about the output rather than be part of it.
_META = re.compile(
    r"rewrit|paraphras|version|summar|notes|lecture|question|facts|bullet|list|style|"
    r"format|requested|the (?:given |provided |original |above |source )?"
    r"(?:text|passage|article|content|paragraph)",
    _I,
)
_ACK_LINE = re.compile(rf"\A\s*{_ACK}\b[!.,]*[ \t]*(?:\n|\Z)", _I)
_ACK_BANG = re.compile(rf"\A\s*{_ACK}!+[ \t]+", _I)
_HERE_LINE = re.compile(rf"\A\s*(?:{_ACK}[!.,]*\s+)?{_HERE}\b[^\n]*", _I)
_HELP_LINE = re.compile(
    rf"\A\s*(?:{_ACK}[!.,]*\s+)?{_HELP}\b[^\n]{{0,200}}[.!:][ \t]*(?:\n|\Z)", _I
)
_LABEL_WORDS = (
    r"[ \t]*(?:#+[ \t]*)?[*_]*(?:the[ \t]+)?(?:rewritten|paraphrased|revised|rewrite|paraphrase)"
    r"(?:[ \t]+(?:text|version|passage|paragraph|article|content|chunk))?"
    r"(?:[ \t]*\([^)\n]{0,60}\))?[ \t]*[*_]*"
)
_LABEL = re.compile(rf"\A\s*{_LABEL_WORDS}(?::[*_]*[ \t]*|[ \t]*(?:\n|\Z))", _I)
# A first line that introduces the output as a rewrite of "the text" and ends with a colon:
# "The text can be reworded to:", "What a story! Here's a rewritten version with changes:"
# (135M model, bench/rewrite_candidates.py). It must name the text or a rewrite of it, so a
# content line such as "The main causes were:" stays.
_META_LEAD = re.compile(
    r"\A[ \t]*(?P<line>[^\n]{0,250}?\b(?:(?:the|this|that|given|provided|original|above|"
    r"source) (?:text|passage|paragraph|article|content)|rewritten|reworded|rephrased|"
    r"paraphrased|revised version|rewrite|paraphrase)\b[^\n]{0,120}):[*_]*[ \t]*(?:\n|\Z)",
    _I,
)

_CHATTER = re.compile(
    r"\A[\s(*_>]*(?:I hope (?:this|that|it) (?:helps|is helpful|was helpful|meets|works|"
    r"fits|captures|is what)|hope this helps|(?:please )?let me know|"
    r"feel free to (?:ask|reach out|let me know|contact)|"
    r"if you (?:need|have|want|would like) (?:any |me to |more |further |additional |help)|"
    r"is there anything else|"
    r"I(?:'ve|’ve| have)? (?:rewritten|kept|preserved|maintained|made|tried|paraphrased|"
    r"rewrote|changed|edited|removed|added)\b|"
    r"this (?:rewrite|(?:rewritten|reworded|revised|paraphrased) "
    r"(?:text|version|passage|sentence|paragraph)|paraphrase)\b|"
    r"this version (?:keeps|preserves|maintains|retains|captures|presents|is written|follows)|"
    r"in this (?:rewrite|version)\b|the rewritten (?:text|version)\b)",
    _I,
)
_NOTE = re.compile(r"\A[\s(*_>]*note[*_]*:", _I)
# A note at the end is chatter only when it talks about the rewrite; "Note: heights include
# the antenna" is content. Roman "I" must not count, hence the verbs after it.
_NOTE_META = re.compile(
    r"rewrit|paraphras|(?:source|given|provided|original) (?:text|passage)|"
    r"\bI(?:'ve|’ve| have| kept| did| maintained| preserved| tried| made| used)\b",
    _I,
)
_SEPARATOR_LINE = re.compile(r"\A[ \t]*(?:-{3,}|\*{3,}|_{3,})?[ \t]*\Z")

_REFUSALS = [
    re.compile(
        r"\A(?:(?:I'm |I’m |I am )?sorry|I apologi[sz]e|unfortunately,? I)\b[^\n]{0,100}?"
        r"(?:can't|can’t|cannot|can not|unable|won't|not able|not possible)",
        _I,
    ),
    re.compile(
        r"\AI (?:can't|can’t|cannot|can not|won't|am unable to|am not able to|must decline)"
        r"(?: [\w’']+){0,2}? (?:help|assist|comply|fulfil|fulfill|provide|rewrite|paraphrase|"
        r"do that|complete|create|generate|process|perform|continue)",
        _I,
    ),
    re.compile(r"\AAs an AI\b", _I),
]


def clean_generation(raw: str, finish_reason: str | None) -> Cleaned:
    """Strip what is not the rewrite and say why the output is unusable, if it is."""
    text, removed = raw, []
    # A preamble can sit before a fence and thinking before both: repeat until stable.
    for _ in range(6):
        before = text
        for name, strip in _STRIPPERS:
            stripped = strip(text)
            if stripped != text:
                if name not in removed:
                    removed.append(name)
                text = stripped
        if text == before:
            break
    if removed:
        text = text.strip()
    return Cleaned(text, _reason(text, finish_reason), tuple(removed))


def _reason(text: str, finish_reason: str | None) -> str | None:
    if any(p.match(text.lstrip()) for p in _REFUSALS):
        return REFUSAL
    if finish_reason == "length":
        return TRUNCATED
    if not text.strip():
        return EMPTY
    return None


def _strip_think(text: str) -> str:
    if m := _THINK_BLOCK.match(text):
        return text[m.end() :]
    if _THINK_OPEN.match(text):  # never closed: all of it was thinking
        return ""
    # A chat template that opens <think> itself leaves only the closing tag in the output.
    if (m := _THINK_CLOSE.search(text)) and "<think" not in text[: m.start()].lower():
        return text[m.end() :]
    return text


def _strip_fence(text: str) -> str:
    if (m := _FENCE.match(text)) and "```" not in m.group(1):
        return m.group(1)
    if _FENCE_OPEN.match(text) and text.count("```") == 1:
        return _FENCE_OPEN.sub("", text, count=1)
    return text


def _strip_preamble(text: str) -> str:
    for pattern in (_ACK_LINE, _HELP_LINE, _LABEL):
        if m := pattern.match(text):
            return text[m.end() :]
    if m := _HERE_LINE.match(text):
        line = m.group()
        head, colon, _ = line.partition(":")
        if colon and len(head) <= 250 and _META.search(head):
            return text[m.start() + len(head) + 1 :].lstrip(" \t")
        short_sentence = len(line) <= 250 and line.rstrip().endswith((".", "!"))
        if not colon and short_sentence and _META.search(line):
            return text[m.end() :]
    if m := _ACK_BANG.match(text):  # last: "Sure! Here is ..." goes whole, above
        return text[m.end() :]
    if (m := _META_LEAD.match(text)) and text[m.end() :].strip():
        return text[m.end() :]
    return text


def _strip_chatter(text: str) -> str:
    lines = text.split("\n")
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    if not end or not _is_chatter(lines[end - 1]):
        return text
    end -= 1
    while end and _SEPARATOR_LINE.match(lines[end - 1]):
        end -= 1
    return "\n".join(lines[:end])


def _is_chatter(line: str) -> bool:
    if _CHATTER.match(line):
        return True
    return bool(_NOTE.match(line) and _NOTE_META.search(line))


_STRIPPERS = [
    ("think", _strip_think),
    ("preamble", _strip_preamble),
    ("fence", _strip_fence),
    ("chatter", _strip_chatter),
]
