"""grace.lora: gradient features with respect to LoRA adapters (peft), as the release's --use-lora takes them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("peft")

from grace.config import LoraSpec  # noqa: E402
from grace.features import compute_features  # noqa: E402
from grace.lora import lora_student  # noqa: E402
from grace.projection import IdentityProjector  # noqa: E402

EXAMPLES = [
    {"prompt_id": 1, "prompt": "how many apples does Tom have ?", "response": "Tom buys 3 + 4 = 7 apples ."},
    {"prompt_id": 2, "prompt": "what is 5 * 6 ?", "response": "5 * 6 = 30 so the answer is 30 ."},
]


def _student(tiny_llama_dir, rank=4, seed=0, targets=("q_proj", "v_proj", "down_proj")):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    return lora_student(model, LoraSpec(rank=rank, alpha=2.0 * rank, target_modules=list(targets)), seed)


def test_only_adapters_train_and_their_gradient_is_on_b(tiny_llama_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    state = torch.random.get_rng_state()
    model = _student(tiny_llama_dir)
    assert torch.equal(torch.random.get_rng_state(), state)  # the process's RNG is left as it was
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert named and all("lora_" in n for n, _ in named)
    D = sum(p.numel() for _, p in named)
    loop = compute_features(model, tok, EXAMPLES, IdentityProjector(D), method="loop", progress=False)
    hooks = compute_features(model, tok, EXAMPLES, IdentityProjector(D), method="hooks", progress=False)
    np.testing.assert_allclose(hooks.H, loop.H, rtol=1e-4, atol=1e-7)
    off, on_a, on_b = 0, [], []
    for n, p in named:  # at B = 0: ∂L/∂A = 0, ∂L/∂B = (α/r)(∂L/∂W)Aᵀ ≠ 0
        (on_a if "lora_A" in n else on_b).append(np.abs(loop.H[:, off : off + p.numel()]).max())
        off += p.numel()
    assert max(on_a) == 0 and min(on_b) > 0


def test_same_seed_same_adapters(tiny_llama_dir):
    a, b, c = _student(tiny_llama_dir, seed=3), _student(tiny_llama_dir, seed=3), _student(tiny_llama_dir, seed=4)
    pa, pb, pc = ([p for n, p in m.named_parameters() if "lora_A" in n] for m in (a, b, c))
    assert all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(pa, pc, strict=True))


def test_bad_specs_are_named(tiny_llama_dir):
    with pytest.raises(ValueError, match="not Linear layers"):
        _student(tiny_llama_dir, targets=("qkv",))
    for bad, match in (({"rank": 0}, "rank"), ({"alpha": -1.0}, "alpha"), ({"target_modules": []}, "target_modules")):
        with pytest.raises(ValueError, match=match):
            LoraSpec(**bad)
    from grace.study import load_profile, validate_profile

    p = load_profile("quick")
    validate_profile({**p, "features": {**p["features"], "lora": {"rank": 4}}})
    with pytest.raises(ValueError, match="features.lora"):
        validate_profile({**p, "features": {**p["features"], "lora": {"rank": -2}}})


def test_cli_lora_features(tiny_llama_dir, tmp_path):
    from grace.cli import main
    from grace.io import write_jsonl

    write_jsonl(tmp_path / "g.jsonl", EXAMPLES * 2)
    assert main(["features", "--model", str(tiny_llama_dir), "--generations", str(tmp_path / "g.jsonl"), "--out",
                 str(tmp_path / "f"), "--d", "16", "--lora-rank", "2", "--lora-targets", "q_proj,v_proj"]) == 0
    meta = json.loads((tmp_path / "f" / "features.json").read_text())
    assert meta["lora"] == {"rank": 2, "alpha": 4.0, "target_modules": ["q_proj", "v_proj"]}
