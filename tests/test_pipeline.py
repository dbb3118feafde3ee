"""Unit tests of the miniature world and the generation → distillation → evaluation stages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from grace import synthetic, tasks, world
from grace.distill import TrainConfig, collate, distill, filter_correct, train_causal_lm
from grace.evaluation import accuracy_metrics, evaluate
from grace.generation import generate_records, sample_responses
from grace.rank import load_generations, subset

TEMPLATE = "Q: {prompt}\nA:"


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """A tokenizer trained on the synthetic task and a tiny Llama saved/reloaded like a Hub model."""
    task = tasks.SyntheticTask(difficulty="easy", max_steps=2)
    probs = task.problems("train", 60, 0)
    texts = [p.question for p in probs] + [synthetic.render_solution(p, s) for p in probs for s in synthetic.STYLES]
    tok = world.build_tokenizer(texts + [TEMPLATE.format(prompt="")])
    model = world.make_model(world.ModelSize(hidden=32, layers=1, heads=2, intermediate=64), tok, seed=0)
    path = tmp_path_factory.mktemp("mini") / "model"
    world.save_model(model, tok, path)
    return task, probs, path


def test_tokenizer_round_trip_and_digits(mini):
    _, probs, path = mini
    tok = world.load_tokenizer(path)
    text = synthetic.render_solution(probs[0], "calc")
    ids = tok(text, add_special_tokens=False).input_ids
    assert tok.decode(ids) == text  # exact round trip (Fuse decoder)
    digits = tok("1234", add_special_tokens=False).input_ids
    assert len(digits) == 4  # one token per digit
    assert tok("7").input_ids[0] == tok.bos_token_id  # BOS prepended like Llama
    assert tok.eos_token_id is not None and tok.pad_token_id is not None


def test_model_loads_through_auto_classes(mini):
    _, _, path = mini
    assert (path / "model.safetensors").exists()
    model = world.load_model(path)
    assert not model.training
    assert world.count_params(model) > 0


def test_load_model_missing_path_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        world.load_model(tmp_path / "nope")


def test_sampling_is_seeded_and_validated(mini):
    _, probs, path = mini
    model, tok = world.load_model(path), world.load_tokenizer(path)
    prompts = [p.question for p in probs[:3]]
    a = sample_responses(model, tok, prompts, 2, 1.0, max_new_tokens=8, seed=5, template=TEMPLATE)
    b = sample_responses(model, tok, prompts, 2, 1.0, max_new_tokens=8, seed=5, template=TEMPLATE)
    c = sample_responses(model, tok, prompts, 2, 1.0, max_new_tokens=8, seed=6, template=TEMPLATE)
    assert a == b and a != c
    assert [len(r) for r in a] == [2, 2, 2]
    g = sample_responses(model, tok, prompts, 3, 0.0, max_new_tokens=8, seed=0, template=TEMPLATE)
    assert all(len(set(r)) == 1 for r in g)  # greedy: one response repeated
    long = sample_responses(model, tok, prompts, 1, 1.0, max_new_tokens=8, seed=0, template=TEMPLATE,
                            min_new_tokens=8)
    assert all(len(tok(r[0], add_special_tokens=False).input_ids) >= 1 for r in long)
    with pytest.raises(ValueError, match="n_samples"):
        sample_responses(model, tok, prompts, 0, 1.0, max_new_tokens=8, seed=0)


def test_generate_records_fields_and_errors(mini, tmp_path):
    task, probs, path = mini
    model, tok = world.load_model(path), world.load_tokenizer(path)
    prompts = task.train_prompts(4, 1)
    out = tmp_path / "g.jsonl"
    recs = generate_records(model, tok, prompts, 2, 0.7, "t", is_correct=task.is_correct, out_path=out,
                            max_new_tokens=6, seed=0, template=TEMPLATE)
    assert len(recs) == 8
    assert set(recs[0]) >= {"prompt_id", "prompt", "response", "teacher", "temperature", "correct", "sample"}
    assert [json.loads(line)["prompt_id"] for line in out.read_text().splitlines()] == [r["prompt_id"] for r in recs]
    with pytest.raises(ValueError, match="temperature"):
        generate_records(model, tok, prompts, 2, 0.0, "t")


def test_accuracy_metrics_hand_case():
    m = accuracy_metrics(np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=bool))
    assert m["avg_at_k"] == pytest.approx(5 / 12)
    assert m["best_of_k"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy_metrics(np.zeros((0, 3)))


def test_evaluate_counts_with_an_oracle_checker(mini):
    task, _, path = mini
    model, tok = world.load_model(path), world.load_tokenizer(path)
    prompts = task.test_prompts(3, 0)
    metrics, per_prompt = evaluate(model, tok, prompts, lambda r, a: True, k=2, max_new_tokens=4, template=TEMPLATE)
    assert metrics["avg_at_k"] == 1.0 and metrics["greedy"] == 1.0 and metrics["best_of_k"] == 1.0
    metrics, _ = evaluate(model, tok, prompts, lambda r, a: False, k=2, max_new_tokens=4, template=TEMPLATE)
    assert metrics["avg_at_k"] == 0.0
    assert len(per_prompt) == 3 and per_prompt[0]["k"] == 2
    with pytest.raises(ValueError, match="k=0"):
        evaluate(model, tok, prompts, task.is_correct, k=0)


def test_collate_masks_padding():
    batch = collate([{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}, {"input_ids": [1, 5], "labels": [-100, 5]}], 0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [1, 5, 0]]
    assert batch["labels"].tolist() == [[-100, 2, 3], [-100, 5, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_filter_correct_resamples_per_prompt():
    ex = [{"prompt_id": "a", "response": "x", "correct": True}, {"prompt_id": "a", "response": "y", "correct": False},
          {"prompt_id": "b", "response": "z", "correct": False}, {"prompt_id": "b", "response": "w", "correct": False}]
    out = filter_correct(ex, seed=0)
    assert [e["response"] for e in out] == ["x", "x"]  # prompt b has no correct answer -> dropped
    with pytest.raises(ValueError, match="correct"):
        filter_correct([{"prompt_id": "a", "response": "x"}])


def test_distillation_learns_and_rejects_empty(mini, tmp_path):
    task, probs, path = mini
    model, tok = world.load_model(path), world.load_tokenizer(path)
    gens = [{"prompt_id": p.uid, "prompt": p.question, "response": synthetic.render_solution(p, "terse")} for p in probs]
    before = [p.detach().clone() for p in model.parameters()]
    s1 = distill(model, tok, gens, TrainConfig(learning_rate=3e-3, max_steps=3, batch_size=16), TEMPLATE,
                 tmp_path / "w", progress=False)
    s2 = distill(model, tok, gens, TrainConfig(learning_rate=3e-3, max_steps=30, batch_size=16), TEMPLATE,
                 tmp_path / "w", progress=False)
    assert s2["train_loss"] < s1["train_loss"]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with pytest.raises(ValueError, match="empty response"):
        distill(model, tok, gens[:2] + [{"prompt_id": "z", "prompt": "q", "response": "  "}], TrainConfig(max_steps=1),
                TEMPLATE, tmp_path / "w", progress=False)
    with pytest.raises(ValueError, match="max_steps"):
        train_causal_lm(model, tok, [{"input_ids": [1, 2], "labels": [1, 2]}], TrainConfig(max_steps=0), tmp_path / "w")


def test_load_generations_errors(tmp_path):
    p = tmp_path / "g.jsonl"
    with pytest.raises(FileNotFoundError):
        load_generations(p)
    p.write_text(json.dumps({"prompt_id": 1, "prompt": "q"}) + "\n")
    with pytest.raises(ValueError, match="g.jsonl:1 is missing 'response'"):
        load_generations(p)
    p.write_text(json.dumps({"prompt_id": 1, "prompt": "q", "response": " "}) + "\n")
    with pytest.raises(ValueError, match="empty response"):
        load_generations(p)
    p.write_text(json.dumps({"prompt_id": 9, "prompt": "q", "response": "r"}) + "\n")
    with pytest.raises(ValueError, match="unknown prompt_id"):
        load_generations(p, known_prompt_ids={1, 2})
    p.write_text("{not json\n")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_generations(p)


def test_subset_is_seeded_prompt_major():
    recs = [{"prompt_id": i // 3, "prompt": "q", "response": f"r{i}"} for i in range(30)]
    a, b = subset(recs, 4, 2, seed=0), subset(recs, 4, 2, seed=0)
    assert a == b and len(a) == 8
    assert all(a[2 * i]["prompt_id"] == a[2 * i + 1]["prompt_id"] for i in range(4))
    with pytest.raises(ValueError, match="n=11"):
        subset(recs, 11, 2, seed=0)
    with pytest.raises(ValueError, match="m=4"):
        subset(recs, 2, 4, seed=0)


def test_cli_features_score_rank(mini, tmp_path, capsys):
    from grace.cli import main
    from grace.io import write_jsonl

    task, probs, path = mini
    files = {}
    for style in ("calc", "terse"):
        recs = [{"prompt_id": p.uid, "prompt": p.question, "response": synthetic.render_solution(p, style, rng)}
                for p in probs[:12] for rng in (None, None)]
        files[style] = tmp_path / f"{style}.jsonl"
        write_jsonl(files[style], recs)
        assert main(["features", "--model", str(path), "--generations", str(files[style]), "--out",
                     str(tmp_path / "feats" / style), "--n", "10", "--m", "2", "--d", "16"]) == 0
    capsys.readouterr()
    assert main(["score", str(tmp_path / "feats" / "calc"), str(tmp_path / "feats" / "terse"), "--n-folds", "5"]) == 0
    out = capsys.readouterr().out
    assert "grace" in out and "g_vendi" in out and "calc" in out and "terse" in out
    assert main(["rank", "--student", str(path), "--teacher", f"calc={files['calc']}", "--teacher",
                 f"terse={files['terse']}", "--out", str(tmp_path / "rank"), "--d", "16", "--n-folds", "4",
                 "--plot"]) == 0
    assert (tmp_path / "rank" / "ranking.csv").exists() and (tmp_path / "rank" / "ranking.png").exists()
    # bad input: a missing generations file exits 2 with a message naming it
    assert main(["features", "--model", str(path), "--generations", str(tmp_path / "missing.jsonl"),
                 "--out", str(tmp_path / "x")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    # --norms: the factored projector's grad_norm kind reaches the features; with another Π it is refused
    assert main(["features", "--model", str(path), "--generations", str(files["calc"]), "--out", str(tmp_path / "fx"),
                 "--d", "16", "--projector", "factored", "--norms", "exact"]) == 0
    assert json.loads((tmp_path / "fx" / "features.json").read_text())["projector"]["norms"] == "exact"
    assert main(["features", "--model", str(path), "--generations", str(files["calc"]), "--out", str(tmp_path / "fy"),
                 "--d", "16", "--norms", "exact"]) == 2
    assert "norms='exact'" in capsys.readouterr().err


def test_notebook_glue_casts_numpy_scalars(monkeypatch):
    import myst_nb

    from grace import notebook

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: seen.update({name: value}))
    notebook.glue("x", np.float64(0.5))
    notebook.glue("n", np.int64(3))
    assert type(seen["x"]) is float and type(seen["n"]) is int


def test_notebook_checks_record_and_raise():
    import json

    from grace import notebook

    checks = notebook.Checks()
    checks.check("holds", True, "1 = 1")
    with pytest.raises(AssertionError, match="check failed: breaks: 1 != 2"):
        checks.check("breaks", False, "1 != 2")
    assert checks == [{"check": "holds", "passed": True, "detail": "1 = 1"},
                      {"check": "breaks", "passed": False, "detail": "1 != 2"}]
    assert json.loads(json.dumps(checks))[0]["passed"] is True
    assert notebook.profile_note("full").startswith("**Profile `full`:**")
    assert notebook.profile_note("mine") == "**Profile `mine`.**"
