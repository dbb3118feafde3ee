"""The ``grace`` command line (study runner / practitioner entry points).

    grace demo     score a small synthetic example end to end (no training; seconds)
    grace features per-sample gradient features of a student on one generations file   (paper §2.1)
    grace score    every score for one or more saved feature directories               (eqs. 1–6, App. C.1)
    grace rank     features + scores + a ranked table for several candidate teachers    (paper §3)
    grace study    the whole miniature (or GPU) teacher-selection study from a profile  (paper §3)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _add_feature_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=None, help="prompts in the scoring subset (paper: 512; default: all)")
    p.add_argument("--m", type=int, default=None, help="generations per prompt in the subset (paper: 4; default: all)")
    p.add_argument("--d", type=int, default=512, help="projection dimension (paper: 512)")
    p.add_argument("--projector", default="rademacher", choices=["rademacher", "sparse_jl", "identity"],
                   help="Π: the paper's dense ±1/√D (default), a sparse JL transform, or none")
    p.add_argument("--length-scale", default="log", choices=["log", "log2", "none"], help="h = log|y|·Πg (paper)")
    p.add_argument("--template", default=None, help="prompt template with {prompt} (default: the release's)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0, help="seed for the subset and the projection")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grace", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("demo", help="score a small synthetic example end to end")
    p.add_argument("--out", default="artifacts/demo")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("features", help="per-sample gradient features for one generations file")
    p.add_argument("--model", required=True, help="student: local directory or Hub id")
    p.add_argument("--generations", required=True, help="jsonl with prompt_id, prompt, response[, correct]")
    p.add_argument("--out", required=True, help="output directory (features.npz + features.json)")
    _add_feature_args(p)

    p = sub.add_parser("score", help="print every score for saved feature directories")
    p.add_argument("dirs", nargs="+", help="directories written by `grace features` (or .npz files)")
    p.add_argument("--n-folds", type=int, default=10, help="C (paper: 10)")
    p.add_argument("--nu", type=float, default=1e-3, help="smoothing ν (paper: unspecified)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", default=None, help="also write the table here")

    p = sub.add_parser("rank", help="rank candidate teachers for a student")
    p.add_argument("--student", required=True, help="student: local directory or Hub id")
    p.add_argument("--teacher", action="append", required=True, metavar="NAME=FILE.jsonl",
                   help="a candidate teacher's generations (repeat)")
    p.add_argument("--out", default="artifacts/rank")
    p.add_argument("--n-folds", type=int, default=10)
    p.add_argument("--nu", type=float, default=1e-3)
    p.add_argument("--plot", action="store_true", help="write a bar chart of GRACE per teacher")
    _add_feature_args(p)

    p = sub.add_parser("study", help="run the whole teacher-selection study from a profile")
    p.add_argument("--profile", default="quick", help="smoke | quick | full | gpu, or a path to a YAML profile")
    p.add_argument("--out", default=None, help="artifact directory (default artifacts/<profile>)")
    p.add_argument("--seed", type=int, default=None, help="override the profile's seed")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"grace {args.cmd}: error: {e}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.cmd == "demo":
        from grace.rank import run_demo

        run_demo(Path(args.out), seed=args.seed)
        return 0
    if args.cmd == "features":
        from grace.rank import features_for_file

        features_for_file(args.model, args.generations, Path(args.out), **_feature_kwargs(args))
        return 0
    if args.cmd == "score":
        from grace.rank import score_dirs

        table = score_dirs(args.dirs, n_folds=args.n_folds, nu=args.nu, seed=args.seed)
        print(table.to_string(float_format=lambda x: f"{x:.4g}"))
        if args.csv:
            from grace.io import atomic_write_text

            atomic_write_text(args.csv, table.to_csv())
        return 0
    if args.cmd == "rank":
        from grace.rank import rank_teachers

        teachers = {}
        for spec in args.teacher:
            if "=" not in spec:
                raise ValueError(f"--teacher {spec!r}: expected NAME=FILE.jsonl")
            name, path = spec.split("=", 1)
            teachers[name] = path
        table = rank_teachers(args.student, teachers, Path(args.out), n_folds=args.n_folds, nu=args.nu,
                              plot=args.plot, **_feature_kwargs(args))
        print(table.to_string(float_format=lambda x: f"{x:.4g}"))
        return 0
    if args.cmd == "study":
        from grace.study import load_profile, run_study

        profile = load_profile(args.profile)
        if args.seed is not None:
            profile["seed"] = args.seed
        out = Path(args.out) if args.out else Path("artifacts") / profile["name"]
        run_study(profile, out, progress=not args.quiet)
        return 0
    raise AssertionError(args.cmd)


def _feature_kwargs(args: argparse.Namespace) -> dict:
    return dict(n=args.n, m=args.m, d=args.d, projector=args.projector, length_scale=args.length_scale,
                template=args.template, batch_size=args.batch_size, device=args.device, seed=args.seed)


if __name__ == "__main__":
    sys.exit(main())
