"""Typed configuration of continued pretraining (the `train` group, conf/train/*.yaml).

The model to train is the `model` group's preset (its `path`: `local:smollm2-moe` builds the
local MoE) unless `train.init` names another checkpoint directory, or `tiny` (a small random
Mixtral sized by `train.tiny`, for tests). Shards default to the run's tokenize output.

    from pipeline.config.train import OptimConfig
    OptimConfig(lr=0)   # ConfigError("lr: must be positive, got 0")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from pipeline.config.ranges import Checked, at_least, positive, within


class Attention(StrEnum):
    document = "document"
    causal = "causal"


class Dtype(StrEnum):
    float32 = "float32"
    bfloat16 = "bfloat16"


class Backend(StrEnum):
    auto = "auto"  # nccl with GPUs, gloo on CPU
    gloo = "gloo"
    nccl = "nccl"


@dataclass
class TrainDataConfig(Checked):
    # A token-shard directory (manifest.json inside): by default the run's tokenize output.
    shards: str = "${run.output_root}/${run.name}/tokenize/data"
    seq_len: int = 256
    # Windows per micro-batch per worker; a step is batch_size x grad_accum x num_workers.
    batch_size: int = 4
    seed: int = 0
    shuffle: bool = True
    # Occurrences per epoch multiply: source_weights[source] x kind_weights[kind] (missing: 1).
    # 2.0 repeats a group's documents, 0.5 keeps half of them (another half each epoch).
    source_weights: dict[str, float] = field(default_factory=dict)
    kind_weights: dict[str, float] = field(default_factory=dict)
    # DataLoader processes per training worker (0: batches are built in the training process).
    # Packing is a few numpy slices per window, far below a CPU step's cost.
    loader_workers: int = 0
    # sha256 of every shard before reading (sizes are checked always).
    verify: bool = True
    # Refuse shards tokenized by another tokenizer than the model's own (when it has a file).
    check_tokenizer: bool = True
    # "document": attention and targets stay inside each packed document (positions restart
    # per document; transformers turns them into a block-diagonal mask); "causal": plain
    # causal attention over the whole window, as in nanoGPT.
    attention: Attention = Attention.document

    def problems(self) -> list[str]:
        problems = positive(self, "seq_len", "batch_size") + at_least(self, 0, "loader_workers")
        for kind, weights in (("source", self.source_weights), ("kind", self.kind_weights)):
            problems += [
                f"{kind}_weights.{name}: must be >= 0, got {weight}"
                for name, weight in weights.items()
                if weight < 0
            ]
        return problems


@dataclass
class OptimConfig(Checked):
    # AdamW with linear warmup, then cosine decay to min_lr_ratio x lr at max_steps.
    lr: float = 3e-5
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    weight_decay: float = 0.1  # not on biases, norms and embeddings (1-D or embedding weights)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # global norm; 0: off

    def problems(self) -> list[str]:
        problems = positive(self, "lr")
        problems += at_least(self, 0, "warmup_steps", "weight_decay", "grad_clip")
        problems += within(self, 0, 1, "min_lr_ratio")
        return problems + within(self, 0, 1, "beta1", "beta2", high_open=True)


@dataclass
class TinyModelConfig:
    """A random Mixtral small enough for a test step in milliseconds (vocab from the shards)."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    num_experts: int = 4
    top_k: int = 2


@dataclass
class ScalingConfig(Checked):
    # Ray Train workers (one process each, DDP). 0: no Ray, train in this process.
    num_workers: int = 1
    use_gpu: bool = False
    # CPUs reserved per worker; fractions let 2 workers share a 2-CPU test cluster.
    cpus_per_worker: float = 1.0
    # torch threads per worker; null: cpus_per_worker rounded up (Ray sets OMP to 1 otherwise).
    threads_per_worker: int | None = None
    # auto: nccl with GPUs, gloo on CPU.
    backend: Backend = Backend.auto

    def problems(self) -> list[str]:
        problems = positive(self, "cpus_per_worker") + at_least(self, 0, "num_workers")
        problems += at_least(self, 1, "threads_per_worker", or_null=True)
        if self.use_gpu and self.backend == Backend.gloo:
            problems.append("backend: gloo with use_gpu; use nccl or auto")
        return problems


@dataclass
class TrainConfig(Checked):
    # "model": the model group's checkpoint (conf/model/); "tiny": a random tiny Mixtral; or a
    # directory holding a HF causal-LM checkpoint.
    init: str = "model"
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    # Weights and optimizer state. bf16 falls back to slow kernels on AVX2 CPUs (FACTS.md).
    dtype: Dtype = Dtype.float32
    # Mixed precision on GPUs: "bfloat16" runs the forward under torch.autocast while weights
    # and AdamW state stay in `dtype`. null: off.
    autocast: Dtype | None = None
    # Regexes over parameter names; empty: train everything. Frozen parameters keep their
    # values and get no gradients or optimizer state (memory and time: see README).
    trainable: list[str] = field(default_factory=list)
    # Switch-Transformer load-balancing loss of the MoE router, added with this weight (Switch
    # and OLMoE used 0.01). Logged whatever the weight; dense models have none.
    aux_loss_coef: float = 0.01
    gradient_checkpointing: bool = False
    output_dir: str = "${run.output_root}/${run.name}/train"
    max_steps: int = 100
    # Leave after this many steps of this invocation, with a checkpoint (a time-sliced or
    # preemptible allocation); the next invocation resumes. null: run to max_steps.
    stop_after_steps: int | None = None
    grad_accum: int = 1
    log_every: int = 1
    # Held-out loss every eval_every steps (0: only before and after), over at most
    # eval_batches batches per worker (null: the whole held-out split).
    eval_every: int = 0
    eval_batches: int | None = None
    checkpoint_every: int = 0  # 0: only at the end
    keep_checkpoints: int = 2
    resume: bool = True  # continue from the latest checkpoint in output_dir if there is one
    # Also write the final weights as a HF checkpoint (output_dir/final) that vLLM can serve.
    export_final: bool = False
    seed: int = 0
    data: TrainDataConfig = field(default_factory=TrainDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)

    def problems(self) -> list[str]:
        names = ("max_steps", "grad_accum", "log_every", "keep_checkpoints")
        problems = positive(self, *names)
        problems += at_least(self, 0, "eval_every", "checkpoint_every", "aux_loss_coef")
        problems += at_least(self, 1, "stop_after_steps", "eval_batches", or_null=True)
        for pattern in self.trainable:
            try:
                re.compile(pattern)
            except re.error as e:
                problems.append(f"trainable: {pattern!r} is not a regex ({e})")
        return problems
