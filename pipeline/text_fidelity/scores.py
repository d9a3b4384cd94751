"""Fidelity scores of a rewrite against the source text it rewrote, and the rules on them.

Pure functions; the fidelity stage applies them to batches of rewrite rows. Scores:
length ratio; share of the rewrite's word n-grams copied from the source (pipeline/similarity's
shingles and containment); numbers and named entities the source lacks; repetition (Gopher's
duplicate 5-gram characters) and zlib compression ratio; meta-commentary phrases; refusals
(pipeline/text_fidelity/cleaning.py's patterns); truncation (a chunk's finish reason "length").

Named entities are approximated by capitalised words that do not open a sentence, a line or
a heading (no NER model to ship); one is novel when no form of it appears in the source. An
entity swap is a novel entity while a source entity is missing from the rewrite, neither a
spelling variant of a name on the other side ("Bathsheba" for "Bath-sheba"). A name swap is
found by position: a novel entity standing, once the two texts are aligned, where the source
has another name, even one the rewrite still mentions elsewhere; or, within a reach of words,
near a source name that the rewrite lacks nearby (free rewrites move clauses). Aliases
(FidelityConfig.name_aliases: "Jacob"/"James") are never name swaps.

    scores = fidelity_scores(rewrite, source, finish_reasons=["stop"], copy_ngram=3)
    failed = failing_rules(scores, fidelity_rules(FidelityConfig(), style="summary"))
    table = score_rewrites(rewrite_rows, FidelityConfig())    # + scores and drop columns
"""

from __future__ import annotations

import difflib
import re
import zlib
from functools import lru_cache
from typing import Any

import pyarrow as pa

from pipeline import schema as S
from pipeline.config import ShingleConfig
from pipeline.config.fidelity import FidelityConfig
from pipeline.score_rules import Rule, bounded, failing_rules
from pipeline.similarity.sets import containment
from pipeline.similarity.shingles import shingle_hashes
from pipeline.text_fidelity.cleaning import REFUSAL, clean_generation
from pipeline.text_fidelity.repetition import dup_ngram_char_frac

_I = re.IGNORECASE | re.MULTILINE
# Talk about the text instead of the text: what the 135M model writes when it does not rewrite
# (tests/rewrite/recorded_smollm2_moe.json). A hit counts only if the source lacks it.
BOILERPLATE = [
    re.compile(p, _I)
    for p in (
        r"\b(?:rewritten|revised|reworked|reworded|paraphrased|edited|improved) "
        r"(?:version|text|passage|sections?|paragraph|sentences?)",
        r"\boriginal (?:text|passage|message|content|meaning|article|paragraph)",
        r"\b(?:the|this|above) (?:text|passage|paragraph) (?:should|aims|has been|was|needs)\b",
        r"\b(?:should|could|can) be (?:reworded|rewritten|rephrased|paraphrased)",
        r"\bI(?:'ve| have)? (?:made|tried|added|rewrote|rewritten|kept|maintained|preserved|"
        r"changed|edited|incorporated)\b",
        r"\b(?:your|my) (?:request|previous response|writing style|edits)\b",
        r"\b(?:requested|suggested) (?:edits|changes)|\bchanges requested\b",
        r"\b(?:improve|enhance)[sd]? (?:the )?(?:clarity|flow|readability|grammar|coherence)",
        r"^\s*sentence \d+\s*:",
        r"\bhere(?:'s| is) (?:what|how) (?:you|I)\b",
    )
]
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-*•]|\(\d+\))\s+", re.M)
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][\w'’-]*")
# What precedes a sentence's first word: end punctuation (and closing quotes), or an opening
# quote or bracket, single quotes included ("he said, 'Do not ...").
_SENTENCE_OPENER = re.compile(r"(?:^|[.!?:;]['\"”’)\]]*\s+|[\"“‘'(\[]\s*)$")
_UNITS = (  # noqa: SIM905 (a word list reads best as words)
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_ORDINALS = (  # noqa: SIM905 (a word list reads best as words)
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
).split()
_NUMBER_WORDS: dict[str, int] = {
    **{w: i for i, w in enumerate(_UNITS)},
    **{w: 20 + 10 * i for i, w in enumerate(_TENS)},
    **{w: i for i, w in enumerate(_ORDINALS)},
    **{w[:-1] + "ieth": 20 + 10 * i for i, w in enumerate(_TENS)},
    # "threescore and ten": the King James Version's numbers (tests/quality/fidelity_eval).
    **{w + "score": 20 * i for i, w in enumerate(_UNITS[:10]) if i > 1},
}
_NUMBER_WORD = r"(?:" + "|".join(sorted([*_NUMBER_WORDS, *_SCALES], key=len, reverse=True)) + r")"
# A number written in words: "forty", "thirty-seven", "three hundred and sixty-five",
# "the twenty-fourth day".
_NUMBER_PHRASE = re.compile(
    rf"\b{_NUMBER_WORD}(?:(?:\s+and\s+|[\s-]+){_NUMBER_WORD})*\b", re.IGNORECASE
)
# Capitalised words that are not names: the Q&A style's labels, and function words (pronouns,
# determiners, conjunctions), which some texts capitalise for emphasis or reverence.
_FUNCTION_WORDS = (
    "i i'm i've i'd i'll question answer note o oh he him his himself she her hers herself it "
    "its they them their theirs we us our you your yours thou thee thy thine ye who whom whose "
    "which what that this these those the a an and or but nor for so yet if then than as of in "
    "on at to by with from into upon all any each every no not some"
)
_NOT_ENTITIES = set(_FUNCTION_WORDS.split())
# Before a capitalised word, what makes it a title or a common noun when singular ("the Lord",
# "a Greek", "our Master"): name_swaps.
_ARTICLES = frozenset(("the", "a", "an", "my", "our", "your", "his", "their", "thy"))


def length_ratio(rewrite: str, source: str) -> float:
    return len(rewrite) / max(len(source), 1)


@lru_cache(maxsize=8)
def _shingle_config(n: int) -> ShingleConfig:
    return ShingleConfig(kind="word", n=n, lowercase=True, punctuation="strip")


def copied_ngram_ratio(rewrite: str, source: str, n: int) -> float:
    """Share of the rewrite's distinct word n-grams that also occur in the source."""
    cfg = _shingle_config(n)
    return float(containment(shingle_hashes(rewrite, cfg), shingle_hashes(source, cfg)))


def _phrase_value(phrase: str) -> int:
    """'three hundred and sixty-five' -> 365, 'twenty-fourth' -> 24, 'ten thousand' -> 10000."""
    total = current = 0
    for word in re.findall(r"[a-z]+", phrase.lower()):
        if word in _SCALES:
            scale = _SCALES[word]
            if scale == 100:
                current = max(current, 1) * 100
            else:
                total, current = total + max(current, 1) * scale, 0
        elif word in _NUMBER_WORDS:
            current += _NUMBER_WORDS[word]
    return total + current


def numbers(text: str, *, word_parts: bool = False) -> set[str]:
    """Numbers as values: digits as written ("2,000" and "2000" alike; list markers "1. ",
    "2) " left out) and numbers in words, cardinal or ordinal ("forty", "the third day").
    A lone "one" is left out. `word_parts` (for a source): "one" too, and each number word's
    own value ("three hundred": 300, 3 and 100), so a source matches a rewrite that splits or
    rounds its numbers differently."""
    text = _LIST_MARKER.sub(" ", text)
    found = {m.replace(",", "").rstrip(".") for m in _NUMBER.findall(text)}
    for m in _NUMBER_PHRASE.finditer(text):
        if m.group().lower() == "one" and not word_parts:
            continue  # alone, mostly a pronoun ("no one", "one of them")
        found.add(str(_phrase_value(m.group())))
        if word_parts:
            found.update(str(_phrase_value(w)) for w in re.findall(r"[A-Za-z]+", m.group()))
    return found


def _word_forms(text: str) -> set[str]:
    """Lower-cased words of a text and their hyphen parts, possessives stripped, plus the
    digits of number words ("three" -> "3")."""
    forms: set[str] = set()
    for word in _WORD.findall(text):
        word = re.sub(r"['’]s$", "", word.lower()).strip("'’-")
        forms.add(word)
        forms.update(p for p in word.split("-") if p)
        if word in _NUMBER_WORDS:
            forms.add(str(_NUMBER_WORDS[word]))
    return forms


def entities(text: str) -> list[str]:
    """Capitalised words not opening a sentence, quote, line or heading-like line (<= 8 words,
    no end punctuation), function words left out, in order of appearance, distinct."""
    found: dict[str, None] = {}
    for line in text.splitlines():
        stripped = _LIST_MARKER.sub("", line).strip().lstrip("#*> ").strip()
        if not stripped or (len(stripped.split()) <= 8 and not stripped.endswith((".", "!", "?"))):
            continue
        for m in _WORD.finditer(stripped):
            word = m.group()
            if not word[0].isupper() or _SENTENCE_OPENER.search(stripped[: m.start()]):
                continue
            word = re.sub(r"['’]s$", "", word).rstrip("'’-")
            if word.lower() not in _NOT_ENTITIES:
                found.setdefault(word, None)
    return list(found)


def novel_terms(rewrite: str, source: str) -> tuple[list[str], int, list[str]]:
    """(numbers the source lacks, entities found in the rewrite, entities the source lacks)."""
    source_numbers = numbers(source, word_parts=True)
    new_numbers = sorted(numbers(rewrite) - source_numbers, key=lambda x: (len(x), x))
    forms = _word_forms(source)
    found = entities(rewrite)
    new_entities = [e for e in found if any(p not in forms for p in e.lower().split("-") if p)]
    return new_numbers, len(found), new_entities


def _stem(form: str) -> str:
    """'gentiles' -> 'gentile', 'judges' -> 'judg': a plural or a verb's -s, enough to match."""
    for suffix in ("es", "s"):
        if form.endswith(suffix) and len(form) - len(suffix) >= 3:
            return form[: -len(suffix)]
    return form


# Pure functions of names, called ~89k times for the fidelity evaluation set's 645 cases (the
# same names recur across a text's entities and the other text's capitalised words): cached,
# and bounded for a long-running rewrite actor.
@lru_cache(maxsize=1 << 16)
def _skeleton(name: str) -> str:
    """A name's spelling with what transliterations vary dropped: h, doubled letters, j/y
    and i, k/q and c ('Jehoshaphat' and 'Joshaphat', 'Judæa' and 'Judea' come closer)."""
    name = name.lower().replace("æ", "ae").replace("-", "")
    name = re.sub(r"[kq]", "c", re.sub(r"[jy]", "i", name.replace("h", "")))
    return re.sub(r"(.)\1+", r"\1", name)


@lru_cache(maxsize=1 << 16)
def _spelling_variant(a: str, b: str) -> bool:
    """The same name spelt another way: skeletons sharing 5 letters in front, or as alike as
    difflib's ratio 0.75 ('Timotheus'/'Timothy', 'Saviour'/'Savior', 'Magdalene'/'Magdala');
    0.85 when a skeleton has 4 letters or fewer, where one shared letter moves the ratio a
    lot: 'Jehu' and 'Jesus' (skeletons 'ieu', 'iesus': 0.75) are two people."""
    a, b = _skeleton(a), _skeleton(b)
    if a[:5] == b[:5] and len(a) >= 5 and len(b) >= 5:
        return True
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    return ratio >= (0.85 if min(len(a), len(b)) <= 4 else 0.75)


def _same_name(a: str, b: str, aliases: frozenset[tuple[str, str]]) -> bool:
    """A spelling variant, or a pair of `aliases` (lower case, both orders)."""
    return (a.lower(), b.lower()) in aliases or _spelling_variant(a, b)


def alias_pairs(groups: list[list[str]]) -> frozenset[tuple[str, str]]:
    """[["James", "Jacob"], ...] -> every ordered pair of names within a group, lower case."""
    return frozenset(
        (a.lower(), b.lower()) for group in groups for a in group for b in group if a != b
    )


def _unmatched(entities_: list[str], other: str) -> list[str]:
    """The entities of which no form, plural-free form or spelling variant is in `other`."""
    forms = _word_forms(other)
    stems = {_stem(f) for f in forms}
    names = {p for w in re.findall(r"[A-ZÀ-ÖØ-Þ][\w'’-]*", other) for p in (w, *w.split("-")) if p}
    return [
        e
        for e in entities_
        if not all(p in forms or _stem(p) in stems for p in e.lower().split("-") if p)
        and not any(_spelling_variant(e, n) for n in names)
    ]


def entity_swaps(rewrite: str, source: str) -> list[str]:
    """Novel entities paired with missing ones, as many as the fewer of the two: a name put in
    another's place ("novel 'Peter' while 'Andrew' is missing"). A name only added ("Jesus"
    for "he") or only dropped (a summary) is no swap."""
    novel = _unmatched(entities(rewrite), source)
    missing = _unmatched(entities(source), rewrite) if novel else []
    return [f"novel {n!r} while {m!r} is missing" for n, m in zip(novel, missing, strict=False)]


def _words(text: str) -> list[tuple[str, str, bool]]:
    """(form, word, opens) per word, in order: the lower-cased form, the word without a
    possessive 's, and whether it opens a sentence, quote or line (as in `entities`)."""
    found = []
    for line in text.splitlines():
        stripped = _LIST_MARKER.sub("", line).strip().lstrip("#*> ").strip()
        for m in _WORD.finditer(stripped):
            word = re.sub(r"['’]s$", "", m.group()).rstrip("'’-")
            opens = word[0].isupper() and bool(_SENTENCE_OPENER.search(stripped[: m.start()]))
            found.append((word.lower(), word, opens))
    return found


def _source_position(blocks: list[difflib.Match], j: int, n_rw: int, n_src: int) -> float:
    """Where the rewrite's word `j` (in no matching block) falls in the source: interpolated
    between the matching blocks around it."""
    before = [m for m in blocks if m.b + m.size <= j]
    after = [m for m in blocks if m.b > j]
    b0, a0 = (before[-1].b + before[-1].size, before[-1].a + before[-1].size) if before else (0, 0)
    b1, a1 = (after[0].b, after[0].a) if after else (n_rw, n_src)
    return a0 + (j - b0 + 0.5) * (a1 - a0) / max(b1 - b0, 1)


def _after_article(words: list[tuple[str, str, bool]], j: int) -> bool:
    """Word j follows an article, itself or after another capitalised word ("the Temple",
    "the High Priest", "the Good News"): a title or a capitalised common noun more likely than
    a name."""
    if j >= 1 and words[j - 1][0] in _ARTICLES:
        return True
    return j >= 2 and words[j - 1][1][0].isupper() and words[j - 2][0] in _ARTICLES


def name_swaps(
    rewrite: str,
    source: str,
    window: int = 2,
    reach: int | None = None,
    aliases: frozenset[tuple[str, str]] = frozenset(),
) -> list[str]:
    """Names of the rewrite standing where the source has another name ("'Mamre' where the
    source has 'Moses'"), found by position, so that one swapped mention counts even while the
    old name still appears elsewhere.

    The two texts' word forms are aligned (difflib); a novel entity of the rewrite (no form,
    spelling variant or alias in the source) inside a replaced span faces the source words at
    the same relative place in the span, `window` either side, nearest first. It is a swap when
    one of them is a source entity that is no spelling variant or alias of it. A novel entity
    that this finds no swap for (an insertion, or a long span that a free rewrite reorders)
    gets a wider look, with `reach` (None: none): its place in the source, interpolated between
    the aligned words around it, and `reach` source words either side, nearest first; a swap
    when one is a source entity that the rewrite's own `reach` words either side lack, in any
    form or spelling variant ("Russia" near "Russian" is no swap). This wider look skips a
    word after an article ("the Temple", "the High Priest"): free rewrites capitalise titles
    and common nouns there, and without its slot nothing else tells them from names. Not
    swaps: a name where the source has a pronoun or a lower-case word ("Jesus" for "he"); a
    name moved within the span; a word that either text also writes in lower case (a common
    noun capitalised: "Master", "Sea"); and, when the rewrite never uses the source's word, a
    singular one after an article ("the Lord", "the Christ", "a Greek"): a title the rewrite
    renders another way ("the Master", "the Messiah"). Names take no article; a people does,
    and stays a name ("the Egyptians"). `aliases` (alias_pairs): names one may stand for
    another ("Jacob" for "James")."""
    rw, src = _words(rewrite), _words(source)
    lower = {form for form, word, _ in rw + src if word.islower()}
    source_entities = entities(source)
    novel = {
        e
        for e in _unmatched(entities(rewrite), source)
        if e.lower() not in lower and not any(_same_name(e, n, aliases) for n in source_entities)
    }
    if not novel:
        return []
    names = set(source_entities) | set(entities(rewrite))
    rw_forms, src_forms = [t[0] for t in rw], [t[0] for t in src]
    used = set(rw_forms)
    titles = {
        form
        for before, (form, word, _) in zip(src_forms, src[1:], strict=False)
        if before in _ARTICLES and word[0].isupper() and not form.endswith("s")
    }

    def other_name(k: int, word: str, span: set[str]) -> str | None:
        """The source's word k if it is a name, not in `span`, and not the same as `word`."""
        form, name, _ = src[k]
        if (
            name in names
            and form not in _NOT_ENTITIES
            and form not in lower
            and form not in span
            and (form in used or form not in titles)
            and not _same_name(word, name, aliases)
        ):
            return name
        return None

    matcher = difflib.SequenceMatcher(None, src_forms, rw_forms, autojunk=False)
    swaps: dict[int, str] = {}
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "replace":
            continue
        span = set(rw_forms[j1:j2])
        for j in range(j1, j2):
            _, word, opens = rw[j]
            if opens or word not in novel:
                continue
            mid = i1 + (j - j1 + 0.5) * (i2 - i1) / (j2 - j1)
            near = range(max(i1, int(mid - window)), min(i2, int(mid + window) + 1))
            for k in sorted(near, key=lambda k: abs(k + 0.5 - mid)):
                if name := other_name(k, word, span):
                    swaps[j] = f"{word!r} where the source has {name!r}"
                    break
    if reach:
        blocks = [m for m in matcher.get_matching_blocks() if m.size]
        for j, (_, word, opens) in enumerate(rw):
            if j in swaps or opens or word not in novel or _after_article(rw, j):
                continue
            mid = _source_position(blocks, j, len(rw), len(src))
            nearby = rw[max(0, j - reach) : j + reach + 1]
            span = {form for form, _, _ in nearby}
            capitalised = [w for _, w, _ in nearby if w[0].isupper() and w != word]
            near = range(max(0, int(mid - reach)), min(len(src), int(mid + reach) + 1))
            for k in sorted(near, key=lambda k: abs(k + 0.5 - mid)):
                name = other_name(k, word, span)
                if name and not any(_same_name(name, w, aliases) for w in capitalised):
                    swaps[j] = f"{word!r} near where the source has {name!r}"
                    break
    return [swaps[j] for j in sorted(swaps)]


def compression_ratio(text: str, min_chars: int) -> float | None:
    """zlib level-9 size / UTF-8 size; None below `min_chars` (short texts compress badly)."""
    raw = text.encode("utf-8")
    if len(text) < min_chars:
        return None
    return len(zlib.compress(raw, 9)) / len(raw)


def boilerplate(rewrite: str, source: str) -> list[str]:
    """Meta-commentary phrases in the rewrite that the source does not contain itself."""
    hits = []
    for pattern in BOILERPLATE:
        if pattern.search(source):
            continue
        hits += [m.group().strip().lower() for m in pattern.finditer(rewrite)]
    return hits


def is_refusal(chunk_rewrites: list[str]) -> bool:
    return any(clean_generation(c, "stop").reason == REFUSAL for c in chunk_rewrites)


def fidelity_scores(
    rewrite: str,
    source: str,
    *,
    finish_reasons: list[str | None] | None = None,
    chunk_rewrites: list[str] | None = None,
    cfg: FidelityConfig | None = None,
) -> dict[str, Any]:
    cfg = cfg or FidelityConfig()
    new_numbers, n_entities, new_entities = novel_terms(rewrite, source)
    entity_ratio = (
        len(new_entities) / n_entities if n_entities >= cfg.min_entities_for_ratio else None
    )
    return {
        S.F_LENGTH_RATIO: length_ratio(rewrite, source),
        S.F_COPIED_NGRAM_RATIO: copied_ngram_ratio(rewrite, source, cfg.copy_ngram),
        S.F_NOVEL_NUMBERS: len(new_numbers),
        S.F_ENTITIES: n_entities,
        S.F_NOVEL_ENTITY_RATIO: entity_ratio,
        S.F_NOVEL_TERMS: new_numbers + new_entities,
        S.F_ENTITY_SWAPS: entity_swaps(rewrite, source),
        S.F_NAME_SWAPS: name_swaps(
            rewrite, source, reach=cfg.name_swap_reach, aliases=alias_pairs(cfg.name_aliases)
        ),
        S.F_DUP_5GRAM_CHAR_FRAC: dup_ngram_char_frac(rewrite.split(), 5),
        S.F_COMPRESSION_RATIO: compression_ratio(rewrite, cfg.min_compression_chars),
        S.F_BOILERPLATE: boilerplate(rewrite, source),
        S.F_REFUSAL: is_refusal(chunk_rewrites if chunk_rewrites is not None else [rewrite]),
        S.F_TRUNCATED: "length" in (finish_reasons or []),
    }


def fidelity_rules(cfg: FidelityConfig, style: str | None = None) -> list[Rule]:
    """The rules in the order that picks the reason; length bounds per style if configured."""
    low, high = cfg.length_ratio_by_style.get(
        style or "", [cfg.min_length_ratio, cfg.max_length_ratio]
    )
    rules: list[Rule] = []
    if cfg.drop_refusals:
        rules.append(Rule("refusal", S.F_REFUSAL, "max", 0))
    if cfg.drop_truncated:
        rules.append(Rule("truncated", S.F_TRUNCATED, "max", 0))
    for spec in (
        ("boilerplate", S.F_BOILERPLATE, "max", cfg.max_boilerplate_hits),
        ("repetition", S.F_DUP_5GRAM_CHAR_FRAC, "max", cfg.max_dup_5gram_char_frac),
        ("low_compression", S.F_COMPRESSION_RATIO, "min", cfg.min_compression_ratio),
        ("too_short", S.F_LENGTH_RATIO, "min", low),
        ("too_long", S.F_LENGTH_RATIO, "max", high),
        ("copied_source", S.F_COPIED_NGRAM_RATIO, "max", cfg.max_copied_ngram_ratio),
        ("unfaithful", S.F_COPIED_NGRAM_RATIO, "min", cfg.min_copied_ngram_ratio),
        ("novel_numbers", S.F_NOVEL_NUMBERS, "max", cfg.max_novel_numbers),
        ("novel_entities", S.F_NOVEL_ENTITY_RATIO, "max", cfg.max_novel_entity_ratio),
        ("entity_swap", S.F_ENTITY_SWAPS, "max", cfg.max_entity_swaps),
        ("name_swap", S.F_NAME_SWAPS, "max", cfg.max_name_swaps),
    ):
        rules += bounded(*spec)
    return rules


SCORED_SCHEMA = S.with_drop_columns(S.FIDELITY_SCHEMA)


def score_rewrites(batch: pa.Table, cfg: FidelityConfig) -> pa.Table:
    """Rewrite rows (REWRITES_SCHEMA) -> the same rows with every fidelity score, the rules
    failed, and the first one as the drop reason (SCORED_SCHEMA)."""
    rows = batch.to_pylist()
    rules_by_style: dict[str, list[Rule]] = {}
    out = []
    for row in rows:
        scores = fidelity_scores(
            row[S.TEXT],
            row[S.SOURCE_TEXT],
            finish_reasons=row.get(S.FINISH_REASONS) or [],
            chunk_rewrites=row.get(S.CHUNK_REWRITES) or [row[S.TEXT]],
            cfg=cfg,
        )
        style = row[S.STYLE]
        if style not in rules_by_style:
            rules_by_style[style] = fidelity_rules(cfg, style)
        failed = failing_rules(scores, rules_by_style[style])
        first = failed[0] if failed else None
        out.append(
            {
                **{name: row.get(name) for name in S.REWRITES_SCHEMA.names},
                **scores,
                S.FIDELITY_FAILED: [r.name for r in failed],
                S.DROP_REASON: first.name if first else None,
                S.DROP_DETAIL: first.explain(scores.get(first.column)) if first else None,
                S.SNIPPET: row[S.TEXT][:200] if first else None,
            }
        )
    return pa.Table.from_pylist(out, schema=SCORED_SCHEMA)
