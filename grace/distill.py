"""Supervised distillation: fine-tune the student on a teacher's generations (paper §3, App. D.1–D.2).

The paper trains the student with the standard autoregressive cross-entropy on the teacher's
responses (learning rate 1e-5, 4 epochs, cosine schedule with 5% warm-up, weight decay 0, batch 64,
no correctness filtering). This module is that recipe on top of HF ``Trainer``. The same function
trains the miniature world's teachers (on their style's reference solutions) and pre-trains the base
models (whole-text loss), so there is exactly one training loop in the project.

Learning rate for tiny models: 1e-5 barely moves a 1 M-parameter model in the few hundred steps a CPU
can afford; the miniature profiles use 1e-3 to 3e-3 (tiny transformers tolerate and need large rates,
cf. nanoGPT's 1e-3 for its smallest models). GPU profiles use the paper's 1e-5.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from grace.claims import PAPER_RECIPE
from grace.encoding import encode_all, right_pad


@dataclass
class TrainConfig:
    """Plain training config (paper §3 defaults in comments; miniature values by default).

    Attributes:
        learning_rate: peak LR (paper: 1e-5 for Llama-1B; tiny models need ~1e-3).
        epochs: passes over the data (paper: 4). Ignored when ``max_steps`` is set.
        max_steps: if set, train exactly this many optimizer steps.
        batch_size: examples per step (paper: 64).
        warmup_ratio: linear warm-up fraction (paper: 0.05).
        weight_decay: AdamW weight decay (paper: 0).
        scheduler: HF scheduler name (paper: cosine).
        max_length: truncate encoded examples to this many tokens.
        seed: seeds model-independent randomness (data order, dropout).
        filter_correct: App. D.1: keep only correct responses, resampled with replacement back to
            the original count per prompt (off by default, as in the paper's main results).
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"`` autocast over float32 master weights (GPU).
        gradient_checkpointing: recompute activations in the backward pass (less memory, ~30 % slower).
        gradient_accumulation_steps: micro-batches per optimizer step.
        save_steps: checkpoint (model, optimizer, scheduler, RNG) every this many optimizer steps and at
            the end, so a killed run resumes from the last checkpoint (0: no checkpoints).

    ``batch_size`` is the *global* batch (paper: 64). Under ``torchrun``/``accelerate launch`` with
    ``WORLD_SIZE`` processes each device takes ``batch_size / (WORLD_SIZE · accumulation)`` examples
    per micro-batch, so the number of optimizer steps — and the epochs the student sees — do not
    depend on how many GPUs run it.
    """

    learning_rate: float = 2e-3
    epochs: float = 4.0
    max_steps: int | None = None
    batch_size: int = 64
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    max_length: int = 256
    seed: int = 0
    filter_correct: bool = False
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    gradient_accumulation_steps: int = 1
    save_steps: int = 0

    def per_device_batch(self, world_size: int | None = None) -> int:
        """Examples per device and micro-batch for a global ``batch_size`` over ``world_size`` processes."""
        w = int(os.environ.get("WORLD_SIZE", "1")) if world_size is None else world_size
        per, rem = divmod(self.batch_size, w * self.gradient_accumulation_steps)
        if rem or per < 1:
            raise ValueError(f"batch_size={self.batch_size} is not divisible by WORLD_SIZE={w} x "
                             f"gradient_accumulation_steps={self.gradient_accumulation_steps}; pick a global batch "
                             "that is a multiple of their product")
        return per

    def validate(self) -> None:
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision={self.mixed_precision!r}: use 'no', 'bf16' or 'fp16'")
        if self.gradient_accumulation_steps < 1:
            raise ValueError(f"gradient_accumulation_steps={self.gradient_accumulation_steps} must be >= 1")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate={self.learning_rate} must be > 0")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} must be >= 1")
        if self.max_steps is None and self.epochs <= 0:
            raise ValueError(f"epochs={self.epochs} must be > 0 (or set max_steps)")
        if self.save_steps < 0:
            raise ValueError(f"save_steps={self.save_steps} must be >= 0 (0: no checkpoints)")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps} must be >= 1 or None")


class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, items: Sequence[dict[str, list[int]]]):
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.items[i]


def collate(batch: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad ``input_ids``/``labels`` to the longest example (:func:`grace.encoding.right_pad`); pad
    labels are ignored and the attention mask is 0 on pads."""
    ids, labels = right_pad([(b["input_ids"], b["labels"]) for b in batch], pad_id)  # (B, T) each
    lengths = torch.tensor([len(b["input_ids"]) for b in batch])  # (B,)
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()  # (B, T)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def filter_correct(examples: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """App. D.1: drop incorrect responses, then resample correct ones (with replacement) per prompt.

    Prompts with no correct response are dropped. Each kept prompt gets back as many responses as it
    had before filtering, as in the paper ("sample with repetition to get a set of 16 responses").
    """
    import random

    rng = random.Random(seed)
    by_prompt: dict[Any, list[dict[str, Any]]] = {}
    for ex in examples:
        if "correct" not in ex:
            raise ValueError("filter_correct needs a 'correct' field on every example; "
                             "generate with a task that checks answers or set filter_correct=False")
        by_prompt.setdefault(ex["prompt_id"], []).append(ex)
    out = []
    for pid in by_prompt:
        group = by_prompt[pid]
        good = [e for e in group if e["correct"]]
        if good:
            out.extend(rng.choice(good) for _ in range(len(group)))
    return out




def train_causal_lm(model, tokenizer, encoded: Sequence[dict[str, list[int]]], cfg: TrainConfig,
                    work_dir: str | os.PathLike, progress: bool = True, callbacks=None, trainer_cls=None,
                    trainer_kwargs: Mapping[str, Any] | None = None, collator=None,
                    key_extra: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Train ``model`` in place with HF ``Trainer`` on pre-encoded examples (paper §3 recipe shape).

    Args:
        model: any ``AutoModelForCausalLM``.
        tokenizer: its tokenizer (only ``pad_token_id`` is used here).
        encoded: records with ``input_ids`` and ``labels`` (−100 where no loss).
        cfg: the training config.
        work_dir: scratch directory for ``Trainer``; with ``cfg.save_steps`` it holds the checkpoints.
        progress: show the Trainer's progress bar.
        callbacks: extra ``TrainerCallback`` objects.
        trainer_cls: a ``Trainer`` subclass with its own ``compute_loss`` (the distillation methods of
            :mod:`grace.methods`); default HF ``Trainer`` (the model's own cross-entropy).
        trainer_kwargs: extra constructor arguments of ``trainer_cls`` (a teacher, a temperature).
        collator: ``batch -> tensors``; default :func:`collate` with the tokenizer's pad id.
        key_extra: what else the resume key depends on (a method's config), so checkpoints of another
            method's run are never resumed.

    Resume: with ``cfg.save_steps > 0`` a rerun on the same ``work_dir``, config and examples continues
    from the last checkpoint (HF ``resume_from_checkpoint``: weights, optimizer, scheduler and RNG
    states, data order) to the same weights as an uninterrupted run, and a finished run is loaded back
    from its final checkpoint without training. A ``work_dir`` left by another config or other
    examples is cleared first. Checkpoints fall on logging steps (``save_steps`` is rounded up to a
    multiple of them) so that the mean training loss is rebuilt from the logged curve after a resume
    (equal to the uninterrupted one up to float rounding).

    Returns:
        ``{"train_loss", "steps", "seconds", "loss_last", "loss_prev"}``: the mean loss over training,
        and the mean loss of the last and the second-to-last tenth of the steps (has it flattened?).
    """
    import shutil

    from transformers import Trainer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    from grace.io import read_json, stable_hash, write_json

    cfg.validate()
    if len(encoded) == 0:
        raise ValueError("no training examples: the generations file is empty or every example was filtered out")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    steps_per_epoch = math.ceil(len(encoded) / cfg.batch_size)
    max_steps = cfg.max_steps if cfg.max_steps is not None else max(1, round(cfg.epochs * steps_per_epoch))
    work_dir = Path(work_dir)
    log_every = max(1, max_steps // 10)
    save_every = -(-cfg.save_steps // log_every) * log_every  # a checkpoint falls on a logging step
    last = None
    if cfg.save_steps:
        key = stable_hash({"cfg": asdict(cfg), "data": stable_hash([[e["input_ids"], e["labels"]] for e in encoded]),
                           **({"method": dict(key_extra)} if key_extra else {})})
        if work_dir.exists() and (not (work_dir / "run.json").exists() or read_json(work_dir / "run.json")["key"] != key):
            shutil.rmtree(work_dir)  # another run's checkpoints
        write_json(work_dir / "run.json", {"key": key})
        last = get_last_checkpoint(str(work_dir))
    args = TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=cfg.per_device_batch(),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        **({"gradient_checkpointing": True} if cfg.gradient_checkpointing else {}),
        bf16=cfg.mixed_precision == "bf16",
        fp16=cfg.mixed_precision == "fp16",
        learning_rate=cfg.learning_rate,
        max_steps=max_steps,
        warmup_steps=max(0, round(cfg.warmup_ratio * max_steps)),
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.scheduler,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_strategy="steps",  # ten points of the loss curve (logging does not change training)
        logging_steps=log_every,
        **({"save_strategy": "steps", "save_steps": save_every, "save_total_limit": 1} if cfg.save_steps
           else {"save_strategy": "no"}),
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=not progress,
        remove_unused_columns=False,
    )
    trainer = (trainer_cls or Trainer)(
        model=model,
        args=args,
        train_dataset=_ListDataset(encoded),
        data_collator=collator or (lambda batch: collate(batch, pad_id)),
        callbacks=callbacks,
        **dict(trainer_kwargs or {}),
    )
    if not progress:
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
    finished = work_dir / "summary.json"
    out = trainer.train(resume_from_checkpoint=last)
    model.eval()
    if last is not None and finished.exists():  # loaded back from the final checkpoint: no step was run now
        return read_json(finished)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    curve = [float(h["loss"]) for h in logs]
    train_loss = float(out.training_loss)
    if last is not None:  # out.training_loss covers this call's steps only; add the logged steps before it
        s0 = int(Path(last).name.split("-")[-1])
        steps = [0] + [int(h["step"]) for h in logs]
        before = sum(float(h["loss"]) * (steps[i + 1] - steps[i]) for i, h in enumerate(logs) if int(h["step"]) <= s0)
        train_loss = (before + train_loss * (out.global_step - s0)) / out.global_step
    summary = {"train_loss": train_loss, "steps": int(out.global_step),
               "seconds": float(out.metrics.get("train_runtime", float("nan"))),
               "loss_last": curve[-1] if curve else float("nan"), "loss_prev": curve[-2] if len(curve) > 1 else float("nan")}
    if cfg.save_steps:
        write_json(finished, summary)
    return summary


def distill(student, tokenizer, generations: Sequence[dict[str, Any]], cfg: TrainConfig, template: str,
            work_dir: str | os.PathLike, progress: bool = True) -> dict[str, float]:
    """Distil: fine-tune ``student`` in place on teacher generations, response-only loss (paper §3).

    Args:
        student: the pre-trained student (modified in place).
        tokenizer: the student's tokenizer.
        generations: records ``{prompt_id, prompt, response[, correct]}`` (all N×M of them).
        cfg: training recipe; ``cfg.filter_correct`` applies App. D.1 filtering first.
        template: prompt template (same one used for features).
        work_dir: Trainer scratch directory.
        progress: show a progress bar.

    Returns:
        Training summary plus ``n_examples`` actually trained on.
    """
    examples = filter_correct(generations, seed=cfg.seed) if cfg.filter_correct else list(generations)
    for i, ex in enumerate(examples):
        if not str(ex.get("response", "")).strip():
            raise ValueError(f"generation {i} (prompt_id={ex.get('prompt_id')!r}) has an empty response; "
                             "drop empty responses before distilling")
    encoded = encode_all(tokenizer, examples, template, cfg.max_length)
    summary = train_causal_lm(student, tokenizer, encoded, cfg, work_dir, progress=progress)
    summary["n_examples"] = len(encoded)
    return summary




# ----------------------------------------------------------------------------------------------
# the paper's recipe beside the profile's (paper §3 "Settings", chapter 5)


def recipe_table(distill: Mapping[str, Any]) -> pd.DataFrame:
    """The profile's ``distill`` section beside the paper's recipe (paper §3 "Settings").

    Keys the profile omits take the value the study runner uses (``grace.distill.TrainConfig``
    defaults; the runner always sets the learning rate, epochs and batch size from the profile).

    Returns:
        DataFrame indexed by hyper-parameter with columns ``paper``, ``profile``, ``same``.
    """
    if not isinstance(distill, Mapping):
        raise ValueError(f"distill must be the profile's 'distill' mapping, got {type(distill).__name__}")
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    rows = []
    for key, paper in PAPER_RECIPE.items():
        value = distill.get(key, defaults[key])
        same = (math.isclose(float(value), float(paper), rel_tol=1e-9, abs_tol=0.0)
                if isinstance(paper, int | float) and not isinstance(paper, bool) else value == paper)
        rows.append({"hyper-parameter": key, "paper": paper, "profile": value, "same": bool(same)})
    return pd.DataFrame(rows).set_index("hyper-parameter")


def lr_schedule(learning_rate: float, steps: int, warmup_ratio: float = 0.05, scheduler: str = "cosine") -> np.ndarray:
    """Per-step learning rate of the recipe (paper §3: cosine, 5% linear warm-up), as HF ``Trainer`` runs it.

    Same formula as ``transformers.get_cosine_schedule_with_warmup`` (or ``..._linear_...``) with
    ``warmup_steps = round(warmup_ratio · steps)``. Its sum is the total distance Adam can move one
    weight (each Adam step moves a weight by at most about the learning rate), which is how chapter 5
    compares the paper's 1e-5 with the miniature's larger rate.

    Returns:
        Array of shape ``(steps,)``.
    """
    if steps < 1 or learning_rate <= 0 or not 0 <= warmup_ratio < 1:
        raise ValueError(f"need steps >= 1, learning_rate > 0 and 0 <= warmup_ratio < 1; got {steps}, "
                         f"{learning_rate}, {warmup_ratio}")
    if scheduler not in ("cosine", "linear", "constant"):
        raise ValueError(f"scheduler={scheduler!r}: use 'cosine' (paper), 'linear' or 'constant'")
    t = np.arange(steps, dtype=float)
    w = round(warmup_ratio * steps)
    progress = np.clip((t - w) / max(1, steps - w), 0.0, 1.0)
    decay = {"cosine": 0.5 * (1 + np.cos(np.pi * progress)), "linear": 1 - progress,
             "constant": np.ones_like(t)}[scheduler]
    warm = t / max(1, w)
    return learning_rate * np.where(t < w, warm, np.maximum(decay, 0.0))


def expected_steps(distill: Mapping[str, Any], n_examples: int) -> int:
    """The optimizer steps the study's ``Trainer`` runs for ``n_examples``: ``round(epochs · ⌈n / batch⌉)``,
    at least 1 (paper §3 "Settings"; chapter 5.2 checks every student against it)."""
    if n_examples <= 0:
        raise ValueError(f"n_examples={n_examples}: a student trains on at least one example")
    return max(1, round(float(distill["epochs"]) * math.ceil(n_examples / int(distill["batch_size"]))))


def lr_budget_table(distill: Mapping[str, Any], steps: int, profile: str) -> pd.DataFrame:
    """``Σ_t η_t``, the most one weight can travel under Adam, for the paper's schedule (GSM8K, §3) and for the
    miniature's ``steps`` at the paper's and at the profile's learning rate (chapter 5.1).

    Returns a DataFrame with columns ``learning rate``, ``optimizer steps`` and the budget, one row each.
    """
    from grace.claims import GSM8K_TRAIN, PAPER_M

    lr_paper, lr = PAPER_RECIPE["learning_rate"], float(distill["learning_rate"])
    steps_paper = round(PAPER_RECIPE["epochs"] * math.ceil(GSM8K_TRAIN * PAPER_M / PAPER_RECIPE["batch_size"]))
    sched = dict(warmup_ratio=float(distill.get("warmup_ratio", 0.05)), scheduler=distill.get("scheduler", "cosine"))
    return pd.DataFrame({
        "learning rate": [lr_paper, lr_paper, lr],
        "optimizer steps": [steps_paper, steps, steps],
        "Σ_t η_t (max. travel of one weight)": [
            lr_schedule(lr_paper, steps_paper).sum(),
            lr_schedule(lr_paper, steps, **sched).sum(),
            lr_schedule(lr, steps, **sched).sum(),
        ],
    }, index=["paper (Llama-1B, GSM8K)", "miniature steps at the paper's rate", f"miniature ({profile} profile)"])
