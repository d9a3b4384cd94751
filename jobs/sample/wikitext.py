"""Turn MediaWiki markup into plain prose paragraphs.

A pragmatic stripper for the English Wikipedia dump excerpt that gensim ships, not a MediaWiki
parser: templates, tables, references, files, categories and interlanguage links are dropped;
links keep their visible text; headings become lines of their own. Every pass is a linear scan
or a regex without nested quantifiers, so unbalanced or hostile markup cannot hang it.

Usage:
    from jobs.sample.wikitext import wikitext_to_plain
    plain = wikitext_to_plain("'''Anarchism''' is a [[political philosophy|philosophy]].")
    # -> "Anarchism is a philosophy."
"""

from __future__ import annotations

import html
import re

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)  # an unclosed comment runs to the end
# Tags whose content is not prose: citations, galleries, formulas, timelines, code.
_DROPPED_ELEMENTS = "ref|gallery|math|timeline|imagemap|score|syntaxhighlight|source|templatedata"
_DROPPED_TAG = re.compile(rf"<(/?)({_DROPPED_ELEMENTS})\b[^<>]*?(/?)>", re.IGNORECASE)
_ANY_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*\b[^<>]*>")

_BRACE_RUN = re.compile(r"\{{2,}|\}{2,}")
_TABLE_TOKEN = re.compile(r"^[ \t:]*(?:(?P<open>\{\|)|(?P<close>\|\}))", re.MULTILINE)
_TABLE_ROW_REMNANT = re.compile(r"^[ \t]*(?:\||!).*$", re.MULTILINE)

_LINK_BRACKET = re.compile(r"\[\[|\]\]")
_EXTERNAL_LINK = re.compile(r"\[(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//[^\s\[\]]+(?:[ \t]+([^\[\]\n]*))?\]")
# Namespaces whose links render as something other than text in the article body.
_HIDDEN_LINK_NAMESPACES = {"file", "image", "category", "media"}
# Interlanguage links ([[de:Anarchismus]]) render in the sidebar, not in the text.
_LANGUAGE_PREFIX = re.compile(r"^[a-z]{2,3}(?:-[a-z]{2,8})*$")
# Interwiki prefixes that look like language codes but render inline ([[wikt:word]]).
_INLINE_INTERWIKI = {"wikt", "wiktionary", "w", "s", "q", "n", "b", "v", "c", "d", "m", "mw"}

# Any run of 2+ quotes: removing a template can join ''{{lang|..}}'' into four quotes.
_BOLD_ITALIC = re.compile(r"'{2,}")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_HEADING = re.compile(r"^(={1,6})[ \t]*(.*?)[ \t]*\1[ \t]*$", re.MULTILINE)
# Heading lines carry this mark and their level (one digit) until empty sections are dropped.
_HEADING_MARK = "\x00"
_LIST_MARKER = re.compile(r"^[*#:;]+[ \t]*", re.MULTILINE)
_EMPTY_PARENS = re.compile(r"\([ \t,;]*\)")
# "(, Akhilleus, )" once {{lang}} templates are gone: trim the orphaned separators.
_OPENING_PAREN_PUNCT = re.compile(r"\([ \t]*[,;][ \t]*")
_CLOSING_PAREN_PUNCT = re.compile(r"[ \t]*[,;][ \t]*\)")
_SPACE_RUN = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.;:])")
_BLANK_LINES = re.compile(r"\n{3,}")


def wikitext_to_plain(markup: str) -> str:
    """Plain text of one article's markup: prose paragraphs separated by blank lines."""
    text = _COMMENT.sub("", markup.replace(_HEADING_MARK, ""))
    text = _strip_dropped_elements(text)
    text = _strip_templates(text)
    text = _strip_tables(text)
    text = _replace_links(text)
    text = _EXTERNAL_LINK.sub(lambda m: m.group(1) or "", text)
    text = _ANY_TAG.sub("", text)
    text = _MAGIC_WORD.sub("", text)
    text = _BOLD_ITALIC.sub("", text)
    text = _HEADING.sub(lambda m: f"\n{_HEADING_MARK}{len(m.group(1))}{m.group(2)}\n", text)
    text = _LIST_MARKER.sub("", text)
    # Entities last: an escaped "&lt;ref&gt;" is literal text, not a tag to strip.
    text = html.unescape(text).replace("\xa0", " ")
    return _drop_empty_sections(_tidy_whitespace(text))


def _strip_dropped_elements(text: str) -> str:
    """Remove <ref>...</ref>, <ref/>, <gallery>...</gallery> and the like, content included.

    An opener without a closer loses only its tag, and so does every later opener of that
    element (none of them can close either): that keeps the scan linear on broken markup.
    """
    spans: list[tuple[int, int]] = []
    unclosable: set[str] = set()
    position = 0
    while True:
        open_name, open_span = None, (0, 0)
        for tag in _DROPPED_TAG.finditer(text, position):
            is_closer, name, is_self_closing = tag.group(1), tag.group(2).lower(), tag.group(3)
            if open_name is None:
                if is_closer or is_self_closing or name in unclosable:
                    spans.append(tag.span())
                else:
                    open_name, open_span = name, tag.span()
            elif is_closer and name == open_name:
                spans.append((open_span[0], tag.end()))
                open_name = None
        if open_name is None:
            return _delete_spans(text, spans)
        spans.append(open_span)
        unclosable.add(open_name)
        position = open_span[1]


def _delete_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """Text without the given [start, end) spans; overlapping and nested spans merge."""
    pieces, cursor = [], 0
    for start, end in sorted(spans):
        if start > cursor:
            pieces.append(text[cursor:start])
        cursor = max(cursor, end)
    pieces.append(text[cursor:])
    return "".join(pieces)


def _opener_widths(run_length: int) -> list[int]:
    """How a run of '{' splits into openers: pairs, with a triple innermost if the run is odd."""
    widths = [2] * (run_length // 2)
    if run_length % 2:
        widths[-1] = 3  # "{{{{{" is a template around a {{{parameter}}}
    return widths


def _strip_templates(text: str) -> str:
    """Remove {{templates}} and {{{parameters}}}, however nested; drop unmatched braces."""
    spans: list[tuple[int, int]] = []
    open_stack: list[tuple[int, int]] = []  # (start, width) of each unclosed opener
    for match in _BRACE_RUN.finditer(text):
        position, remaining = match.start(), len(match.group())
        if match.group()[0] == "{":
            for width in _opener_widths(remaining):
                open_stack.append((position, width))
                position += width
            continue
        while remaining >= 2 and open_stack:
            start, width = open_stack.pop()
            taken = min(width, remaining)  # "}}" also closes a "{{{": markup is often sloppy
            spans.append((start, position + taken))
            position, remaining = position + taken, remaining - taken
        if remaining >= 2:
            spans.append((position, position + remaining))  # closers with nothing to close
    spans.extend((start, start + width) for start, width in open_stack)
    return _delete_spans(text, spans)


def _strip_tables(text: str) -> str:
    """Remove {| tables |}, however nested; an unclosed table loses only its opening line."""
    spans: list[tuple[int, int]] = []
    open_starts: list[int] = []
    for match in _TABLE_TOKEN.finditer(text):
        if match.group("open"):
            open_starts.append(match.start())
        elif open_starts:
            spans.append((open_starts.pop(), match.end()))
        else:
            spans.append((match.start(), match.end()))
    for start in open_starts:
        line_end = text.find("\n", start)
        spans.append((start, len(text) if line_end < 0 else line_end))
    text = _delete_spans(text, spans)
    return _TABLE_ROW_REMNANT.sub("", text)  # rows of unclosed tables: "|-", "| cell", "! head"


def _link_text(inner: str) -> str:
    """What a reader sees for [[inner]]: the label, the target, or nothing."""
    target, _, label = inner.partition("|")
    target = target.strip()
    visible_link = target.startswith(":")  # [[:Category:X]] is an inline link to a category
    target = target.lstrip(":")
    prefix, has_prefix, _ = target.partition(":")
    prefix = prefix.strip().lower()
    if has_prefix and not visible_link:
        if prefix in _HIDDEN_LINK_NAMESPACES:
            return ""
        if _LANGUAGE_PREFIX.match(prefix) and prefix not in _INLINE_INTERWIKI:
            return ""
    if label.strip():
        return label
    return target.lstrip("#")


def _replace_links(text: str) -> str:
    """Resolve [[links]] innermost first, so links inside file captions go with the file.

    One pass with a stack of open links; unmatched brackets are dropped and their text kept.
    """
    open_links: list[list[str]] = [[]]  # pieces collected inside each open link; [0] is outside
    position = 0
    for bracket in _LINK_BRACKET.finditer(text):
        open_links[-1].append(text[position : bracket.start()])
        position = bracket.end()
        if bracket.group() == "[[":
            open_links.append([])
        elif len(open_links) > 1:
            inner = "".join(open_links.pop())
            open_links[-1].append(_link_text(inner))
    open_links[-1].append(text[position:])
    while len(open_links) > 1:
        unclosed = open_links.pop()
        open_links[-1].extend(unclosed)
    return "".join(open_links[0])


def _tidy_whitespace(text: str) -> str:
    """Drop the debris removals leave: empty parentheses, doubled spaces, runs of blank lines."""
    text = _EMPTY_PARENS.sub("", text)
    text = _OPENING_PAREN_PUNCT.sub("(", text)
    text = _CLOSING_PAREN_PUNCT.sub(")", text)
    lines = [_SPACE_RUN.sub(" ", line).strip() for line in text.split("\n")]
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", "\n".join(lines))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _drop_empty_sections(text: str) -> str:
    """Drop headings with no prose under them ("References", "External links" once emptied).

    A section is empty when the next non-blank line is the end or a heading of the same or a
    higher level; a heading followed by its own subsections stays.
    """
    lines = text.split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if not line.startswith(_HEADING_MARK):
            kept.append(line)
            continue
        level = line[1]
        following = next((later for later in lines[index + 1 :] if later), _HEADING_MARK + "0")
        if not following.startswith(_HEADING_MARK) or following[1] > level:
            kept.append(line[2:])
    return _BLANK_LINES.sub("\n\n", "\n".join(kept)).strip()
