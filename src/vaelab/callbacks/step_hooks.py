"""Per-step callback hooks only where a callback has something to do.

Lightning calls every hook of every callback at every step, each inside a profiler context
and named by the callback's ``state_key`` (ModelCheckpoint formats its settings into it each
time): with vaelab's default callbacks that is some 60 calls per training step that do nothing,
3–4 % of a batch-128 MLP step on a CPU (docs/benchmarks.md). Lightning skips a hook that is not
callable, so each per-batch hook that a callback's class inherits unchanged from
``lightning.Callback`` (a no-op) is set to ``None`` on the instance.
"""

from __future__ import annotations

from collections.abc import Iterable

import lightning as L

#: hooks Lightning calls once per batch (training, validation, test)
PER_BATCH_HOOKS = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
)


def skip_inherited_batch_hooks(callbacks: Iterable[L.Callback]) -> list[L.Callback]:
    """``callbacks`` with their inherited no-op per-batch hooks removed (those their classes
    override are untouched)."""
    callbacks = list(callbacks)
    for callback in callbacks:
        for hook in PER_BATCH_HOOKS:
            if getattr(type(callback), hook) is getattr(L.Callback, hook):
                setattr(callback, hook, None)
    return callbacks
