"""The weights hash: sha256 over the weight files, cached beside them, recomputed on change,
null for a model that is not on this machine."""

from __future__ import annotations

import hashlib
import json
import os

from pipeline.models import weights


def model_dir(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model-00001.safetensors").write_bytes(b"\x01" * 1000)
    (folder / "sub" / "extra.bin").write_bytes(b"\x02" * 10)
    (folder / "config.json").write_text("{}")  # not weights: changing it keeps the hash
    (folder / ".tmp-copy.safetensors").write_bytes(b"half a file")  # hidden: skipped
    return folder


def coreutils_hash(folder, names):
    """sha256 of `sha256sum`'s output over the files (the module docstring's recipe)."""
    lines = "".join(
        f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in sorted(names)
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def test_the_hash_covers_the_weight_files_and_is_cached_beside_them(tmp_path, monkeypatch):
    folder = model_dir(tmp_path)
    digest = weights.weights_sha256(folder)
    assert digest == coreutils_hash(folder, ["model-00001.safetensors", "sub/extra.bin"])
    cache = json.loads((folder / weights.CACHE_NAME).read_text())
    assert cache["sha256"] == digest and sorted(cache["files"]) == [
        "model-00001.safetensors",
        "sub/extra.bin",
    ]
    (folder / "config.json").write_text('{"changed": true}')
    hashed = []
    monkeypatch.setattr(weights, "_sha256", lambda p: hashed.append(p.name) or "x")
    assert weights.weights_sha256(str(folder)) == digest and hashed == []  # from the cache

    monkeypatch.undo()
    extra = folder / "sub" / "extra.bin"
    before = extra.stat().st_mtime_ns
    extra.write_bytes(b"\x03" * 10)  # the same size; a later mtime (coarse clocks: forced)
    os.utime(extra, ns=(before + 10**9, before + 10**9))
    changed = weights.weights_sha256(folder)
    assert changed != digest
    assert changed == coreutils_hash(folder, ["model-00001.safetensors", "sub/extra.bin"])


def test_a_read_only_folder_is_hashed_without_a_cache(tmp_path):
    folder = model_dir(tmp_path)
    expected = coreutils_hash(folder, ["model-00001.safetensors", "sub/extra.bin"])
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root writes anyway: nothing to check
            return
        assert weights.weights_sha256(folder) == expected
        assert not (folder / weights.CACHE_NAME).exists()
    finally:
        folder.chmod(0o755)


def test_a_model_that_is_not_here_has_no_hash(tmp_path):
    assert weights.weights_sha256("Qwen/Qwen3-30B-A3B-Instruct-2507") is None  # a hub id
    (tmp_path / "tokenizer_only").mkdir()
    assert weights.weights_sha256(tmp_path / "tokenizer_only") is None
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    assert weights.weights_sha256(gguf) == coreutils_hash(tmp_path, ["model.gguf"])
