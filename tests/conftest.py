"""Shared, generic fixtures: a tiny word-level tokenizer and a tiny Llama saved to disk.

Both are built locally (no hub access): the tokenizer from ``tokenizers`` (WordLevel over a small
vocabulary, whitespace splitting, BOS added by its post-processor like Llama's), the model from a
``LlamaConfig`` saved with ``save_pretrained`` (safetensors) next to the tokenizer, so tests can load
it back with ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained``.
"""

from __future__ import annotations

import pytest
import torch

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]
WORDS = [
    "###", "Problem:", "Solution:", "The", "answer", "is", "what", "how", "many", "apples", "does",
    "Tom", "have", "?", ".", "+", "-", "*", "=", "so", "then", "he", "she", "buys", "eats", "left",
    "#", "and", "total",
]  # fmt: skip
NUMBERS = [str(i) for i in range(70)]
VOCAB = SPECIAL_TOKENS + WORDS + NUMBERS  # ~100 tokens


def build_tiny_tokenizer():
    """A ``PreTrainedTokenizerFast`` over :data:`VOCAB` (ids: pad 0, bos 1, eos 2, unk 3)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    tok.decoder = decoders.WordPiece(prefix="##")  # joins word-level tokens with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def build_tiny_llama(vocab_size: int, seed: int = 0, **overrides):
    """A 2-layer, hidden-32 ``LlamaForCausalLM`` in eval-ready fp32 (random init from ``seed``)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = dict(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
    )  # fmt: skip
    cfg.update(overrides)
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**cfg))


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_llama_factory():
    """``build_tiny_llama(vocab_size, seed=0, **config_overrides)`` for in-memory variants."""
    return build_tiny_llama


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, tiny_tokenizer):
    """Directory with a tiny Llama (safetensors) and its tokenizer, loadable with ``from_pretrained``."""
    path = tmp_path_factory.mktemp("tiny_llama")
    model = build_tiny_llama(len(tiny_tokenizer))
    model.save_pretrained(path, safe_serialization=True)
    tiny_tokenizer.save_pretrained(path)
    return path
