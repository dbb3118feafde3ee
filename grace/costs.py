"""Back-of-the-envelope cost model of GRACE at the paper's scale (paper Table 1, App. C.3). ESTIMATES.

Everything here is arithmetic on *stated assumptions* (datasheet peaks, achieved-utilisation factors,
token counts), not a measurement: every function's result is an ESTIMATE and the book labels it so.
The model is the usual one:

* a matmul-dominated pass costs FLOPs / (peak × utilisation): forward + backward of a decoder with
  ``D`` parameters on ``T`` tokens is ``≈ 6·D·T`` FLOPs, a forward (one generated token) ``≈ 2·D``;
* a memory-bound pass costs bytes / (HBM bandwidth × efficiency);
* a dense projection ``Π g`` with ``Π ∈ R^{d×D}`` is a GEMM of ``2·D·d`` FLOPs per sample, plus
  regenerating ``Π`` (``d·D`` entries, too big to store) once per batch of gradients;
* a sparse JL projection reads the gradient once (``D`` floats) and does ``2·nnz·D`` FLOPs.

Pure Python (no numpy/torch), so the arithmetic is easy to audit and to test by hand. Each function
returns a ``dict`` of named quantities; :data:`FORMULAS` gives the formula behind every key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Hardware",
    "ModelSpec",
    "Workload",
    "StudyPlan",
    "LLAMA_3_2_1B",
    "PAPER_TEACHERS",
    "FORMULAS",
    "per_sample_gradient",
    "dense_projection",
    "sparse_projection",
    "feature_storage",
    "features_per_config",
    "projection_over_gradient",
    "generation",
    "distillation",
    "evaluation",
    "data_parallel",
    "study_cost",
    "assumption_rows",
    "projection_sensitivity",
]


# ---------------------------------------------------------------------------------------------------
# Assumptions (every field is an assumption, stated with its source or reasoning)
# ---------------------------------------------------------------------------------------------------
@dataclass
class Hardware:
    """One accelerator. Defaults: NVIDIA H100 SXM 80 GB datasheet peaks (dense, no sparsity) and
    achieved-utilisation factors that are ASSUMPTIONS typical of well-tuned PyTorch/vLLM code."""

    name: str = "H100 SXM 80GB"
    peak_bf16_flops: float = 989e12  # tensor-core bf16, dense (datasheet)
    peak_tf32_flops: float = 495e12  # tensor-core tf32, dense (datasheet)
    peak_fp32_flops: float = 67e12  # CUDA-core fp32 (datasheet)
    hbm_bytes_per_s: float = 3.35e12  # HBM3 bandwidth (datasheet)
    memory_bytes: float = 80e9
    mfu_train: float = 0.40  # achieved fraction of bf16 peak in forward+backward (assumption)
    mfu_generate: float = 0.10  # achieved fraction of bf16 peak in batched vLLM decoding (assumption)
    gemm_efficiency: float = 0.70  # achieved fraction of peak for one large projection GEMM (assumption)
    bandwidth_efficiency: float = 0.70  # achieved fraction of HBM bandwidth (assumption)
    hash_entries_per_s: float = 1e13  # Π entries generated per s by a fused on-device kernel (assumption)

    def __post_init__(self):
        for k in ("mfu_train", "mfu_generate", "gemm_efficiency", "bandwidth_efficiency"):
            v = getattr(self, k)
            if not 0 < v <= 1:
                raise ValueError(f"Hardware.{k}={v!r} must be a fraction in (0, 1]")
        for k in ("peak_bf16_flops", "peak_tf32_flops", "peak_fp32_flops", "hbm_bytes_per_s", "memory_bytes",
                  "hash_entries_per_s"):  # fmt: skip
            if not getattr(self, k) > 0:
                raise ValueError(f"Hardware.{k}={getattr(self, k)!r} must be > 0")

    def peak(self, precision: str) -> float:
        """Peak FLOP/s for ``"bf16"``, ``"tf32"`` or ``"fp32"``."""
        table = {"bf16": self.peak_bf16_flops, "tf32": self.peak_tf32_flops, "fp32": self.peak_fp32_flops}
        if precision not in table:
            raise ValueError(f"unknown precision {precision!r}; choose one of {sorted(table)}")
        return table[precision]


@dataclass
class ModelSpec:
    """A decoder-only LM. ``params`` is ``D``, the gradient length (all parameters trainable)."""

    name: str
    params: float
    layers: int = 0
    hidden: int = 0
    vocab: int = 0


LLAMA_3_2_1B = ModelSpec("Llama-3.2-1B", 1.24e9, layers=16, hidden=2048, vocab=128256)

# The paper's 15 teachers (§3 "Settings") with approximate parameter counts from their model cards.
PAPER_TEACHERS: tuple[tuple[str, float], ...] = (
    ("Llama-3.2-3B-Instruct", 3.2e9), ("Llama-3.1-8B-Instruct", 8.0e9), ("Llama-3.3-70B-Instruct", 70.6e9),
    ("Qwen2.5-1.5B-Instruct", 1.5e9), ("Qwen2.5-3B-Instruct", 3.1e9), ("Qwen2.5-7B-Instruct", 7.6e9),
    ("Qwen2.5-14B-Instruct", 14.7e9), ("Qwen2.5-Math-1.5B-Instruct", 1.5e9), ("Qwen2.5-Math-7B-Instruct", 7.6e9),
    ("Gemma-2-2B-it", 2.6e9), ("Gemma-2-9B-it", 9.2e9), ("Gemma-2-27B-it", 27.2e9),
    ("OLMo-2-7B-Instruct", 7.3e9), ("OLMo-2-13B-Instruct", 13.7e9), ("Phi-4", 14.7e9),
)  # fmt: skip


@dataclass
class Workload:
    """The scoring workload of one teacher × temperature configuration (paper §3, Table 1).

    ``tokens_per_seq`` is prompt + response (GSM8K ≈ 100 + 200 tokens: an assumption);
    ``proj_batch`` is how many per-sample gradients share one regeneration of Π (bounded by memory:
    ``proj_batch · D · grad_bytes`` must fit next to the model).
    """

    n: int = 512
    m: int = 4
    d: int = 512
    tokens_per_seq: int = 300
    grad_bytes: int = 4  # fp32 per-sample gradients
    feature_bytes: int = 4  # fp32 stored features
    proj_batch: int = 8
    nnz: int = 4
    projection_precision: str = "tf32"
    model_load_s: float = 10.0  # load the student onto one GPU (assumption)

    @property
    def samples(self) -> int:
        """``n·m``, the scored generations per configuration."""
        return self.n * self.m


@dataclass
class StudyPlan:
    """The paper's full study (§3): 15 teachers × 8 temperatures, N·M generations each, 4 epochs."""

    teachers: tuple[tuple[str, float], ...] = PAPER_TEACHERS
    temperatures: int = 8  # 0.3 … 1.0 step 0.1
    N: int = 7473  # GSM8K train prompts
    M: int = 16  # generations per prompt
    prompt_tokens: int = 100  # assumption (GSM8K question + template)
    response_tokens: int = 200  # assumption (a GSM8K chain of thought)
    epochs: int = 4
    n_test: int = 1319  # GSM8K test prompts
    k: int = 16  # samples per test prompt for avg@16
    score_seconds_per_config: float = 0.3  # all scores of one configuration on CPU (measured in App. A)
    weight_memory_fraction: float = 0.6  # share of GPU memory bf16 weights may take when serving (assumption)

    @property
    def configs(self) -> int:
        return len(self.teachers) * self.temperatures


# Formula behind every key each function returns (rendered by the book): FORMULAS[function][key].
FORMULAS: dict[str, dict[str, str]] = {
    "per_sample_gradient": {
        "flops": "6·D·T (forward + backward, per sample)",
        "compute_s": "flops / (mfu_train · peak_bf16)",
        "bytes": "D · grad_bytes (write the per-sample gradient)",
        "memory_s": "bytes / (bandwidth_efficiency · HBM)",
        "seconds": "max(compute_s, memory_s) (compute and memory traffic overlap)",
    },
    "dense_projection": {
        "gemm_flops": "2·D·d per sample",
        "gemm_s": "gemm_flops / (gemm_efficiency · peak[precision])",
        "pi_entries": "d·D entries of Π",
        "pi_gen_s_per_pass": "pi_entries / hash_entries_per_s",
        "pi_gen_s": "pi_gen_s_per_pass / proj_batch (one regeneration per batch)",
        "read_s": "D·grad_bytes / (bandwidth_efficiency · HBM)",
        "pi_fp32_bytes": "4·d·D (Π materialised in fp32)",
        "pi_bits_bytes": "d·D/8 (Π as packed sign bits)",
        "seconds": "max(gemm_s, read_s) + pi_gen_s",
    },
    "sparse_projection": {
        "sparse_flops": "2·nnz·D per sample",
        "read_s": "D·grad_bytes / (bandwidth_efficiency · HBM)",
        "index_gen_s": "nnz·D / hash_entries_per_s / proj_batch",
        "seconds": "read_s + index_gen_s",
    },
    "feature_storage": {
        "feature_bytes": "n·m·d·feature_bytes",
        "feature_mb": "feature_bytes / 1e6",
    },
    "features_per_config": {
        "gradient_s": "n·m · per_sample_gradient.seconds",
        "dense_s": "n·m · dense_projection.seconds",
        "sparse_s": "n·m · sparse_projection.seconds",
        "total_dense_s": "model_load_s + gradient_s + dense_s",
        "total_sparse_s": "model_load_s + gradient_s + sparse_s",
        "dense_over_gradient": "dense_projection.seconds / per_sample_gradient.seconds",
        "sparse_over_gradient": "sparse_projection.seconds / per_sample_gradient.seconds",
    },
    "projection_over_gradient": {
        "flop_ratio": "2·D·d / (6·D·T) = d/(3T)",
        "rate_ratio": "grad_rate / proj_rate",
        "ratio": "(2·D·d / proj_rate) / (6·D·T / grad_rate) = d/(3T) · grad_rate/proj_rate",
    },
    "generation": {
        "tokens": "generated tokens",
        "tokens_per_s": "mfu_generate · peak_bf16 / (2·P) per GPU",
        "gpu_s": "2·P·tokens / (mfu_generate · peak_bf16) = tokens / tokens_per_s",
        "gpus_min": "next power of two ≥ 2·P / (weight_memory_fraction · memory)",
        "job_wall_s": "gpu_s / gpus_min (one job, tensor-parallel)",
    },
    "distillation": {
        "train_tokens": "N·M·(prompt + response tokens)·epochs",
        "train_flops": "6·D·train_tokens",
        "gpu_s": "train_flops / (mfu_train · peak_bf16)",
    },
    "data_parallel": {
        "gpu_s": "total GPU-seconds of independent work",
        "gpus": "GPUs",
        "wall_s": "setup_s + max(gpu_s / gpus, longest single job)",
    },
}


# ---------------------------------------------------------------------------------------------------
# Per-sample quantities (paper §2.1)
# ---------------------------------------------------------------------------------------------------
def per_sample_gradient(model: ModelSpec, work: Workload, hw: Hardware) -> dict[str, float]:
    """ESTIMATE of one per-sample gradient ``g(x, y)`` of ``T`` tokens (paper §2.1).

    ``6·D·T`` FLOPs at ``mfu_train`` of the bf16 peak, or the time to write the ``D``-long gradient,
    whichever is larger.
    """
    flops = 6 * model.params * work.tokens_per_seq
    compute_s = flops / (hw.mfu_train * hw.peak_bf16_flops)
    nbytes = model.params * work.grad_bytes
    memory_s = nbytes / (hw.bandwidth_efficiency * hw.hbm_bytes_per_s)
    return {"flops": flops, "compute_s": compute_s, "bytes": nbytes, "memory_s": memory_s,
            "seconds": max(compute_s, memory_s)}  # fmt: skip


def dense_projection(model: ModelSpec, work: Workload, hw: Hardware) -> dict[str, float]:
    """ESTIMATE of projecting one gradient with the paper's dense ``Π ∈ {±1/√D}^{d×D}`` (option (b)).

    A ``2·D·d``-FLOP GEMM at ``gemm_efficiency`` of the ``projection_precision`` peak, plus
    regenerating Π's ``d·D`` entries once per ``proj_batch`` gradients (Π itself, ``4·d·D`` bytes,
    cannot be stored).
    """
    gemm_flops = 2 * model.params * work.d
    gemm_s = gemm_flops / (hw.gemm_efficiency * hw.peak(work.projection_precision))
    entries = work.d * model.params
    gen_pass = entries / hw.hash_entries_per_s
    gen_s = gen_pass / work.proj_batch
    read_s = model.params * work.grad_bytes / (hw.bandwidth_efficiency * hw.hbm_bytes_per_s)
    return {"gemm_flops": gemm_flops, "gemm_s": gemm_s, "pi_entries": entries, "pi_gen_s_per_pass": gen_pass,
            "pi_gen_s": gen_s, "read_s": read_s, "pi_fp32_bytes": 4.0 * entries, "pi_bits_bytes": entries / 8,
            "seconds": max(gemm_s, read_s) + gen_s}  # fmt: skip


def sparse_projection(model: ModelSpec, work: Workload, hw: Hardware) -> dict[str, float]:
    """ESTIMATE of projecting one gradient with a sparse JL transform (option (c)): memory-bound.

    Reads the ``D``-long gradient once; ``2·nnz·D`` FLOPs are negligible; the ``nnz·D`` row indices
    are hashed once per ``proj_batch`` gradients.
    """
    read_s = model.params * work.grad_bytes / (hw.bandwidth_efficiency * hw.hbm_bytes_per_s)
    index_s = work.nnz * model.params / hw.hash_entries_per_s / work.proj_batch
    return {"sparse_flops": 2 * work.nnz * model.params, "read_s": read_s, "index_gen_s": index_s,
            "seconds": read_s + index_s}  # fmt: skip


def feature_storage(work: Workload) -> dict[str, float]:
    """ESTIMATE (exact arithmetic) of the stored features ``H ∈ R^{n·m×d}`` (paper Table 1: 4.3 MB)."""
    nbytes = work.samples * work.d * work.feature_bytes
    return {"feature_bytes": nbytes, "feature_mb": nbytes / 1e6}


def features_per_config(model: ModelSpec, work: Workload, hw: Hardware) -> dict[str, float]:
    """ESTIMATE of one configuration's features on ONE GPU: load + n·m × (gradient + projection)."""
    g = per_sample_gradient(model, work, hw)["seconds"]
    b = dense_projection(model, work, hw)["seconds"]
    c = sparse_projection(model, work, hw)["seconds"]
    n = work.samples
    return {"gradient_s": n * g, "dense_s": n * b, "sparse_s": n * c,
            "total_dense_s": work.model_load_s + n * (g + b), "total_sparse_s": work.model_load_s + n * (g + c),
            "dense_over_gradient": b / g, "sparse_over_gradient": c / g}  # fmt: skip


def projection_over_gradient(d: int, T: int, grad_flops_per_s: float, proj_flops_per_s: float) -> dict[str, float]:
    """Dense-projection time over gradient time when both run at their own FLOP rate (App. C.3).

    ``(2·D·d / proj_rate) / (6·D·T / grad_rate) = d/(3T) · grad_rate/proj_rate`` — ``D`` cancels, so
    at d = 512 and T = 96 the dense GEMM alone is 1.8× the gradient at equal rates, whatever the model.
    """
    if min(d, T) <= 0 or min(grad_flops_per_s, proj_flops_per_s) <= 0:
        raise ValueError(f"d={d}, T={T} and both rates must be > 0")
    flop_ratio = d / (3 * T)
    return {"flop_ratio": flop_ratio, "rate_ratio": grad_flops_per_s / proj_flops_per_s,
            "ratio": flop_ratio * grad_flops_per_s / proj_flops_per_s}  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# The study around the score (paper §3)
# ---------------------------------------------------------------------------------------------------
def _next_pow2(x: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(x, 1.0))))


def generation(params: float, tokens: float, hw: Hardware, plan: StudyPlan | None = None) -> dict[str, float]:
    """ESTIMATE of generating ``tokens`` with a ``params``-parameter model under vLLM.

    ``2·P`` FLOPs per token at ``mfu_generate`` of the bf16 peak (large-batch decoding; prompt
    prefill is shared across the M samples and ignored). ``gpus_min`` is the tensor-parallel degree
    needed to hold bf16 weights in ``weight_memory_fraction`` of memory; GPU-seconds do not depend on it.
    """
    frac = (plan or StudyPlan()).weight_memory_fraction
    tps = hw.mfu_generate * hw.peak_bf16_flops / (2 * params)
    gpus = _next_pow2(2 * params / (frac * hw.memory_bytes))
    return {"tokens": tokens, "tokens_per_s": tps, "gpu_s": tokens / tps, "gpus_min": gpus,
            "job_wall_s": tokens / tps / gpus}  # fmt: skip


def distillation(student: ModelSpec, plan: StudyPlan, hw: Hardware) -> dict[str, float]:
    """ESTIMATE of one distillation run: ``6·D·tokens`` over N·M sequences for ``epochs`` (paper §3)."""
    tokens = plan.N * plan.M * (plan.prompt_tokens + plan.response_tokens) * plan.epochs
    flops = 6 * student.params * tokens
    return {"train_tokens": tokens, "train_flops": flops, "gpu_s": flops / (hw.mfu_train * hw.peak_bf16_flops)}


def evaluation(student: ModelSpec, plan: StudyPlan, hw: Hardware) -> dict[str, float]:
    """ESTIMATE of avg@k evaluation of one distilled student: n_test·k responses (paper §3)."""
    return generation(student.params, plan.n_test * plan.k * plan.response_tokens, hw, plan)


def data_parallel(gpu_s: float, gpus: int, setup_s: float = 0.0, longest_s: float = 0.0) -> dict[str, float]:
    """ESTIMATE of wall time when ``gpu_s`` of independent work is split over ``gpus`` (accelerate
    data parallelism over samples, or independent jobs): ``setup_s + max(gpu_s / gpus, longest_s)``,
    where ``longest_s`` is the wall time of the longest indivisible job (perfect packing otherwise)."""
    if gpus < 1 or min(gpu_s, setup_s, longest_s) < 0:
        raise ValueError(f"gpus={gpus} must be >= 1 and gpu_s={gpu_s}, setup_s={setup_s}, longest_s={longest_s} >= 0")
    return {"gpu_s": gpu_s, "gpus": gpus, "wall_s": setup_s + max(gpu_s / gpus, longest_s)}


def study_cost(student: ModelSpec, work: Workload, plan: StudyPlan, hw: Hardware, gpus: int = 8) -> dict[str, dict]:
    """ESTIMATE of the paper's full study (15 teachers × 8 temperatures) by stage, in GPU-hours, and of
    selecting by GRACE alone (only n·m generations per configuration + features + scores).

    Wall time assumes independent jobs packed perfectly, but never below the longest indivisible chain
    (the slowest teacher's generation job, then distilling and evaluating on it).

    Returns ``{stage: {"gpu_h": ..., "wall_h": ... on `gpus` GPUs, "longest_job_h", ...}}`` with stages
    ``generate_full``, ``features_dense``, ``features_sparse``, ``scores_cpu``, ``distill``,
    ``evaluate``, ``total_full`` and ``select_by_grace`` (generation of the scored subset + features (b)).
    """
    cfgs = plan.configs
    full_tokens = plan.N * plan.M * plan.response_tokens
    sub_tokens = work.samples * plan.response_tokens
    gen = [generation(p, full_tokens, hw, plan) for _, p in plan.teachers]  # one (teacher, temperature) job each
    gen_full = sum(g["gpu_s"] for g in gen) * plan.temperatures
    gen_sub = sum(generation(p, sub_tokens, hw, plan)["gpu_s"] for _, p in plan.teachers) * plan.temperatures
    f = features_per_config(student, work, hw)
    feat_dense = cfgs * f["total_dense_s"]
    feat_sparse = cfgs * f["total_sparse_s"]
    dist_one = distillation(student, plan, hw)["gpu_s"]
    ev_one = evaluation(student, plan, hw)["gpu_s"]
    scores = cfgs * plan.score_seconds_per_config  # CPU seconds, not GPU
    longest_gen = max(g["job_wall_s"] for g in gen)

    def row(gpu_s: float, longest: float, **kw) -> dict:
        return {"gpu_h": gpu_s / 3600, "wall_h": data_parallel(gpu_s, gpus, longest_s=longest)["wall_s"] / 3600,
                "longest_job_h": longest / 3600, **kw}  # fmt: skip

    total = gen_full + feat_dense + cfgs * (dist_one + ev_one)
    return {
        "generate_full": row(gen_full, longest_gen, tokens=full_tokens * cfgs,
                             min_gpus=max(g["gpus_min"] for g in gen)),
        "features_dense": row(feat_dense, work.model_load_s, samples=work.samples * cfgs),
        "features_sparse": row(feat_sparse, work.model_load_s, samples=work.samples * cfgs),
        "scores_cpu": {"cpu_h": scores / 3600, "configs": cfgs},
        "distill": row(cfgs * dist_one, dist_one),
        "evaluate": row(cfgs * ev_one, ev_one),
        "total_full": row(total, longest_gen + dist_one + ev_one),
        "select_by_grace": row(gen_sub + feat_dense, max(g["job_wall_s"] for g in gen) * sub_tokens / full_tokens
                               + f["total_dense_s"], tokens=sub_tokens * cfgs),
    }


# ---------------------------------------------------------------------------------------------------
# The assumptions and a sensitivity table, as rows for Appendix B
# ---------------------------------------------------------------------------------------------------
def assumption_rows(student: ModelSpec, hw: Hardware, work: Workload, plan: StudyPlan) -> list[dict]:
    """Every field of the four assumption records as ``{group, assumption, value, label}`` rows (Appendix B.1)."""
    from dataclasses import fields

    rows = []
    for obj, what in ((student, "student"), (hw, "hardware"), (work, "workload"), (plan, "study plan")):
        for f in fields(obj):
            v = getattr(obj, f.name)
            if f.name == "teachers":
                v = f"{len(v)} models, {sum(p for _, p in v) / 1e9:.1f} B parameters in total"
            rows.append({"group": what, "assumption": f.name, "value": v if isinstance(v, str) else f"{v:.4g}"
                         if isinstance(v, float) else str(v), "label": "assumption"})
    return rows


def projection_sensitivity(student: ModelSpec, work: Workload, hw: Hardware, batches: list[int],
                           precisions: tuple[str, ...] = ("fp32", "tf32", "bf16")) -> list[dict]:
    """The dense projection (b) per sample and over the gradient time for other ``proj_batch`` sizes and
    GEMM precisions (Appendix B.3); every row is an estimate."""
    from dataclasses import asdict

    g = per_sample_gradient(student, work, hw)
    rows = []
    for pb in batches:
        w = Workload(**{**asdict(work), "proj_batch": pb})
        for prec in precisions:
            bb = dense_projection(student, Workload(**{**asdict(w), "projection_precision": prec}), hw)
            rows.append({"proj_batch": pb, "precision": prec, "(b) ms/sample": 1e3 * bb["seconds"],
                         "(b) / gradient": bb["seconds"] / g["seconds"], "label": "estimate"})
    return rows
