"""GPU memory arithmetic of a model preset: weights, KV cache and sequences in flight per GPU.

Pure functions over the preset (`model.sizing`, `model.engine`, the Ray resources) and the
rewrite config; no GPU and no vLLM needed, so every preset is checked on any machine
(tests/models/test_presets.py).

    shape = request_shape(cfg.rewrite)                 # tokens of one full-length request
    report = preset_arithmetic(cfg.model, shape)
    report.concurrent_requests, report.problems        # 541, [] for qwen3_30b_a3b

The model of vLLM's memory, per GPU of one engine (tensor_parallel_size x
pipeline_parallel_size GPUs):

- weights: params x bytes_per_param / GPUs of the engine.
- KV budget: gpu_memory_gib x gpu_memory_utilization - weights - OVERHEAD_GIB. vLLM gives
  the KV cache what its memory profile leaves of the utilization share; the allowance stands
  for that profile (see OVERHEAD_GIB).
- per token: GQA keeps 2 (K and V) x kv heads x head_dim values per layer, the heads split
  across tensor-parallel ranks (at least one per rank); MLA keeps one latent
  (kv_lora_rank + qk_rope_head_dim) per layer, whole on every rank.
- per sequence (hybrid linear-attention models such as Kimi-Linear): each linear layer holds
  a fixed state, fp32 heads x head_dim x head_dim plus q/k/v short-convolution windows, the
  heads split across ranks. vLLM's hybrid allocator gives every layer the same page size
  (the attention block grows until its page holds one state) and groups layers, padding the
  smaller kind; `_request_bytes` mirrors that (vLLM's `_get_kv_cache_groups_uniform_page_size`).
  It is an estimate: the page rules change between vLLM versions.

vLLM admits a request only when its prompt's blocks fit and preempts running ones when the
cache fills; `concurrent_requests` is how many full-length requests hold their whole KV at
once, the analogue of vLLM's "Maximum concurrency" line at engine start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.config import ModelConfig, PresetSizing, RewriteConfig
from pipeline.config.model import Attention

GIB = 1024**3
# Memory inside gpu_memory_utilization that neither weights nor KV cache get: vLLM's profile
# run (one forward pass over max_num_batched_tokens tokens, 8192-16384 by default, whose MoE
# and attention intermediates are about 1-2 GiB for these 2-4k-hidden MoEs, plus a sampler
# pass over max_num_seqs x vocab logits), non-torch allocations (cuBLAS and NCCL workspaces,
# about 0.5 GiB) and a margin. CUDA graphs live in the 1 - utilization headroom.
OVERHEAD_GIB = 3.0
# Tokens of a rewrite prompt around the chunk and its context: the instruction, few-shot
# examples, headers and the chat template's role markers. The largest built-in template
# (nemotron_diverse_qa: instruction and one example, ~1,500 characters) is ~400 tokens at ~4
# characters per token, the template markers 20-50 more.
PROMPT_FRAME_TOKENS = 512
# The floor for GPU presets: at least this many sequences in flight where memory allows.
MIN_SEQS_IN_FLIGHT = 256
# max_num_seqs above this many times the full-length requests that fit would preempt all the
# time. Typical requests are shorter than full length (outputs end before max_tokens, the
# first chunk has no context, the prompt frame is a shared cached prefix), so up to 2x is fair.
MAX_OVERSUBSCRIPTION = 2.0
BLOCK_TOKENS = 16  # vLLM's default KV block, and the alignment of a hybrid's attention block
STATE_BYTES = 4  # linear-attention recurrent state is kept in fp32
VLLM_DEFAULT_UTILIZATION = 0.9


@dataclass(frozen=True)
class RequestShape:
    """Tokens of one full-length rewrite request."""

    chunk_tokens: int
    context_tokens: int
    frame_tokens: int
    max_tokens: int

    @property
    def total(self) -> int:
        return self.chunk_tokens + self.context_tokens + self.frame_tokens + self.max_tokens


def request_shape(rewrite: RewriteConfig, frame_tokens: int = PROMPT_FRAME_TOKENS) -> RequestShape:
    """The longest request the rewrite config sends: a full chunk, full context
    (autoregressive mode only), the prompt frame, and max_tokens of output. The truncation
    retry asks for twice max_tokens but is capped by max_model_len, so it needs no room here."""
    context = rewrite.context_tokens if rewrite.mode == "autoregressive" else 0
    return RequestShape(
        rewrite.max_chunk_tokens, context, frame_tokens, rewrite.sampling.max_tokens
    )


@dataclass
class PresetArithmetic:
    """A preset's numbers per GPU, and what is wrong with them (one line each)."""

    gpus_per_engine: int  # tensor_parallel_size x pipeline_parallel_size
    ray_gpus: float  # num_gpus_per_actor x num_actors: what the job asks Ray for
    engine_gpus: int  # gpus_per_engine x num_actors: what the engines use
    weights_gib: float
    kv_bytes_per_token: int
    state_bytes_per_seq: int  # linear-attention state (0 without linear layers)
    kv_budget_gib: float
    kv_tokens: int  # tokens of per-token cache the budget holds (no state counted)
    request_tokens: int
    concurrent_requests: int  # full-length requests whose whole KV fits at once
    max_model_len: int
    max_num_seqs: int
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        state = self.state_bytes_per_seq / 2**20
        per_seq = f", {state:.1f} MiB state/seq" if state else ""
        return (
            f"weights {self.weights_gib:.1f} GiB/GPU, KV budget {self.kv_budget_gib:.1f} GiB/GPU"
            f" ({self.kv_bytes_per_token // 1024} KiB/token{per_seq}, {self.kv_tokens:,} tokens),"
            f" {self.concurrent_requests} requests of {self.request_tokens} tokens at once,"
            f" max_num_seqs {self.max_num_seqs}"
        )


def kv_bytes_per_token(s: PresetSizing, tp: int, pp: int = 1) -> int:
    """Per-token KV cache on one GPU of the engine."""
    layers = math.ceil(s.kv_layers / pp)
    if s.attention == Attention.mla:
        return (s.kv_lora_rank + s.qk_rope_head_dim) * s.kv_cache_bytes * layers
    heads = max(1, s.num_kv_heads // tp)
    return 2 * heads * s.head_dim * s.kv_cache_bytes * layers


def _state_bytes_per_layer(s: PresetSizing, tp: int) -> int:
    if not s.linear_layers:
        return 0
    heads = max(1, s.linear_num_heads // tp)
    recurrent = heads * s.linear_head_dim * s.linear_head_dim * STATE_BYTES
    conv = 3 * heads * s.linear_head_dim * (s.linear_conv_kernel - 1) * s.kv_cache_bytes
    return recurrent + conv


def _request_bytes(s: PresetSizing, tp: int, pp: int, tokens: int) -> int:
    """KV cache and state one request of `tokens` tokens holds on one GPU."""
    per_token = kv_bytes_per_token(s, tp, pp)
    blocks = math.ceil(tokens / BLOCK_TOKENS)
    state = _state_bytes_per_layer(s, tp)
    linear_layers = math.ceil(s.linear_layers / pp)
    if not state:
        return blocks * BLOCK_TOKENS * per_token
    attn_layers = math.ceil(s.kv_layers / pp)
    if not attn_layers:
        return state * linear_layers
    # One page size for every layer: the attention block grows (in BLOCK_TOKENS steps) until
    # its page holds one state; layers go in groups of the smaller kind's count (the larger
    # count when within 1.5x), padding the last group; a sequence holds one page per state
    # group and ceil(tokens / block) pages per attention group.
    per_layer_token = per_token // attn_layers
    block = BLOCK_TOKENS * math.ceil(state / (BLOCK_TOKENS * per_layer_token))
    page = block * per_layer_token
    group = min(attn_layers, linear_layers)
    if max(attn_layers, linear_layers) < 1.5 * group:
        group = max(attn_layers, linear_layers)
    state_groups = math.ceil(linear_layers / group)
    attn_groups = math.ceil(attn_layers / group)
    return group * page * (state_groups + attn_groups * math.ceil(tokens / block))


def _sizing_problems(s: PresetSizing) -> list[str]:
    problems = []
    for key in ("gpu_memory_gib", "params_b", "bytes_per_param", "kv_layers", "kv_cache_bytes"):
        if getattr(s, key) <= 0:
            problems.append(f"model.sizing.{key}: must be > 0")
    if s.attention == Attention.gqa:
        needed = ("num_kv_heads", "head_dim")
    elif s.attention == Attention.mla:
        needed = ("kv_lora_rank", "qk_rope_head_dim")
    else:  # Hydra refuses other names; a PresetSizing built in Python is not checked
        known = tuple(a.value for a in Attention)
        return [*problems, f"model.sizing.attention: {s.attention!r} not in {known}"]
    if s.linear_layers:
        needed += ("linear_num_heads", "linear_head_dim", "linear_conv_kernel")
    problems += [f"model.sizing.{k}: must be > 0" for k in needed if getattr(s, k) <= 0]
    return problems


def preset_arithmetic(
    model: ModelConfig, request: RequestShape, overhead_gib: float = OVERHEAD_GIB
) -> PresetArithmetic:
    """Weights, KV budget and concurrency per GPU of a GPU preset, and its problems:

    - the engine's GPUs (tensor x pipeline parallel) are the GPUs its Ray actor reserves, so
      tensor_parallel_size x num_actors = num_gpus_per_actor x num_actors, what the rewrite
      stage asks Ray for (`pipeline.plumbing.resources.engine_actor_args`: num_gpus per actor);
    - weights, the overhead allowance and one max_model_len request fit within
      gpu_memory_utilization (vLLM refuses to start otherwise);
    - max_model_len covers a full-length request (`request`);
    - max_num_seqs is set, at least MIN_SEQS_IN_FLIGHT or every full-length request that
      fits, whichever is fewer, and at most MAX_OVERSUBSCRIPTION times what fits.
    """
    engine = model.engine
    tp = int(engine.get("tensor_parallel_size", 1))
    pp = int(engine.get("pipeline_parallel_size", 1))
    gpus = tp * pp
    utilization = float(engine.get("gpu_memory_utilization", VLLM_DEFAULT_UTILIZATION))
    max_model_len = int(engine.get("max_model_len") or 0)
    max_num_seqs = int(engine.get("max_num_seqs") or 0)
    report = PresetArithmetic(
        gpus_per_engine=gpus,
        ray_gpus=model.num_gpus_per_actor * model.num_actors,
        engine_gpus=gpus * model.num_actors,
        weights_gib=0.0,
        kv_bytes_per_token=0,
        state_bytes_per_seq=0,
        kv_budget_gib=0.0,
        kv_tokens=0,
        request_tokens=request.total,
        concurrent_requests=0,
        max_model_len=max_model_len,
        max_num_seqs=max_num_seqs,
    )
    problems = report.problems
    if report.engine_gpus != report.ray_gpus:
        problems.append(
            f"model.num_gpus_per_actor: {model.num_gpus_per_actor} GPUs per actor, but the engine"
            f" uses tensor_parallel_size x pipeline_parallel_size = {tp} x {pp}: the job asks Ray"
            f" for {report.ray_gpus:g} GPUs and the engines use {report.engine_gpus}"
        )
    if not 0 < utilization <= 1:
        problems.append(f"model.engine.gpu_memory_utilization: {utilization} not in (0, 1]")
    if max_model_len < 1:
        problems.append("model.engine.max_model_len: not set (vLLM would take the model's own)")
    if max_num_seqs < 1:
        problems.append("model.engine.max_num_seqs: not set; a GPU preset sizes its batch")
    s = model.sizing
    if s is None:
        problems.append("model.sizing: a GPU preset needs one (pipeline/config/model.py)")
        return report
    sizing_problems = _sizing_problems(s)
    if sizing_problems:
        problems += sizing_problems
        return report

    weights = s.params_b * 1e9 * s.bytes_per_param / gpus
    budget = s.gpu_memory_gib * GIB * utilization - weights - overhead_gib * GIB
    report.weights_gib = weights / GIB
    report.kv_bytes_per_token = kv_bytes_per_token(s, tp, pp)
    report.state_bytes_per_seq = _state_bytes_per_layer(s, tp) * math.ceil(s.linear_layers / pp)
    report.kv_budget_gib = budget / GIB
    report.kv_tokens = max(0, int(budget // report.kv_bytes_per_token))
    per_request = _request_bytes(s, tp, pp, request.total)
    report.concurrent_requests = max(0, int(budget // per_request))

    room = f"{s.gpu_memory_gib:g} GiB x {utilization:g} = {s.gpu_memory_gib * utilization:.1f} GiB"
    if budget <= 0:
        problems.append(
            f"model.sizing: weights {report.weights_gib:.1f} GiB + overhead {overhead_gib:g} GiB"
            f" per GPU exceed {room}; more tensor_parallel_size or a smaller dtype"
        )
    elif max_model_len and _request_bytes(s, tp, pp, max_model_len) > budget:
        problems.append(
            f"model.engine.max_model_len: one {max_model_len}-token sequence needs"
            f" {_request_bytes(s, tp, pp, max_model_len) / GIB:.2f} GiB of KV cache, the"
            f" budget is {report.kv_budget_gib:.2f} GiB per GPU"
        )
    if max_model_len and max_model_len < request.total:
        problems.append(
            f"model.engine.max_model_len: {max_model_len} < a full request: chunk"
            f" {request.chunk_tokens} + context {request.context_tokens} + prompt frame"
            f" {request.frame_tokens} + max_tokens {request.max_tokens} = {request.total}"
        )
    if max_num_seqs and report.concurrent_requests > 0:
        floor = min(MIN_SEQS_IN_FLIGHT, report.concurrent_requests)
        ceiling = MAX_OVERSUBSCRIPTION * report.concurrent_requests
        if max_num_seqs < floor:
            problems.append(
                f"model.engine.max_num_seqs: {max_num_seqs} < {floor}: memory holds"
                f" {report.concurrent_requests} full-length requests; keep the engine full"
            )
        elif max_num_seqs > ceiling:
            problems.append(
                f"model.engine.max_num_seqs: {max_num_seqs} > {MAX_OVERSUBSCRIPTION:g} x"
                f" {report.concurrent_requests} full-length requests that fit: vLLM would"
                " preempt and recompute all the time"
            )
    return report
