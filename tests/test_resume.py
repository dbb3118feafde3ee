"""Resume inside the long stages: generation, evaluation and distillation continue after a kill.

Each test kills a run part-way (an exception raised from inside the loop, as a ``kill -9`` would stop
it), reruns it, and checks that the result equals an uninterrupted run's and that the finished work
was not done twice.
"""

from __future__ import annotations

import json

import pytest
import torch

from grace import world
from grace.distill import TrainConfig, train_causal_lm
from grace.generation import sample_responses
from grace.io import Journal


class Killed(Exception):
    pass


def test_journal_keeps_whole_batches_of_its_own_key(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal(path, {"a": 1})
    j.add(0, ["x"])
    j.add(1, ["y"])
    with open(path, "a") as f:
        f.write('{"batch": 2, "val')  # torn by a kill mid-write
    again = Journal(path, {"a": 1})
    assert 0 in again and 1 in again and 2 not in again and again[1] == ["y"]
    other = Journal(path, {"a": 2})
    assert other.done == {}  # other inputs: start afresh
    assert path.read_text().splitlines() == [json.dumps({"key": other.key})]
    Journal(None).add(0, 1)  # no file: a plain loop


@pytest.fixture()
def llama(tiny_llama_dir):
    return world.load_model(tiny_llama_dir), world.load_tokenizer(tiny_llama_dir)


def test_sampling_resumes_after_a_kill_with_the_same_responses(llama, tmp_path, monkeypatch):
    from grace import generation

    model, tok = llama
    prompts = ["Tom has 3 apples", "how many apples", "she eats 2", "The answer is"]
    kw = dict(n_samples=3, temperature=0.9, max_new_tokens=6, seed=4, template="{prompt}", batch_size=5)
    whole = sample_responses(model, tok, prompts, **kw)  # 12 sequences: batches of 5, 5, 2
    calls = {"n": 0}
    real = generation._generate_batch

    def dies_on_the_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        return real(*a, **k)

    monkeypatch.setattr(generation, "_generate_batch", dies_on_the_second)
    with pytest.raises(Killed):
        sample_responses(model, tok, prompts, resume=tmp_path / "j.jsonl", **kw)
    calls["n"] = 10  # no more kills
    assert sample_responses(model, tok, prompts, resume=tmp_path / "j.jsonl", **kw) == whole
    assert calls["n"] == 12  # batch 0 came from the journal: only batches 1 and 2 ran again


def _encoded(n: int = 40) -> list[dict[str, list[int]]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        ids = torch.randint(4, 90, (int(torch.randint(4, 12, (1,), generator=g)),), generator=g).tolist()
        out.append({"input_ids": ids, "labels": ids})
    return out


def test_distillation_resumes_from_its_checkpoint_to_the_same_weights(tiny_llama_dir, tmp_path):
    from transformers import TrainerCallback

    class KillAt(TrainerCallback):
        def __init__(self, step):
            self.step, self.seen = step, 0

        def on_step_end(self, args, state, control, **kw):
            self.seen += 1
            if state.global_step == self.step:
                raise Killed

    tok = world.load_tokenizer(tiny_llama_dir)
    cfg = TrainConfig(learning_rate=3e-3, max_steps=10, batch_size=8, save_steps=3, seed=1)
    ref_model = world.load_model(tiny_llama_dir)
    ref = train_causal_lm(ref_model, tok, _encoded(), cfg, tmp_path / "ref", progress=False)

    model = world.load_model(tiny_llama_dir)
    with pytest.raises(Killed):
        train_causal_lm(model, tok, _encoded(), cfg, tmp_path / "run", progress=False, callbacks=[KillAt(8)])
    assert (tmp_path / "run" / "checkpoint-6").exists()  # steps 7-8 are lost, 1-6 kept
    model = world.load_model(tiny_llama_dir)
    counter = KillAt(-1)
    resumed = train_causal_lm(model, tok, _encoded(), cfg, tmp_path / "run", progress=False, callbacks=[counter])
    assert counter.seen == 4  # steps 7..10 only
    for a, b in zip(ref_model.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert resumed["steps"] == ref["steps"] == 10
    assert resumed["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-6)
    assert resumed["loss_last"] == ref["loss_last"]

    model, counter = world.load_model(tiny_llama_dir), KillAt(-1)  # finished: loaded back, no step run
    again = train_causal_lm(model, tok, _encoded(), cfg, tmp_path / "run", progress=False, callbacks=[counter])
    assert counter.seen == 0 and again == resumed
    assert all(torch.equal(a, b) for a, b in zip(ref_model.state_dict().values(), model.state_dict().values(), strict=True))

    other = TrainConfig(learning_rate=1e-3, max_steps=10, batch_size=8, save_steps=3, seed=1)
    model, counter = world.load_model(tiny_llama_dir), KillAt(-1)
    train_causal_lm(model, tok, _encoded(), other, tmp_path / "run", progress=False, callbacks=[counter])
    assert counter.seen == 10  # another config's checkpoints are not reused


def test_a_killed_study_resumes_inside_generate_distill_and_evaluate(tmp_path, monkeypatch):
    """The smoke study killed in a generation batch, a distillation step and an evaluation batch,
    rerun after each kill: the results table equals an uninterrupted run's, and no finished batch or
    checkpointed step was done twice."""
    import transformers

    from grace import generation
    from grace.study import load_profile, run_study

    profile = load_profile("smoke")
    profile["generation"]["batch_size"] = 16  # 48 sequences per configuration: 3 batches
    profile["evaluation"]["batch_size"] = 8
    profile["distill"]["save_steps"] = 1
    profile.pop("filter_ablation", None)
    ref = run_study(profile, tmp_path / "ref", progress=False)

    counts = {"gen": 0, "step": 0}
    real_gen, real_step = generation._generate_batch, transformers.Trainer.training_step
    kill = {"gen": None, "step": None}

    def gen(*a, **k):
        if counts["gen"] + 1 == kill["gen"]:
            raise Killed
        counts["gen"] += 1
        return real_gen(*a, **k)

    def step(self, *a, **k):
        if counts["step"] + 1 == kill["step"]:
            raise Killed
        counts["step"] += 1
        return real_step(self, *a, **k)

    monkeypatch.setattr(generation, "_generate_batch", gen)
    monkeypatch.setattr(transformers.Trainer, "training_step", step)
    kill.update(gen=None, step=None)
    counts.update(gen=0, step=0)
    run_study(profile, tmp_path / "count", progress=False)  # how many batches and steps a whole run takes
    total = dict(counts)

    counts.update(gen=0, step=0)
    out = tmp_path / "killed"
    # world building trains with steps too; kill in the teachers' generation (batches), then in a
    # student's distillation (steps), then in a student's evaluation (batches)
    schedule = [("gen", total["gen"] // 3), ("step", total["step"] - 2), ("gen", total["gen"] - 3)]
    for what, at in schedule:
        kill.update(gen=None, step=None)
        kill[what] = at
        with pytest.raises(Killed):
            run_study(profile, out, progress=False)
        assert list(out.rglob("_partial"))  # the interrupted stage kept its batches
    kill.update(gen=None, step=None)
    resumed = run_study(profile, out, progress=False)
    assert (out / "results.csv").read_text() == (tmp_path / "ref" / "results.csv").read_text()
    assert counts == total  # every batch and every step ran exactly once across the four runs
    assert not list(out.rglob("_partial"))
    assert resumed.equals(ref)
