"""The README's configuration reference matches the config dataclasses and conf/ (make docs)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import ROOT

from pipeline import config_reference as ref
from pipeline.config import Config

README = ROOT / "README.md"


def test_readme_reference_is_up_to_date():
    text = README.read_text()
    assert ref.BEGIN in text and ref.END in text, "README lacks the config-reference markers"
    current = text.split(ref.BEGIN, 1)[1].split(ref.END, 1)[0].strip("\n")
    expected = ref.render().strip("\n")
    if current != expected:
        old, new = set(current.splitlines()), set(expected.splitlines())
        changed = [f"- {line}" for line in current.splitlines() if line not in new][:5]
        changed += [f"+ {line}" for line in expected.splitlines() if line not in old][:5]
        pytest.fail(
            "README.md's configuration reference is out of date: run `make docs`\n"
            + "\n".join(changed)
        )


def leaf_keys(cls: type, prefix: str = "") -> list[str]:
    """Every key reachable through nested dataclass fields (not through dicts or lists)."""
    keys = []
    for f in dataclasses.fields(cls):
        value = getattr(cls(), f.name) if f.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(value):
            keys += leaf_keys(type(value), f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def test_every_key_of_the_config_has_a_row_with_its_comment():
    rows = {r.key: r for r in ref.reference_rows(Config, defaults=ref.composed_defaults())}
    missing = [k for k in leaf_keys(Config) if k not in rows]
    assert not missing, missing
    assert rows["corpus.max_doc_bytes"].doc.startswith("Larger documents are quarantined")
    assert rows["corpus.normalize.nfc"].doc.startswith("Unicode NFC")  # a trailing comment
    assert rows["corpus.sources.<name>.weight"].type == "float"
    assert rows["corpus.sources.<name>.paths"].default == "???"  # required
    assert rows["model.tokenizer"].type == "str | None"
    # Defaults are the default composition's (conf/rewrite/demo.yaml), not the dataclass's.
    assert rows["rewrite.max_docs_per_source"].default == "8"


def test_group_options_are_listed_with_the_default_in_bold():
    text = ref.render()
    assert "| `model=` |" in text and "**local_moe**" in text and "qwen3_30b_a3b" in text
    assert all(o in text for o in ref.group_options()["cluster"])


# Shapes other config classes may take: Optional, dict and list of dataclasses, Any.
@dataclass
class Leaf:
    """A leaf section."""

    # Above the field,
    # on two lines.
    size: int = 3  # and trailing.
    name: str = ""


@dataclass
class Shapes:
    # The leaf.
    one: Leaf = field(default_factory=Leaf)
    maybe: Leaf | None = None
    by_name: dict[str, Leaf] = field(default_factory=dict)
    listed: list[Leaf] = field(default_factory=list)  # a comment at the end of a multi-line field
    pair: tuple[Leaf, ...] = ()
    anything: Any = None
    mapping: dict[str, Any] = field(default_factory=lambda: {"a": 1, "b": [1, 2]})
    # An annotation that cannot resolve.
    unknown: NotDefinedAnywhere | None = None  # noqa: F821
    long: str = "x" * 100


def test_generic_walk_over_nested_optional_dict_list_and_any():
    rows = {r.key: r for r in ref.reference_rows(Shapes)}
    assert rows["one"].doc == "The leaf. A leaf section."
    assert rows["one.size"].doc == "Above the field, on two lines. and trailing."
    assert rows["one.size"].default == "3" and rows["one.name"].default == "''"
    assert rows["maybe"].type == "Leaf | None" and "maybe.size" in rows
    assert "by_name.<name>.size" in rows and "listed.<index>.name" in rows
    assert "pair.<index>.size" in rows and rows["pair"].default == "[]"
    assert rows["listed"].doc.startswith("a comment at the end of a multi-line field")
    assert rows["anything"].type == "Any" and rows["anything"].default == "null"
    assert rows["mapping"].default == "{a: 1, b: [1, 2]}"
    assert rows["unknown"].type == "NotDefinedAnywhere | None"
    assert rows["unknown"].doc == "An annotation that cannot resolve."  # the pragma left out
    assert len(rows["long"].default) == ref.MAX_DEFAULT and rows["long"].default.endswith("…")


@pytest.mark.cli
def test_write_replaces_only_the_marked_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{ref.BEGIN}\nstale\n{ref.END}\nafter\n")
    command = [sys.executable, "-m", "pipeline.config_reference"]
    check = subprocess.run([*command, "--check", str(readme)], capture_output=True, text=True)
    assert check.returncode == 1 and "run `make docs`" in check.stdout
    subprocess.run([*command, "--write", str(readme)], check=True, cwd=ROOT)
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{ref.END}\nafter\n")
    assert "| `corpus.max_doc_bytes` |" in text and "stale" not in text
    assert subprocess.run([*command, "--check", str(readme)]).returncode == 0


# In process: main() is what `python -m pipeline.config_reference` runs; the test above runs
# the command itself.
def test_missing_markers_are_a_clear_error(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# No markers\n")
    assert ref.main(["--write", str(readme)]) == 2
    assert "markers not found" in capsys.readouterr().err
    assert readme.read_text() == "# No markers\n"
