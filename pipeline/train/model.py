"""The model side of training: build or load a causal LM, choose what trains, compute losses.

    model = load_model(init_dir, "float32")               # any HF causal-LM checkpoint dir
    model = tiny_mixtral(TinyModelConfig(), vocab_size=300, seed=0)
    trained, frozen = set_trainable(model, [r"model\\.layers\\.(2[4-9])\\."])
    out = forward(model, batch, attention="document", with_router=is_moe(model))
    loss_sum, targets = lm_loss_sum(out.logits, labels)
    aux = router_aux_loss(out, model, valid_mask)

The loss is a *sum* over target tokens and their count, so the caller can average over
micro-batches and ranks by tokens, not by batches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F

from pipeline.config.train import TinyModelConfig
from pipeline.train.packing import IGNORE_INDEX, target_labels

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def load_model(path: str, dtype: str = "float32", trust_remote_code: bool = False):
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per worker per load: noise in the job's log
    return AutoModelForCausalLM.from_pretrained(
        path, dtype=_DTYPES[dtype], trust_remote_code=trust_remote_code
    )


def tiny_mixtral(cfg: TinyModelConfig, vocab_size: int, seed: int, max_positions: int = 4096):
    """A randomly initialised Mixtral of the given shape (the same weights for the same seed)."""
    from transformers import MixtralConfig, MixtralForCausalLM

    config = MixtralConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        num_local_experts=cfg.num_experts,
        num_experts_per_tok=cfg.top_k,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return MixtralForCausalLM(config)


def vocab_size(model) -> int:
    return int(model.get_input_embeddings().weight.shape[0])


def is_moe(model) -> bool:
    """True for models whose forward can return router logits (Mixtral, Qwen-MoE, OLMoE...)."""
    config = model.config
    return any(getattr(config, key, None) for key in ("num_local_experts", "num_experts"))


def skeleton(init_path: str | None, tiny: TinyModelConfig, shard_vocab: int, trust: bool):
    """The model's modules on the meta device: names and shapes without weights or memory,
    so the driver can check a config against them before any worker loads the model."""
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        if init_path is None:
            return tiny_mixtral(tiny, shard_vocab, seed=0)
        config = AutoConfig.from_pretrained(init_path, trust_remote_code=trust)
        return AutoModelForCausalLM.from_config(config, trust_remote_code=trust)


def set_trainable(model, patterns: list[str]) -> tuple[int, int]:
    """Train parameters whose name matches any regex (all when empty); return counts.

    Raises ValueError when patterns are given and none matches: a typo would otherwise train
    nothing and look like a converged run.
    """
    compiled = [re.compile(p) for p in patterns]
    trained = frozen = 0
    for name, param in model.named_parameters():
        keep = not compiled or any(p.search(name) for p in compiled)
        param.requires_grad_(keep)
        if keep:
            trained += param.numel()
        else:
            frozen += param.numel()
    if trained == 0:
        names = [n for n, _ in model.named_parameters()][:6]
        raise ValueError(f"train.trainable {patterns} matches no parameter (names: {names} ...)")
    return trained, frozen


def parameter_groups(model, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay matrices, not biases, norms or embeddings (as GPT-2/nanoGPT do)."""
    embeddings = {id(model.get_input_embeddings().weight)}
    decay, no_decay = [], []
    for param in model.parameters():
        if not param.requires_grad:
            continue
        if param.ndim < 2 or id(param) in embeddings:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def forward(model, batch: dict[str, torch.Tensor], attention: str, with_router: bool):
    """Run the model on a packed batch; "document" attention passes the restarting positions."""
    kwargs: dict[str, Any] = {"input_ids": batch["input_ids"], "use_cache": False}
    if attention == "document":
        # transformers (masking_utils.find_packed_sequence_indices) reads a position reset as
        # a new sequence and masks attention to a block-diagonal causal mask.
        kwargs["position_ids"] = batch["position_ids"]
    if with_router:
        kwargs["output_router_logits"] = True
    return model(**kwargs)


def autocast(device: torch.device, dtype: str | None):
    """torch.autocast to `dtype` on the device, or a no-op context when dtype is None."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[dtype])


def lm_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy (logits at t predict labels at t+1) and the target count."""
    targets = labels[:, 1:]
    loss = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return loss, int((targets != IGNORE_INDEX).sum())


def router_aux_loss(outputs, model, valid: torch.Tensor) -> torch.Tensor | None:
    """Switch-Transformer load-balancing loss over the router logits of every layer.

    transformers' own function (Mixtral's; Qwen-MoE and OLMoE use the same formula), with
    padding excluded; None for a dense model or when the forward returned no router logits.
    """
    router_logits = getattr(outputs, "router_logits", None)
    if not router_logits:
        return None
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    config = model.config
    experts = getattr(config, "num_local_experts", None) or config.num_experts
    return load_balancing_loss_func(
        tuple(router_logits), experts, config.num_experts_per_tok, valid.to(torch.float32)
    )


def build_model(
    init_path: str | None,
    tiny: TinyModelConfig,
    dtype: str,
    trust_remote_code: bool,
    shard_vocab: int,
    seed: int,
):
    """The model to train: a checkpoint (init_path) or the tiny random Mixtral (None).

    Refuses a model whose embedding has fewer rows than the shards' vocabulary: the shards
    were tokenized for another model.
    """
    if init_path is None:
        model = tiny_mixtral(tiny, shard_vocab, seed)
    else:
        model = load_model(init_path, dtype, trust_remote_code)
    if vocab_size(model) < shard_vocab:
        raise ValueError(
            f"the shards' tokenizer has {shard_vocab} ids, the model's embedding only "
            f"{vocab_size(model)}: these shards were made for another model"
        )
    return model


def prepare_batch(batch: dict[str, Any], device: torch.device, attention: str) -> dict[str, Any]:
    """Move a loader batch to the device and add its labels (packing.target_labels)."""
    labels = target_labels(
        batch["input_ids"].numpy(),
        batch["segment_ids"].numpy(),
        mask_boundaries=attention == "document",
    )
    moved = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    moved["labels"] = torch.from_numpy(labels).to(device)
    return moved


@torch.no_grad()
def heldout_loss_sum(
    model, batches: Iterable[dict[str, Any]], attention: str, device: torch.device
) -> tuple[float, int]:
    """Summed loss and target count over `batches` (call with the unwrapped model, so no
    collective runs inside and ranks may see different numbers of batches)."""
    was_training = model.training
    model.eval()
    loss_sum, targets = 0.0, 0
    for batch in batches:
        batch = prepare_batch(batch, device, attention)
        outputs = forward(model, batch, attention, with_router=False)
        loss, count = lm_loss_sum(outputs.logits, batch["labels"])
        loss_sum, targets = loss_sum + float(loss), targets + count
    model.train(was_training)
    return loss_sum, targets


def clip_gradients(model, max_norm: float) -> float:
    """Clip the global gradient norm (max_norm 0: do not) and return the norm before."""
    params = [p for p in model.parameters() if p.grad is not None]
    if max_norm > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
