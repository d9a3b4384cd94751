"""Checks a config dataclass makes of itself when it is built: choices and ranges.

A dataclass that subclasses `Checked` coerces its Enum-typed fields (a value built in code as
a plain string becomes the member) and lists its own problems in `problems()`; building it
with a wrong value raises ConfigError, one "field: problem" line each. `to_config` puts the
dotted path in front (pipeline/config/root.py), so the job's message names the whole key.

    @dataclass
    class ShingleConfig(Checked):
        n: int = 5
        def problems(self) -> list[str]:
            return at_least(self, 1, "n")
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import typing
from typing import Any

from pipeline.config.errors import ConfigError


class Checked:
    """Mixin of the config dataclasses: choices coerced and ranges checked in __post_init__."""

    def __post_init__(self) -> None:
        problems = _coerce_choices(self)
        if not problems:
            problems = self.problems()
        if problems:
            raise ConfigError("\n".join(problems))

    def problems(self) -> list[str]:
        """'field: problem' lines for values out of range (fields of this dataclass only)."""
        return []


@functools.cache
def _choice_fields(cls: type) -> dict[str, type[enum.Enum]]:
    """{field: Enum type} of the fields typed with an Enum (or an optional one)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        kinds = [t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not None]
        enums = [t for t in kinds if isinstance(t, type) and issubclass(t, enum.Enum)]
        if enums:
            out[f.name] = enums[0]
    return out


def _coerce_choices(obj: Any) -> list[str]:
    problems = []
    for name, kind in _choice_fields(type(obj)).items():
        value = getattr(obj, name)
        if value is None or isinstance(value, kind):
            continue
        try:
            setattr(obj, name, kind(value))
        except ValueError:
            problems.append(f"{name}: {value!r} not in {tuple(m.value for m in kind)}")
    return problems


def _bad(obj: Any, names: tuple[str, ...], ok: typing.Callable[[Any], bool]) -> list[tuple]:
    """(name, value) of the named fields whose value is set (not None) and not ok."""
    return [(n, v) for n in names if (v := getattr(obj, n)) is not None and not ok(v)]


def at_least(obj: Any, low: float, *names: str, or_null: bool = False) -> list[str]:
    """Values >= low (None passes: `or_null` says so in the message)."""
    bound = f">= {low} or null" if or_null else f">= {low}"
    return [f"{n}: must be {bound}, got {v}" for n, v in _bad(obj, names, lambda v: v >= low)]


def positive(obj: Any, *names: str) -> list[str]:
    return [f"{n}: must be positive, got {v}" for n, v in _bad(obj, names, lambda v: v > 0)]


def within(
    obj: Any, low: float, high: float, *names: str, low_open: bool = False, high_open: bool = False
) -> list[str]:
    """Values in the interval; `(0, 1]` is low_open=True."""
    shown = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"

    def ok(v: float) -> bool:
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below

    return [f"{n}: must be in {shown}, got {v}" for n, v in _bad(obj, names, ok)]


# Shares and probabilities among the quality and fidelity thresholds: in [0, 1].
_FRACTIONS = ("_frac", "_lines", "min_alpha_words", "min_score", "_ngram_ratio",
              "max_novel_entity_ratio", "min_compression_ratio")  # fmt: skip


def thresholds(obj: Any) -> list[str]:
    """Every number is >= 0; shares and probabilities (names in _FRACTIONS) are <= 1 too."""
    problems = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if value < 0:
            problems.append(f"{f.name}: must be >= 0, got {value}")
        elif f.name.endswith(_FRACTIONS) and value > 1:
            problems.append(f"{f.name}: must be in [0, 1], got {value}")
    return problems
