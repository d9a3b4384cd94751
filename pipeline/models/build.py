"""Build-once cache of the local models: SmolLM2 (dense) and its upcycled Mixtral MoE.

Each model lives in a folder named by its parameters under the cache root, e.g.
`.cache/models/smollm2-135m-instruct-moe-e4-top2`. A folder is built under a temporary name
and renamed into place when complete, so a crash never leaves a half-written model that looks
finished; a file lock makes concurrent callers (several Ray actors on one node) build once and
the rest wait. `build_info.json` records where the weights came from, what was checked, and
the weights' sha256 (also cached in weights.sha256.json, pipeline/models/weights.py).

    from pipeline.models.build import ensure_local_moe, resolve_model_path
    moe_dir = ensure_local_moe()                    # builds on first use (~1 min), then cached
    ensure_local_moe(num_experts=8, top_k=2)        # another folder, another build
    resolve_model_path("local:smollm2-moe", num_experts=4, top_k=2)   # conf/model/local_moe.yaml
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.models.weights import weights_sha256
from pipeline.plumbing.hashing import file_sha256

log = logging.getLogger("pipeline.models")

# Relative to the directory the job starts in; Ray workers may start elsewhere (a job's
# working_dir copy), so drivers pass an absolute path or set PIPELINE_MODEL_CACHE.
DEFAULT_CACHE = Path(os.environ.get("PIPELINE_MODEL_CACHE", ".cache/models"))
DENSE_NAME = "smollm2-135m-instruct"
INFO_NAME = "build_info.json"
LOCAL_PREFIX = "local:"
_MOE_NAME = re.compile(r"smollm2-moe-e(?P<experts>\d+)-top(?P<top_k>\d+)")
# Provenance recorded for the dense build and carried into every MoE built from it.
SOURCE_KEYS = ("source_package", "source_version", "gguf_file", "gguf_sha256")


def moe_dir_name(num_experts: int, top_k: int) -> str:
    return f"{DENSE_NAME}-moe-e{num_experts}-top{top_k}"


def dir_size_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def read_build_info(model_dir: Path) -> dict:
    return json.loads((Path(model_dir) / INFO_NAME).read_text())


@contextmanager
def _locked(cache_root: Path, name: str) -> Iterator[None]:
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_cached(
    cache_root: Path, name: str, build: Callable[[Path], dict], force: bool = False
) -> Path:
    """Return cache_root/name, building it with `build(tmp_dir) -> info` if absent (or forced)."""
    cache_root = Path(cache_root)
    final = cache_root / name
    with _locked(cache_root, name):
        if (final / INFO_NAME).is_file() and not force:
            log.info("using cached %s", final)
            return final
        tmp = cache_root / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        start = time.perf_counter()
        try:
            info = build(tmp)
            # Hashed once here and cached beside the weights (pipeline/models/weights.py):
            # every rewrite row names the weights it came from (lineage, `model_hash`).
            info["weights_sha256"] = weights_sha256(tmp)
            info["build_seconds"] = round(time.perf_counter() - start, 1)
            info["size_bytes"] = dir_size_bytes(tmp)
            # Written last: its presence marks a finished build.
            (tmp / INFO_NAME).write_text(json.dumps(info, indent=2) + "\n")
            if final.exists():  # forced rebuild, or a folder left without build_info.json
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("built %s in %.0f s (%.0f MB)", final, info["build_seconds"], info["size_bytes"] / 1e6)
    return final


def _source_info() -> dict:
    # smollm2 and upcycle import torch: loaded only when a model is built, not resolved.
    from pipeline.models.smollm2 import SOURCE_PACKAGE, find_gguf, source_version

    gguf = find_gguf()
    return {
        "source_package": SOURCE_PACKAGE,
        "source_version": source_version(),
        "gguf_file": gguf.name,
        "gguf_sha256": file_sha256(gguf),
    }


def ensure_dense(cache_root: Path = DEFAULT_CACHE, force: bool = False) -> Path:
    """The dense SmolLM2-135M-Instruct checkpoint (float32, de-quantized from the GGUF)."""

    def build(tmp: Path) -> dict:
        import transformers  # torch and transformers only when a model is built

        from pipeline.models.smollm2 import convert_gguf_to_checkpoint

        info = _source_info()
        log.info("step 1/1: converting %s %s", info["source_package"], info["gguf_file"])
        convert_gguf_to_checkpoint(tmp)
        return {
            **info,
            "kind": "dense",
            "architecture": "LlamaForCausalLM",
            "dtype": "float32",
            "transformers_version": transformers.__version__,
        }

    return _build_cached(Path(cache_root), DENSE_NAME, build, force)


def ensure_local_moe(
    cache_root: Path = DEFAULT_CACHE,
    num_experts: int = 4,
    top_k: int = 2,
    router_init: str = "zeros",
    force: bool = False,
    verify: bool = True,
) -> Path:
    """The upcycled Mixtral MoE folder for (num_experts, top_k); built on first use, then cached.

    verify loads the dense and MoE checkpoints in transformers and records the largest logit
    difference (0.0 with a zero router) in build_info.json; it adds ~10 s to a build.
    """
    cache_root = Path(cache_root)
    dense_dir = ensure_dense(cache_root, force=False)

    def build(tmp: Path) -> dict:
        import transformers  # torch and transformers only when a model is built

        from pipeline.models.upcycle import check_tensor_names, max_logit_difference
        from pipeline.models.upcycle import upcycle_to_mixtral as upcycle

        log.info("step 1/3: upcycling %s -> %d experts, top-%d", DENSE_NAME, num_experts, top_k)
        upcycle(dense_dir, tmp, num_experts=num_experts, top_k=top_k, router_init=router_init)
        log.info("step 2/3: checking saved tensor names")
        dense_info = read_build_info(dense_dir)
        info = {
            **{k: dense_info[k] for k in SOURCE_KEYS},
            "kind": "moe",
            "architecture": "MixtralForCausalLM",
            "dense_dir": dense_dir.name,
            "num_experts": num_experts,
            "top_k": top_k,
            "router_init": router_init,
            "dtype": "float32",
            "transformers_version": transformers.__version__,
            "tensor_names": check_tensor_names(tmp),
        }
        if verify:
            log.info("step 3/3: comparing logits with the dense model in transformers")
            info["max_logit_diff_vs_dense"] = max_logit_difference(dense_dir, tmp)
        return info

    return _build_cached(cache_root, moe_dir_name(num_experts, top_k), build, force)


def resolve_model_path(
    path: str, cache_root: Path = DEFAULT_CACHE, num_experts: int = 4, top_k: int = 2
) -> str:
    """Map a model config's `path` to something vLLM loads; `local:` names build on demand.

    `local:smollm2` is the dense model, `local:smollm2-moe` the MoE of shape (num_experts,
    top_k), `local:smollm2-moe-e8-top2` a fixed shape; anything else (a HF id, a folder) passes
    through unchanged.
    """
    if not path.startswith(LOCAL_PREFIX):
        return path
    name = path[len(LOCAL_PREFIX) :]
    if name == "smollm2":
        return str(ensure_dense(cache_root).resolve())
    if name == "smollm2-moe":
        return str(ensure_local_moe(cache_root, num_experts, top_k).resolve())
    if match := _MOE_NAME.fullmatch(name):
        experts, k = int(match["experts"]), int(match["top_k"])
        return str(ensure_local_moe(cache_root, experts, k).resolve())
    raise ValueError(
        f"unknown local model {path!r}; known: local:smollm2, local:smollm2-moe, "
        "local:smollm2-moe-e<experts>-top<k>"
    )
