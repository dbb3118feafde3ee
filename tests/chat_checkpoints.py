"""Tiny local checkpoints that behave like real instruct models (for the GPU path's tests on a CPU).

Each family copies what matters for generation from its real counterpart: the special tokens, the
chat template (the real Jinja logic, shortened), the tokenizer's EOS and the ``generation_config``
EOS *list*, and the architecture class. The weights are a few hundred thousand parameters trained
for a few seconds to answer ``What is A plus B?`` with ``... #### N`` and then end the turn with the
family's end-of-turn token, which (as in the real models) is not always the tokenizer's EOS:

=========  ======================  ==================  =====================================
family     end of turn             tokenizer EOS       generation_config.eos_token_id
=========  ======================  ==================  =====================================
llama3     ``<|eot_id|>``          ``<|eot_id|>``      ``<|end_of_text|>, <|eom_id|>, <|eot_id|>``
qwen2.5    ``<|im_end|>``          ``<|im_end|>``      ``<|im_end|>, <|endoftext|>``
gemma2     ``<end_of_turn>``       ``<eos>``           ``<eos>, <end_of_turn>``
=========  ======================  ==================  =====================================

Everything is saved with ``save_pretrained`` into a directory and loaded back through
``AutoModelForCausalLM``/``AutoTokenizer.from_pretrained(path)``, the path a GPU user takes.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
QWEN_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. "
    "You are a helpful assistant.<|im_end|>\n{% endif %}{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "<start_of_turn>{{ role }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

FAMILIES = {
    "llama3": {"template": LLAMA3_TEMPLATE, "bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "pad": None,
               "turn_end": "<|eot_id|>", "gen_eos": ["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"],
               "specials": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                            "<|eot_id|>", "<|eom_id|>"], "arch": "llama"},
    "qwen2.5": {"template": QWEN_TEMPLATE, "bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>",
                "turn_end": "<|im_end|>", "gen_eos": ["<|im_end|>", "<|endoftext|>"],
                "specials": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "arch": "qwen2"},
    "gemma2": {"template": GEMMA_TEMPLATE, "bos": "<bos>", "eos": "<eos>", "pad": "<pad>",
               "turn_end": "<end_of_turn>", "gen_eos": ["<eos>", "<end_of_turn>"],
               "specials": ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"], "arch": "gemma2"},
}
WORDS = ("What is plus ? Please reason step by step, and put your final answer within \\boxed{}. "
         "We add the numbers : so the answer is #### system user assistant model You are Qwen, created by "
         "Alibaba Cloud. a helpful assistant.").split()


def problems(n: int = 12, seed: int = 0) -> list[dict]:
    """``{prompt_id, prompt, answer}`` addition problems with one-digit operands."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(1, 4), rng.randint(1, 4)
        out.append({"prompt_id": f"add-{i}", "prompt": f"What is {a} plus {b} ?", "answer": str(a + b)})
    return out


def _tokenizer(family: str):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    f = FAMILIES[family]
    if family == "qwen2.5":  # Qwen2Tokenizer (what AutoTokenizer loads for model_type qwen2) is byte-level BPE
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        corpus = [answer_text(p) + " " + p["prompt"] for p in problems(200, seed=7)] + [" ".join(WORDS)]
        tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=f["specials"],
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=f["eos"], pad_token=f["pad"],
                                       additional_special_tokens=list(f["specials"]))
        fast.chat_template = f["template"]
        return fast
    vocab = {w: i for i, w in enumerate(dict.fromkeys(f["specials"] + ["<unk>"] + list("0123456789") + WORDS
                                                      + [" ", "\n"]))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\n| |[^ \n]+"), behavior="isolated")  # words, spaces, newlines
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token=f["eos"], bos_token=f["bos"],
                                   pad_token=f["pad"], additional_special_tokens=[s for s in f["specials"]])
    fast.chat_template = f["template"]
    return fast


def _model(family: str, tok, seed: int):
    from transformers import (
        Gemma2Config,
        Gemma2ForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    f = FAMILIES[family]
    common = dict(vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  eos_token_id=tok.convert_tokens_to_ids(f["gen_eos"]),
                  bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    if f["arch"] == "llama":
        return LlamaForCausalLM(LlamaConfig(**common))
    if f["arch"] == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=False))
    return Gemma2ForCausalLM(Gemma2Config(**common, head_dim=12, sliding_window=64, attn_implementation="eager"))


def answer_text(p: dict) -> str:
    a, b = p["prompt"].split()[2], p["prompt"].split()[4]
    return f"We add the numbers : {a} plus {b} is {int(a) + int(b)} so the answer is #### {int(a) + int(b)}"


def build(family: str, out_dir: Path, steps: int = 100, seed: int = 0) -> Path:
    """Train a tiny ``family`` chat model to answer and end its turn; save it to ``out_dir``; return it."""
    from transformers import AutoTokenizer

    from grace.distill import TrainConfig, train_causal_lm
    from grace.generation import format_prompt

    f = FAMILIES[family]
    out_dir.mkdir(parents=True, exist_ok=True)
    _model(family, _tokenizer(family), seed).config.save_pretrained(out_dir)  # model_type decides the class
    _tokenizer(family).save_pretrained(out_dir)
    tok = AutoTokenizer.from_pretrained(out_dir)  # train with what users will load
    model = _model(family, tok, seed)
    end = tok.convert_tokens_to_ids(f["turn_end"])
    encoded = []
    for p in problems(40, seed=seed + 1):
        prompt_ids = tok(format_prompt(tok, p["prompt"], chat=True), add_special_tokens=False).input_ids
        resp_ids = tok(answer_text(p), add_special_tokens=False).input_ids + [end]
        encoded.append({"input_ids": prompt_ids + resp_ids, "labels": [-100] * len(prompt_ids) + resp_ids})
    train_causal_lm(model, tok, encoded, TrainConfig(learning_rate=1e-2, max_steps=steps, batch_size=16, seed=seed),
                    out_dir / "_trainer", progress=False)
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids(f["gen_eos"])
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return out_dir
