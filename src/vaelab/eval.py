"""``vaelab-eval``: test-set evaluation of a trained run (IW-NLL, bits/dim, active units) and
the seeds' pictures, written to ``<run>/eval/`` and the run's TensorBoard.

Usage: ``vaelab-eval ckpt_path=<run dir or .ckpt> [eval.num_samples=5000] [eval.limit_batches=N]``
(also ``python -m vaelab.eval``). See conf/eval.yaml for every option.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torchvision.utils import save_image

from vaelab.atomic_io import atomic_write_json
from vaelab.cli import hydra_entry_point, run_reporting_errors
from vaelab.config_checks import EvalSettings, validate_config
from vaelab.errors import VaelabError
from vaelab.evaluation.active_units import ACTIVITY_THRESHOLD
from vaelab.evaluation.checkpoint import LoadedRun, load_run, locate_checkpoint
from vaelab.evaluation.conditional import (
    CONDITIONAL_SCALARS,
    EvaluationContext,
    conditional_metrics,
)
from vaelab.evaluation.encodings import prepare_batch
from vaelab.evaluation.learning_curves import tensorboard_dir
from vaelab.evaluation.metrics import evaluate_test_set, summarize
from vaelab.evaluation.sampler_fit import fitted_sampler
from vaelab.interruption import enter_stage
from vaelab.models.interface import MissingCapability
from vaelab.paths import CONFIG_DIR, export_project_root
from vaelab.plots.figures import figure_to_array, save_figure
from vaelab.plots.pictures import Pictures, PictureSettings, make_pictures
from vaelab.run_files import EVAL_DIR, METRICS_FILE
from vaelab.stage_progress import stage

#: the scalars also written to TensorBoard as ``eval/<name>``
TENSORBOARD_SCALARS = (
    "elbo",
    "recon",
    "kl",
    "iw_nll",
    "bits_per_dim",
    "bits_per_dim_elbo",
    "active_units",
    "iw_gap",
    "exact_nll",
    *CONDITIONAL_SCALARS,
)


#: why a run whose p(x|z) is a reconstruction loss gets no IW-NLL, ELBO or bits/dim (one line)
LOSS_NOTE = (
    "the likelihood is a reconstruction loss (MS-SSIM, LogCosh, perceptual), not a normalised "
    "p(x|z): there is no log p(x), so no IW-NLL, ELBO or bits/dim; recon is the loss, kl the KL"
)

#: why a model without a prior p(z) (an autoencoder, an RAE) gets no IW-NLL, ELBO or KL
NO_PRIOR_NOTE = (
    "the model has no prior p(z) (an autoencoder): there is no log p(x), ELBO or KL; recon is "
    "−log p(x|z) at the encoder's code, and its samples come from sampler= (N(0, I) for prior)"
)


def choose_device(name: str) -> torch.device:
    """``auto`` (CUDA when there is one), ``cpu``, ``cuda``, ``cuda:1`` … as a device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VaelabError(
            f"eval.device={name} but no CUDA device is available; use eval.device=cpu (or auto)"
        )
    return device


def data_overrides(cfg: DictConfig) -> dict[str, Any]:
    """How an evaluated run's data are read (also by ``vaelab.load``): from ``data_dir`` if
    given (``$VAELAB_DATA_DIR``), else where training found them; never downloaded; in the
    main process, batches of ``eval.batch_size``."""
    return {
        "data_dir": cfg.get("data_dir"),
        "download": False,
        "eval_batch_size": OmegaConf.select(cfg, "eval.batch_size", default=None),
        "num_workers": 0,
        "on_device": False,
    }


def _test_batches(
    run: LoadedRun, device: torch.device, limit: int | None
) -> Iterator[tuple[Tensor, Tensor]]:
    for index, batch in enumerate(run.datamodule.test_dataloader()):
        if limit is not None and index >= limit:
            return
        yield prepare_batch(run.datamodule, batch, device)


def _iw_stage(run: LoadedRun, device: torch.device, limit: int | None, num_samples: int):
    """The IW-NLL and ELBO pass as a :mod:`vaelab.stage_progress` stage over test batches."""
    batches = len(run.datamodule.test_dataloader())
    batches = batches if limit is None else min(batches, int(limit))
    where = "this CPU" if device.type == "cpu" else str(device)
    if not run.module.model.has_prior:
        return stage("the reconstruction", batches, "test batches", where=where)
    if not run.module.model.likelihood_is_normalised:  # a reconstruction loss: no log p(x)
        return stage("the loss and KL", batches, "test batches", where=where)
    return stage(f"IW-NLL (k = {num_samples:,}) and ELBO", batches, "test batches", where=where)


def _dataset_name(config: DictConfig) -> str:
    """The data set as papers name it, from the datamodule class (FashionMNISTDataModule →
    Fashion-MNIST); "images" for one without binarized results in the literature."""
    target = str(OmegaConf.select(config, "data._target_", default="") or "")
    name = target.rsplit(".", 1)[-1].removesuffix("DataModule")
    return {"MNIST": "MNIST", "FashionMNIST": "Fashion-MNIST"}.get(name, "images")


def _notes(summary: dict, config: DictConfig) -> dict[str, str]:
    """Plain-language caveats stored next to the numbers."""
    notes = {}
    if summary["likelihood_is_continuous"]:
        notes["bits_per_dim"] = (
            "continuous likelihood: NLL and bits/dim are of a density over "
            "pixel values in [0, 1]; they can be negative and are not "
            "comparable with discrete (Bernoulli/binarized) results"
        )
    else:
        notes["bits_per_dim"] = "discrete likelihood: bits/dim is a code length per pixel"
        if OmegaConf.select(config, "data.binarize", default=None) == "none":
            dataset = _dataset_name(config)
            notes["bits_per_dim"] += (
                "; but the targets are grey levels under a Bernoulli likelihood (the BCE "
                "convention), which is not a normalised distribution of grey-level images, so "
                f"the NLL is not comparable with published NLLs of binarized {dataset}"
            )
    if summary.get("has_prior") is False:
        notes["bits_per_dim"] = notes["iw_nll"] = NO_PRIOR_NOTE
    elif summary.get("likelihood_is_normalised") is False:
        notes["bits_per_dim"] = notes["iw_nll"] = LOSS_NOTE
    else:
        notes["iw_nll"] = (
            f"−log p(x) estimated with k = {summary['num_importance_samples']} "
            "importance samples from q(z|x) (Burda et al. 2015); an upper bound on "
            "the true NLL in expectation"
        )
    notes["kl"] = "KL(q(z|x) || p(z)) at β = 1; closed form where torch.distributions has it"
    if summary["kl_per_dim"] is None:
        notes["kl_per_dim"] = "the posterior does not factorise over dimensions"
    if summary["exact_nll"] is None:
        notes["exact_nll"] = (
            "this model has no tractable log p(x) (a model with "
            "has_exact_log_likelihood, e.g. model=ppca, gets it here)"
        )
    else:
        notes["exact_nll"] = (
            "exact −log p(x) of the model (closed form), next to the IW "
            "estimate: iw_nll_minus_exact ≥ 0 up to Monte-Carlo error"
        )
    return notes


def _write_tensorboard(run_dir: Path, metrics: dict, pictures: Pictures, step: int) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    log_dir = tensorboard_dir(run_dir)
    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        for name in TENSORBOARD_SCALARS:
            value = metrics.get(name)
            if isinstance(value, int | float) and math.isfinite(value):
                writer.add_scalar(f"eval/{name}", value, global_step=step)
        for name, grid in pictures.grids.items():
            writer.add_image(f"eval/{name}", grid, global_step=step)
        for name, figure in pictures.figures.items():
            writer.add_image(
                f"eval/{name}", figure_to_array(figure), global_step=step, dataformats="HWC"
            )
    finally:
        writer.close()
    return log_dir


def _save_pictures(pictures: Pictures, folder: Path) -> dict[str, str]:
    written = {}
    for name, grid in pictures.grids.items():
        path = folder / f"{name}.png"
        save_image(grid, path)
        written[name] = str(path)
    for name, figure in pictures.figures.items():
        written[name] = str(save_figure(figure, folder / f"{name}.png"))
    return written


def _per_sampler(metrics: dict, previous_file: Path) -> dict[str, dict]:
    """metrics.json's ``samplers``: this evaluation's sample-quality numbers under its sampler's
    name, beside those an earlier evaluation of the run stored for other samplers (so that
    ``vaelab-eval sampler=prior``, then ``sampler=gmm`` … build one table for vaelab-report)."""
    import json

    stored: dict[str, dict] = {}
    try:
        earlier = json.loads(previous_file.read_text())
        if earlier.get("checkpoint") == metrics["checkpoint"]:
            stored = dict(earlier.get("samplers") or {})
    except (OSError, ValueError, AttributeError):
        pass
    scores = {name: metrics[name] for name in ("fid", "precision", "recall") if name in metrics}
    if scores:
        stored[metrics["sampler"]["name"]] = scores
    return stored


def _print_summary(metrics: dict) -> None:
    rows = [
        ("test points", metrics["num_points"]),
        ("importance samples k", metrics["num_importance_samples"]),
        ("ELBO", metrics["elbo"]),
        ("loss (recon + KL)" if metrics.get("kl") is not None else "loss", metrics.get("loss")),
        ("  recon", metrics["recon"]),
        ("  KL", metrics["kl"]),
        ("IW-NLL", metrics["iw_nll"]),
        ("−ELBO − IW-NLL", metrics["iw_gap"]),
        ("bits/dim (IW)", metrics["bits_per_dim"]),
        ("active units", f"{metrics['active_units']} / {metrics['latent_dim']}"),
        ("exact NLL", metrics["exact_nll"]),
    ]
    print("vaelab-eval: test split")
    for label, value in rows:
        if value is None:  # e.g. no exact NLL for this model: see notes in metrics.json
            continue
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"  {label:<22} {text}")
    if metrics["iw_samples_per_second"] is not None:
        print(f"  {'IW samples/s':<22} {metrics['iw_samples_per_second']:,.0f}")
    if metrics["sampler"]["name"] != "prior":
        how = "fitted" if metrics["sampler"]["fitted_now"] else "reused"
        print(f"  {'samples from':<22} sampler={metrics['sampler']['name']} ({how})")
    for name in CONDITIONAL_SCALARS:
        if isinstance(metrics.get(name), float):
            print(f"  {name:<22} {metrics[name]:.4f}")
    for group, reason in metrics.get("metrics_skipped", {}).items():
        print(f"  {group}: not computed ({reason})")
    print(f"  note: {metrics['notes']['bits_per_dim']}")
    print(f"Wrote {metrics['metrics_file']}")
    figures = sorted(Path(path).name for path in metrics.get("figures", {}).values())
    if figures:
        folder = Path(next(iter(metrics["figures"].values()))).parent
        print(f"Wrote {len(figures)} pictures to {folder}/: {', '.join(figures)}")


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate ``cfg.ckpt_path`` on the test split; return and write the metrics."""
    validate_config(cfg, EvalSettings)
    if not cfg.get("ckpt_path"):
        raise VaelabError("pass the run to evaluate: vaelab-eval ckpt_path=<run dir or .ckpt>")
    settings = cfg.eval
    limit = settings.get("limit_batches")
    started = time.perf_counter()
    device = choose_device(str(settings.device))
    enter_stage(
        "loading the run",
        kept=lambda: "the run's files, unchanged (vaelab-eval only reads them)",
        resume=f"vaelab-eval ckpt_path={cfg.ckpt_path} (it starts the evaluation over)",
    )
    location = locate_checkpoint(cfg.ckpt_path)
    run = load_run(location, device, data_overrides=data_overrides(cfg))
    model = run.module.model
    torch.manual_seed(int(settings.seed))
    enter_stage("estimating the test-set metrics")
    try:
        with _iw_stage(run, device, limit, int(settings.num_samples)) as progress:
            result = evaluate_test_set(
                model,
                progress.track(_test_batches(run, device, limit)),
                int(settings.num_samples),
                int(settings.chunk_size),
                int(settings.elbo_samples),
            )
    except MissingCapability as missing:
        raise VaelabError(
            f"{missing}: vaelab-eval estimates log p(x), which needs a prior p(z) and a "
            "likelihood p(x|z) (VAEs and PPCA have them; an autoencoder or PCA does not); "
            f"this run's test metrics are in {location.run_dir / METRICS_FILE}"
        ) from missing
    threshold = settings.active_unit_threshold
    threshold = ACTIVITY_THRESHOLD if threshold is None else float(threshold)
    metrics: dict = {
        "checkpoint": str(location.checkpoint),
        "run_dir": str(location.run_dir),
        "global_step": run.global_step,
        "epoch": run.epoch,
        "split": "test",
        "device": str(device),
        "chunk_size": int(settings.chunk_size),
        **summarize(result, threshold),
    }
    sampler = instantiate(cfg.get("sampler") or {"_target_": "vaelab.samplers.prior.PriorSampler"})
    fit_settings = settings.get("sampler_fit") or {}
    enter_stage(
        "fitting the sampler on the training codes",
        kept=lambda: "the run's files, unchanged; a sampler is saved only once it is fitted",
    )
    fitted = fitted_sampler(
        sampler,
        model,
        run.datamodule,
        location.checkpoint,
        run.global_step,
        device,
        seed=int(fit_settings.get("seed", 0)),
        max_codes=fit_settings.get("max_codes"),
        refit=bool(fit_settings.get("refit", False)),
    )
    metrics["sampler"] = fitted.summary()
    enter_stage("the conditional metrics (disentanglement, sample quality)")
    conditional = conditional_metrics(
        lambda options: EvaluationContext(
            model=model,
            datamodule=run.datamodule,
            run_config=run.config,
            device=device,
            settings=options,
            test_images=lambda: (x for x, _ in _test_batches(run, device, limit)),
            sampler=fitted.sampler,
        ),
        settings,
    )
    metrics.update(conditional.values)
    metrics["metrics_skipped"] = conditional.skipped
    metrics["notes"] = _notes(metrics, run.config)
    if model.num_classes:
        metrics["notes"]["iw_nll"] += "; a class-conditional model: −log p(x|y), given the label"
    if model.latent_structure.categorical_blocks:
        metrics["notes"]["iw_nll"] += (
            "; categorical latents: one-hot samples scored by the exact categorical densities "
            "of q and p (not the Concrete relaxation trained on), so it bounds the discrete "
            "model's −log p(x)"
        )
    output_dir = Path(cfg.output_dir) if cfg.get("output_dir") else location.run_dir / EVAL_DIR
    output_dir.mkdir(parents=True, exist_ok=True)
    enter_stage(
        "writing pictures and metrics",
        kept=lambda: f"the run's files; {output_dir} may hold some of this evaluation's pictures",
    )
    pictures = Pictures()
    if settings.get("figures", True):
        inputs, labels = next(_test_batches(run, device, 1))
        snapshot = OmegaConf.select(run.config, "callbacks.encoding_snapshot.path", default=None)
        pictures = make_pictures(
            model,
            result,
            inputs,
            location.run_dir,
            run.datamodule,
            PictureSettings(
                **settings.get("pictures", {}),
                activity_threshold=threshold,
            ),
            run.global_step,
            Path(snapshot) if snapshot else None,
            labels,
            sampler=fitted.sampler,
        )
    metrics["figures"] = _save_pictures(pictures, output_dir)
    metrics["figures_skipped"] = pictures.skipped
    if settings.get("tensorboard", True):
        metrics["tensorboard_dir"] = str(
            _write_tensorboard(location.run_dir, metrics, pictures, run.global_step)
        )
    metrics["samplers"] = _per_sampler(metrics, output_dir / METRICS_FILE)
    metrics["wall_seconds"] = time.perf_counter() - started
    metrics["metrics_file"] = str(output_dir / METRICS_FILE)
    atomic_write_json(output_dir / METRICS_FILE, metrics)
    if cfg.get("print_summary", True):
        _print_summary(metrics)
    return metrics


export_project_root()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    """Hydra entry point: ``vaelab-eval ckpt_path=...``; user errors print one line."""
    run_reporting_errors(lambda: evaluate(cfg))


main = hydra_entry_point(hydra_main, config_name="eval")


if __name__ == "__main__":
    main()
