"""Profiles are validated on load (grace.config): an unknown or mistyped key is an error naming it."""

from __future__ import annotations

import copy

import pytest
import yaml

from grace.study import available_profiles, load_profile, validate_profile


@pytest.mark.parametrize("name", available_profiles())
def test_every_bundled_profile_is_valid(name):
    load_profile(name)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda p: p["distill"].update(max_lenght=512), r"unknown key 'max_lenght' in profile section 'distill'.*max_length"),
    (lambda p: p["features"].update(d="512"), r"features.d='512' has type str; expected int"),
    (lambda p: p["world"]["teachers"][0].update(stpes=3), r"world.teachers\[0\]"),
    (lambda p: p["world"]["pretrain"].update(worked_shar=0.1), r"world.pretrain.*worked_share"),
    (lambda p: p.update(seeds=[1, 2]), r"unknown key 'seeds' in profile section '<top level>'"),
    (lambda p: p["task"].update(path="x"), r"unknown key 'path' in profile section 'task'"),
    (lambda p: p["generation"].update(N=True), r"generation.N=True has type bool"),
    (lambda p: p["scores"].update(nu=1), None),  # an int where a float is expected is fine
    (lambda p: p["features"].update(projector="dense"), r"features.projector='dense'.*rademacher"),
    (lambda p: p["features"].update(norms="exact"), r"features.norms='exact'.*projector: factored"),
    (lambda p: p["features"].update(projector="factored", norms="approx"), r"features.norms='approx'.*sketch"),
    (lambda p: p["features"].update(projector="factored", norms="exact"), None),
])
def test_bad_keys_and_types_are_named(mutate, message):
    p = copy.deepcopy(load_profile("quick"))
    mutate(p)
    if message is None:
        validate_profile(p)
        return
    with pytest.raises(ValueError, match=message):
        validate_profile(p)


def test_a_user_profile_file_with_a_typo_fails_on_load(tmp_path):
    p = load_profile("smoke")
    p["distill"]["max_lenght"] = 128
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(p))
    with pytest.raises(ValueError, match="max_lenght"):
        load_profile(path)


def test_distill_max_length_reaches_training(monkeypatch, tmp_path):
    """distill.max_length was silently ignored before the schema existed; now it is passed on."""
    from grace import distill as D
    from grace import study as S

    seen = {}

    def fake_distill(model, tok, gens, cfg, template, work_dir, progress=True):
        seen["max_length"] = cfg.max_length
        raise RuntimeError("stop here")

    monkeypatch.setattr(D, "distill", fake_distill)
    monkeypatch.setattr(S, "_load", lambda path, device, dtype=None, revision=None: (None, None))
    p = load_profile("smoke")
    p["distill"]["max_length"] = 77
    gen = tmp_path / "g.jsonl"
    gen.write_text('{"prompt_id": "a", "prompt": "q", "response": "r"}\n')
    with pytest.raises(RuntimeError, match="stop here"):
        S.stage_student(S.StudyProfile(p, validate_profile(p)), None, "c@1", {"key": "k", "path": "x"}, "g", gen, [],
                        tmp_path, S.Log(tmp_path), False)
    assert seen["max_length"] == 77


def test_dtype_is_validated_and_resolved():
    import torch

    from grace.world import resolve_dtype

    p = load_profile("smoke")
    p["dtype"] = "bf16"
    with pytest.raises(ValueError, match="dtype='bf16'"):
        validate_profile(p)
    assert resolve_dtype("bfloat16") == torch.bfloat16 and resolve_dtype(None) == torch.float32
    assert resolve_dtype("auto", "cpu") == torch.float32  # bfloat16 only on a CUDA device that supports it


def test_global_batch_is_split_over_devices_and_accumulation():
    from grace.distill import TrainConfig

    cfg = TrainConfig(batch_size=64, gradient_accumulation_steps=2)
    assert cfg.per_device_batch(world_size=8) == 4 and cfg.per_device_batch(world_size=1) == 32
    with pytest.raises(ValueError, match="not divisible"):
        cfg.per_device_batch(world_size=3)
    with pytest.raises(ValueError, match="mixed_precision"):
        TrainConfig(mixed_precision="bf32").validate()


def test_truncated_distillation_examples_are_named(tiny_llama_dir):
    from grace.encoding import encode_all
    from grace.world import load_tokenizer

    tok = load_tokenizer(tiny_llama_dir)
    long = {"prompt_id": "p7", "sample": 2, "prompt": "how many apples ?", "response": " ".join(["1"] * 40)}
    short = {"prompt_id": "p8", "prompt": "how many apples ?", "response": "1"}
    with pytest.warns(UserWarning, match=r"1 of 2 examples .* max_length=20 .*p7#2"):
        enc = encode_all(tok, [long, short], "{prompt}", 20)
    assert len(enc[0]["input_ids"]) == 20


def test_parse_profile_gives_typed_sections_with_the_schema_defaults():
    from grace.config import DistillSection, FeaturesSection, parse_profile
    from grace.study import load_profile

    raw = load_profile("smoke")
    P = parse_profile(raw)
    assert isinstance(P.features, FeaturesSection) and isinstance(P.distill, DistillSection)
    assert P.features.d == raw["features"]["d"]
    assert P.features.projector == FeaturesSection.projector or "projector" in raw["features"]  # default filled
    assert all(isinstance(t, float) for t in P.temperatures)
    assert isinstance(P.distill.epochs, float)  # an int given for a float field becomes a float
    assert P.world.teachers and P.world.teachers[0].name == raw["world"]["teachers"][0]["name"]
    cfg = P.distill.train_config(seed=3)
    assert (cfg.seed, cfg.learning_rate, cfg.batch_size) == (3, float(raw["distill"]["learning_rate"]),
                                                             raw["distill"]["batch_size"])
    bad = {**raw, "features": {**raw["features"], "dd": 3}}
    with pytest.raises(ValueError, match="unknown key 'dd' in profile section 'features'; valid keys"):
        parse_profile(bad)
