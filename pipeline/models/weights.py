"""The weights hash of a model: one sha256 over its weight files, cached beside them.

Lineage records it with every rewrite (`model_hash`), so two runs that name the same model
can tell whether they generated with the same weights. Hashing a few GB takes seconds, so the
result is kept in `weights.sha256.json` next to the weights with each file's size and mtime,
and recomputed only for a file that changed. The local model gets it when it is built
(pipeline/models/build.py); any other model folder when it is first resolved.

    from pipeline.models.weights import weights_sha256
    weights_sha256(".cache/models/smollm2-135m-instruct-moe-e4-top2")   # "3f1c..."
    weights_sha256("Qwen/Qwen3-30B-A3B-Instruct-2507")                  # None: a hub id

The hash is reproducible with coreutils: the sha256 of `sha256sum`'s output over the weight
files in byte order of their relative paths,
    cd <model> && LC_ALL=C ls *.safetensors | xargs sha256sum | sha256sum
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger("pipeline.models")

CACHE_NAME = "weights.sha256.json"
# What holds weights in the checkpoint formats vLLM and transformers load; configs,
# tokenizers and this cache do not change what the model computes.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_CHUNK = 1 << 20


def weight_files(model: Path) -> list[Path]:
    """The weight files of a model folder (or the file itself), in byte order of their
    relative paths; hidden files and folders (temporary copies) are skipped."""
    model = Path(model)
    if model.is_file():
        return [model]
    files = [
        p
        for p in model.rglob("*")
        if p.is_file()
        and p.suffix in WEIGHT_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(model).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(model).as_posix().encode())


def weights_sha256(model: str | Path) -> str | None:
    """sha256 over the model's weight files (see the module docstring), or None when the model
    is not on this machine: a hub id (vLLM downloads it into its own cache, at a revision
    this process does not pin, so hashing here would mean downloading it twice and could
    still hash other bytes than the engine loads) or a remote path. None too for a folder
    without weight files."""
    path = Path(str(model)).expanduser()
    if not path.exists():
        return None
    files = weight_files(path)
    if not files:
        return None
    root = path if path.is_dir() else path.parent
    cached = _read_cache(root) if path.is_dir() else {}
    entries = {}
    lines = []
    for file in files:
        name = file.relative_to(root).as_posix()
        stat = file.stat()
        entry = cached.get(name)
        if not entry or (entry.get("bytes"), entry.get("mtime_ns")) != (
            stat.st_size,
            stat.st_mtime_ns,
        ):
            entry = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _sha256(file)}
        entries[name] = entry
        lines.append(f"{entry['sha256']}  {name}\n")
    digest = hashlib.sha256("".join(lines).encode()).hexdigest()
    if path.is_dir() and entries != cached:
        _write_cache(root, entries, digest)
    return digest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read_cache(root: Path) -> dict:
    try:
        return json.loads((root / CACHE_NAME).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _write_cache(root: Path, files: dict, digest: str) -> None:
    """Temp file + rename: actors resolving the same folder at once each write a whole file.
    A read-only folder (a shared checkpoint) keeps no cache; the hash is still returned."""
    final = root / CACHE_NAME
    tmp = root / f".{CACHE_NAME}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps({"sha256": digest, "files": files}, indent=2, sort_keys=True))
        os.replace(tmp, final)
    except OSError as err:
        log.info("weights hash of %s not cached (%s)", root, err)
        tmp.unlink(missing_ok=True)
