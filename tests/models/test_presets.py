"""Every GPU model preset's memory arithmetic holds (pipeline/models/sizing.py): its engines
use the GPUs the job asks Ray for, weights and KV cache fit within gpu_memory_utilization,
max_model_len covers a full rewrite request, and it keeps sequences in flight."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import typed_config
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from pipeline.config import ModelConfig, PresetSizing, RewriteConfig
from pipeline.config.model import Attention
from pipeline.models.sizing import (
    MIN_SEQS_IN_FLIGHT,
    RequestShape,
    kv_bytes_per_token,
    preset_arithmetic,
    request_shape,
)
from pipeline.rewrite.stage import DEFAULT_MAX_NUM_SEQS, batches_in_flight

CONF = Path(__file__).resolve().parents[2] / "conf"
PRESETS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


def gpu_presets() -> list[str]:
    """From the preset files as written: composing each at collection cost every test run ~2 s."""
    return [p for p in PRESETS if OmegaConf.load(CONF / "model" / f"{p}.yaml").num_gpus_per_actor]


GPU_PRESETS = gpu_presets()


def test_the_gpu_presets_are_found():
    assert {"kimi_linear_48b_a3b", "qwen3_30b_a3b", "qwen3_30b_a3b_awq_24gb"} <= set(GPU_PRESETS)
    assert "local_moe" not in GPU_PRESETS
    assert typed_config("model=local_moe").model.sizing is None


@pytest.mark.parametrize("preset", GPU_PRESETS)
def test_gpu_preset_arithmetic_holds(preset):
    # rewrite=default: what a GPU run rewrites with (README, "What to change for a GPU
    # cluster"); the CPU demo's requests are half as long.
    cfg = typed_config(f"model={preset}", "rewrite=default")
    report = preset_arithmetic(cfg.model, request_shape(cfg.rewrite))
    assert report.problems == [], f"{preset}: {report.summary()}"
    # The GPUs the job asks Ray for are the GPUs the engines use.
    assert report.ray_gpus == report.engine_gpus
    assert cfg.model.num_gpus_per_actor == cfg.model.engine.get("tensor_parallel_size", 1)
    assert report.kv_budget_gib > 0 and report.concurrent_requests >= 1
    assert report.max_model_len >= report.request_tokens
    # At least 256 in flight wherever memory holds 256 full-length requests.
    if report.concurrent_requests >= MIN_SEQS_IN_FLIGHT:
        assert report.max_num_seqs >= MIN_SEQS_IN_FLIGHT


def test_the_default_rewrite_request_is_chunk_context_frame_and_output():
    shape = request_shape(typed_config("rewrite=default").rewrite)
    assert shape == RequestShape(384, 256, 512, 512)
    assert shape.total == 1664
    independent = RewriteConfig(mode="independent")
    assert request_shape(independent).context_tokens == 0


def qwen3_30b(**engine) -> ModelConfig:
    sizing = PresetSizing(
        gpu_memory_gib=23.5,
        params_b=30.53,
        bytes_per_param=2,
        kv_layers=48,
        attention=Attention.gqa,
        num_kv_heads=4,
        head_dim=128,
    )
    engine = {
        "tensor_parallel_size": 1,
        "gpu_memory_utilization": 0.92,
        "max_model_len": 4096,
        "max_num_seqs": 32,
        **engine,
    }
    return ModelConfig(engine=engine, num_gpus_per_actor=1, num_actors=1, sizing=sizing)


def test_a_30b_bf16_model_does_not_fit_a_24gb_gpu():
    report = preset_arithmetic(qwen3_30b(), RequestShape(384, 256, 512, 512))
    assert report.weights_gib > 28  # 61 GB of bf16 weights
    assert report.kv_budget_gib < 0 and report.concurrent_requests == 0
    assert any("exceed" in p and p.startswith("model.sizing:") for p in report.problems)


def test_the_same_model_in_4_bit_fits():
    model = qwen3_30b()
    model.sizing.bytes_per_param = 0.55
    report = preset_arithmetic(model, RequestShape(384, 256, 512, 512))
    assert report.problems == []
    assert 15 < report.weights_gib < 16.5 and report.concurrent_requests >= 16


def test_gpus_per_actor_must_match_the_engines_gpus():
    model = qwen3_30b(tensor_parallel_size=2)
    model.sizing.bytes_per_param = 0.55
    report = preset_arithmetic(model, RequestShape(384, 256, 512, 512))
    assert report.ray_gpus == 1 and report.engine_gpus == 2
    assert any(p.startswith("model.num_gpus_per_actor:") for p in report.problems)


def test_max_model_len_must_cover_a_request_and_fit_the_cache():
    model = qwen3_30b(max_model_len=1024)
    model.sizing.bytes_per_param = 0.55
    problems = preset_arithmetic(model, RequestShape(384, 256, 512, 512)).problems
    assert any("< a full request" in p for p in problems)
    model.engine["max_model_len"] = 262144  # 24 GiB of KV for one sequence
    problems = preset_arithmetic(model, RequestShape(384, 256, 512, 512)).problems
    assert any("KV cache" in p and p.startswith("model.engine.max_model_len") for p in problems)


def test_sequences_in_flight_are_bounded_by_what_the_cache_holds():
    model = qwen3_30b(max_num_seqs=256)
    model.sizing.bytes_per_param = 0.55
    problems = preset_arithmetic(model, RequestShape(384, 256, 512, 512)).problems
    assert any("preempt" in p for p in problems)
    model.engine["max_num_seqs"] = 4  # below what fits: the engine starves
    problems = preset_arithmetic(model, RequestShape(384, 256, 512, 512)).problems
    assert any("keep the engine full" in p for p in problems)
    del model.engine["max_num_seqs"]
    problems = preset_arithmetic(model, RequestShape(384, 256, 512, 512)).problems
    assert "model.engine.max_num_seqs: not set; a GPU preset sizes its batch" in problems


def test_a_gpu_preset_without_sizing_is_flagged():
    model = qwen3_30b()
    model.sizing = None
    problems = preset_arithmetic(model, RequestShape(384, 256, 512, 512)).problems
    assert any(p.startswith("model.sizing: a GPU preset needs one") for p in problems)


def test_kv_per_token_gqa_splits_heads_mla_does_not():
    gqa = PresetSizing(kv_layers=48, attention=Attention.gqa, num_kv_heads=4, head_dim=128)
    assert kv_bytes_per_token(gqa, tp=1) == 2 * 4 * 128 * 2 * 48  # 96 KiB
    assert kv_bytes_per_token(gqa, tp=2) == 2 * 2 * 128 * 2 * 48
    assert kv_bytes_per_token(gqa, tp=8) == 2 * 1 * 128 * 2 * 48  # a head per rank at least
    mla = PresetSizing(kv_layers=27, attention=Attention.mla, kv_lora_rank=512, qk_rope_head_dim=64)
    assert kv_bytes_per_token(mla, tp=1) == kv_bytes_per_token(mla, tp=4) == 576 * 2 * 27


def test_the_attention_layouts_are_a_closed_choice():
    assert typed_config("model=moonlight_16b_a3b").model.sizing.attention is Attention.mla
    with pytest.raises(ConfigCompositionException, match=r"model\.sizing\.attention=mha"):
        typed_config("model=moonlight_16b_a3b", "model.sizing.attention=mha")


def test_a_hybrid_holds_state_per_sequence_with_vllm_page_padding():
    cfg = typed_config("model=kimi_linear_48b_a3b", "rewrite=default")
    report = preset_arithmetic(cfg.model, request_shape(cfg.rewrite))
    # 20 KDA layers x (16 heads x 128 x 128 fp32 + q/k/v conv windows) per GPU at two GPUs.
    assert report.state_bytes_per_seq == 20 * (16 * 128 * 128 * 4 + 3 * 16 * 128 * 3 * 2)
    assert report.kv_bytes_per_token == 7 * 576 * 2
    unpadded = report.state_bytes_per_seq + report.request_tokens * report.kv_bytes_per_token
    per_request = report.kv_budget_gib * 2**30 / report.concurrent_requests
    assert unpadded < per_request < 2 * unpadded


@pytest.mark.parametrize("preset", PRESETS)
def test_each_rewrite_actor_holds_enough_chains_to_fill_its_engine(preset):
    # Each (document, style) chain has a request in flight until it ends: the batches queued
    # on one actor, less the one draining, must hold max_num_seqs of them.
    cfg = typed_config(f"model={preset}", "rewrite=default")
    chains = cfg.rewrite.batch_docs * min(cfg.rewrite.styles_per_doc, len(set(cfg.rewrite.styles)))
    seqs = cfg.model.engine.get("max_num_seqs") or DEFAULT_MAX_NUM_SEQS
    assert (batches_in_flight(cfg) - 1) * chains >= seqs
