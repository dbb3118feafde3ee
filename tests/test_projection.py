"""Tests for grace.projection: the paper's Π ∈ {±1/√D}^{d×D} (§2.1) and the sparse JL projector."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from grace.projection import (
    IdentityProjector,
    Projector,
    RademacherProjector,
    SparseJLProjector,
    rademacher_entry,
    sparse_jl_entries,
)
from grace.projectors import make_projector, projector_from_meta

torch.set_num_threads(1)


def f32(x: float) -> float:
    return float(torch.tensor(x, dtype=torch.float32))


# ------------------------------------------------------------------------------------------------
# Dense Rademacher projector
# ------------------------------------------------------------------------------------------------
def test_entries_are_exactly_plus_minus_one_over_sqrt_D():
    D, d = 777, 48
    P = RademacherProjector(D, d, seed=5, chunk_size=100)
    eye = torch.eye(D)
    cols = P.project(eye)  # row j = Π e_j = column j of Π
    c = f32(1 / math.sqrt(D))
    assert set(cols.abs().unique().tolist()) == {c}
    frac_pos = (cols > 0).float().mean().item()
    assert 0.45 < frac_pos < 0.55
    # the same entries as the pure-Python definition
    for r in range(0, d, 5):
        for j in range(0, D, 37):
            assert cols[j, r].item() == rademacher_entry(5, r, j, D)


def test_matrix_identical_across_chunk_sizes_and_cache_modes():
    D, d = 500, 40
    ref = RademacherProjector(D, d, seed=1, chunk_size=500, cache_bytes=0).matrix()
    modes = set()
    for cs in (1, 7, 32, 33, 250, 4096):
        for cache in (0, 4 * D * d, d * D // 8 * 2):  # none, float, packed bits
            P = RademacherProjector(D, d, seed=1, chunk_size=cs, cache_bytes=cache)
            modes.add(P.cache_mode)
            assert torch.equal(P.matrix(), ref), (cs, cache)
            assert torch.equal(P.matrix(), ref), "second pass (from the cache) differs"
    assert modes == {"none", "float", "bits"}


def test_output_same_for_chunk_sizes_batch_splits_and_cache():
    torch.manual_seed(0)
    D, d = 5000, 64
    G = torch.randn(10, D)
    base = RademacherProjector(D, d, seed=2, chunk_size=512, cache_bytes=0)
    y = base.project(G)
    # cache on/off with the same chunking: the very same GEMMs, so bitwise equal
    for cache in (2**30, D * d // 4):
        P = RademacherProjector(D, d, seed=2, chunk_size=512, cache_bytes=cache)
        assert torch.equal(P.project(G), y)
        assert torch.equal(P.project(G), y)
    # other chunkings and batch splits: same Π, only the fp32 summation order changes
    for cs in (100, 4096, 10_000):
        P = RademacherProjector(D, d, seed=2, chunk_size=cs)
        torch.testing.assert_close(P.project(G), y, rtol=1e-5, atol=1e-6)
    parts = torch.cat([base.project(G[:3]), base.project(G[3:4]), base.project(G[4:])])
    torch.testing.assert_close(parts, y, rtol=1e-5, atol=1e-6)
    # and equal to an explicit matrix product in float64
    exact = G.double() @ base.matrix().double().T
    torch.testing.assert_close(y.double(), exact, rtol=1e-5, atol=1e-6)


def test_project_partial_blocks_sum_to_project():
    torch.manual_seed(1)
    D, d = 3000, 32
    G = torch.randn(4, D)
    for P in (RademacherProjector(D, d, chunk_size=256), SparseJLProjector(D, d, nnz=3, chunk_size=256),
              SparseJLProjector(D, d, nnz=2, block=7, chunk_size=256)):
        edges = [0, 5, 256, 700, 1999, 3000]
        total = sum(P.project_partial(G[:, a:b], a) for a, b in zip(edges[:-1], edges[1:], strict=True))
        torch.testing.assert_close(total, P.project(G), rtol=1e-5, atol=1e-6)


class _ScaledWrong(Projector):
    """Broken: right signs, but scaled by 1/√d instead of 1/√D."""

    def __init__(self, D, d, seed):
        super().__init__(D, d, seed)
        self.M = RademacherProjector(D, d, seed=seed).matrix() * math.sqrt(D) / math.sqrt(d)

    def _accumulate(self, out, G, start):
        out += G @ self.M[:, start : start + G.shape[1]].T


class _SameSign(Projector):
    """Broken: every entry +1/√D (no randomness)."""

    def _accumulate(self, out, G, start):
        out += G.sum(1, keepdim=True) / math.sqrt(self.dim_in)


def _norm_ratio(make, D=2048, d=128, seeds=range(6)) -> dict[str, float]:
    """Mean over seeds of ‖Πv‖² / ((d/D)‖v‖²) for a few kinds of vector v (should be ≈ 1)."""
    torch.manual_seed(123)
    vectors = {
        "ones": torch.ones(D),
        "gauss": torch.randn(D),
        "spiky": torch.zeros(D).index_fill_(0, torch.arange(0, D, 97), 3.0),
        "shifted": torch.randn(D) + 2.0,
    }
    V = torch.stack(list(vectors.values()))
    ratios = torch.zeros(len(vectors))
    for s in seeds:
        Y = make(D, d, s).project(V)
        ratios += (Y.pow(2).sum(1) / (d / D * V.pow(2).sum(1))) / len(seeds)
    return dict(zip(vectors, ratios.tolist(), strict=True))


def _norm_check_passes(make) -> bool:
    # one seed's ratio is chi2_d/d: sd sqrt(2/d) = 0.125; over 6 seeds the mean has sd ~0.05
    return all(abs(r - 1) < 0.2 for r in _norm_ratio(make).values())


def test_expected_squared_norm_is_d_over_D():
    assert _norm_check_passes(lambda D, d, s: RademacherProjector(D, d, seed=s))


def test_norm_check_catches_broken_projectors():
    assert not _norm_check_passes(lambda D, d, s: _ScaledWrong(D, d, s))
    assert not _norm_check_passes(lambda D, d, s: _SameSign(D, d, s))
    ratios = _norm_ratio(lambda D, d, s: _SameSign(D, d, s))
    assert ratios["ones"] > 100  # a gaussian-only check would miss this one


def test_rows_and_columns_look_independent():
    D, d = 4096, 64
    M = RademacherProjector(D, d, seed=9).matrix().double()
    rows = M @ M.T  # diag 1, off-diagonal ~ N(0, 1/D)
    torch.testing.assert_close(rows.diagonal(), torch.ones(d, dtype=torch.float64))
    off = rows[~torch.eye(d, dtype=torch.bool)]
    assert abs(off.pow(2).mean().item() * D - 1) < 0.15
    assert off.abs().max().item() < 6 / math.sqrt(D)
    cols = M.T @ M  # off-diagonal: mean 0, variance d/D²; also within and across hash words
    offc = cols[~torch.eye(D, dtype=torch.bool)]
    assert abs(offc.pow(2).mean().item() * D * D / d - 1) < 0.05
    assert abs(offc.mean().item()) * D * D / math.sqrt(d) < 6 * D  # no shared bias across columns
    for lag in (1, 31, 32, 33, 64):  # neighbours inside a 32-bit word and across words
        nb = (M[:, :-lag] * M[:, lag:]).sum(0) * D / math.sqrt(d)  # ~ N(0, 1) each
        assert abs(nb.mean().item()) < 0.15 and abs(nb.pow(2).mean().item() - 1) < 0.15, lag


def test_seed_determinism_and_seed_dependence():
    D, d = 600, 32
    a = RademacherProjector(D, d, seed=11).matrix()
    b = RademacherProjector(D, d, seed=11, chunk_size=64).matrix()
    c = RademacherProjector(D, d, seed=12).matrix()
    assert torch.equal(a, b)
    differ = (a != c).float().mean().item()
    assert 0.45 < differ < 0.55
    assert not torch.equal(RademacherProjector(D, d, seed=2**40).matrix(), RademacherProjector(D, d, seed=0).matrix())


def test_dtype_inputs_accumulate_in_fp32():
    torch.manual_seed(0)
    G = torch.randn(3, 300, dtype=torch.float64)
    P = RademacherProjector(300, 16)
    y = P.project(G)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, P.project(G.float()))
    assert P.project(G[0].float()).shape == (16,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_matrix_on_cuda():
    for P in (RademacherProjector, SparseJLProjector):
        cpu = P(3000, 64, seed=4).matrix()
        gpu = P(3000, 64, seed=4, device="cuda").matrix().cpu()
        assert torch.equal(cpu, gpu)


# ------------------------------------------------------------------------------------------------
# Sparse JL projector
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", [1, 5, 32])
def test_sparse_jl_structure_matches_definition(block):
    D, d, nnz = 900, 40, 3
    M = SparseJLProjector(D, d, seed=3, nnz=nnz, block=block, chunk_size=128).matrix()
    v = f32(1 / math.sqrt(nnz))
    assert set(M[M != 0].abs().unique().tolist()) == {v}
    assert torch.equal((M != 0).sum(0), torch.full((D,), nnz))
    for j in range(0, D, 7):
        nz = M[:, j].nonzero().flatten().tolist()
        assert sorted((r, M[r, j].item()) for r in nz) == sorted(sparse_jl_entries(3, j, d, nnz, block))
        bounds = [k * d // nnz for k in range(nnz + 1)]  # one non-zero per row block
        assert all(bounds[k] <= r < bounds[k + 1] for k, r in enumerate(sorted(nz)))
    # columns of one block share their rows, columns of different blocks mostly do not
    pattern = (M != 0).T.float()  # [D, d]
    if block > 1:
        assert (pattern[0] == pattern[block - 1]).all()
    assert (pattern[0] != pattern[block]).any()


@pytest.mark.parametrize("block", [1, 6])
def test_sparse_jl_deterministic_and_chunk_invariant(block):
    D, d = 700, 32
    a = SparseJLProjector(D, d, seed=7, block=block).matrix()
    for cs in (3, 100, 5000):
        for cache in (0, 2**30):
            P = SparseJLProjector(D, d, seed=7, block=block, chunk_size=cs, cache_bytes=cache)
            assert torch.equal(P.matrix(), a)
    assert (a != SparseJLProjector(D, d, seed=8, block=block).matrix()).any()


@pytest.mark.parametrize("block", [1, 8])
def test_sparse_jl_preserves_inner_products_in_expectation(block):
    D, d, nnz, seeds = 256, 32, 4, 300
    gram = torch.zeros(D, D, dtype=torch.float64)
    for s in range(seeds):
        M = SparseJLProjector(D, d, seed=s, nnz=nnz, block=block).matrix().double()
        gram += M.T @ M / seeds  # E[ΠᵀΠ] = I  ⟺  E<Πx, Πy> = <x, y> for all x, y
    torch.testing.assert_close(gram.diagonal(), torch.ones(D, dtype=torch.float64))  # exact: ‖column‖ = 1
    # off-diagonal: per seed ±1 within a block (shared rows), else a collision term of variance 1/d
    unit = torch.arange(D) // block
    same_block = (unit[:, None] == unit[None, :]) & ~torch.eye(D, dtype=torch.bool)
    other = unit[:, None] != unit[None, :]
    sd_other = 1 / math.sqrt(d * seeds)
    assert abs(gram[other].mean().item()) < 0.1 * sd_other and gram[other].abs().max().item() < 6 * sd_other
    if block > 1:
        assert gram[same_block].abs().max().item() < 6 / math.sqrt(seeds)
        assert abs(gram[same_block].mean().item()) < 0.5 / math.sqrt(seeds)
    torch.manual_seed(0)
    x, y = torch.randn(D, dtype=torch.float64), torch.randn(D, dtype=torch.float64)
    torch.testing.assert_close(x @ gram @ y, x @ y, atol=0.05 * x.norm() * y.norm(), rtol=0)


@pytest.mark.parametrize("block", [1, 16])
def test_sparse_jl_project_matches_matrix_product(block):
    torch.manual_seed(2)
    D, d = 3001, 64
    G = torch.randn(5, D)
    P = SparseJLProjector(D, d, nnz=2, block=block, chunk_size=1000)
    torch.testing.assert_close(P.project(G).double(), G.double() @ P.matrix().double().T, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda D, d: SparseJLProjector(D, d, seed=4, nnz=3, block=16, chunk_size=256),  # block sums, deferred sketch
    lambda D, d: SparseJLProjector(D, d, seed=4, nnz=3, block=1, chunk_size=256),  # the default accumulator
    lambda D, d: SparseJLProjector(D, d, seed=4, block=7, chunk_size=100, cache_bytes=0),  # no cache, odd block
    lambda D, d: RademacherProjector(D, d, seed=4, chunk_size=300),
])
def test_accumulator_over_any_split_equals_project_and_gives_the_exact_norm(make):
    torch.manual_seed(3)
    D, d, B = 2003, 48, 3
    G = torch.randn(B, D)
    P = make(D, d)
    ref = G.double() @ P.matrix().double().T
    cuts = [0, 5, 16, 17, 300, 301, 1024, 1999, D]  # ranges inside blocks, across blocks and across chunks
    order = [3, 0, 7, 1, 5, 2, 6, 4]  # any order
    for _ in range(2):  # the second accumulator reuses the first one's buffer: it must start from zero
        acc = P.accumulator(rows=B)
        for k in order:
            acc.add(G[:, cuts[k] : cuts[k + 1]], cuts[k])
        h, sq = acc.result()
        assert h.shape == (B, d) and h.dtype == torch.float32 and sq.dtype == torch.float64
        torch.testing.assert_close(h.double(), ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(sq, (G.double() ** 2).sum(1), rtol=1e-6, atol=0)
    one = P.accumulator(rows=1)  # B = 1, the direct path's case
    one.add(G[:1, :1000], 0)
    one.add(G[:1, 1000:], 1000)
    torch.testing.assert_close(one.result()[0].double(), ref[:1], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="takes \\[3, n\\]"):
        P.accumulator(rows=3).add(G[:1], 0)
    with pytest.raises(ValueError, match="do not fit in dim_in"):
        P.accumulator(rows=3).add(G[:, :10], D - 5)


def test_sparse_jl_prepare_builds_the_whole_cache_and_changes_nothing():
    torch.manual_seed(5)
    D, d = 5000, 32
    G = torch.randn(2, D)
    lazy = SparseJLProjector(D, d, seed=9, block=8, chunk_size=512)
    ready = SparseJLProjector(D, d, seed=9, block=8, chunk_size=512)
    ready.prepare()
    assert sorted(ready._cache) == list(range(-(-D // 512))) and not lazy._cache
    assert torch.equal(ready.project(G), lazy.project(G))
    off = SparseJLProjector(D, d, seed=9, block=8, chunk_size=512, cache_bytes=0)
    off.prepare()  # the cache is off: nothing is kept
    assert not off._cache and torch.equal(off.project(G), lazy.project(G))


# ------------------------------------------------------------------------------------------------
# Identity, factories, bad inputs
# ------------------------------------------------------------------------------------------------
def test_identity_projector_and_meta_roundtrip():
    G = torch.randn(3, 10)
    assert torch.equal(IdentityProjector(10).project(G), G)
    for P in (RademacherProjector(500, 16, seed=3), SparseJLProjector(500, 16, seed=3, nnz=2, block=4), IdentityProjector(20)):
        Q = projector_from_meta(P.meta())
        assert type(Q) is type(P) and Q.meta() == P.meta()
        assert torch.equal(Q.matrix(), P.matrix())
    assert isinstance(make_projector("rademacher", 100, 8, seed=1), RademacherProjector)


@pytest.mark.parametrize(
    "build",
    [
        lambda: RademacherProjector(0, 8),
        lambda: RademacherProjector(10, 0),
        lambda: RademacherProjector(10, -3),
        lambda: RademacherProjector(10, 4, seed=-1),
        lambda: RademacherProjector(10, 4, chunk_size=0),
        lambda: RademacherProjector(10, 4, cache_bytes=-1),
        lambda: SparseJLProjector(10, 4, nnz=5),
        lambda: SparseJLProjector(10, 4, nnz=0),
        lambda: SparseJLProjector(10, 4, block=0),
        lambda: make_projector("gaussian", 10, 4),
        lambda: make_projector("identity", 10, 4),
        lambda: make_projector("rademacher", 10, 4, norms="exact"),  # a factored-only option
        lambda: projector_from_meta({"kind": "rademacher", "dim_in": 4, "dim_out": 2, "hash": "old"}),
    ],
)
def test_bad_construction_raises(build):
    with pytest.raises(ValueError):
        build()


def test_bad_project_inputs_raise():
    P = RademacherProjector(10, 4)
    with pytest.raises(ValueError, match="dim_in"):
        P.project(torch.randn(2, 11))
    with pytest.raises(ValueError):
        P.project(torch.randn(2, 3, 10))
    with pytest.raises(ValueError, match="floating"):
        P.project(torch.ones(2, 10, dtype=torch.long))
    with pytest.raises(ValueError):
        P.project_partial(torch.randn(2, 5), 7)
    with pytest.raises(ValueError):
        P.matrix(max_entries=10)


def test_budget_sized_chunks_give_the_same_matrix_and_few_launches_at_real_scale():
    """Issue 12: Π at D = 1.24e9, d = 512 within 10^4 kernel launches per sample, checkable on a CPU."""
    from grace.projection import bytes_per_column, chunk_for_budget, count_chunk_ops

    a = RademacherProjector(5000, 64, seed=3, chunk_size=96, cache_bytes=0)
    b = RademacherProjector(5000, 64, seed=3, memory_budget=10**6, cache_bytes=0)
    assert b.chunk_size != a.chunk_size and torch.equal(a.matrix(), b.matrix())
    assert chunk_for_budget(512, 16 * 2**30) * bytes_per_column(512) <= 16 * 2**30
    with pytest.raises(ValueError, match="cannot hold"):
        chunk_for_budget(512, 1000)
    assert count_chunk_ops(512) == count_chunk_ops(64) > 10  # the op sequence does not depend on d
    big = RademacherProjector(1_240_000_000, 512, memory_budget=16 * 2**30, cache_bytes=0).plan()
    assert big["launches_per_sample"] <= 1e4 and big["n_chunks"] * big["chunk_size"] >= 1_240_000_000
    old = RademacherProjector(1_240_000_000, 512, cache_bytes=0).plan()  # the CPU default: ~8 MB chunks
    assert old["launches_per_sample"] > 1e6


def test_bench_projection_plan_prints_the_launch_budget():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "benchmarks/bench_projection.py", "--plan", "--dim-in", "1240000000",
                          "--dim-out", "512", "--device", "cuda"], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert res.returncode == 0, res.stderr
    lines = dict(line.split(": ", 1) for line in res.stdout.strip().splitlines())
    assert float(lines["launches_per_sample"]) <= 1e4 and int(lines["bytes_per_chunk"]) <= 16 * 2**30
