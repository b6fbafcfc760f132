"""FID and precision/recall of trained runs × ex-post samplers (issue 24, docs/experiments.md
"Zoo II (b): ex-post samplers — MNIST"): evaluates each run with each sampler that its
eval/metrics.json does not hold yet (``vaelab-eval ckpt_path=<run> sampler=<name>``), then prints
the Markdown table.

    python scripts/sampler_table.py --run VAE=logs/zoo/vae --run WAE=logs/zoo/wae \\
        --samplers prior gmm -- eval.num_samples=1 eval.elbo_samples=1

Arguments after ``--`` go to every vaelab-eval call. A run evaluated earlier (by this script or
by hand) keeps its rows: add a model's row after the fact by running the script again with it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

EVAL_METRICS = Path("eval") / "metrics.json"


def stored_scores(run: Path) -> dict[str, dict[str, float]]:
    """``{sampler: {fid, precision, recall}}`` that vaelab-eval stored for ``run``."""
    path = run / EVAL_METRICS
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text()).get("samplers") or {})


def markdown_table(scores: dict[str, dict[str, dict[str, float]]], samplers: list[str]) -> str:
    """One row per run and sampler, in the given orders; a missing score is "—"."""
    lines = ["| model | sampler | FID | precision | recall |", "|---|---|---|---|---|"]
    for label, by_sampler in scores.items():
        for sampler in samplers:
            values = by_sampler.get(sampler)
            if values is None:
                continue
            cells = [
                f"{values[key]:.{digits}f}" if key in values else "—"
                for key, digits in (("fid", 1), ("precision", 3), ("recall", 3))
            ]
            lines.append(f"| {label} | {sampler} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, help="LABEL=<run dir>")
    parser.add_argument("--samplers", nargs="+", default=["prior", "gmm"])
    parser.add_argument("--dry-run", action="store_true", help="print the table only")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    runs = dict(item.split("=", 1) for item in args.run)
    for run in runs.values():
        for sampler in args.samplers:
            if args.dry_run or sampler in stored_scores(Path(run)):
                continue
            command = [sys.executable, "-m", "vaelab.eval", f"ckpt_path={run}"]
            command += [f"sampler={sampler}", "eval.sample_quality.enabled=true", *extra]
            print("running:", " ".join(command), flush=True)
            subprocess.run(command, check=True)
    print(
        markdown_table(
            {label: stored_scores(Path(run)) for label, run in runs.items()}, args.samplers
        )
    )


if __name__ == "__main__":
    main()
