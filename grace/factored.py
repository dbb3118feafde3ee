"""A factored projector: per-sample gradient features without forming a per-sample gradient (LoGra-style).

**Not the paper's Π** (that is :class:`grace.projection.RademacherProjector`): an opt-in projector for
students too large for the dense Π on the hardware at hand. For a linear layer ``y = W x``
the per-sample gradient is a sum of outer products, ``∂L/∂W = Σ_t δ_t x_tᵀ`` (``δ_t = ∂L/∂y_t``), so
with two small seeded sign matrices ``P_out [out, k]`` and ``P_in [in, k]`` (entries ``±1/√k``)

    P_outᵀ (∂L/∂W) P_in = Σ_t (P_outᵀ δ_t)(P_inᵀ x_t)ᵀ        [k, k]

needs only the layer's input activations and output gradients, each projected to ``k`` numbers per
token — the ``[out, in]`` gradient never exists (Choe et al., 2024, "LoGra"). Every parameter of the
student is covered, in ``named_parameters()`` order:

* 2-D weights of ``nn.Linear`` modules: the ``k × k`` block above;
* the token embedding ``E [V, h]``: ``∂L/∂E = Σ_t onehot(token_t) δ_tᵀ``, so its block is
  ``Σ_t P_out[token_t]ᵀ (P_inᵀ δ_t)``; a tied output layer (``lm_head.weight is E``) adds its own
  outer products into the *same* block with the same matrices, as the tied gradient is their sum;
* 1-D weights of RMSNorm layers (``w ⊙ x̂``, Llama/Qwen/Gemma style): exact, ``Σ_t δ_t ⊙ x̂_t``;
* biases of linear layers (Qwen's attention): exact, ``Σ_t δ_t``;
* anything else is refused with the list of projectors that take it.

The blocks are stacked into ``z ∈ R^K`` and mapped to ``d`` dimensions by the paper's dense Π on
``z`` (:class:`~grace.projection.RademacherProjector`, ``K → d``), rescaled by ``√(K/D)`` so that
``E‖h‖² = (d/D)·‖g‖²`` as with the dense Π on the full gradient. ``E⟨h, h'⟩ ∝ ⟨g, g'⟩``: every
factor has ``E[P Pᵀ] = I``. It is linear in ``g``: :meth:`FactoredProjector.project` applies the same
map to an explicit flattened gradient (tests check the two paths agree), and the fast path
(:meth:`FactoredProjector.features`) runs one batched forward + backward per block with the weights
frozen, so no weight gradient is computed at all — it can cost less than one plain per-example
forward + backward. The output layer is asked for the logits of scored positions only
(``logits_to_keep``): the prompt's logits carry no loss.

The raw gradient norm ``‖g‖`` (``Features.grad_norm``: BADGE, App. C.1; Figs 21-22, App. D.4) comes in
two kinds, ``norms=``:

* ``"sketch"`` (default): ``‖z‖``, free. ``E‖z‖² = ‖g‖²`` (each ``k × k`` block is an unbiased sketch
  of its matrix's squared norm, the vector blocks are exact), so it is an estimate, not the norm: on
  8 GSM8K solutions with SmolLM2-135M it was within 1.6 % of the exact norm (median; 4.4 % at most).
  GRACE, G-Vendi and G-Var never read it: they use ``H`` alone, which is the same for both kinds, so
  the default costs them nothing; BADGE reads ``log mean ‖g‖`` (a few hundredths off).
* ``"exact"``: ``‖g‖`` itself on the same pass, from the token Gram matrices
  (``‖Σ_t δ_t x_tᵀ‖² = Σ_{t,s} (δ_t·δ_s)(x_t·x_s)``; layers reading one input, as q/k/v and gate/up
  do, share its Gram), or from the ``[out, in]`` matrix once a sequence is long enough for that to
  be cheaper (``T > in·out/(in + out)``). At 135 M it cost 1.08-1.18× the sketch's time (same run; `bench_real.py`).
  Ask for it where the norm itself is the result (chapter 12's Figs 21-22: ``grace rank --norms exact``).

Where the time goes (SmolLM2-135M, one GSM8K solution of ~200 tokens, 2 CPU threads, sampled with
py-spy, ``norms="exact"``): the frozen forward ~37 %, the activations-only backward ~38 %, the hooks
~20 % (token Grams ~12 %, the ``k``-wide factor products ~5 %, bookkeeping ~2 %), the final ``K → d``
Π ~2 %. In multiply-adds it is ``2F`` (``"sketch"``) or ``2F + Grams`` (``"exact"``) against the
floor's ``3F`` (``F`` = one forward): about 0.67 and 0.75 of the floor at this length.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from grace.config import NORMS  # the profile schema owns the allowed values
from grace.encoding import IGNORE_INDEX
from grace.io import stable_hash
from grace.projection import Projector, RademacherProjector

__all__ = ["Block", "FactoredProjector", "factored_layout", "hooked_backward", "rms_hat", "scored_tail"]


@dataclass(frozen=True)
class Block:
    """One trainable parameter as the factored map sees it."""

    name: str
    shape: tuple[int, ...]
    kind: str  # "matrix" (Linear weight or embedding, k_out × k_in) | "vector" (RMSNorm weight or bias, exact)
    offset: int  # first column in the flattened gradient
    z_offset: int  # first entry in z
    k_out: int = 0
    k_in: int = 0

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def z_size(self) -> int:
        return self.k_out * self.k_in if self.kind == "matrix" else self.numel


def _is_rmsnorm(m: nn.Module) -> bool:
    return type(m).__name__.endswith("RMSNorm") and isinstance(getattr(m, "weight", None), nn.Parameter)


def _rms_eps(m: nn.Module) -> float:
    for attr in ("variance_epsilon", "eps"):
        if getattr(m, attr, None) is not None:
            return float(getattr(m, attr))
    return 1e-6


def rms_hat(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x̂ = x / rms(x)`` of an RMSNorm layer ``m`` in fp32: ``∂L/∂w = Σ_t δ_t ⊙ x̂_t`` for its weight."""
    x = x.float()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + _rms_eps(m))


def factored_layout(model: nn.Module, k: int) -> list[Block]:
    """The blocks of every trainable parameter, in ``named_parameters()`` order (raises if one is not covered)."""
    owners: dict[int, str] = {}
    for mname, m in model.named_modules():
        w = getattr(m, "weight", None)
        if isinstance(w, nn.Parameter):
            if isinstance(m, nn.Linear | nn.Embedding):
                owners.setdefault(id(w), "matrix")
            elif _is_rmsnorm(m):
                owners.setdefault(id(w), "vector")
        bias = getattr(m, "bias", None)
        if isinstance(m, nn.Linear) and isinstance(bias, nn.Parameter):
            owners.setdefault(id(bias), "vector")  # ∂L/∂b = Σ_t δ_t, exact
        for pname, p in m.named_parameters(recurse=False):
            if pname not in ("weight", "bias") and p.requires_grad or (pname == "bias" and not isinstance(m, nn.Linear)
                                                                       and p.requires_grad):
                raise ValueError(f"parameter {mname}.{pname} (outside a Linear layer's weight and bias) is not covered by the "
                                 "factored projector; use projector 'rademacher' or 'sparse_jl' for this model")
    blocks, off, zoff = [], 0, 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        kind = owners.get(id(p))
        if kind is None:
            raise ValueError(f"parameter {name} {tuple(p.shape)} belongs to no Linear, Embedding or RMSNorm module; "
                             "the factored projector cannot cover it: use projector 'rademacher' or 'sparse_jl'")
        if kind == "matrix":
            out, inp = p.shape
            b = Block(name, tuple(p.shape), kind, off, zoff, min(k, out), min(k, inp))
        else:
            b = Block(name, tuple(p.shape), kind, off, zoff)
        blocks.append(b)
        off, zoff = off + b.numel, zoff + b.z_size
    return blocks


def scored_tail(model: nn.Module, labels: torch.Tensor) -> dict[str, int]:
    """Keyword asking an HF causal LM for the logits of the last ``T'`` positions only, ``T'`` from the
    one before the first scored label to the end (``{}`` when that is all of them or the model cannot).

    Position ``t`` predicts ``labels[t + 1]``, so positions before ``first - 1`` carry no loss and a
    zero logit gradient: leaving them out of the output layer changes no feature, loss or norm (up to
    fp rounding) and saves the prompt's share of the ``[T, V]`` work.
    """
    scored = (labels != IGNORE_INDEX).any(0).nonzero()
    keep = labels.shape[1] - max(int(scored[0]) - 1, 0) if len(scored) else labels.shape[1]
    if keep >= labels.shape[1]:
        return {}
    params = inspect.signature(model.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):  # transformers >= 4.50 | 4.45-4.49
        if name in params:
            return {name: keep}
    return {}



def hooked_backward(model: nn.Module, pmap: dict[int, Any], ids: torch.Tensor, labels: torch.Tensor, loss_fn,
                    on_linear, on_embedding, on_norm) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward + backward of a batch in which layer hooks, not ``.grad``, collect the gradients (App. C.3).

    ``pmap`` maps ``id(parameter)`` to its block; the Linear, Embedding and RMSNorm modules whose weight is
    in it get the matching forward hook (which registers a backward hook on the output). The parameters are
    frozen for the pass, so autograd accumulates no ``.grad``; a frozen input embedding (e.g. LoRA) still
    starts the graph. ``ids, labels [B, T]``; ``loss_fn(logits [B, T', V], labels [B, T']) -> (loss [B],
    mean_prob [B])``. Returns ``(loss, mean_prob)``, detached.
    """
    def start_graph(m, inputs, output):
        return output if output.requires_grad else output.requires_grad_(True)

    handles, frozen = [], []
    try:
        emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        if emb is not None and id(getattr(emb, "weight", None)) not in pmap:
            handles.append(emb.register_forward_hook(start_graph))
        for m in model.modules():
            w = getattr(m, "weight", None)
            if not isinstance(w, nn.Parameter) or id(w) not in pmap:
                continue
            if isinstance(m, nn.Embedding):
                handles.append(m.register_forward_hook(on_embedding))
            elif isinstance(m, nn.Linear):
                handles.append(m.register_forward_hook(on_linear))
            elif _is_rmsnorm(m):
                handles.append(m.register_forward_hook(on_norm))
        for p in model.parameters():
            if p.requires_grad:
                p.requires_grad_(False)
                frozen.append(p)
        with torch.enable_grad():
            keep = scored_tail(model, labels)  # logits only where a loss is taken (the rest has δ = 0)
            logits = model(input_ids=ids, use_cache=False, **keep).logits  # [B, T', V]
            loss, mean_prob = loss_fn(logits, labels[:, ids.shape[1] - logits.shape[1]:])
            loss.sum().backward()
    finally:
        for h in handles:
            h.remove()
        for p in frozen:
            p.requires_grad_(True)
    return loss.detach(), mean_prob.detach()

def _grams_are_cheaper(T: int, n_out: int, n_in: int) -> bool:
    """Whether ``‖Σ_t δ_t x_tᵀ‖²`` costs less from the ``[T, T]`` Grams (``T²·(in + out)`` MACs) than from the
    ``[out, in]`` gradient (``T·in·out``): true while ``T ≤ in·out / (in + out)`` (≈ 420 for a 576 × 1536 layer)."""
    return T * (n_in + n_out) <= n_in * n_out


def _signs(seed: int, n: int, k: int) -> torch.Tensor:
    """``[n, k]`` of ``±1/√k`` from a seeded CPU generator (the same on every machine)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (n, k), generator=g, dtype=torch.int8).float() * 2 - 1) / math.sqrt(k)


class FactoredProjector(Projector):
    """LoGra-style factored projection of a model's per-sample gradient to ``dim_out`` (see module doc).

    Args:
        model: the student; its trainable parameters fix the layout (``dim_in`` = their count).
        dim_out: ``d``.
        seed: seeds every factor and the final Π.
        k: factor width per side of each weight matrix (``k × k`` numbers per matrix; 16 by default).
        norms: ``"sketch"`` (``‖z‖``, free, unbiased for ``‖g‖²``; default) or ``"exact"`` (token Grams, slower) for
            the fast path's ``grad_norm`` (module doc). The explicit-gradient path is always exact. ``H`` is the
            same for both.
        device: where the factors and features live.
    """

    kind = "factored"
    NORMS = NORMS

    def __init__(self, model: nn.Module, dim_out: int, seed: int = 0, k: int = 16, norms: str = "sketch",
                 device: str | torch.device = "cpu"):
        if norms not in self.NORMS:
            raise ValueError(f"norms={norms!r}: choose 'sketch' (‖z‖, free) or 'exact' (token Gram matrices, slower)")
        blocks = factored_layout(model, int(k))
        super().__init__(sum(b.numel for b in blocks), dim_out, seed, device)
        self.k, self.blocks, self.norms = int(k), blocks, norms
        self.z_dim = sum(b.z_size for b in blocks)
        self.by_name = {b.name: b for b in blocks}
        self.final = RademacherProjector(self.z_dim, dim_out, seed=seed, device=device)
        self.rescale = math.sqrt(self.z_dim / self.dim_in)  # E‖h‖² = (d/D)‖g‖², as the dense Π
        self._factors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.layout_hash = stable_hash([[b.name, list(b.shape), b.kind, b.k_out, b.k_in] for b in blocks])

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "k": self.k, "z_dim": self.z_dim, "layout": self.layout_hash, "norms": self.norms}

    def factors(self, b: Block) -> tuple[torch.Tensor, torch.Tensor]:
        """``(P_out [out, k_out], P_in [in, k_in])`` of a matrix block."""
        if b.name not in self._factors:
            i = self.blocks.index(b)
            s_out, s_in = (int(stable_hash([self.seed, i, side], n=8), 16) for side in ("out", "in"))
            self._factors[b.name] = (_signs(s_out, b.shape[0], b.k_out).to(self.device),
                                     _signs(s_in, b.shape[1], b.k_in).to(self.device))
        return self._factors[b.name]

    # -- the linear map on an explicit gradient (reference path; also what the loop method uses) --------
    def _z_block(self, b: Block, cols: torch.Tensor) -> torch.Tensor:
        """``cols [B, numel]`` of one parameter's gradient → its ``[B, z_size]`` part of ``z``."""
        if b.kind == "vector":
            return cols
        p_out, p_in = self.factors(b)
        W = cols.reshape(-1, *b.shape)  # [B, out, in]
        return (p_out.T @ W @ p_in).reshape(cols.shape[0], -1)  # [B, k_out * k_in]

    def _accumulate(self, out: torch.Tensor, G_cols: torch.Tensor, start: int) -> None:
        end, pos = start + G_cols.shape[1], start
        for b in self.blocks:
            if b.offset + b.numel <= start or b.offset >= end:
                continue
            if b.offset < start or b.offset + b.numel > end:
                raise ValueError(f"columns [{start}, {end}) cut parameter {b.name}; the factored projector takes whole "
                                 "parameters (project the full gradient, or one parameter at a time)")
            z = self._z_block(b, G_cols[:, b.offset - pos: b.offset - pos + b.numel].float())
            out += self.final.project_partial(z, b.z_offset) * self.rescale

    @staticmethod
    def activation_bytes_per_token(model: nn.Module) -> int:
        """Peak memory one token of a block costs on :meth:`features`' pass, estimated (bytes).

        ``4·(3·Σ_Linear (in + out) + 4·V)``: every layer's input and output saved for the backward
        pass and one more of each in flight there (fp32), plus the scored logits, their log-softmax and
        gradients (``V`` = the embedding's rows; the output layer is counted there, not as a Linear).
        On SmolLM2-135M it gives 4.5 MB; ``grace rank`` with a block of 8 GSM8K solutions measured about
        4.3 MB per token of peak resident memory beyond the model.
        """
        emb = [m for m in model.modules() if isinstance(m, nn.Embedding)]
        vocab = max((m.num_embeddings for m in emb), default=0)
        linear = sum(m.in_features + m.out_features for m in model.modules()
                     if isinstance(m, nn.Linear) and m.out_features != vocab)
        return 4 * (3 * linear + 4 * vocab)

    # -- the fast path: one batched forward + backward, activations only ------------------------------
    def features(self, model: nn.Module, ids: torch.Tensor, labels: torch.Tensor, loss_fn) -> tuple[torch.Tensor, ...]:
        """Features of a right-padded batch without any weight gradient.

        Args:
            model: the model the layout was built from.
            ids, labels: ``[B, T]`` right-padded tokens and labels (``-100`` where no loss).
            loss_fn: ``(logits [B, T, V], labels [B, T]) -> (loss [B], mean_prob [B])``, per-row means.

        Returns:
            ``(H [B, d], loss [B], mean_prob [B], grad_norm [B])`` — ``grad_norm`` is ``‖g‖`` (``norms="exact"``)
            or its sketch ``‖z‖`` (``"sketch"``).
        """
        B = ids.shape[0]
        z = torch.zeros(B, self.z_dim, dtype=torch.float32, device=self.device)
        sq = torch.zeros(B, dtype=torch.float64, device=self.device)
        stash = {}
        grams: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(layer input) -> (that input, its Gram)
        pmap = {id(p): self.by_name[n] for n, p in model.named_parameters() if n in self.by_name}
        emb_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
        T, exact = ids.shape[1], self.norms == "exact"

        def add(b: Block, zb: torch.Tensor, sqb: torch.Tensor) -> None:
            z[:, b.z_offset: b.z_offset + b.z_size] += zb.reshape(B, -1).to(self.device)
            sq.add_(sqb.to(self.device, torch.float64))

        def on_linear(m, inputs, output):
            b = pmap[id(m.weight)]
            p_out, p_in = self.factors(b)
            x = inputs[0].detach().float()  # [B, T, in]
            a = x @ p_in  # [B, T, k_in]
            gram_x = None  # ‖Σ_t δ_t x_tᵀ‖² from token Grams, or (long sequences) from the [out, in] matrix itself
            if exact and _grams_are_cheaper(x.shape[1], *b.shape):
                hit = grams.get(id(inputs[0]))  # the entry holds the input, so its id cannot be reused meanwhile
                if hit is None:  # q/k/v (and gate/up) read one input: one Gram
                    hit = grams[id(inputs[0])] = (inputs[0], x @ x.transpose(1, 2))  # [B, T, T]
                gram_x = hit[1]

            tied = id(m.weight) in emb_ids  # an output layer sharing the embedding matrix
            bb = pmap.get(id(m.bias)) if isinstance(m.bias, nn.Parameter) else None

            def back(grad):
                d = grad.detach().float()  # [B, T, out]
                if not exact:
                    sqb = d.new_zeros(B)
                elif gram_x is not None:
                    sqb = ((d @ d.transpose(1, 2)) * gram_x).sum((1, 2))
                else:
                    sqb = (d.transpose(1, 2) @ x).pow(2).sum((1, 2))
                add(b, (d @ p_out).transpose(1, 2) @ a, sqb)
                if bb is not None:
                    gb = d.sum(1)  # [B, out]
                    add(bb, gb, gb.double().pow(2).sum(1))
                if tied and exact:  # for the cross term of ‖g_out + g_emb‖²: δ_t[token_s] [B, T', T] and x
                    stash[b.name] = (d.gather(2, ids[:, None, :].expand(B, d.shape[1], T)), x)

            output.register_hook(back)

        def on_embedding(m, inputs, output):
            b = pmap[id(m.weight)]
            p_out, p_in = self.factors(b)
            tok = inputs[0]  # [B, T]
            rows = p_out[tok]  # [B, T, k_out]
            same = (tok[:, :, None] == tok[:, None, :]).float() if exact else None  # [B, T, T]
            if not output.requires_grad:
                output.requires_grad_(True)  # the weights are frozen: gradients start here

            def back(grad):
                d = grad.detach().float()  # [B, T, h]
                sqb = ((d @ d.transpose(1, 2)) * same).sum((1, 2)) if exact else d.new_zeros(B)
                if b.name in stash:  # tied: 2⟨Σ_t δ_t x_tᵀ, Σ_s onehot(token_s) d_sᵀ⟩ = 2 Σ_{t,s} δ_t[token_s] (x_t·d_s)
                    d_tok, x = stash.pop(b.name)
                    sqb = sqb + 2 * (d_tok * (x @ d.transpose(1, 2))).sum((1, 2))
                add(b, rows.transpose(1, 2) @ (d @ p_in), sqb)

            output.register_hook(back)
            return output

        def on_norm(m, inputs, output):
            b = pmap[id(m.weight)]
            xhat = rms_hat(m, inputs[0].detach())  # [B, T, h]

            def back(grad):
                gw = (grad.detach().float() * xhat).sum(1)  # [B, h]
                add(b, gw, gw.double().pow(2).sum(1))

            output.register_hook(back)

        loss, mean_prob = hooked_backward(model, pmap, ids, labels, loss_fn, on_linear, on_embedding, on_norm)
        H = self.final.project(z) * self.rescale
        norm = sq.sqrt().float() if exact else torch.linalg.vector_norm(z.double(), dim=1).float()  # ‖g‖ | ‖z‖
        return H, loss.detach(), mean_prob.detach(), norm
