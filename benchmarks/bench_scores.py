"""Benchmark grace.scores against a naive per-fold ``np.linalg.inv`` reference.

    python benchmarks/bench_scores.py [--out artifacts/bench/scores.json] [--blas-threads 1]

Times GRACE (eq. 4), the release variant, G-Vendi, G-Var and the appendix C.1 baselines on one
seeded, structured gaussian feature matrix (default N = 512 prompts × 4 generations = 2048 rows,
d = 512, C = 10 folds), next to naive references measured in the same run, then times ``all_scores``
for 100 teachers. Prints a table of medians and ratios and writes everything as JSON.

Targets (from the brief): GRACE >= 4x faster than the naive reference; all scores for one teacher
<= 0.3 s; 100 teachers <= 30 s.

``--blas-threads`` (default 1; 0 = leave the environment alone) sets OPENBLAS/OMP/MKL_NUM_THREADS
before numpy is imported (the only way to limit BLAS threads without threadpoolctl). At d = 512 the
work is a series of small LAPACK calls; one thread is close to optimal, and on a shared 2-core machine
two OpenBLAS threads were ~5x *slower* (busy-waiting threads fighting other processes).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="artifacts/bench/scores.json", help="JSON results path")
    p.add_argument("--n-prompts", type=int, default=512)
    p.add_argument("--m", type=int, default=4, help="generations per prompt")
    p.add_argument("--d", type=int, default=512, help="feature dimension")
    p.add_argument("--folds", type=int, default=10, help="GRACE folds C")
    p.add_argument("--repeats", type=int, default=7, help="timing repeats per function (>= 5)")
    p.add_argument("--teachers", type=int, default=100, help="teachers for the all_scores run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--blas-threads", type=int, default=1, help="BLAS threads; 0 leaves the environment as is"
    )
    p.add_argument("--profile", action="store_true", help="always print a profile of all_scores")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------
# data and naive references
# ---------------------------------------------------------------------------------------------


def make_teacher(np, n_prompts: int, m: int, d: int, seed: int):
    """Structured gaussian features for one teacher: (H (N, d), prompt_ids, loss, mean_prob, correct).

    h = log|y| · (prompt effect in a 32-dim subspace + generation noise with a decaying spectrum).
    """
    rng = np.random.default_rng(seed)
    k = min(32, d)
    basis = rng.standard_normal((k, d)) / np.sqrt(d)  # (k, d)
    prompt = (rng.standard_normal((n_prompts, k)) * np.linspace(3.0, 0.3, k)) @ basis  # (n, d)
    decay = 1.0 / np.sqrt(1.0 + np.arange(d))  # (d,) noise spectrum
    noise = rng.standard_normal((n_prompts * m, d)) * decay * rng.uniform(0.5, 1.5)
    log_len = np.log(rng.integers(20, 400, size=(n_prompts * m, 1)))
    H = (np.repeat(prompt, m, axis=0) + noise) * log_len / np.sqrt(log_len.mean())
    ids = np.repeat(np.arange(n_prompts), m)
    loss = rng.gamma(2.0, 0.5, size=len(H))
    mean_prob = np.exp(-loss / 3)
    correct = rng.uniform(size=len(H)) < mean_prob
    return H, ids, loss, mean_prob, correct


def naive_grace(np, H, folds, nu: float) -> float:
    """Eq. 4 the obvious way: per fold rebuild Σ̃(D₋ᵢ) and take an explicit inverse."""
    N, d = H.shape
    Hn = H / np.linalg.norm(H, axis=1, keepdims=True)
    total = 0.0
    for f in range(folds.max() + 1):
        train, test = Hn[folds != f], H[folds == f]
        M = train.T @ train / len(train) + (nu / d) * np.eye(d)
        A = test - test.mean(axis=0)
        total += np.trace(A @ np.linalg.inv(M) @ A.T)
    return total / N


def naive_release(np, H, m: int, n_splits=10, test_fraction=0.1, smooth=1e-3) -> float:
    """The release recipe with one eigendecomposition per split (how the released code does it)."""
    n = len(H) // m
    groups = H.reshape(n, m, -1)
    n_test = max(1, int(n * test_fraction))
    out = []
    for s in range(n_splits):
        g = groups[np.random.default_rng(s).permutation(n)]
        train = g[: n - n_test].reshape(-1, H.shape[1])
        test = g[n - n_test :].reshape(-1, H.shape[1])
        train = train / np.linalg.norm(train, axis=1, keepdims=True)
        w, V = np.linalg.eigh(train.T @ train / len(train))
        w = np.clip(w, 1e-12, None)
        w = (1 - smooth) * w + smooth * w.mean()
        out.append(np.trace((V / w) @ V.T @ (test.T @ test / len(test))))
    return float(np.mean(out))


def naive_g_vendi(np, H) -> float:
    Hn = H / np.linalg.norm(H, axis=1, keepdims=True)
    lam = np.linalg.eigvalsh(Hn.T @ Hn / len(H))
    lam = lam[lam > 0]
    return float(-(lam * np.log(lam)).sum())


def grace_batched_numpy(np, scipy, H, folds, nu: float) -> float:
    """Eq. 4 with one batched np.linalg.cholesky over all folds (the alternative we did not pick)."""
    N, d = H.shape
    Hn = H / np.linalg.norm(H, axis=1, keepdims=True)
    C = folds.max() + 1
    T = Hn.T @ Hn
    idx = [np.flatnonzero(folds == f) for f in range(C)]
    M = np.stack([(T - Hn[I].T @ Hn[I]) / (N - len(I)) for I in idx])  # (C, d, d)
    M += (nu / d) * np.eye(d)
    L = np.linalg.cholesky(M)  # (C, d, d)
    r = max(len(I) for I in idx)
    A = np.zeros((C, d, r))  # zero-padded centred folds; padding adds nothing to the norm
    for f, I in enumerate(idx):
        A[f, :, : len(I)] = (H[I] - H[I].mean(axis=0)).T
    Y = scipy.linalg.solve_triangular(
        L, A, lower=True, check_finite=False
    )  # batched in scipy >= 1.15
    return float((Y**2).sum() / N)


# ---------------------------------------------------------------------------------------------
# timing helpers
# ---------------------------------------------------------------------------------------------


def _stats(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {"median_s": xs[len(xs) // 2], "min_s": xs[0], "max_s": xs[-1]}


def time_round_robin(fns: dict, repeats: int) -> dict:
    """Median wall and CPU (process) time per function, calling the functions in turn each round.

    Interleaving spreads load spikes from other processes over all functions alike, so the ratios
    stay meaningful on a shared machine; CPU time is what this process itself spent computing.
    """
    for fn in fns.values():
        fn()  # warm-up (imports, allocations)
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[k].append(time.perf_counter() - w0)
            cpu[k].append(time.process_time() - c0)
    return {k: {"wall": _stats(wall[k]), "cpu": _stats(cpu[k]), "repeats": repeats} for k in fns}


def machine_info(np, scipy) -> dict:
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "thread_env": {
            k: os.environ.get(k)
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        },
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
    except Exception as e:  # older numpy without mode="dicts"
        info["blas"] = f"unavailable ({e})"
    try:
        import threadpoolctl

        info["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version")}
            for p in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    return info


def profile_all_scores(S, args_tuple, kwargs, top: int = 12) -> str:
    import cProfile
    import io
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    for _ in range(3):
        S.all_scores(*args_tuple, **kwargs)
    pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.blas_threads:  # must happen before numpy is imported
        if "numpy" in sys.modules:
            print("warning: numpy already imported; --blas-threads may have no effect")
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[k] = str(args.blas_threads)
    import numpy as np
    import scipy
    import scipy.linalg

    from grace import scores as S
    from grace.io import write_json

    R = max(5, args.repeats)
    H, ids, loss, prob, ok = make_teacher(np, args.n_prompts, args.m, args.d, args.seed)
    N, d = H.shape
    folds = S.prompt_folds(ids, args.folds, seed=0)
    info = machine_info(np, scipy)
    print(f"N={N} (n={args.n_prompts} x m={args.m}), d={d}, C={args.folds}, repeats={R}")
    print(f"cpus={info['cpu_count']} threads={info['thread_env']} load={info['loadavg']}")

    # correctness of what we time
    check = {
        "grace_vs_naive_rel": abs(
            S.grace(H, ids, args.folds) / naive_grace(np, H, folds, 1e-3) - 1
        ),
        "grace_batched_vs_naive_rel": abs(
            grace_batched_numpy(np, scipy, H, folds, 1e-3) / naive_grace(np, H, folds, 1e-3) - 1
        ),
        "release_vs_naive_rel": abs(S.grace_release(H, args.m) / naive_release(np, H, args.m) - 1),
        "g_vendi_vs_naive_abs": abs(S.g_vendi(H) - naive_g_vendi(np, H)),
    }

    kw = {"loss": loss, "mean_prob": prob, "correct": ok, "n_folds": args.folds}
    rows = [  # (name, function, naive counterpart or None)
        ("grace (eq. 4)", lambda: S.grace(H, ids, args.folds), "naive grace (inv per fold)"),
        ("naive grace (inv per fold)", lambda: naive_grace(np, H, folds, 1e-3), None),
        (
            "grace, batched np.cholesky",
            lambda: grace_batched_numpy(np, scipy, H, folds, 1e-3),
            "naive grace (inv per fold)",
        ),
        (
            "grace_global (eq. 5)",
            lambda: S.grace(H, ids, args.folds, center="global"),
            "naive grace (inv per fold)",
        ),
        (
            "grace_spectral (eq. 6)",
            lambda: S.grace_spectral(H, ids, args.folds),
            "naive grace (inv per fold)",
        ),
        ("grace_release", lambda: S.grace_release(H, args.m), "naive release (eigh per split)"),
        ("naive release (eigh per split)", lambda: naive_release(np, H, args.m), None),
        ("g_vendi", lambda: S.g_vendi(H), "naive g_vendi (eigvalsh)"),
        ("naive g_vendi (eigvalsh)", lambda: naive_g_vendi(np, H), None),
        ("g_var", lambda: S.g_var(H), None),
        ("log_determinant", lambda: S.log_determinant(H), None),
        ("badge", lambda: S.badge(H), None),
        ("inner_product", lambda: S.same_prompt_inner_product(H, ids), None),
        ("inner_product_norm", lambda: S.same_prompt_inner_product(H, ids, normalized=False), None),
        (
            "prob baselines (6)",
            lambda: [
                S.student_loss(loss),
                S.avg_prob(prob),
                S.best_avg_prob(prob, ids),
                S.correct_avg_prob(prob, ids, ok),
                S.incorrect_avg_prob(prob, ids, ok),
                S.diff_avg_prob(prob, ids, ok),
            ],
            None,
        ),  # fmt: skip
        ("all_scores (one teacher)", lambda: S.all_scores(H, ids, **kw), None),
    ]
    timings = time_round_robin({name: fn for name, fn, _ in rows}, R)
    print(
        f"\n{'function':31s} {'wall ms':>8s} {'cpu ms':>8s} {'x naive wall':>13s} {'x naive cpu':>12s}"
    )
    for name, _, ref in rows:
        t = timings[name]
        t["naive"] = ref
        for kind in ("wall", "cpu"):
            base = timings[ref][kind]["median_s"] if ref else None
            t[kind]["speedup_vs_naive"] = base / t[kind]["median_s"] if ref else None
        ratios = (
            f"{t['wall']['speedup_vs_naive']:12.2f}x {t['cpu']['speedup_vs_naive']:11.2f}x"
            if ref
            else ""
        )
        w, c = 1e3 * t["wall"]["median_s"], 1e3 * t["cpu"]["median_s"]
        print(f"{name:31s} {w:8.1f} {c:8.1f} {ratios}")

    # 100 teachers' worth of all_scores (data generation excluded from the timed sums)
    wall, cpu = [], []
    for t_id in range(args.teachers):
        Ht, it, lt, pt, ct = make_teacher(np, args.n_prompts, args.m, args.d, 1000 + t_id)
        w0, c0 = time.perf_counter(), time.process_time()
        S.all_scores(Ht, it, loss=lt, mean_prob=pt, correct=ct, n_folds=args.folds)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    many = {
        "teachers": args.teachers,
        "wall_total_s": float(sum(wall)),
        "cpu_total_s": float(sum(cpu)),
        "wall": _stats(wall),
        "cpu": _stats(cpu),
    }
    print(
        f"\nall_scores x {args.teachers} teachers: wall {many['wall_total_s']:.2f} s, "
        f"cpu {many['cpu_total_s']:.2f} s (median wall {1e3 * many['wall']['median_s']:.0f} ms, "
        f"max {1e3 * many['wall']['max_s']:.0f} ms)"
    )

    budget = 30.0 * args.teachers / 100
    targets = {}
    for kind in ("wall", "cpu"):
        speedup = timings["grace (eq. 4)"][kind]["speedup_vs_naive"]
        one = timings["all_scores (one teacher)"][kind]["median_s"]
        total = many[f"{kind}_total_s"]
        targets[kind] = {
            "grace_speedup_ge_4x": {"value": speedup, "target": 4.0, "met": speedup >= 4.0},
            "all_scores_one_teacher_le_0.3s": {"value": one, "target": 0.3, "met": one <= 0.3},
            f"all_scores_{args.teachers}_teachers_le_{budget:g}s": {
                "value": total,
                "target": budget,
                "met": total <= budget,
            },
        }
    print("\ntargets:")
    for kind, ts in targets.items():
        for k, v in ts.items():
            ok = "MET" if v["met"] else "MISSED"
            print(f"  [{kind:4s}] {k:34s} {v['value']:8.3f} (target {v['target']:g}) {ok}")
    print("checks (relative / absolute differences):", {k: f"{v:.1e}" for k, v in check.items()})

    prof = None
    if args.profile or not all(v["met"] for ts in targets.values() for v in ts.values()):
        prof = profile_all_scores(S, (H, ids), kw)
        print("\nprofile of 3 x all_scores (tottime):\n" + prof)

    info["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result = {
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "machine": info,
        "checks": check,
        "timings": timings,
        "all_scores_many": many,
        "targets": targets,
        "profile": prof,
    }
    write_json(args.out, result)
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
