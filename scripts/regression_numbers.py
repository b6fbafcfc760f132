"""Record the final metrics of a fixed set of seeded runs, and compare two such records.

A refactor of the core must not change a number: run this before and after it with the same
code paths and compare. Each case is one ``vaelab-train`` subprocess (one thread, fixed seed);
a case that fails records its last error line instead of metrics.

    python scripts/regression_numbers.py record before.json [--cases quick|all]
    python scripts/regression_numbers.py compare before.json after.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vaelab.paths import CONFIG_DIR

QUIET = [
    "print_config=false",
    "callbacks.progress_bar=null",
    "logger=csv",
    "threads=1",
]
DIGITS_SHORT = ["seed=0", "data=digits", "trainer.max_steps=30", "trainer.max_epochs=3"]
#: every option of the objective group but the VQ-VAE's own (it trains only model=vqvae)
OBJECTIVES = sorted(
    path.stem for path in (CONFIG_DIR / "objective").glob("*.yaml") if path.stem != "vq"
)
MODELS = ["mlp", "hierarchical_mlp", "cvae_mlp"]
POSTERIORS = ["diagonal", "iaf"]


def cases(which: str) -> dict[str, list[str]]:
    """Name → overrides of every recorded run."""
    recorded: dict[str, list[str]] = {
        # the default seed (42): the val −ELBO 167.356 / test 166.064
        "default_1_epoch_seed42": ["trainer.max_epochs=1"],
        "default_1_epoch": ["seed=0", "trainer.max_epochs=1"],
        "frey_face_3_epochs": ["seed=0", "experiment=frey_face", "trainer.max_epochs=3"],
        "kw_likelihoods_1_epoch": [
            "seed=0",
            "experiment=kw_likelihoods",
            "trainer.max_epochs=1",
        ],
    }
    for model in ("pca", "ppca", "autoencoder", "denoising_autoencoder", "vqvae"):
        recorded[f"digits_{model}"] = [
            "seed=0",
            "data=digits",
            f"model={model}",
            "trainer.max_epochs=2",
        ]
    for option in ("planar", "affine_coupling", "full_covariance"):
        recorded[f"digits_posterior_{option}"] = [*DIGITS_SHORT, f"posterior={option}"]
    for option in ("mixture", "vamp", "flow"):
        recorded[f"digits_prior_{option}"] = [*DIGITS_SHORT, f"prior={option}"]
    for schedule in ("free_bits", "capacity", "cyclical", "linear_warmup"):
        recorded[f"digits_beta_{schedule}"] = [*DIGITS_SHORT, f"beta={schedule}"]
    recorded["digits_ladder"] = [*DIGITS_SHORT, "model=ladder_mlp"]
    recorded["digits_elbo_stl"] = [*DIGITS_SHORT, "objective.gradient=stl"]
    recorded["digits_iwae_dreg"] = [*DIGITS_SHORT, "objective=iwae", "objective.gradient=dreg"]
    recorded["digits_elbo_mc"] = [*DIGITS_SHORT, "objective.kl=monte_carlo"]
    if which == "all":
        for objective in OBJECTIVES:
            for model in MODELS:
                for posterior in POSTERIORS:
                    if model == "hierarchical_mlp" and posterior != "diagonal":
                        continue  # a hierarchy takes no posterior= group
                    # the hierarchy's layers are diagonal Gaussians of its own
                    chosen = [] if model == "hierarchical_mlp" else [f"posterior={posterior}"]
                    recorded[f"matrix_{objective}_{model}_{posterior}"] = [
                        *DIGITS_SHORT,
                        f"objective={objective}",
                        f"model={model}",
                        *chosen,
                    ]
    return recorded


def run_case(name: str, overrides: list[str], root: Path) -> dict:
    run_dir = root / name
    command = [
        sys.executable,
        "-m",
        "vaelab.train",
        *QUIET,
        *overrides,
        f"paths.output_dir={run_dir}",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    metrics_file = run_dir / "metrics.json"
    if done.returncode == 0 and metrics_file.is_file():
        return {"metrics": json.loads(metrics_file.read_text())}
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return {"error": (errors or lines or [f"exit {done.returncode}"])[-1]}


def record(path: Path, which: str, jobs: int, only: str | None) -> None:
    """Run the cases (those whose name matches ``only``, merged into an existing record)."""
    with tempfile.TemporaryDirectory() as tmp:
        todo = {n: o for n, o in cases(which).items() if only is None or re.search(only, n)}
        with ThreadPoolExecutor(jobs) as pool:
            results = dict(
                zip(
                    todo,
                    pool.map(lambda item: run_case(*item, Path(tmp)), todo.items()),
                    strict=True,
                )
            )
    if only is not None and path.is_file():
        results = {**json.loads(path.read_text()), **results}
    path.write_text(json.dumps(results, indent=1, sort_keys=True))
    failed = sum("error" in r for r in results.values())
    print(f"{len(results)} cases, {failed} refused or failed → {path}")


def compare(before_path: Path, after_path: Path) -> int:
    before, after = (json.loads(p.read_text()) for p in (before_path, after_path))
    differing = 0
    print("| case | metric | before | after |\n|---|---|---|---|")
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, {}), after.get(name, {})
        if "metrics" not in old or "metrics" not in new:
            if old != new:
                status = (run.get("error", "ran") if run else "not recorded" for run in (old, new))
                print(f"| {name} | status | {' | '.join(status)} |")
                differing += "metrics" in old  # a case that ran must still run
            continue
        for key in sorted(set(old["metrics"]) | set(new["metrics"])):
            a, b = old["metrics"].get(key), new["metrics"].get(key)
            if a != b and not (isinstance(a, float) and isinstance(b, float) and abs(a - b) < 1e-4):
                print(f"| {name} | {key} | {a} | {b} |")
                differing += 1
    print(f"{differing} differences")
    return int(differing > 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("output", type=Path)
    rec.add_argument("--cases", choices=("quick", "all"), default="all")
    rec.add_argument("--jobs", type=int, default=2)
    rec.add_argument("--only", help="a regular expression: run only the cases it matches")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        record(args.output, args.cases, args.jobs, args.only)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
