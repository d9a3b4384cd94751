"""Sparse upcycling: a dense Llama checkpoint -> a Mixtral-style MoE with the same outputs.

Every expert is a copy of the dense MLP (gate_proj -> w1, down_proj -> w2, up_proj -> w3) and
a router is added. Mixtral renormalizes the top-k routing weights to sum to 1, so the sum over
k identical experts is the dense MLP's output whatever the router says; a zero router makes it
exact (uniform softmax, every weight 1/k) and leaves routing free to specialise once the
experts are trained apart.

The tensors are written straight to safetensors under the classic
`model.layers.N.block_sparse_moe.experts.E.w1/w2/w3.weight` names that vLLM's Mixtral loads.
Building a `MixtralForCausalLM` instead would cost a random init (or, on the meta device, leave
the tied lm_head and the rotary buffer on meta), and transformers 5 holds the experts fused
(`experts.gate_up_proj`) in memory; the loader converts the classic names on the way in.

    from pipeline.models.upcycle import upcycle_to_mixtral
    upcycle_to_mixtral(Path(".cache/models/smollm2-135m-instruct"), Path("/tmp/moe"), num_experts=4)
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

log = logging.getLogger("pipeline.models")

WEIGHTS_NAME = "model.safetensors"
# vLLM's CPU fused-MoE kernel tiles hidden and intermediate dims by 32 (FACTS.md).
CPU_MOE_ALIGNMENT = 32
# Files copied unchanged from the dense folder: tokenizer, chat template, generation defaults.
_SIDE_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
)
# Dense MLP projection -> Mixtral expert weight.
_EXPERT_MAP = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}
ROUTER_INITS = ("zeros", "normal")


def mixtral_config_from_llama(dense, num_experts: int, top_k: int, dtype: torch.dtype):
    """A MixtralConfig with the dense model's shapes, RoPE, norms, tokens and tying."""
    from transformers import MixtralConfig

    if dense.model_type != "llama":
        raise ValueError(f"expected a llama checkpoint, got model_type={dense.model_type!r}")
    # Mixtral's attention and experts have no biases: a biased dense model would lose them.
    if getattr(dense, "attention_bias", False) or getattr(dense, "mlp_bias", False):
        raise ValueError("dense model uses biases; Mixtral layers have none")
    if not 1 <= top_k <= num_experts:
        raise ValueError(f"need 1 <= top_k <= num_experts, got top_k={top_k}, E={num_experts}")
    for name in ("hidden_size", "intermediate_size"):
        if getattr(dense, name) % CPU_MOE_ALIGNMENT:
            log.warning("%s=%d is not a multiple of %d: vLLM's CPU MoE kernel will refuse it",
                        name, getattr(dense, name), CPU_MOE_ALIGNMENT)  # fmt: skip
    config = MixtralConfig(
        vocab_size=dense.vocab_size,
        hidden_size=dense.hidden_size,
        intermediate_size=dense.intermediate_size,
        num_hidden_layers=dense.num_hidden_layers,
        num_attention_heads=dense.num_attention_heads,
        num_key_value_heads=dense.num_key_value_heads,
        head_dim=getattr(dense, "head_dim", None),
        hidden_act=dense.hidden_act,
        max_position_embeddings=dense.max_position_embeddings,
        rms_norm_eps=dense.rms_norm_eps,
        # transformers 5 keeps theta and scaling in rope_parameters (theta 100000 here);
        # copying a `rope_theta` attribute would silently fall back to Mixtral's 1e6.
        rope_parameters=dict(dense.rope_parameters),
        tie_word_embeddings=dense.tie_word_embeddings,
        bos_token_id=dense.bos_token_id,
        eos_token_id=dense.eos_token_id,
        pad_token_id=dense.pad_token_id,
        sliding_window=None,
        num_local_experts=num_experts,
        num_experts_per_tok=top_k,
        router_jitter_noise=0.0,
    )
    # A config saved on its own has no `architectures`, and vLLM picks the model class from it.
    config.architectures = ["MixtralForCausalLM"]
    config.dtype = dtype
    return config


def expected_tensor_names(num_layers: int, num_experts: int, tied: bool) -> set[str]:
    names = {"model.embed_tokens.weight", "model.norm.weight"}
    if not tied:
        names.add("lm_head.weight")
    for i in range(num_layers):
        p = f"model.layers.{i}"
        names |= {f"{p}.input_layernorm.weight", f"{p}.post_attention_layernorm.weight"}
        names |= {f"{p}.self_attn.{x}_proj.weight" for x in "qkvo"}
        names.add(f"{p}.block_sparse_moe.gate.weight")
        for e in range(num_experts):
            names |= {f"{p}.block_sparse_moe.experts.{e}.{w}.weight" for w in ("w1", "w2", "w3")}
    return names


def check_tensor_names(moe_dir: Path) -> dict:
    """Compare the saved tensor names with the classic Mixtral layout; raise on any difference."""
    config = json.loads((Path(moe_dir) / "config.json").read_text())
    expected = expected_tensor_names(
        config["num_hidden_layers"], config["num_local_experts"], config["tie_word_embeddings"]
    )
    with safe_open(Path(moe_dir) / WEIGHTS_NAME, framework="pt") as f:
        found = set(f.keys())
    if found != expected:
        raise RuntimeError(
            f"tensor names differ from the Mixtral layout: missing {sorted(expected - found)[:5]}, "
            f"unexpected {sorted(found - expected)[:5]}"
        )
    return {"ok": True, "tensors": len(found), "layout": "block_sparse_moe.experts.N.w1/w2/w3"}


def upcycled_state_dict(
    dense: dict[str, torch.Tensor],
    num_layers: int,
    num_experts: int,
    hidden_size: int,
    router_init: str = "zeros",
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    if router_init not in ROUTER_INITS:
        raise ValueError(f"router_init must be one of {ROUTER_INITS}, got {router_init!r}")
    dtype = dense["model.embed_tokens.weight"].dtype
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, tensor in dense.items():
        if ".mlp." not in name:
            out[name] = tensor
    for i in range(num_layers):
        prefix = f"model.layers.{i}"
        for proj, w in _EXPERT_MAP.items():
            weight = dense.pop(f"{prefix}.mlp.{proj}.weight")
            for e in range(num_experts):
                # safetensors refuses tensors that share storage: each expert gets its own copy.
                out[f"{prefix}.block_sparse_moe.experts.{e}.{w}.weight"] = weight.clone()
        router = torch.zeros(num_experts, hidden_size, dtype=dtype)
        if router_init == "normal":
            # Small random logits: uneven but near-uniform routing. Outputs still equal the dense
            # model's (identical experts, renormalized weights) up to float rounding.
            router.normal_(0.0, 0.02, generator=generator)
        out[f"{prefix}.block_sparse_moe.gate.weight"] = router
    leftover = [k for k in out if ".mlp." in k]
    if leftover:
        raise RuntimeError(f"unmapped dense MLP tensors: {leftover[:3]}")
    return out


def upcycle_to_mixtral(
    dense_dir: Path,
    out_dir: Path,
    num_experts: int = 4,
    top_k: int = 2,
    router_init: str = "zeros",
    dtype: torch.dtype | None = None,
) -> Path:
    """Write a Mixtral checkpoint (config, weights, tokenizer) to out_dir and return it.

    dtype None keeps the dense checkpoint's dtype (float32 for the GGUF conversion).
    """
    from transformers import AutoConfig

    dense_dir, out_dir = Path(dense_dir), Path(out_dir)
    dense_config = AutoConfig.from_pretrained(dense_dir, local_files_only=True)
    dense = load_file(dense_dir / WEIGHTS_NAME)
    if dtype is not None:
        dense = {k: v.to(dtype) for k, v in dense.items()}
    dtype = dense["model.embed_tokens.weight"].dtype
    config = mixtral_config_from_llama(dense_config, num_experts, top_k, dtype)
    # A tied checkpoint stores only the embedding; the MoE keeps the tie and needs no lm_head.
    if config.tie_word_embeddings:
        dense.pop("lm_head.weight", None)

    log.info("upcycling %s: %d experts, top-%d, router %s, %s",
             dense_dir.name, num_experts, top_k, router_init, dtype)  # fmt: skip
    state = upcycled_state_dict(
        dense, config.num_hidden_layers, num_experts, config.hidden_size, router_init
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, out_dir / WEIGHTS_NAME, metadata={"format": "pt"})
    del state, dense
    config.save_pretrained(out_dir)
    for name in _SIDE_FILES:
        if (dense_dir / name).is_file():
            shutil.copy2(dense_dir / name, out_dir / name)
    check_tensor_names(out_dir)
    log.info("saved MoE checkpoint to %s", out_dir)
    return out_dir


def max_logit_difference(dense_dir: Path, moe_dir: Path, text: str = "The capital of") -> float:
    """Load both checkpoints in transformers (float32) and compare logits on one input.

    Also proves the transformers loader maps every saved name (no missing or unexpected keys).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(dense_dir, local_files_only=True)
    ids = tokenizer(text, return_tensors="pt")
    logits = []
    for path in (dense_dir, moe_dir):
        model, info = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32, local_files_only=True, output_loading_info=True
        )
        bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys") and v}
        if bad:
            raise RuntimeError(f"{path}: transformers could not map every tensor: {bad}")
        with torch.no_grad():
            logits.append(model(**ids).logits)
        del model
    return float((logits[0] - logits[1]).abs().max())
