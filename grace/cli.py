"""The ``grace`` command line (study runner / practitioner entry points).

    grace demo     score a small synthetic example end to end (no training; seconds)
    grace features per-sample gradient features of a student on one generations file   (paper §2.1)
    grace score    every score for one or more saved feature directories               (eqs. 1–6, App. C.1)
    grace rank     features + scores + a ranked table for several candidate teachers    (paper §3)
    grace study    the whole miniature (or GPU) teacher-selection study from a profile  (paper §3)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grace.config import LORA_TARGETS, NORMS, PROJECTORS
from grace.validate import check_device, cli_float, cli_int, output_dir, output_file, safe_name

COUNT, NONNEG, POSITIVE = cli_int(1), cli_int(0), cli_float(0.0)


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as the one ``grace <cmd>: error: ...`` line every other error uses."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_feature_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=COUNT, default=None, help="prompts in the scoring subset (paper: 512; default: all)")
    p.add_argument("--m", type=COUNT, default=None, help="generations per prompt in the subset (paper: 4; default: all)")
    p.add_argument("--d", type=COUNT, default=512, help="projection dimension (paper: 512)")
    p.add_argument("--projector", default="auto", choices=("auto", *PROJECTORS),
                   help="Π: auto (default: the paper's dense ±1/√D on CUDA and for small students, factored for "
                        "large ones on a CPU; printed), the dense Π, a sparse JL transform, factored (LoGra-style: "
                        "no per-sample gradient; grace.factored), or none")
    p.add_argument("--norms", default=None, choices=NORMS,
                   help="factored only: grad_norm as ‖z‖, unbiased for ‖g‖² and free (its default), or the exact ‖g‖ "
                        "(~1.1× the time; for BADGE and norm-vs-length plots). GRACE never reads it")
    p.add_argument("--lora-rank", type=NONNEG, default=0,
                   help="take the gradients with respect to LoRA adapters of this rank (peft; 0: all weights, the "
                        "paper's setting; grace.lora)")
    p.add_argument("--lora-alpha", type=POSITIVE, default=None, help="LoRA scale α (default: 2·rank)")
    p.add_argument("--lora-targets", default=",".join(LORA_TARGETS),
                   help="comma-separated module names that get adapters")
    p.add_argument("--length-scale", default="log", choices=["log", "log2", "none"], help="h = log|y|·Πg (paper)")
    p.add_argument("--template", default=None, help="prompt template with {prompt} (default: the release's)")
    p.add_argument("--batch-size", type=COUNT, default=8, help="examples per block, at most (cut to fit the budget)")
    p.add_argument("--memory-budget-mb", type=POSITIVE, default=None,
                   help="memory the per-sample gradients may take beyond the model (default 4·D·4 bytes, >= 64 MiB)")
    p.add_argument("--max-length", type=COUNT, default=None,
                   help="cut each prompt + response to this many tokens (recorded in features.json); default: "
                        "refuse a record longer than the student's context")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--seed", type=NONNEG, default=0, help="seed for the subset and the projection")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grace", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("demo", help="score a small synthetic example end to end")
    p.add_argument("--out", default="artifacts/demo")
    p.add_argument("--seed", type=NONNEG, default=0)

    p = sub.add_parser("features", help="per-sample gradient features for one generations file")
    p.add_argument("--model", required=True, help="student: local directory, Hub id or a grace.sources name "
                                                  "(smollm2-135m-instruct)")
    p.add_argument("--generations", required=True, help="jsonl with prompt_id, prompt, response[, correct]")
    p.add_argument("--out", required=True, help="output directory (features.npz + features.json)")
    _add_feature_args(p)

    p = sub.add_parser("generate", help="sample a teacher's responses to prompts (resumable)")
    p.add_argument("--model", required=True, help="teacher: local directory or Hub id")
    p.add_argument("--prompts", required=True, help="a jsonl of {prompt_id, prompt[, answer]}, or gsm8k, or math")
    p.add_argument("--out", required=True, help="output jsonl (records for grace features / grace rank)")
    p.add_argument("--n-samples", type=COUNT, default=4, help="responses per prompt (paper: M = 16 for D_distill)")
    p.add_argument("--temperature", type=POSITIVE, default=0.7, help="sampling temperature (paper: 0.3-1.0)")
    p.add_argument("--max-new-tokens", type=COUNT, default=512)
    p.add_argument("--n-prompts", type=COUNT, default=None, help="use this many prompts (seeded subset; default all)")
    p.add_argument("--split", default="train", help="with gsm8k/math: the split (math: MATH500 is test only)")
    p.add_argument("--chat", action=argparse.BooleanOptionalAction, default=None,
                   help="wrap prompts in the tokenizer's chat template (default: if it has one)")
    p.add_argument("--instruction", default=None, help="chat instruction before the problem ('' for none)")
    p.add_argument("--template", default=None, help="plain prompt template with {prompt} (base models)")
    p.add_argument("--backend", default="transformers", choices=["transformers", "vllm"])
    p.add_argument("--tensor-parallel-size", type=COUNT, default=1, help="vLLM only")
    p.add_argument("--dtype", default="auto", help="auto | bfloat16 | float16 | float32")
    p.add_argument("--batch-size", type=COUNT, default=64, help="sequences per generate call")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--seed", type=NONNEG, default=0)

    p = sub.add_parser("score", help="print every score for saved feature directories")
    p.add_argument("dirs", nargs="+", help="directories written by `grace features` (or .npz files)")
    p.add_argument("--n-folds", type=cli_int(2), default=10, help="C (paper: 10)")
    p.add_argument("--nu", type=POSITIVE, default=1e-3, help="smoothing ν (paper: unspecified)")
    p.add_argument("--seed", type=NONNEG, default=0)
    p.add_argument("--csv", default=None, help="also write the table here")
    p.add_argument("--allow-mixed", action="store_true",
                   help="rank features of different (n, m, d, projector) together (refused by default: not comparable)")

    p = sub.add_parser("rank", help="rank candidate teachers for a student")
    p.add_argument("--student", required=True, help="student: local directory, Hub id or a grace.sources name (smollm2-135m-instruct)")
    p.add_argument("--teacher", action="append", required=True, metavar="NAME=FILE.jsonl",
                   help="a candidate teacher's generations (repeat)")
    p.add_argument("--out", default="artifacts/rank")
    p.add_argument("--n-folds", type=cli_int(2), default=10)
    p.add_argument("--nu", type=POSITIVE, default=1e-3)
    p.add_argument("--plot", action="store_true", help="write a bar chart of GRACE per teacher")
    _add_feature_args(p)

    p = sub.add_parser("study", help="run the whole teacher-selection study from a profile")
    p.add_argument("--profile", default="quick", help="smoke | quick | full | gpu, or a path to a YAML profile")
    p.add_argument("--out", default=None, help="artifact directory (default artifacts/<profile>)")
    p.add_argument("--seed", type=NONNEG, default=None, help="override the profile's seed")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--checks-only", action="store_true",
                   help="run the stages and write only analysis/world_checks.json, computing no score: judge a new "
                        "world by its GRACE-free acceptance checks first; a later full run reuses the cache")

    p = sub.add_parser("world-check", help="GRACE-free acceptance checks of a finished study's world")
    p.add_argument("--study", required=True, help="a study directory written by `grace study`")
    p.add_argument("--n-pairs", type=COUNT, default=200, help="problems for the correct/corrupted loss separation")

    p = sub.add_parser("regime-map", help="studies over regimes x world seeds: checks and every score's rho")
    p.add_argument("--regime", action="append", required=True, metavar="NAME=PROFILE",
                   help="a regime and its profile (repeat), e.g. mixed-accuracy=mixed-quick strong-teacher=strong-quick")
    p.add_argument("--seeds", type=NONNEG, nargs="+", default=[0, 1, 2], help="world seeds (default 0 1 2)")
    p.add_argument("--extra", action="append", default=[], metavar="NAME=STUDY_DIR",
                   help="add a finished study to the map (e.g. strong-teacher-full=artifacts/full/study)")
    p.add_argument("--out", default="artifacts/regime-map")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (ValueError, OSError) as e:  # OSError: a file or permission problem the user can fix
        print(f"grace {args.cmd}: error: {e}", file=sys.stderr)
        return 2


def _check_door(args: argparse.Namespace) -> None:
    """Output paths, names and devices, checked before any work starts (grace.validate)."""
    if getattr(args, "device", None) is not None:
        check_device(args.device, "--device")
    if args.cmd == "rank":
        _name_values(args.teacher, "--teacher", "NAME=FILE.jsonl")  # names first: nothing is created for a bad one
    if args.cmd == "regime-map":
        _name_values(args.regime, "--regime", "NAME=PROFILE")
        _name_values(args.extra, "--extra", "NAME=STUDY_DIR")
    if args.cmd in ("demo", "features", "rank", "regime-map"):  # study: after its profile is checked
        output_dir(args.out, "--out")
    if args.cmd == "generate":
        output_file(args.out, "--out")
    if args.cmd == "score" and args.csv:
        output_file(args.csv, "--csv")


def _dispatch(args: argparse.Namespace) -> int:
    _check_door(args)
    if args.cmd == "demo":
        from grace.rank import run_demo

        run_demo(Path(args.out), seed=args.seed)
        return 0
    if args.cmd == "features":
        from grace.rank import features_for_file

        features_for_file(args.model, args.generations, Path(args.out), **_feature_kwargs(args))
        return 0
    if args.cmd == "generate":
        from grace.rank import generate_cli

        recs = generate_cli(args)
        n_ok = sum(r.get("correct", False) for r in recs)
        acc = f", accuracy {n_ok / len(recs):.3f}" if recs and "correct" in recs[0] else ""
        print(f"wrote {len(recs)} records to {args.out}{acc}")
        return 0
    if args.cmd == "score":
        from grace.rank import score_dirs

        table = score_dirs(args.dirs, n_folds=args.n_folds, nu=args.nu, seed=args.seed, allow_mixed=args.allow_mixed)
        print(table.to_string(float_format=lambda x: f"{x:.4g}"))
        if args.csv:
            from grace.io import atomic_write_text

            atomic_write_text(args.csv, table.to_csv())
        return 0
    if args.cmd == "rank":
        from grace.rank import rank_teachers

        teachers = _name_values(args.teacher, "--teacher", "NAME=FILE.jsonl")
        table = rank_teachers(args.student, teachers, Path(args.out), n_folds=args.n_folds, nu=args.nu,
                              plot=args.plot, **_feature_kwargs(args))
        print(table.to_string(float_format=lambda x: f"{x:.4g}"))
        return 0
    if args.cmd == "study":
        from grace.study import env_threads, load_profile, run_study

        env_threads()  # a bad GRACE_THREADS is refused before anything is written
        profile = load_profile(args.profile)
        if args.seed is not None:
            profile["seed"] = args.seed
        check_device(profile.get("device", "cpu"), f"profile {profile['name']!r}: device")
        out = output_dir(Path(args.out) if args.out else Path("artifacts") / safe_name(profile["name"], "profile name"))
        run_study(profile, out, progress=not args.quiet, checks_only=args.checks_only)
        if args.checks_only:
            from grace.world_checks import summary_lines

            print("\n".join(summary_lines(json.loads((out / "analysis" / "world_checks.json").read_text()))))
        return 0
    if args.cmd == "world-check":
        from grace.world_checks import compute_world_checks, summary_lines

        print("\n".join(summary_lines(compute_world_checks(args.study, n_pairs=args.n_pairs))))
        return 0
    if args.cmd == "regime-map":
        from grace.regimes import run_regime_map

        table = run_regime_map(_name_values(args.regime, "--regime", "NAME=PROFILE"), args.seeds, Path(args.out),
                               extra=_name_values(args.extra, "--extra", "NAME=STUDY_DIR"),
                               progress=not args.quiet)
        print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        return 0
    raise AssertionError(args.cmd)


def _name_values(specs: list[str], flag: str, form: str) -> dict[str, str]:
    """``["a=x", "b=y"]`` -> ``{"a": "x", "b": "y"}``; a missing ``=`` or a repeated name is an error."""
    out: dict[str, str] = {}
    for spec in specs:
        if "=" not in spec:
            raise ValueError(f"{flag} {spec!r}: expected {form}")
        name, value = spec.split("=", 1)
        safe_name(name, f"{flag} {spec}")
        if not value:
            raise ValueError(f"{flag} {spec!r}: the value after '=' is empty; expected {form}")
        if name in out:
            raise ValueError(f"{flag} {name!r} is given twice ({out[name]!r} and {value!r}); use distinct names")
        out[name] = value
    return out


def _feature_kwargs(args: argparse.Namespace) -> dict:
    budget = None if args.memory_budget_mb is None else int(args.memory_budget_mb * 2**20)
    return dict(n=args.n, m=args.m, d=args.d, projector=args.projector, length_scale=args.length_scale,
                template=args.template, batch_size=args.batch_size, device=args.device, seed=args.seed,
                memory_budget=budget, norms=args.norms, max_length=args.max_length, lora=_lora_kwargs(args))


def _lora_kwargs(args: argparse.Namespace) -> dict | None:
    if args.lora_rank == 0:
        return None
    alpha = 2.0 * args.lora_rank if args.lora_alpha is None else args.lora_alpha
    return dict(rank=args.lora_rank, alpha=alpha, target_modules=[t for t in args.lora_targets.split(",") if t])


if __name__ == "__main__":
    sys.exit(main())
