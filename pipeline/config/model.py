"""The `model` group (conf/model/): the rewriting model, its engine and its GPU sizing."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Attention(StrEnum):
    """The KV-cache layout of `model.sizing.attention` (its comment says what each holds)."""

    gqa = "gqa"
    mla = "mla"


@dataclass
class PresetSizing:
    """The numbers a GPU preset's memory arithmetic needs (pipeline/models/sizing.py); the
    architecture's from the checkpoint's config.json, the device's from the GPU it targets."""

    # Memory of one GPU as torch reports it, GiB: 79 for an 80 GB A100/H100, 23.5 for a 24 GB
    # card. gpu_memory_utilization is a fraction of this.
    gpu_memory_gib: float = 0.0
    # Total parameters in billions, every expert counted: all of them sit in GPU memory.
    params_b: float = 0.0
    # Bytes per parameter as loaded: 2 for bf16; a 4-bit AWQ/GPTQ checkpoint's size / params
    # (about 0.55: 4-bit experts with their group scales, bf16 embeddings and head).
    bytes_per_param: float = 2.0
    # Layers that keep a per-token KV cache (all of them, but for a hybrid's linear layers).
    kv_layers: int = 0
    # "gqa": keys and values of num_kv_heads x head_dim per layer, the heads split across
    # tensor-parallel ranks; "mla" (DeepSeek-V3 style): one latent of kv_lora_rank +
    # qk_rope_head_dim per layer, held whole by every rank.
    attention: Attention = Attention.gqa
    num_kv_heads: int = 0
    head_dim: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    kv_cache_bytes: int = 2  # bytes per cached value: bf16
    # Linear-attention layers (Kimi Delta Attention): a fixed state per sequence (fp32
    # heads x head_dim x head_dim, plus short-convolution windows) instead of a per-token cache.
    linear_layers: int = 0
    linear_num_heads: int = 0
    linear_head_dim: int = 0
    linear_conv_kernel: int = 4


@dataclass
class ModelConfig:
    """The rewriter: a local checkpoint built by the project or a hub id on a GPU cluster."""

    name: str = "smollm2-moe-e4-top2"
    # "local:smollm2-moe" (built on first use by jobs/build_model.py), "local:smollm2" (the
    # dense model), a directory, or a hub id (GPU clusters, where weights can be fetched).
    path: str = "local:smollm2-moe"
    tokenizer: str | None = None  # null: the model's own
    # Off unless a preset needs it: remote code runs with the job's rights.
    trust_remote_code: bool = False
    # Keyword arguments of vllm.LLM(...): dtype, max_model_len, tensor_parallel_size, ...
    engine: dict[str, Any] = field(default_factory=dict)
    num_gpus_per_actor: float = 0
    num_cpus_per_actor: float = 1
    num_actors: int = 1
    chat_template_has_system: bool = True
    # Environment of the engine's process, set before vLLM is imported.
    env: dict[str, str] = field(default_factory=dict)
    # Shape of the locally built MoE (sparse upcycling of the dense model).
    num_experts: int = 4
    top_k: int = 2
    # GPU presets: what their memory arithmetic needs (tests/models/test_presets.py checks
    # every preset with it). null on CPU.
    sizing: PresetSizing | None = None
