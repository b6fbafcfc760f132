"""Learning curves read back from a run's TensorBoard event files (seed 003's history plots)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

#: where runs made before the events moved to the run dir itself kept them
LEGACY_TENSORBOARD_SUBDIR = "tensorboard"
EVENT_FILES = "events.out.tfevents.*"
#: the quantities the module logs, in the order they are plotted
QUANTITIES = ("loss", "kl", "recon")
#: tags per split, first found wins: epoch means ("_epoch", when logged on step and epoch),
#: else the plain tag (epoch means for val; logged steps for train)
SPLIT_TAGS = {"train": ("{q}_epoch", "{q}"), "val": ("{q}",)}


@dataclass
class Curve:
    """One logged series against the global step."""

    steps: list[int]
    values: list[float]
    label: str


@dataclass
class LearningCurves:
    """``curves[quantity][split]`` against the global step; ``epoch_ends[e]`` is the last
    step logged in epoch e (for the epoch axis)."""

    curves: dict[str, dict[str, Curve]] = field(default_factory=dict)
    epoch_ends: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(self.curves.values())


def tensorboard_dir(run_dir: str | Path) -> Path:
    """The folder holding a run's TensorBoard events: ``<run>/<run name>/`` (the task and the
    overrides, :func:`vaelab.run_config.run_name`; the newest if there are several), else the
    run dir itself or ``<run>/tensorboard`` for runs made before; the run dir if it has none."""
    run_dir = Path(run_dir)
    if any(run_dir.glob(EVENT_FILES)):
        return run_dir
    folders = {path.parent for path in run_dir.glob(f"*/{EVENT_FILES}")}
    if not folders:
        return run_dir
    return max(folders, key=lambda folder: max(p.stat().st_mtime_ns for p in folder.iterdir()))


def read_learning_curves(tensorboard_dir: str | Path) -> LearningCurves:
    """Loss, KL and recon of train and val from the event files in ``tensorboard_dir``; an
    empty result if there are none."""
    folder = Path(tensorboard_dir)
    if not folder.is_dir() or not any(folder.glob(EVENT_FILES)):
        return LearningCurves()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags().get("scalars", []))
    result = LearningCurves()
    for quantity in QUANTITIES:
        for split, patterns in SPLIT_TAGS.items():
            for pattern in patterns:
                tag = f"{split}/{pattern.format(q=quantity)}"
                if tag in tags:
                    events = accumulator.Scalars(tag)
                    label = (
                        split
                        if split == "val" or pattern.endswith("_epoch")
                        else f"{split} (logged steps)"
                    )
                    result.curves.setdefault(quantity, {})[split] = Curve(
                        steps=[e.step for e in events],
                        values=[e.value for e in events],
                        label=label,
                    )
                    break
    if "epoch" in tags:
        # epochs as Lightning logged them next to train/val scalars (test steps excluded)
        logged = {
            step for splits in result.curves.values() for c in splits.values() for step in c.steps
        }
        last_step: dict[int, int] = {}
        for event in accumulator.Scalars("epoch"):
            if event.step in logged:
                epoch = int(event.value)
                last_step[epoch] = max(last_step.get(epoch, event.step), event.step)
        result.epoch_ends = [last_step[e] for e in sorted(last_step)]
    return result
