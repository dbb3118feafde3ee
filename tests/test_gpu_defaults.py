"""The CUDA defaults of the feature stage, checked where a CPU can check them: length buckets leave the
features unchanged, ``"auto"`` picks the projector from the student's size and the device, the dense Π's
options are validated, and no module of the package sets a process-wide backend flag or variable."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from grace.features import compute_features, default_memory_budget, planless_attention
from grace.projection import IdentityProjector, RademacherProjector
from grace.projectors import CPU_DENSE_MAX_ENTRIES, choose_projector, make_projector
from grace.study import load_profile, validate_profile

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = [
    {"prompt_id": 1, "prompt": "how many apples does Tom have ?", "response": "Tom buys 3 + 4 = 7 apples ."},
    {"prompt_id": 2, "prompt": "what is 5 * 6 ?", "response": "5 * 6 = 30 so the answer is 30 ."},
    {"prompt_id": 3, "prompt": "Tom eats 2 apples", "response": "he has 8 left"},
]


@pytest.fixture(scope="module")
def model_tok(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama_dir), AutoTokenizer.from_pretrained(tiny_llama_dir)


@pytest.mark.parametrize("method,batch", [("loop", 1), ("loop", 2), ("vmap", 3)])
def test_length_buckets_leave_features_unchanged(model_tok, method, batch):
    model, tok = model_tok
    D = sum(p.numel() for p in model.parameters())
    plain = compute_features(model, tok, EXAMPLES, IdentityProjector(D), method=method, batch_size=batch,
                             progress=False, length_bucket=1)
    bucketed = compute_features(model, tok, EXAMPLES, IdentityProjector(D), method=method, batch_size=batch,
                                progress=False, length_bucket=64)
    assert bucketed.meta["length_bucket"] == 64 and plain.meta["length_bucket"] == 1
    np.testing.assert_allclose(bucketed.H, plain.H, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bucketed.loss, plain.loss, rtol=1e-5)
    assert np.abs(plain.H).max() > 0  # the comparison compares something
    with pytest.raises(ValueError, match="length_bucket"):
        compute_features(model, tok, EXAMPLES, IdentityProjector(D), progress=False, length_bucket=0)


def test_auto_projector_from_size_and_device():
    assert choose_projector("auto", 2_000_000, 512, "cpu")[0] == "rademacher"  # the miniature's students
    kind, why = choose_projector("auto", 134_515_008, 512, "cpu")  # SmolLM2-135M
    assert kind == "factored" and "rademacher forces" in why
    assert choose_projector("auto", 1_235_814_400, 512, "cuda")[0] == "rademacher"  # fused kernel
    assert choose_projector("sparse_jl", 10**9, 512, "cpu") == ("sparse_jl", "as asked")
    assert CPU_DENSE_MAX_ENTRIES // 512 >= 14_000_000  # the largest miniature student stays dense


def test_cpu_defaults_unchanged():
    assert default_memory_budget(10**6) == max(16 * 10**6, 64 * 2**20)
    assert RademacherProjector(1000, 8).backend == "torch"
    with planless_attention("cpu"):  # a no-op off CUDA
        pass


def test_dense_options_validated():
    assert make_projector("rademacher", 100, 8, precision="bf16x3").precision == "bf16x3"
    with pytest.raises(ValueError, match="rademacher"):
        make_projector("sparse_jl", 100, 8, precision="bf16x3")
    base = load_profile("quick")
    validate_profile({**base, "features": {**base["features"], "projector": "rademacher", "precision": "tf32x3"}})
    for bad in ({"projector": "rademacher", "precision": "fp8"}, {"projector": "sparse_jl", "precision": "tf32"}):
        with pytest.raises(ValueError, match="features.precision"):
            validate_profile({**base, "features": {**base["features"], **bad}})
    for name in ("gpu", "gpu-math", "gpu-olmo"):  # the shipped GPU profiles: 16 gradients per pass over Π
        assert load_profile(name)["features"]["batch_size"] == 16
        assert load_profile(name)["features"]["precision"] == "bf16x3"


def _process_wide_writes(tree: ast.AST) -> list[str]:
    """Assignments to ``torch.backends.…`` attributes or ``os.environ[…]``, and ``os.environ.update``/``putenv``."""
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        for t in targets:
            src = ast.unparse(t)
            if src.startswith("torch.backends.") or src.startswith("os.environ["):
                found.append(src)
        if isinstance(node, ast.Call):
            fn = ast.unparse(node.func)
            if fn in ("os.environ.update", "os.putenv", "os.environ.setdefault", "torch.set_float32_matmul_precision"):
                found.append(fn)
    return found


def test_no_module_sets_process_wide_flags():
    offenders = {str(p.relative_to(REPO)): w for p in sorted((REPO / "grace").glob("*.py"))
                 if (w := _process_wide_writes(ast.parse(p.read_text())))}
    assert offenders == {}
    bad = ast.parse("import torch, os\ntorch.backends.cuda.matmul.allow_tf32 = True\nos.environ['X'] = '1'\n")
    assert len(_process_wide_writes(bad)) == 2  # the check can fail


@pytest.mark.parametrize("tied", [True, False])
def test_hooks_equal_the_loop(tied):
    """grace.persample: one batched pass gives each row the gradient the per-example loop gives it."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from grace.encoding import IGNORE_INDEX, right_pad
    from grace.features import batched_response_loss, grads_loop
    from grace.persample import covers, grads_hooks

    cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, tie_word_embeddings=tied)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    assert covers(model)
    params = [p for p in model.parameters() if p.requires_grad]
    D = sum(p.numel() for p in params)
    g = torch.Generator().manual_seed(1)
    exs = []
    for T in (20, 13, 17):
        ids = torch.randint(3, 100, (T,), generator=g).tolist()
        exs.append((ids, [IGNORE_INDEX] * (T // 3) + ids[T // 3 :]))
    ids, labels = right_pad(exs, 0, 8)
    G_loop, G_hooks = torch.empty(3, D), torch.full((3, D), float("nan"))
    loss_loop, _ = grads_loop(model, params, ids, labels, [len(x) for x, _ in exs], G_loop)
    loss_hooks, _ = grads_hooks(model, ids, labels, G_hooks, batched_response_loss)
    torch.testing.assert_close(G_hooks, G_loop, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loss_hooks, loss_loop)
    assert all(p.requires_grad and p.grad is None for p in params)  # the model as it was


def test_hooks_through_compute_features(model_tok):
    model, tok = model_tok
    D = sum(p.numel() for p in model.parameters())
    loop = compute_features(model, tok, EXAMPLES, IdentityProjector(D), method="loop", batch_size=3, progress=False)
    hooks = compute_features(model, tok, EXAMPLES, IdentityProjector(D), method="hooks", batch_size=3, progress=False)
    assert hooks.meta["method"] == "hooks"
    np.testing.assert_allclose(hooks.H, loop.H, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(hooks.grad_norm, loop.grad_norm, rtol=1e-5)


def test_factored_blocks_fit_the_budget(model_tok):
    """A factored block holds activations: its rows shrink so that tokens × bytes per token fit the budget."""
    from grace.factored import FactoredProjector

    model, tok = model_tok
    proj = FactoredProjector(model, 16)
    per_token = FactoredProjector.activation_bytes_per_token(model)
    assert per_token > 0
    roomy = compute_features(model, tok, EXAMPLES, proj, batch_size=3, progress=False, memory_budget=2**30)
    tight = compute_features(model, tok, EXAMPLES, proj, batch_size=3, progress=False, memory_budget=per_token * 30)
    assert roomy.meta["block_rows"] == 3 and tight.meta["block_rows"] == 1
    np.testing.assert_allclose(tight.H, roomy.H, rtol=1e-4, atol=1e-6)  # the block size changes no feature
