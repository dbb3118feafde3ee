"""The miniature world: tokenizer, pre-trained student and teacher pool, trained here on 2 CPU cores.

The paper distils Llama-1B-Base from 15 instruct teachers of 5 families. Offline on a CPU we build
the same experiment in miniature (paper §3 "Settings"):

* a word-level tokenizer (digits split one per token) trained with HF ``tokenizers`` on the task
  corpus and saved as a ``PreTrainedTokenizerFast`` — short sequences are what make CPU training
  feasible;
* *base* ``LlamaForCausalLM`` models of three sizes (S/M/L), pre-trained on generic domain text
  (problem statements, arithmetic facts, narratives) — the analogue of Llama-*-Base; the student
  is the smallest base (S in the bundled profiles). In the paper-regime world the corpus also holds
  worked solutions in mixed surface forms (``grace.synthetic.pretraining_corpus(worked_share=...)``), as
  web math does; in the ``format-shock`` world it holds none;
* teachers: bases fine-tuned on one solution *style* each (the analogue of a model family's
  instruct tuning), to different accuracies by size and steps; in the paper regime each training
  solution is a varied rendering, so a teacher's samples differ as real chains of thought do; plus
  the student itself as a self-distillation teacher.

Everything is saved with ``save_pretrained`` (safetensors) and loaded back through
``AutoModelForCausalLM``/``AutoTokenizer`` — the same path a GPU user takes with Hub ids.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from grace.config import DTYPES  # the profile schema owns the allowed values
from grace.distill import TrainConfig, train_causal_lm
from grace.encoding import encode_all

# One token per newline, calculator brackets and "####"; words carry their leading space; every
# digit, punctuation mark and bare space is its own token. Decoding is plain concatenation (Fuse), so
# decode(encode(text)) == text exactly.
TOKEN_PATTERN = r"\n|####|<<|>>| ?[A-Za-z]+|\d| |[^\sA-Za-z\d]"
SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def build_tokenizer(texts: Iterable[str]):
    """Train a word-level ``PreTrainedTokenizerFast`` on ``texts`` (paper §3; miniature analogue).

    BOS is prepended by the post-processor, like Llama tokenizers; EOS/PAD exist for generation.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers.trainers import WordLevelTrainer
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS.values())
    tok = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(TOKEN_PATTERN), behavior="isolated")
    tok.decoder = decoders.Fuse()
    # digits and punctuation always exist even if the corpus misses one
    seed_text = ["0123456789", " +-*/=<>()$.,?!:;'#%"]
    tok.train_from_iterator(list(texts) + seed_text, WordLevelTrainer(special_tokens=specials, min_frequency=1))
    bos = SPECIAL_TOKENS["bos_token"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)
    fast.padding_side = "left"  # decoder-only generation pads on the left
    return fast


@dataclass
class ModelSize:
    """A Llama shape. ``params`` is filled in when a model is built."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int = 256


DEFAULT_SIZES = {
    "S": ModelSize(hidden=64, layers=2, heads=4, intermediate=176),
    "M": ModelSize(hidden=128, layers=4, heads=4, intermediate=352),
    "L": ModelSize(hidden=192, layers=6, heads=6, intermediate=512),
}


def make_model(size: ModelSize, tokenizer, seed: int):
    """A freshly initialised ``LlamaForCausalLM`` of the given shape (tied embeddings)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=size.hidden, num_hidden_layers=size.layers,
        num_attention_heads=size.heads, num_key_value_heads=size.heads,
        intermediate_size=size.intermediate, max_position_embeddings=size.max_positions,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _quiet_transformers() -> None:
    """No per-file weight-loading/saving progress bars: the stages print their own one-line summaries."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _looks_local(path_or_id: str | os.PathLike) -> bool:
    s = str(path_or_id)
    return isinstance(path_or_id, Path) or s.startswith((".", "/", "~")) or s.count("/") != 1




def resolve_dtype(name: str | torch.dtype | None, device: str = "cpu") -> torch.dtype:
    """A profile's ``dtype`` as a torch dtype: ``auto`` is bfloat16 on a CUDA device that supports it, else float32.

    Models load in this dtype in every stage; gradients are still taken and projected in float32
    (:mod:`grace.features`) and distillation keeps float32 master weights (``distill.mixed_precision``).
    """
    if isinstance(name, torch.dtype):
        return name
    name = "float32" if name is None else str(name)
    if name not in DTYPES:
        raise ValueError(f"dtype={name!r}: use one of {DTYPES}")
    if name == "auto":
        cuda = str(device).startswith("cuda") and torch.cuda.is_available()
        return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, name)


def load_model(path_or_id: str | os.PathLike, device: str = "cpu", dtype: torch.dtype | str = torch.float32,
               revision: str | None = None):
    """Load a causal LM the way a GPU user does: ``AutoModelForCausalLM``, safetensors, no remote code.

    ``path_or_id``: a local directory, a Hub id, or a named source such as ``smollm2-135m-instruct``
    (:mod:`grace.sources`).

    Raises:
        FileNotFoundError: ``path_or_id`` looks like a local path (not ``org/name``) and is missing.
    """
    from transformers import AutoModelForCausalLM

    from grace.sources import resolve

    _quiet_transformers()
    path_or_id = resolve(path_or_id)  # a named source (grace.sources.SOURCES) becomes its local directory
    if _looks_local(path_or_id) and not Path(path_or_id).expanduser().exists():
        raise FileNotFoundError(f"model path {str(path_or_id)!r} does not exist; build the world first "
                                "(grace study ...) or pass an existing directory or a Hub id like org/name")
    kw = {"revision": revision} if revision else {}
    model = AutoModelForCausalLM.from_pretrained(path_or_id, use_safetensors=True, trust_remote_code=False,
                                                 dtype=resolve_dtype(dtype, device), **kw)
    return model.to(device).eval()


def load_tokenizer(path_or_id: str | os.PathLike, revision: str | None = None):
    """Load a tokenizer with ``AutoTokenizer`` (no remote code); left padding for generation."""
    from transformers import AutoTokenizer

    from grace.sources import resolve

    kw = {"revision": revision} if revision else {}
    tok = AutoTokenizer.from_pretrained(resolve(path_or_id), trust_remote_code=False, **kw)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def pack_texts(tokenizer, texts: Sequence[str], block: int) -> list[dict[str, list[int]]]:
    """Concatenate ``BOS text EOS`` sequences and cut them into ``block``-token LM examples."""
    stream: list[int] = []
    for t in texts:
        stream.extend(tokenizer(t).input_ids + [tokenizer.eos_token_id])
    return [{"input_ids": stream[i:i + block], "labels": stream[i:i + block]}
            for i in range(0, len(stream) - 1, block) if len(stream[i:i + block]) > 1]


def pretrain_base(size: ModelSize, tokenizer, texts: Sequence[str], cfg: TrainConfig, out_dir: str | os.PathLike,
                  seed: int, block: int = 64, progress: bool = True) -> dict[str, Any]:
    """Pre-train a base model on generic domain text (the Llama-*-Base analogue) and save it."""
    model = make_model(size, tokenizer, seed)
    encoded = pack_texts(tokenizer, texts, block)
    summary = train_causal_lm(model, tokenizer, encoded, cfg, Path(out_dir) / "_trainer", progress=progress)
    save_model(model, tokenizer, out_dir)
    summary["params"] = count_params(model)
    return summary


def save_model(model, tokenizer, out_dir: str | os.PathLike) -> None:
    """``save_pretrained`` model (safetensors) and tokenizer into ``out_dir``."""
    _quiet_transformers()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def default_pool(style: str) -> str:
    """A teacher's pool when its profile line says none: the student itself is an anecdote, the rest main."""
    return "anecdote" if style == "self" else "main"


@dataclass
class TeacherSpec:
    """One teacher of the pool: a base of some size fine-tuned on one solution style.

    ``style="self"`` means the (untuned) student itself — the self-distillation teacher.
    ``varied`` trains on varied renderings (:data:`grace.synthetic.VARIED_STYLES`); ``pool`` is ``"main"``
    for the teachers whose correlations the study reports, ``"anecdote"`` for those reported beside
    them (the paper's §2.1 self-distillation and answer-only remarks).
    """

    name: str
    style: str
    size: str
    steps: int = 0
    learning_rate: float = 2e-3
    seed: int = 0
    varied: bool = False
    pool: str = "main"

    def __post_init__(self):
        if self.pool not in ("main", "anecdote"):
            raise ValueError(f"teacher {self.name!r}: pool={self.pool!r}; use 'main' or 'anecdote'")

    @property
    def family(self) -> str:
        """The teacher's family: its solution style (``self`` for the student itself)."""
        return self.style


def teacher_examples(problems, style: str, seed: int, varied: bool = False) -> list[dict[str, Any]]:
    """``{prompt_id, prompt, response}`` records of ``style`` solutions for teacher training."""
    from grace.synthetic import render_solution

    rng = random.Random(seed)
    return [{"prompt_id": p.uid, "prompt": p.question, "response": render_solution(p, style, rng=rng, varied=varied)}
            for p in problems]


def train_teacher(spec: TeacherSpec, base_dir: str | os.PathLike, problems, template: str, out_dir: str | os.PathLike,
                  batch_size: int = 64, progress: bool = True) -> dict[str, Any]:
    """Fine-tune a base on ``spec.style`` solutions (the instruct-tuning analogue) and save it."""
    tokenizer = load_tokenizer(base_dir)
    model = load_model(base_dir)
    cfg = TrainConfig(learning_rate=spec.learning_rate, max_steps=spec.steps, batch_size=batch_size, seed=spec.seed)
    encoded = encode_all(tokenizer, teacher_examples(problems, spec.style, spec.seed, spec.varied), template,
                         cfg.max_length)
    summary = train_causal_lm(model, tokenizer, encoded, cfg, Path(out_dir) / "_trainer", progress=progress)
    save_model(model, tokenizer, out_dir)
    summary.update(params=count_params(model), **asdict(spec))
    return summary


__all__ = [
    "DTYPES", "TOKEN_PATTERN", "default_pool", "ModelSize", "resolve_dtype", "DEFAULT_SIZES", "TeacherSpec", "build_tokenizer", "make_model",
    "count_params", "load_model", "load_tokenizer", "pack_texts", "pretrain_base", "save_model", "train_teacher",
    "teacher_examples",
]
