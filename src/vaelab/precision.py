"""The numeric precision a run really uses, with one clear warning where it differs.

``trainer.precision`` takes Lightning's values: ``32-true`` (default), ``bf16-mixed`` and
``16-mixed`` (autocast: matmuls in 16 bit, weights and reductions in float32), ``bf16-true``
(weights in bfloat16 too). CPU autocast has no float16 path: Lightning silently runs
``16-mixed`` as ``bf16-mixed`` there, so vaelab says so and asks for bf16-mixed instead.
Whatever the precision, log-likelihoods, KL terms and the loss are reduced in float32
(the likelihood and posterior cast their inputs), so a sum over pixels keeps its digits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn

FP16_MIXED = "16-mixed"
BF16_MIXED = "bf16-mixed"


def resolved_accelerator(accelerator: str | None) -> str:
    """``auto`` → the accelerator Lightning would pick here (cuda, mps or cpu)."""
    name = str(accelerator or "auto").lower()
    if name != "auto":
        return "cuda" if name == "gpu" else name
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def precision_overrides(trainer_cfg: Mapping[str, Any]) -> dict[str, str]:
    """Trainer arguments that replace the configured precision where it cannot run as asked:
    ``16-mixed`` on CPU becomes ``bf16-mixed`` (what Lightning does anyway), with a warning."""
    precision = str(trainer_cfg.get("precision", "32-true"))
    accelerator = resolved_accelerator(trainer_cfg.get("accelerator"))
    if precision in (FP16_MIXED, "16") and accelerator == "cpu":
        rank_zero_warn(
            f"vaelab: trainer.precision={precision} asks for float16 autocast, which PyTorch "
            f"does not have on the CPU; this run uses {BF16_MIXED} (bfloat16 autocast) "
            f"instead. Set trainer.precision={BF16_MIXED} to silence this warning, or train "
            "on a GPU (trainer=gpu) for real float16.",
            category=UserWarning,
        )
        return {"precision": BF16_MIXED}
    return {}
