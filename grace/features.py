"""Per-sample gradient features ``h(x, y) = log|y| · Π g(x, y)`` (paper §2.1, App. C.1, C.3, D.4).

For every teacher generation ``(x, y)`` we take the student's gradient ``g`` of the mean token
cross-entropy on the *response* tokens (prompt tokens carry no loss), flatten it over all trainable
parameters in ``named_parameters()`` order, project it with a :class:`~grace.projection.Projector`
and rescale by a function of the response length ``|y|`` (number of supervised tokens, EOS
included). Alongside ``H`` we keep what the App. C.1 baselines need: the loss, the mean token
probability, the raw (unprojected) gradient norm and, when given, correctness.

Two ways to get per-sample gradients, tested to agree:

* ``"loop"``: one forward + backward per example (``.grad`` cleared between examples);
* ``"vmap"``: ``torch.func.vmap(grad(...))`` over a right-padded batch. Right padding needs no
  attention mask: under causal attention real tokens never attend to later pad tokens and pad
  positions carry no loss, so padding cannot change any gradient (tested). Batches are formed
  longest-first to keep padding small; rows are returned in the order of ``examples``.

Memory: per-sample gradients are held in fp32 (whatever the model's dtype; the sidecar says so)
and projected block by block, and a block never takes more than ``memory_budget`` bytes beyond the
loaded model — by default ``4·D·4`` bytes (four gradients), with a 64 MiB floor for toy models — whatever
``batch_size`` is. ``vmap`` materialises about ``4.4·B·D·4`` bytes for a batch of ``B`` (measured), so
``method="auto"`` uses it only where the whole batch fits the budget (it measured 10–30 % faster than
the loop on CPU for 0.5–14 M-parameter Llamas at T = 96, ``benchmarks/bench_projection.py``), and
otherwise the loop, one forward + backward per example into a block of at most
``memory_budget / (4·D) − 3`` rows (one more gradient lives in the parameters' ``.grad``, two are slack). vmap works
through HF Llama attention in this transformers version (SDPA falls back to a per-sample loop).

Runs are resumable: with ``out=...`` completed batches are checkpointed to ``out + ".partial.npz"``
(npz + JSON sidecar, atomic), and a rerun with the same inputs continues from there and gives the
identical result. A finished ``out`` with a matching fingerprint is simply loaded.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from grace import __version__, persample
from grace.encoding import (
    DEFAULT_TEMPLATE,
    IGNORE_INDEX,
    bucket_length,
    encode_example,
    pad_id,
    right_pad,
)
from grace.io import load_arrays, save_arrays, stable_hash
from grace.projection import Projector
from grace.validate import check_records

__all__ = [
    "LENGTH_SCALES",
    "Features",
    "length_scale_factor",
    "compute_features",
    "default_memory_budget",
    "plan_blocks",
    "response_loss",
    "batched_response_loss",
    "grads_loop",
    "grads_vmap",
    "planless_attention",
]

log = logging.getLogger(__name__)

LENGTH_SCALES = ("log", "log2", "none")
AUTO_METHOD_CPU = "vmap"  # what method="auto" uses when it fits the budget; from benchmarks/bench_projection.py
VMAP_BYTES_PER_ENTRY = 4.4 * 4  # measured peak of vmap(grad) per batch row and parameter, fp32
MIN_MEMORY_BUDGET = 64 * 2**20  # the default budget's floor (toy models keep vmap's speed)
METHODS = ("auto", "loop", "vmap", "hooks")  # how per-sample gradients are taken (see plan_blocks)
LENGTH_BUCKET_CUDA = 64  # tokens: a few bucketed lengths instead of an attention plan per new length
CUDA_FREE_SHARE = 0.7  # of the free device memory, the default budget for a block of gradients on CUDA






def length_scale_factor(lengths: np.ndarray | Sequence[int], length_scale: str = "log") -> np.ndarray:
    """The factor multiplying ``Π g`` (paper §2.1: ``log|y|``; App. D.4 motivates it).

    ``"log"`` gives ``log|y|``, ``"log2"`` gives ``(log|y|)²`` and ``"none"`` gives 1.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    if length_scale == "log":
        return np.log(lengths)
    if length_scale == "log2":
        return np.log(lengths) ** 2
    if length_scale == "none":
        return np.ones_like(lengths)
    raise ValueError(f"unknown length_scale {length_scale!r}; choose one of {LENGTH_SCALES}")


# ---------------------------------------------------------------------------------------------------
# The feature table
# ---------------------------------------------------------------------------------------------------
@dataclass
class Features:
    """Processed gradients of one teacher's generations plus per-sample baseline quantities.

    Attributes:
        H: ``[N, d]`` float32, rows ``h = scale(|y|) · Π g`` (paper §2.1; the matrix ``G(D)`` of eq. 1).
        prompt_ids: ``[N]`` int64 index into ``prompt_keys`` (which prompt each row answers).
        prompt_keys: the original ``prompt_id`` values (str or int), ``prompt_keys[prompt_ids[i]]``.
        lengths: ``[N]`` int64, ``|y|`` = supervised tokens (response + EOS).
        loss: ``[N]`` float32, mean response-token cross-entropy (App. C.1 "student loss").
        mean_prob: ``[N]`` float32, mean probability of the target response tokens (App. C.1, 8–12).
        grad_norm: ``[N]`` float32, ``‖g‖₂`` of the raw gradient (App. C.1 BADGE; App. D.4, Fig. 21).
        correct: ``[N]`` bool or ``None``, from the examples' ``"correct"`` field (App. C.1, 10–12).
        meta: provenance: model, projector meta, template, length_scale, version, fingerprint.
    """

    H: np.ndarray
    prompt_ids: np.ndarray
    prompt_keys: list
    lengths: np.ndarray
    loss: np.ndarray
    mean_prob: np.ndarray
    grad_norm: np.ndarray
    correct: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.H)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``path`` (npz) and its JSON sidecar via :func:`grace.io.save_arrays` (no pickle)."""
        arrays = {
            "H": self.H, "prompt_ids": self.prompt_ids, "lengths": self.lengths, "loss": self.loss,
            "mean_prob": self.mean_prob, "grad_norm": self.grad_norm,
        }  # fmt: skip
        if self.correct is not None:
            arrays["correct"] = self.correct
        save_arrays(path, arrays, {**self.meta, "prompt_keys": list(self.prompt_keys)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Features:
        """Inverse of :meth:`save`."""
        if not Path(path).exists():
            raise ValueError(f"no features file at {path}; compute it with compute_features(..., out=path)")
        arrays, meta = load_arrays(path)
        keys = meta.pop("prompt_keys", None)
        if keys is None:
            raise ValueError(f"{path}: sidecar {Path(path).with_suffix('.json')} is missing; recompute the features")
        return cls(
            H=arrays["H"], prompt_ids=arrays["prompt_ids"], prompt_keys=keys, lengths=arrays["lengths"],
            loss=arrays["loss"], mean_prob=arrays["mean_prob"], grad_norm=arrays["grad_norm"],
            correct=arrays.get("correct"), meta=meta,
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Per-sample loss and gradients
# ---------------------------------------------------------------------------------------------------
def response_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and mean target probability over supervised tokens of one sequence.

    ``logits [T, V]`` predict the next token, so position ``t`` is scored on ``labels[t + 1]``.
    No data-dependent control flow, so it runs under ``vmap``.
    """
    logp = F.log_softmax(logits[:-1].float(), dim=-1)  # [T-1, V]
    targets = labels[1:]  # [T-1]
    mask = (targets != IGNORE_INDEX).to(logp.dtype)
    tok = logp.gather(-1, targets.clamp(min=0)[:, None])[:, 0]  # [T-1] log p(target)
    n = mask.sum()
    loss = -(tok * mask).sum() / n
    mean_prob = (tok.detach().exp() * mask).sum() / n
    return loss, mean_prob


def batched_response_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`response_loss` row by row: ``logits [B, T, V], labels [B, T] → (loss [B], mean_prob [B])``."""
    return vmap(response_loss)(logits, labels)


def _forward_logits(model, params, ids: torch.Tensor) -> torch.Tensor:
    """``ids [T] → logits [T, V]`` with ``params`` substituted for the trainable parameters."""
    return functional_call(model, params, (ids[None],), {"use_cache": False}).logits[0]


def planless_attention(device: str | torch.device):
    """A context in which SDPA uses no attention kernel that builds an execution plan per new shape.

    On CUDA, cuDNN's attention plans each new sequence length (milliseconds of CPU per layer, per
    example); flash and memory-efficient attention do not. Restored on exit; a no-op off CUDA.
    """
    import contextlib

    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def grads_loop(model, params: list, ids: torch.Tensor, labels: torch.Tensor, lens: list[int], G: torch.Tensor,
               bucket: int = 1):
    """One forward+backward per example; fills ``G [B, D]``; returns (loss [B], mean_prob [B]).

    Each example runs at its length rounded up to a multiple of ``bucket`` (right pads, no loss on
    them: the gradient is unchanged; see :func:`grace.encoding.right_pad`)."""
    losses, probs = [], []
    for b, n in enumerate(lens):
        for p in params:
            p.grad = None
        n = min(bucket_length(n, bucket), ids.shape[1])
        logits = model(input_ids=ids[b : b + 1, :n], use_cache=False).logits[0]
        loss, mean_prob = response_loss(logits, labels[b, :n])
        loss.backward()
        off = 0
        for p in params:
            k = p.numel()
            if p.grad is None:  # parameter not used by the forward pass
                G[b, off : off + k] = 0
            else:
                G[b, off : off + k] = p.grad.reshape(-1)
            off += k
        losses.append(loss.detach())
        probs.append(mean_prob)
    for p in params:
        p.grad = None
    return torch.stack(losses), torch.stack(probs)


def _project_direct(model, params: list, ids: torch.Tensor, labels: torch.Tensor, n: int, projector: Projector):
    """One example's forward + backward, projected from each parameter's ``.grad`` as it stands.

    No flattened ``[D]`` gradient is formed: ``Πg = Σ_p Π[:, cols(p)] · vec(∂L/∂p)`` over parameter
    blocks (:meth:`Projector.accumulator`), so memory is the ``.grad`` buffers plus one chunk of Π.
    Returns ``(h [1, d], loss [1], mean_prob [1], grad_norm [1])``.
    """
    for p in params:
        p.grad = None
    loss, mean_prob = response_loss(model(input_ids=ids[:1, :n], use_cache=False).logits[0], labels[0, :n])
    loss.backward()
    acc, off = projector.accumulator(rows=1), 0  # Πg and ‖g‖² (fp32 per range, squares summed in fp64)
    for p in params:
        if p.grad is not None:
            acc.add(p.grad.reshape(1, -1), off)
            p.grad = None  # freed as soon as it is added
        off += p.numel()
    h, sq = acc.result()  # [1, d], [1]
    return h, loss.detach()[None], mean_prob[None], sq.sqrt().float().cpu()


def grads_vmap(model, names: list[str], params: list, ids: torch.Tensor, labels: torch.Tensor, G: torch.Tensor):
    """``vmap(grad)`` over a right-padded batch; fills ``G [B, D]``; returns (loss, mean_prob)."""

    def per_sample(pdict, ids_1, labels_1):
        loss, mean_prob = response_loss(_forward_logits(model, pdict, ids_1), labels_1)
        return loss, (loss.detach(), mean_prob)

    pdict = {n: p.detach() for n, p in zip(names, params, strict=True)}
    with warnings.catch_warnings():  # torch has no batching rule for CPU flash attention: it loops
        warnings.filterwarnings("ignore", message="There is a performance drop")
        grads, (loss, mean_prob) = vmap(grad(per_sample, has_aux=True), in_dims=(None, 0, 0))(pdict, ids, labels)
    B = ids.shape[0]
    torch.cat([grads[n].reshape(B, -1).to(G.dtype) for n in names], dim=1, out=G)
    return loss, mean_prob


# ---------------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------------
def _validate_examples(examples: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, list, np.ndarray | None]:
    """Check records (:func:`grace.validate.check_records`); map prompt ids to ints (first appearance order); collect ``correct``."""
    check_records(examples)
    key_index: dict[tuple[str, Any], int] = {}
    keys, pids = [], []
    for ex in examples:
        pid = ex["prompt_id"]
        pid = int(pid) if isinstance(pid, np.integer) else pid
        tag = (type(pid).__name__, pid)
        if tag not in key_index:
            key_index[tag] = len(keys)
            keys.append(pid)
        pids.append(key_index[tag])
    has_correct = "correct" in examples[0]
    correct = np.asarray([bool(ex["correct"]) for ex in examples], dtype=bool) if has_correct else None
    return np.asarray(pids, dtype=np.int64), keys, correct


def default_memory_budget(n_params: int, device: str | torch.device = "cpu") -> int:
    """Bytes a features block may take beyond the loaded model.

    On a CPU ``4·D·4`` (four fp32 gradients), at least 64 MiB. On CUDA the larger of that and
    :data:`CUDA_FREE_SHARE` of the device's free memory now: a block of ``B`` gradients is projected in
    one pass over Π (:mod:`grace.kernels`), so the hashing is shared by ``B`` examples."""
    budget = max(4 * 4 * n_params, MIN_MEMORY_BUDGET)
    device = torch.device(device)
    if device.type == "cuda":
        budget = max(budget, int(CUDA_FREE_SHARE * torch.cuda.mem_get_info(device)[0]))
    return budget


def plan_blocks(method: str, batch_size: int, n_params: int, memory_budget: int, on_cuda: bool = False,
                hooks_ok: bool = False, largest_param: int = 0) -> tuple[str, int]:
    """``(method, rows per block)`` that keep a block within ``memory_budget`` bytes.

    ``auto`` is, on CUDA, ``hooks`` (:mod:`grace.persample`: one batched pass per block) where every
    parameter is of a kind it covers, else the loop; on a CPU vmap when the whole batch fits
    (``4.4·B·D·4`` bytes), else the loop. The loop's block holds at most ``memory_budget // (4·D) − 3``
    gradient rows (one gradient lives in ``.grad``, two are left for the backward pass's temporaries,
    Π's chunk scratch and the allocator); ``hooks`` also keeps one product of the largest parameter's
    shape per row (model dtype, counted as 2 bytes an entry); an explicit ``vmap`` shrinks its batch to fit.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    vmap_rows = int(memory_budget // (VMAP_BYTES_PER_ENTRY * n_params))
    if method == "auto":
        if on_cuda:
            method = "hooks" if hooks_ok else "loop"
        else:
            method = AUTO_METHOD_CPU if vmap_rows >= batch_size else "loop"
    if method == "vmap":
        return method, max(1, min(batch_size, vmap_rows))
    per_row = 4 * n_params + (2 * largest_param if method == "hooks" else 0)
    return method, max(1, min(batch_size, int(memory_budget // per_row) - 3))


def _model_fingerprint(model, params: list) -> dict[str, Any]:
    """Name and a cheap checksum of the weights (catches a different checkpoint at the same path)."""
    with torch.no_grad():
        sums = [round(float(p.sum(dtype=torch.float64)), 10) for p in params]
    name = str(getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", ""))
    return {"name": name, "weights": stable_hash(sums), "class": type(model).__name__}


def _partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.npz")


def _save_partial(path: Path, done: dict[str, list], count: int, fingerprint: str) -> None:
    arrays = {k: np.concatenate(v)[:count] for k, v in done.items()}
    save_arrays(path, arrays, {"fingerprint": fingerprint, "count": count})


def _load_partial(path: Path, fingerprint: str) -> tuple[dict[str, list], int]:
    """Completed rows of an interrupted run with the same fingerprint, else nothing."""
    if not path.exists() or not path.with_suffix(".json").exists():
        return {}, 0
    try:
        arrays, meta = load_arrays(path)
    except Exception as e:  # a torn or foreign file: start again
        log.warning("ignoring unreadable partial file %s (%s)", path, e)
        return {}, 0
    if meta.get("fingerprint") != fingerprint:
        log.warning("partial file %s is from a different run; starting from scratch", path)
        return {}, 0
    count = int(meta["count"])  # the sidecar is written last, so count <= rows in the npz
    return {k: [v[:count]] for k, v in arrays.items()}, count


def compute_features(
    model,
    tokenizer,
    examples: Sequence[Mapping[str, Any]],
    projector: Projector,
    length_scale: str = "log",
    template: str = DEFAULT_TEMPLATE,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    progress: bool = True,
    out: str | os.PathLike | None = None,
    method: str = "auto",
    max_length: int | None = None,
    checkpoint_every: int = 4,
    max_batches: int | None = None,
    memory_budget: int | None = None,
    length_bucket: int | None = None,
    extra_meta: Mapping[str, Any] | None = None,
) -> Features:
    """Gradient features ``h = scale(|y|) · Π g`` for every example (paper §2.1, eq. 1's ``G(D)``).

    Args:
        model: any ``AutoModelForCausalLM`` (the student); put in eval mode during the call (no
            dropout), moved to ``device``, parameters untouched; its training flag and ``.grad``
            are restored afterwards.
        tokenizer: the student's tokenizer (see :func:`encode_example`).
        examples: records ``{prompt_id, prompt, response}`` (+ optional ``correct``; other keys
            are ignored).
        projector: ``Π`` with ``dim_in`` = number of trainable parameters.
        length_scale: ``"log"`` (paper), ``"log2"`` or ``"none"``; see :func:`length_scale_factor`.
        template: prompt template with a ``{prompt}`` placeholder.
        batch_size: examples per projection GEMM (and per ``vmap`` call), at most; a block is cut to
            fit ``memory_budget``.
        device: where gradients are computed.
        progress: show a tqdm bar.
        out: if given, save the result there (npz + sidecar) and checkpoint to
            ``out + ".partial.npz"`` every ``checkpoint_every`` batches; reruns resume / reload.
        method: ``"loop"``, ``"vmap"``, ``"hooks"`` (:mod:`grace.persample`: a block's per-sample gradients from
            one batched pass) or ``"auto"`` (fastest measured on the device type: :func:`plan_blocks`); with a
            :class:`grace.factored.FactoredProjector` ``"auto"`` takes its fast path (``"factored"``:
            one batched forward + backward per block, no per-sample gradient), and ``"loop"`` applies
            the same map to explicit gradients.
        max_length: optional truncation of each sequence (see :func:`encode_example`).
        checkpoint_every: batches between checkpoints when ``out`` is given.
        max_batches: stop after this many batches in *this* call (debugging / testing resumption);
            the returned features then cover only the completed examples (in input order) and
            ``meta["complete"]`` is ``False``.
        memory_budget: bytes the per-sample gradients of one block (with the factored projector: the
            activations of its pass, :meth:`grace.factored.FactoredProjector.activation_bytes_per_token`) may take beyond the loaded model;
            ``None`` is :func:`default_memory_budget` (``4·D·4``, at least 64 MiB; on CUDA most of the
            free device memory, so that a block of gradients shares each pass over Π).
        length_bucket: pad each sequence to a multiple of this many tokens (pads carry no loss, so the
            features are unchanged up to rounding); ``None`` is 64 on CUDA, where attention kernels
            build a plan per new length, and 1 (no padding) elsewhere.
        extra_meta: provenance to keep in the features' sidecar (e.g. ``{"lora": ...}``, :mod:`grace.lora`).

    Returns:
        A :class:`Features` in the order of ``examples``.
    """
    if length_scale not in LENGTH_SCALES:
        raise ValueError(f"unknown length_scale {length_scale!r}; choose one of {LENGTH_SCALES}")
    if not isinstance(projector, Projector):
        raise ValueError(f"projector must be a grace.projection.Projector, got {type(projector).__name__}")
    if batch_size < 1 or checkpoint_every < 1 or (max_batches is not None and max_batches < 1):
        raise ValueError(
            f"batch_size={batch_size}, checkpoint_every={checkpoint_every} and max_batches={max_batches} "
            "must be >= 1 (max_batches may be None)"
        )
    prompt_ids, prompt_keys, correct = _validate_examples(examples)
    device = torch.device(device)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    names, params = [n for n, _ in named], [p for _, p in named]
    n_params = sum(p.numel() for p in params)
    budget = default_memory_budget(n_params, device) if memory_budget is None else int(memory_budget)
    bucket = (LENGTH_BUCKET_CUDA if device.type == "cuda" else 1) if length_bucket is None else int(length_bucket)
    if bucket < 1:
        raise ValueError(f"length_bucket={length_bucket!r}; pass a positive integer (1 = no bucketing) or None")
    if getattr(projector, "kind", None) == "factored" and method in ("auto", "factored"):
        method = "factored"  # grace.factored: no per-sample gradient is formed, a block is one batch
    else:
        if method in ("auto", "hooks") and not persample.covers(model):
            if method == "hooks":
                raise ValueError("method='hooks' covers Linear, Embedding and RMSNorm weights and Linear biases only; "
                                 "this model has others: use method 'loop' or 'auto'")
            hooks_ok = False
        else:
            hooks_ok = True
        method, batch_size = plan_blocks(method, batch_size, n_params, budget, device.type == "cuda", hooks_ok,
                                         max(p.numel() for p in params))
        rows = 0 if (method == "loop" and batch_size == 1) else batch_size  # one row: projected from .grad directly
        block_bytes = (VMAP_BYTES_PER_ENTRY if method == "vmap" else 4) * rows * n_params + 12 * n_params
        if projector.cache_footprint() > budget - block_bytes:  # Π's cache shares the budget
            projector.fit_cache(int(budget - block_bytes))
    if projector.dim_in != n_params:
        raise ValueError(
            f"projector dim_in={projector.dim_in} but the model has {n_params} trainable parameters; "
            f"build the projector with dim_in={n_params}"
        )

    encoded = []
    for i, ex in enumerate(examples):
        try:
            encoded.append(encode_example(tokenizer, ex["prompt"], ex["response"], template, max_length))
        except ValueError as e:
            raise ValueError(f"example {i} (prompt_id={ex['prompt_id']!r}): {e}") from e
    lengths = np.asarray([sum(t != IGNORE_INDEX for t in lab) for _, lab in encoded], dtype=np.int64)
    scale = length_scale_factor(lengths, length_scale).astype(np.float32)
    if method == "factored":  # a factored block holds activations, not gradients: its tokens fit the budget
        tokens = bucket_length(max(len(ids) for ids, _ in encoded), bucket)  # the longest row pads every block
        batch_size = max(1, min(batch_size, int(budget // (projector.activation_bytes_per_token(model) * tokens))))

    model_fp = _model_fingerprint(model, params)
    fingerprint = stable_hash({
        "examples": stable_hash([[ex["prompt_id"], ex["prompt"], ex["response"]] for ex in examples]),
        "model": model_fp, "projector": projector.meta(), "template": template,
        "length_scale": length_scale, "max_length": max_length, "hash_of": "grace.features/v1",
    })  # fmt: skip
    meta = {
        "model": model_fp["name"], "n_params": n_params,
        "projector": projector.meta(), "template": template, "length_scale": length_scale,
        "max_length": max_length, "method": method, "block_rows": batch_size, "memory_budget": budget,
        "length_bucket": bucket, **dict(extra_meta or {}),
        "grad_dtype": "float32", "model_dtype": str(next(iter(params)).dtype).replace("torch.", ""),
        "grace_version": __version__,
        "fingerprint": fingerprint, "n_examples": len(examples), "complete": True,
    }  # fmt: skip
    out = Path(out) if out is not None else None
    if out is not None and out.exists() and out.with_suffix(".json").exists():
        cached = Features.load(out)
        if cached.meta.get("fingerprint") == fingerprint:
            return cached
        log.warning("%s was computed from different inputs; recomputing", out)

    # Batches are formed longest-first so that padding (vmap) stays small; rows go back to input order.
    order = np.argsort(-np.asarray([len(ids) for ids, _ in encoded]), kind="stable")
    done, start = _load_partial(_partial_path(out), fingerprint) if out is not None else ({}, 0)
    for k in ("H", "loss", "mean_prob", "grad_norm"):
        done.setdefault(k, [])
    was_training, old_grads = model.training, [p.grad for p in params]
    model.to(device).eval()
    try:
        run = _GradientRun(model, names, params, projector, method, batch_size, bucket, device, pad_id(tokenizer),
                           progress, out, fingerprint, checkpoint_every, max_batches)
        with planless_attention(device):  # CUDA: no attention plan per new length (restored after)
            _run_batches(run, [encoded[i] for i in order], scale[order], done, start)
    finally:
        model.train(was_training)
        for p, g in zip(params, old_grads, strict=True):
            p.grad = g

    count = sum(len(v) for v in done["H"])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))  # rank[i] = processing position of example i
    idx = np.sort(order[:count])  # the completed examples, in input order
    rows = {k: np.concatenate(v)[rank[idx]].astype(np.float32) for k, v in done.items()}
    feats = Features(
        H=rows["H"], prompt_ids=prompt_ids[idx], prompt_keys=prompt_keys, lengths=lengths[idx],
        loss=rows["loss"], mean_prob=rows["mean_prob"], grad_norm=rows["grad_norm"],
        correct=None if correct is None else correct[idx],
        meta={**meta, "complete": count == len(examples), "n_examples": count},
    )  # fmt: skip
    if out is not None and count == len(examples):
        feats.save(out)
        for p in (_partial_path(out), _partial_path(out).with_suffix(".json")):
            p.unlink(missing_ok=True)
    return feats


@dataclass
class _GradientRun:
    """The fixed settings of one :func:`compute_features` pass (what every batch needs)."""

    model: Any
    names: list[str]
    params: list[torch.Tensor]
    projector: Projector
    method: str  # loop | vmap | hooks | factored
    batch_size: int  # rows per block
    bucket: int  # sequence lengths are padded to multiples of this (1: none)
    device: torch.device
    pad: int  # right-padding token id
    progress: bool
    out: Path | None  # checkpoint target, or None
    fingerprint: str
    checkpoint_every: int
    max_batches: int | None


def _run_batches(run: _GradientRun, encoded: list, scale: np.ndarray, done: dict[str, list], start: int) -> None:
    """Compute ``encoded[start:]`` batch by batch, appending numpy rows to ``done`` and checkpointing."""
    from tqdm.auto import tqdm

    model, names, params, projector = run.model, run.names, run.params, run.projector
    method, batch_size, device, out = run.method, run.batch_size, run.device, run.out
    N, D = len(encoded), sum(p.numel() for p in params)
    direct = method == "loop" and batch_size == 1  # the tightest budget: project straight from .grad
    G = None if direct or method == "factored" else torch.empty(min(batch_size, N), D, dtype=torch.float32, device=device)  # [B, D]
    starts = list(range(start, N, batch_size))
    bar = tqdm(total=N, initial=start, disable=not run.progress, desc=f"features ({method})", unit="ex")
    for n_done, b0 in enumerate(starts, 1):
        batch = encoded[b0 : b0 + batch_size]
        B = len(batch)
        ids, labels = right_pad(batch, run.pad, run.bucket)  # [B, T] each; pads after the real tokens, label -100
        ids, labels = ids.to(device), labels.to(device)
        if method == "factored":
            H, loss, mean_prob, grad_norm = projector.features(model, ids, labels, batched_response_loss)
        elif direct:
            H, loss, mean_prob, grad_norm = _project_direct(model, params, ids, labels, ids.shape[1], projector)
        else:
            if method == "loop":
                loss, mean_prob = grads_loop(model, params, ids, labels, [len(x) for x, _ in batch], G[:B], run.bucket)
            elif method == "hooks":
                loss, mean_prob = persample.grads_hooks(model, ids, labels, G[:B], batched_response_loss)
            else:
                loss, mean_prob = grads_vmap(model, names, params, ids, labels, G[:B])
            grad_norm = torch.linalg.vector_norm(G[:B], dim=1)
            H = projector.project(G[:B])
        H = H * torch.from_numpy(scale[b0 : b0 + B]).to(projector.device)[:, None]
        for k, v in (("H", H), ("loss", loss), ("mean_prob", mean_prob), ("grad_norm", grad_norm)):
            done[k].append(v.detach().float().cpu().numpy())
        bar.update(B)
        stop = run.max_batches is not None and n_done >= run.max_batches
        if out is not None and b0 + B < N and (n_done % run.checkpoint_every == 0 or stop):
            _save_partial(_partial_path(out), done, b0 + B, run.fingerprint)
        if stop:
            break
    bar.close()










