"""Lightning's model summary without a column and a total of zero FLOPs.

Lightning counts FLOPs only through a forward pass on ``example_input_array``; vaelab's
modules have none, so its summary always reads ``FLOPs 0`` and ``Total FLOPs: 0``, which looks
like a broken model. This summary drops the FLOPs column when the total is 0 (the ``Total
Flops`` line goes through :func:`vaelab.console.silence_known_notices`' filter).
"""

from __future__ import annotations

from typing import Annotated, Any

from lightning.pytorch.callbacks import ModelSummary

from vaelab.schema import Range, checked_arguments

FLOPS_COLUMN = "FLOPs"


@checked_arguments("callbacks.model_summary")
class CompactModelSummary(ModelSummary):
    """``ModelSummary`` (logged as text) without zero FLOPs; ``enabled`` follows
    ``trainer.enable_model_summary`` in the config."""

    def __init__(
        self,
        max_depth: Annotated[int, Range(ge=-1)] = 1,
        enabled: bool = True,
        **summarize_kwargs: Any,
    ) -> None:
        super().__init__(max_depth=max_depth if enabled else 0, **summarize_kwargs)

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        if not total_flops:
            summary_data = [column for column in summary_data if column[0] != FLOPS_COLUMN]
        ModelSummary.summarize(
            summary_data,
            total_parameters,
            trainable_parameters,
            model_size,
            total_training_modes,
            total_flops=total_flops,
            **summarize_kwargs,
        )
