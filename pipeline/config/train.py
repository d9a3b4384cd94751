"""Typed configuration of continued pretraining (the `train` group, conf/train/*.yaml).

The model to train is the `model` group's preset (its `path`: `local:smollm2-moe` builds the
local MoE) unless `train.init` names another checkpoint directory, or `tiny` (a small random
Mixtral sized by `train.tiny`, for tests). Shards default to the run's tokenize output.

    from pipeline.config.train import TrainConfig, train_problems
    problems = train_problems(cfg.train)   # ["train.optim.lr: must be positive, got 0", ...]
"""

from __future__ import annotations

from dataclasses import dataclass, field

ATTENTION_MODES = ("document", "causal")
DTYPES = ("float32", "bfloat16")
BACKENDS = ("auto", "gloo", "nccl")


@dataclass
class TrainDataConfig:
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
    attention: str = "document"


@dataclass
class OptimConfig:
    # AdamW with linear warmup, then cosine decay to min_lr_ratio x lr at max_steps.
    lr: float = 3e-5
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    weight_decay: float = 0.1  # not on biases, norms and embeddings (1-D or embedding weights)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # global norm; 0: off


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
class ScalingConfig:
    # Ray Train workers (one process each, DDP). 0: no Ray, train in this process.
    num_workers: int = 1
    use_gpu: bool = False
    # CPUs reserved per worker; fractions let 2 workers share a 2-CPU test cluster.
    cpus_per_worker: float = 1.0
    # torch threads per worker; null: cpus_per_worker rounded up (Ray sets OMP to 1 otherwise).
    threads_per_worker: int | None = None
    # auto: nccl with GPUs, gloo on CPU.
    backend: str = "auto"


@dataclass
class TrainConfig:
    # "model": the model group's checkpoint (conf/model/); "tiny": a random tiny Mixtral; or a
    # directory holding a HF causal-LM checkpoint.
    init: str = "model"
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    # Weights and optimizer state. bf16 falls back to slow kernels on AVX2 CPUs (FACTS.md).
    dtype: str = "float32"
    # Mixed precision on GPUs: "bfloat16" runs the forward under torch.autocast while weights
    # and AdamW state stay in `dtype`. null: off.
    autocast: str | None = None
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


def train_problems(t: TrainConfig) -> list[str]:
    """What the types cannot check; paths are the job's business (the pipeline job has none)."""
    problems = []
    choices = {
        "train.dtype": (t.dtype, DTYPES),
        "train.data.attention": (t.data.attention, ATTENTION_MODES),
        "train.scaling.backend": (t.scaling.backend, BACKENDS),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            problems.append(f"{key}: {value!r} not in {allowed}")
    positive = {
        "train.max_steps": t.max_steps,
        "train.grad_accum": t.grad_accum,
        "train.log_every": t.log_every,
        "train.data.seq_len": t.data.seq_len,
        "train.data.batch_size": t.data.batch_size,
        "train.keep_checkpoints": t.keep_checkpoints,
        "train.optim.lr": t.optim.lr,
        "train.scaling.cpus_per_worker": t.scaling.cpus_per_worker,
    }
    non_negative = {
        "train.eval_every": t.eval_every,
        "train.checkpoint_every": t.checkpoint_every,
        "train.aux_loss_coef": t.aux_loss_coef,
        "train.optim.warmup_steps": t.optim.warmup_steps,
        "train.optim.weight_decay": t.optim.weight_decay,
        "train.optim.grad_clip": t.optim.grad_clip,
        "train.data.loader_workers": t.data.loader_workers,
        "train.scaling.num_workers": t.scaling.num_workers,
    }
    problems += [f"{k}: must be positive, got {v}" for k, v in positive.items() if not v > 0]
    problems += [f"{k}: must be >= 0, got {v}" for k, v in non_negative.items() if v < 0]
    if t.stop_after_steps is not None and t.stop_after_steps < 1:
        problems.append(f"train.stop_after_steps: must be null or >= 1, got {t.stop_after_steps}")
    if t.eval_batches is not None and t.eval_batches < 1:
        problems.append(f"train.eval_batches: must be null or >= 1, got {t.eval_batches}")
    if not 0 <= t.optim.min_lr_ratio <= 1:
        problems.append(f"train.optim.min_lr_ratio: must be in [0, 1], got {t.optim.min_lr_ratio}")
    for key, beta in (("train.optim.beta1", t.optim.beta1), ("train.optim.beta2", t.optim.beta2)):
        if not 0 <= beta < 1:
            problems.append(f"{key}: must be in [0, 1), got {beta}")
    for kind, weights in (("source", t.data.source_weights), ("kind", t.data.kind_weights)):
        for name, weight in weights.items():
            if weight < 0:
                problems.append(f"train.data.{kind}_weights.{name}: must be >= 0, got {weight}")
    if t.autocast is not None and t.autocast not in DTYPES:
        problems.append(f"train.autocast: {t.autocast!r} not in {DTYPES} or null")
    if t.scaling.use_gpu and t.scaling.backend == "gloo":
        problems.append("train.scaling.backend: gloo with use_gpu; use nccl or auto")
    if t.scaling.threads_per_worker is not None and t.scaling.threads_per_worker < 1:
        problems.append("train.scaling.threads_per_worker: must be null or >= 1")
    problems += _regex_problems(t.trainable)
    return problems


def _regex_problems(patterns: list[str]) -> list[str]:
    import re

    problems = []
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as e:
            problems.append(f"train.trainable: {pattern!r} is not a regex ({e})")
    return problems
