"""Security defaults that configs and data cannot talk their way around.

- `confined(path, root)`: a path built from config or data must stay inside its root
  (ids and names with `..`, `/` or a symlink out of the root raise PathEscape).
- `name_problems(cfg)`, `security_problems(cfg)`: `validate()`'s share, checked on the config
  as it is run: run and source names are plain names; a Hydra `_target_` anywhere in the
  config must name one of the project's own classes (`pipeline.`), and remote code is switched
  on only by `model.trust_remote_code`, never through `model.engine`.
- The `plain_name` resolver keeps Hydra's run directory under run.output_root: Hydra creates
  it (and writes .hydra/ there) before the job's own validation can refuse a bad run.name.

    from pipeline.security import confined
    out = confined(run_dir / split / file_name, run_dir)   # PathEscape if it leaves run_dir

Nothing in the project instantiates classes from config (no hydra.utils.instantiate) or
unpickles or evaluates input data; tests/test_security.py keeps it that way.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

# The rule validate() applies to run.name and source names: a single path component.
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ALLOWED_TARGET_PREFIX = "pipeline."
# Where Hydra puts a run whose run.name is not a plain name: inside run.output_root, and
# never used by a real run (a plain name cannot start with '_'); the job then refuses.
REFUSED_RUN_DIR = "_refused-run-name"


class PathEscape(ValueError):
    """A path built from config or data would leave the directory it must stay in."""


def confined(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> Path:
    """`path` if it lies below `root` once `..` and symlinks are resolved; else PathEscape.

    Root itself is refused too: a name that resolves to nothing ("", ".", "a/..") must not
    make a caller write over, or remove, the whole root. The path need not exist yet.
    """
    root_resolved = Path(root).resolve()
    resolved = Path(path).resolve()
    if root_resolved not in resolved.parents:
        raise PathEscape(f"{path} leaves {root}")
    return Path(path)


def is_plain_name(name: object) -> bool:
    return isinstance(name, str) and PLAIN_NAME.match(name) is not None


def _plain_name(name: object) -> str:
    return name if is_plain_name(name) else REFUSED_RUN_DIR


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("plain_name"):
        OmegaConf.register_new_resolver("plain_name", _plain_name)


register_resolvers()


# --- config checks ------------------------------------------------------------------------


def _walk(node: Any, key: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every mapping entry in a config tree of dataclasses, dicts, lists."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        items = ((f.name, getattr(node, f.name)) for f in dataclasses.fields(node))
    elif isinstance(node, dict):
        items = ((str(k), v) for k, v in node.items())
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, f"{key}[{i}]")
        return
    else:
        return
    for name, value in items:
        dotted = f"{key}.{name}" if key else name
        yield dotted, value
        yield from _walk(value, dotted)


def target_problems(cfg: Any) -> list[str]:
    """A `_target_` that does not name a `pipeline.` class, wherever it sits in the config."""
    return [
        f"{key}: {value!r} is not allowed; `_target_` may only name the project's own "
        f"classes ({ALLOWED_TARGET_PREFIX}...)"
        for key, value in _walk(cfg, "")
        if key.rsplit(".", 1)[-1] == "_target_"
        and not (isinstance(value, str) and value.startswith(ALLOWED_TARGET_PREFIX))
    ]


def remote_code_problems(cfg: Any) -> list[str]:
    """Remote code has one switch, model.trust_remote_code, so a review finds it in one place."""
    model = getattr(cfg, "model", None)
    engine = getattr(model, "engine", None) or {}
    if "trust_remote_code" in engine:
        return [
            "model.engine.trust_remote_code: not allowed here; set model.trust_remote_code "
            "(off by default: remote code runs with the job's rights)"
        ]
    return []


def name_problems(cfg: Any) -> list[str]:
    """run.name and source names become path components: each must be one plain name."""
    problems = []
    if not is_plain_name(cfg.run.name):
        problems.append(f"run.name: {cfg.run.name!r} is not a plain name")
    problems += [
        f"corpus.sources.{name}: a source name is letters, digits, '_', '-', '.'"
        for name in cfg.corpus.sources
        if not is_plain_name(name)
    ]
    return problems


def security_problems(cfg: Any) -> list[str]:
    return target_problems(cfg) + remote_code_problems(cfg)
