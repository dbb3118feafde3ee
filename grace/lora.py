"""Gradient features with respect to LoRA adapters (peft), as the release's ``--use-lora`` and LESS take them.

Instead of the gradient over all ``D`` weights, the student gets rank-``r`` adapters ``W + (α/r)·B A``
on its target modules (peft's LoRA: ``A`` random, ``B = 0``) and only the adapters are trainable, so
:func:`grace.features.compute_features` takes ``g = ∂L/∂(A, B)``. At ``B = 0`` the gradient on ``A`` is
zero and the one on ``B`` is ``(α/r)·(∂L/∂W) Aᵀ``: each target weight's gradient seen through ``r``
random directions of its input side — a sketch, like the factored projector's, not the paper's ``g``.
``D`` drops from the model's size to ``r·Σ(in + out)`` over the targets, so the dense Π stays cheap.

Not the paper's default (it projects the full gradient); Appendix A compares the two rankings.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn

from grace.config import LoraSpec

__all__ = ["LoraSpec", "lora_student"]  # LoraSpec: the profile schema owns it (grace.config)



def lora_student(model: nn.Module, spec: LoraSpec, seed: int = 0) -> nn.Module:
    """``model`` with LoRA adapters injected in place and only they trainable (peft); returns the HF model.

    ``A`` is drawn from a generator seeded by ``seed`` (the process's RNG is left as it was), so the
    same seed gives the same adapters and the same features on every run.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:  # pragma: no cover - peft is a dependency
        raise ValueError("LoRA features need peft: pip install peft") from e
    present = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    missing = sorted(set(spec.target_modules) - present)
    if missing:
        raise ValueError(f"lora target_modules {missing} are not Linear layers of this model; it has {sorted(present)}")
    config = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, target_modules=list(spec.target_modules),
                        lora_dropout=0.0, bias="none")
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(seed)  # peft asks transformers about a renamed method: not the user's concern
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, config)
    return peft_model.get_base_model()  # the same modules, adapters inside: HF's forward and keywords
