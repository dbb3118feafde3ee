"""Hand-checked arithmetic of grace.costs (the paper-scale ESTIMATES of Appendix B)."""

import math

import pytest

from grace import costs as C

# Round numbers so every expected value can be checked by hand.
HW = C.Hardware(
    peak_bf16_flops=1e15, peak_tf32_flops=1e12, peak_fp32_flops=1e11, hbm_bytes_per_s=1e12, memory_bytes=80e9,
    mfu_train=0.5, mfu_generate=0.1, gemm_efficiency=0.5, bandwidth_efficiency=1.0, hash_entries_per_s=1e10,
)  # fmt: skip


def test_per_sample_gradient_is_6DT_and_memory_bound_when_writes_dominate():
    r = C.per_sample_gradient(C.ModelSpec("x", 1e9), C.Workload(tokens_per_seq=100, grad_bytes=4), HW)
    assert r["flops"] == pytest.approx(6e11)  # 6 · 1e9 · 100
    assert r["compute_s"] == pytest.approx(6e11 / 5e14)  # 1.2 ms
    assert r["memory_s"] == pytest.approx(4e9 / 1e12)  # 4 ms: writing 4 GB
    assert r["seconds"] == pytest.approx(4e-3)


def test_dense_projection_gemm_plus_amortised_pi_generation():
    w = C.Workload(d=100, proj_batch=10, projection_precision="tf32")
    r = C.dense_projection(C.ModelSpec("x", 1e6), w, HW)
    assert r["gemm_flops"] == pytest.approx(2e8)  # 2 · D · d
    assert r["gemm_s"] == pytest.approx(4e-4)  # 2e8 / (0.5 · 1e12)
    assert r["pi_gen_s_per_pass"] == pytest.approx(1e-2)  # 1e8 entries / 1e10 per s
    assert r["pi_gen_s"] == pytest.approx(1e-3)  # one pass per 10 gradients
    assert r["pi_fp32_bytes"] == pytest.approx(4e8) and r["pi_bits_bytes"] == pytest.approx(1.25e7)
    assert r["seconds"] == pytest.approx(4e-4 + 1e-3)


def test_dense_projection_precision_changes_gemm_time_only():
    m = C.ModelSpec("x", 1e6)
    fp32 = C.dense_projection(m, C.Workload(d=100, projection_precision="fp32"), HW)
    tf32 = C.dense_projection(m, C.Workload(d=100, projection_precision="tf32"), HW)
    assert fp32["gemm_s"] == pytest.approx(10 * tf32["gemm_s"])
    assert fp32["pi_gen_s"] == tf32["pi_gen_s"]


def test_sparse_projection_is_a_read_of_the_gradient():
    r = C.sparse_projection(C.ModelSpec("x", 1e9), C.Workload(nnz=4, proj_batch=8, grad_bytes=2), HW)
    assert r["read_s"] == pytest.approx(2e9 / 1e12)
    assert r["sparse_flops"] == pytest.approx(8e9)
    assert r["index_gen_s"] == pytest.approx(4e9 / 1e10 / 8)
    assert r["seconds"] == pytest.approx(2e-3 + 0.05)


def test_feature_storage_matches_paper_table1_order():
    r = C.feature_storage(C.Workload())  # n = 512, m = 4, d = 512, fp32
    assert r["feature_bytes"] == 512 * 4 * 512 * 4 == 4_194_304
    assert 4.0 < r["feature_mb"] < 4.3  # the paper's 4.3 MB includes file overhead


def test_projection_over_gradient_closed_form():
    r = C.projection_over_gradient(512, 96, 1.0, 1.0)
    assert r["ratio"] == pytest.approx(512 / 288)
    # a projection running twice as fast as the gradient halves the ratio
    assert C.projection_over_gradient(512, 96, 40e9, 80e9)["ratio"] == pytest.approx(256 / 288)
    with pytest.raises(ValueError, match="must be > 0"):
        C.projection_over_gradient(0, 96, 1.0, 1.0)


def test_features_per_config_sums_per_sample_costs():
    m, w = C.ModelSpec("x", 1e6), C.Workload(n=10, m=2, model_load_s=5.0)
    r = C.features_per_config(m, w, HW)
    g = C.per_sample_gradient(m, w, HW)["seconds"]
    b = C.dense_projection(m, w, HW)["seconds"]
    assert r["gradient_s"] == pytest.approx(20 * g)
    assert r["total_dense_s"] == pytest.approx(5.0 + 20 * (g + b))
    assert r["dense_over_gradient"] == pytest.approx(b / g)


def test_generation_throughput_and_tensor_parallel_degree():
    r = C.generation(1e9, 1e6, HW)
    assert r["tokens_per_s"] == pytest.approx(1e14 / 2e9)  # 50k tokens/s
    assert r["gpu_s"] == pytest.approx(20.0)
    assert r["gpus_min"] == 1
    assert C.generation(70e9, 1.0, HW)["gpus_min"] == 4  # 140 GB / 48 GB = 2.9 → 4 (power of two)


def test_distillation_is_6D_tokens():
    plan = C.StudyPlan(N=10, M=2, prompt_tokens=10, response_tokens=20, epochs=1)
    r = C.distillation(C.ModelSpec("x", 1e6), plan, HW)
    assert r["train_tokens"] == 600
    assert r["train_flops"] == pytest.approx(3.6e9)
    assert r["gpu_s"] == pytest.approx(3.6e9 / 5e14)


def test_data_parallel_and_errors():
    assert C.data_parallel(100.0, 4, setup_s=5.0)["wall_s"] == pytest.approx(30.0)
    assert C.data_parallel(100.0, 4, setup_s=5.0, longest_s=40.0)["wall_s"] == pytest.approx(45.0)  # one long job
    with pytest.raises(ValueError, match="gpus=0"):
        C.data_parallel(1.0, 0)
    with pytest.raises(ValueError, match="mfu_train"):
        C.Hardware(mfu_train=0.0)
    with pytest.raises(ValueError, match="precision"):
        HW.peak("fp8")


def test_study_cost_totals_and_selection_is_cheaper():
    plan = C.StudyPlan()
    assert plan.configs == 120  # 15 teachers × 8 temperatures
    r = C.study_cost(C.LLAMA_3_2_1B, C.Workload(), plan, C.Hardware(), gpus=8)
    parts = ("generate_full", "features_dense", "distill", "evaluate")
    assert r["total_full"]["gpu_h"] == pytest.approx(sum(r[k]["gpu_h"] for k in parts))
    assert r["total_full"]["wall_h"] == pytest.approx(max(r["total_full"]["gpu_h"] / 8, r["total_full"]["longest_job_h"]))
    assert r["generate_full"]["min_gpus"] == 4  # the 70B teacher does not fit one 80 GB GPU
    many = C.study_cost(C.LLAMA_3_2_1B, C.Workload(), plan, C.Hardware(), gpus=10_000)
    assert many["total_full"]["wall_h"] == pytest.approx(many["total_full"]["longest_job_h"])  # chain-bound
    assert r["select_by_grace"]["gpu_h"] < 0.1 * r["total_full"]["gpu_h"]
    assert r["features_sparse"]["gpu_h"] < r["features_dense"]["gpu_h"]
    assert r["generate_full"]["tokens"] == 7473 * 16 * 200 * 120


def test_every_returned_key_has_its_own_formula():
    m, w, hw, plan = C.LLAMA_3_2_1B, C.Workload(), C.Hardware(), C.StudyPlan()
    returned = {
        "per_sample_gradient": C.per_sample_gradient(m, w, hw),
        "dense_projection": C.dense_projection(m, w, hw),
        "sparse_projection": C.sparse_projection(m, w, hw),
        "features_per_config": C.features_per_config(m, w, hw),
        "feature_storage": C.feature_storage(w),
        "projection_over_gradient": C.projection_over_gradient(512, 300, 1.0, 1.0),
        "generation": C.generation(1e9, 1.0, hw),
        "distillation": C.distillation(m, plan, hw),
        "data_parallel": C.data_parallel(1.0, 1),
    }
    for fn, out in returned.items():
        assert set(out) == set(C.FORMULAS[fn]), fn
        assert all(math.isfinite(v) for v in out.values()), fn
