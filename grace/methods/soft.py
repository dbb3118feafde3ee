"""Soft-label distillation with a temperature: the student matches the teacher's softened next-token
distribution (Hinton, Vinyals & Dean 2015, §2; reviewed in Omar & Gholami, "Can a student LLM perform as
well as its teacher?", the "soft labels" and "temperature scaling" sections).

Per response token the loss is

    L = α · τ² · KL(softmax(z_T / τ) ‖ softmax(z_S / τ)) + (1 − α) · CE(z_S, y)

with z_T, z_S the teacher's and the student's logits, y the token the teacher wrote (its sampled text: the
hard label of paper §3's SFT, so α = 0 *is* SFT) and τ² keeping the soft term's gradients the same size as τ
changes (Hinton et al. §2: the gradients of the softened term scale as 1/τ²). The KL term is TRL's
``GKDTrainer.generalized_jsd_loss`` with β = 0 (forward KL) at temperature τ, the supervised, fixed-text
(λ = 0) case of generalized knowledge distillation. ``GKDTrainer`` itself is not used: in TRL 1.16 its
``compute_loss`` ignores ``temperature`` (it only sets on-policy sampling), has no hard-label term and no τ²,
and its collator needs a chat template the miniature's tokenizer does not have; :class:`SoftLabelTrainer`
is the HF ``Trainer.compute_loss`` that adds them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer

from grace.distill import TrainConfig, train_causal_lm
from grace.encoding import IGNORE_INDEX, encode_all
from grace.methods.base import Method, check_same_tokenizer


@dataclass(frozen=True)
class SoftLabelConfig:
    """Soft-label KD's two knobs. The overview prints no values; τ = 2 and α = 0.5 are the conventional
    starting point (Hinton et al. 2015 use τ from 1 to 20), not the overview's numbers.

    Attributes:
        temperature: τ > 0, softens both distributions (τ = 1: the model's own; τ > 1 shows the "dark
            knowledge" of the non-argmax tokens).
        alpha: weight α ∈ [0, 1] of the soft term (α = 0: plain SFT on the teacher's text; α = 1: soft only).
        compensate: multiply the soft term by τ² (Hinton et al. §2); off only to show why it is there.
    """

    temperature: float = 2.0
    alpha: float = 0.5
    compensate: bool = True

    def __post_init__(self):
        if not float(self.temperature) > 0:
            raise ValueError(f"temperature={self.temperature!r} must be > 0 (1 keeps the teacher's distribution; "
                             "2 is the usual start)")
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise ValueError(f"alpha={self.alpha!r} must be in [0, 1] (0: hard labels only, 1: soft labels only)")


def forward_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
               temperature: float) -> torch.Tensor:
    """Mean over supervised tokens of KL(softmax(z_T/τ) ‖ softmax(z_S/τ)) (Hinton et al. §2), through TRL's
    generalized JSD at β = 0. Logits ``(B, T, V)`` aligned with ``labels`` ``(B, T)`` (−100: no loss)."""
    gkd = _gkd_trainer()
    return gkd.generalized_jsd_loss(student_logits, teacher_logits, labels=labels, beta=0.0,
                                    temperature=temperature, reduction="batchmean")


def soft_label_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, labels: torch.Tensor,
                    cfg: SoftLabelConfig) -> dict[str, torch.Tensor]:
    """α·τ²·KL(teacher_τ ‖ student_τ) + (1 − α)·CE(hard labels) over supervised tokens (Hinton et al. §2).

    Args:
        student_logits: ``(B, T, V)``, position t predicting ``labels[:, t]``.
        teacher_logits: ``(B, T, V)`` on the same tokens (may be None when α = 0).
        labels: ``(B, T)`` token ids, −100 where there is no loss.
        cfg: τ, α and whether to compensate by τ².

    Returns:
        ``{"loss", "soft", "hard"}``: the total and its two unweighted terms (a term with weight 0 is 0).
    """
    zero = student_logits.new_zeros(())
    hard = zero
    if cfg.alpha < 1:
        hard = F.cross_entropy(student_logits.reshape(-1, student_logits.shape[-1]), labels.reshape(-1),
                               ignore_index=IGNORE_INDEX)
    soft = zero
    if cfg.alpha > 0:
        if teacher_logits is None:
            raise ValueError(f"alpha={cfg.alpha}: the soft term needs the teacher's logits")
        if teacher_logits.shape != student_logits.shape:
            raise ValueError(f"teacher logits {tuple(teacher_logits.shape)} vs student logits "
                             f"{tuple(student_logits.shape)}: teacher and student need one vocabulary")
        soft = forward_kl(student_logits, teacher_logits, labels, cfg.temperature)
    scale = cfg.temperature ** 2 if cfg.compensate else 1.0
    return {"loss": cfg.alpha * scale * soft + (1 - cfg.alpha) * hard, "soft": soft, "hard": hard}


def soft_label_entropy(teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """Mean entropy (nats) of the teacher's softened distribution softmax(z/τ) over supervised tokens: how much
    the soft labels say beyond the argmax (the overview's "dark knowledge"). Logits ``(B, T, V)``, labels ``(B, T)``."""
    logp = F.log_softmax(teacher_logits.float() / temperature, dim=-1)  # (B, T, V)
    ent = -(logp.exp() * logp).sum(-1)  # (B, T)
    mask = labels != IGNORE_INDEX
    return float(ent[mask].mean()) if mask.any() else float("nan")


@torch.no_grad()
def teacher_entropy(teacher, encoded: Sequence[dict[str, list[int]]], temperatures: Sequence[float], pad_id: int,
                    batch_size: int = 64) -> dict[float, float]:
    """``{τ: mean entropy of the teacher's soft labels}`` on encoded examples (:func:`soft_label_entropy`)."""
    from grace.distill import collate

    device = next(teacher.parameters()).device
    sums = {float(t): 0.0 for t in temperatures}
    count = 0
    for i in range(0, len(encoded), batch_size):
        batch = collate(encoded[i:i + batch_size], pad_id)
        logits = teacher(input_ids=batch["input_ids"].to(device),
                         attention_mask=batch["attention_mask"].to(device)).logits[:, :-1]  # (B, T-1, V)
        labels = batch["labels"][:, 1:].to(device)  # (B, T-1)
        n = int((labels != IGNORE_INDEX).sum())
        for t in sums:
            sums[t] += soft_label_entropy(logits, labels, t) * n
        count += n
    return {t: s / max(count, 1) for t, s in sums.items()}


class SoftLabelTrainer(Trainer):
    """HF ``Trainer`` whose loss is :func:`soft_label_loss` against a frozen teacher's logits on the same batch."""

    def __init__(self, *args, teacher, soft_config: SoftLabelConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.to(self.args.device).eval()
        self.teacher.requires_grad_(False)
        self.soft_config = soft_config

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        out = model(input_ids=ids, attention_mask=mask)
        labels = inputs["labels"][:, 1:]  # (B, T-1): position t predicts token t+1
        t_logits = None
        if self.soft_config.alpha > 0:
            with torch.no_grad():
                t_logits = self.teacher(input_ids=ids, attention_mask=mask).logits[:, :-1]  # (B, T-1, V)
        loss = soft_label_loss(out.logits[:, :-1], t_logits, labels, self.soft_config)["loss"]
        return (loss, out) if return_outputs else loss


def train(student, tokenizer, examples: Sequence[dict[str, Any]], train_cfg: TrainConfig, method_cfg: SoftLabelConfig,
          template: str, work_dir: str | os.PathLike, teacher=None, teacher_tokenizer=None,
          progress: bool = False) -> dict[str, float]:
    """Soft-label KD on the teacher's own text (fixed texts: GKD's λ = 0) with HF ``Trainer`` (resumable as
    :func:`grace.distill.train_causal_lm`). The teacher must share the student's tokenizer."""
    if not isinstance(method_cfg, SoftLabelConfig):
        raise ValueError(f"method 'soft' takes a SoftLabelConfig, got {type(method_cfg).__name__}")
    if teacher is None or teacher_tokenizer is None:
        raise ValueError("method 'soft' needs teacher= (the model) and teacher_tokenizer=; it reads the teacher's logits")
    check_same_tokenizer(tokenizer, teacher_tokenizer)
    encoded = encode_all(tokenizer, [e for e in examples if str(e.get("response", "")).strip()], template,
                         train_cfg.max_length)
    key = {"method": "soft", **asdict(method_cfg), "teacher": str(getattr(teacher, "name_or_path", ""))}
    summary = train_causal_lm(student, tokenizer, encoded, train_cfg, work_dir, progress=progress,
                              trainer_cls=SoftLabelTrainer,
                              trainer_kwargs={"teacher": teacher, "soft_config": method_cfg}, key_extra=key)
    summary["n_examples"] = len(encoded)
    return summary


def _gkd_trainer():
    """TRL's ``GKDTrainer`` class (its static ``generalized_jsd_loss``), imported with TRL's one
    experimental-API warning silenced for this import only."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*trl.experimental.*")
            from trl.experimental.gkd import GKDTrainer
    except ImportError as e:
        raise ImportError("soft labels use TRL's generalized JSD loss: pip install 'grace-book[methods]'") from e
    return GKDTrainer


METHOD = Method(name="soft", config=SoftLabelConfig, train=train, needs="logits",
                source="Hinton et al. 2015 §2, reviewed by Omar & Gholami (soft labels, temperature)")
