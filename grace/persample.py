"""Exact per-sample gradients of a whole block in one batched forward + backward (paper §2.1's ``g``).

The per-example loop (:func:`grace.features.grads_loop`) runs one forward + backward per example; on a
GPU at 1 B parameters that costs ~53 ms an example, almost all of it launch overhead, while the
arithmetic is a few ms. Here a right-padded block of ``B`` examples runs once, with the weights
frozen, and layer hooks write each example's gradient straight into its row of ``G [B, D]``:

* ``nn.Linear`` weight ``W [out, in]``: ``∂L_b/∂W = Σ_t δ_bt x_btᵀ``, one batched matrix product
  ``[B, out, T] @ [B, T, in]`` (bias: ``Σ_t δ_bt``);
* ``nn.Embedding`` ``E [V, h]``: ``∂L_b/∂E = Σ_t onehot(token_bt) δ_btᵀ``, an index-add per example;
  a tied output layer adds its own term into the same rows of ``G``;
* RMSNorm weight (Llama/Qwen/Gemma style): ``Σ_t δ_bt ⊙ x̂_bt``.

Every trainable parameter must be one of these (:func:`grace.factored.factored_layout` says which, and
refuses the rest); ``δ_bt`` is ``∂L_b/∂y_bt`` because the block's loss is ``Σ_b L_b`` and examples do
not interact (causal attention over right padding: pads are never attended to and carry no loss).
The products run in the model's dtype, as the loop's ``.grad`` does, and land in fp32 ``G``.
Same math as the loop; tests check they agree.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from grace.factored import Block, factored_layout, hooked_backward, rms_hat

__all__ = ["covers", "grads_hooks"]


def covers(model: nn.Module) -> bool:
    """Whether every trainable parameter is a Linear/Embedding/RMSNorm weight or a Linear bias."""
    try:
        factored_layout(model, 1)
    except ValueError:
        return False
    return True


def grads_hooks(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor, G: torch.Tensor, loss_fn,
                layout: list[Block] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill ``G [B, D]`` with each row's response-loss gradient; returns ``(loss [B], mean_prob [B])``.

    ``ids, labels [B, T]`` right-padded (labels ``-100`` where no loss); ``loss_fn(logits [B, T', V],
    labels [B, T']) -> (loss [B], mean_prob [B])`` per-row means (:func:`grace.features.batched_response_loss`).
    """
    layout = factored_layout(model, 1) if layout is None else layout
    B, T = ids.shape
    pmap = {id(p): b for (n, p), b in zip(((n, p) for n, p in model.named_parameters() if p.requires_grad),
                                           layout, strict=True)}
    G.zero_()  # tied layers add into one block; everything else is written once

    def block(b: Block) -> torch.Tensor:  # [B, *shape], a strided view of G's columns for b
        return G[:, b.offset : b.offset + b.numel].view(B, *b.shape)

    def on_linear(m, inputs, output):
        b, x = pmap[id(m.weight)], inputs[0].detach()  # x [B, T, in]
        bb = pmap.get(id(m.bias)) if isinstance(m.bias, nn.Parameter) else None

        def back(grad):
            d = grad.detach()  # [B, T, out]
            block(b).add_(torch.bmm(d.transpose(1, 2), x))  # [B, out, in]
            if bb is not None:
                block(bb).add_(d.sum(1))

        output.register_hook(back)

    def on_embedding(m, inputs, output):
        b, tok = pmap[id(m.weight)], inputs[0]  # tok [B, T]
        if not output.requires_grad:
            output.requires_grad_(True)  # the weights are frozen: gradients start here

        def back(grad):
            d = grad.detach()  # [B, T, h]
            rows = block(b)
            for i in range(B):
                rows[i].index_add_(0, tok[i], d[i].to(rows.dtype))

        output.register_hook(back)
        return output

    def on_norm(m, inputs, output):
        b, xhat = pmap[id(m.weight)], rms_hat(m, inputs[0].detach())  # [B, T, h]

        def back(grad):
            block(b).add_((grad.detach().float() * xhat.float()).sum(1))

        output.register_hook(back)

    return hooked_backward(model, pmap, ids, labels, loss_fn, on_linear, on_embedding, on_norm)
