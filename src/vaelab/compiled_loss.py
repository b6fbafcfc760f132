"""``module.compile=true``: the training loss compiled as one function of the batch.

Compiling the networks alone (``nn.Module.compile`` on the encoder and decoder) leaves the
rest of a step eager: the reparameterised sample, the likelihood's log-density over every
pixel, the KL and the objective's sums, each a pass over memory in the forward and again in
the backward. On a CPU that made training slower than eager (docs/benchmarks.md). Here
``torch.compile`` traces the objective's whole forward (networks, torch.distributions,
likelihood, KL, weighting) into one graph, whose forward and backward Inductor fuses.

torch.distributions checks its arguments with data-dependent branches (``if not
valid.all(): raise``), each a graph break: the compiled call runs with that validation off.
Whether the loss compiled in one graph is said once, at the first step; a model or
objective whose loss breaks the graph is named with the reasons (it still trains, compiled
in pieces, which may not pay).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.distributions import Distribution

#: Inductor's settings for the loss. ``fallback_random``: draw z's noise with torch's own
#: generator (the eager run's numbers for the same seed; Inductor's per-element generator was
#: slower on a CPU)
INDUCTOR_OPTIONS = {"fallback_random": True}


@contextmanager
def distributions_unvalidated() -> Iterator[None]:
    """torch.distributions' argument checks off inside the block (restored after)."""
    previous = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(previous)


def graph_break_reasons() -> Counter:
    """Dynamo's count of graph breaks so far in this process, by reason."""
    from torch._dynamo.utils import counters

    return Counter(counters["graph_break"])


class CompiledLoss:
    """``loss_function`` under ``torch.compile``, called with torch.distributions' validation
    off; the first call says whether it compiled in one graph (``name``: what it computes,
    for that line). ``breaks`` holds the graph breaks of the first call by reason."""

    def __init__(
        self, loss_function: Callable[..., Any], name: str, backend: str = "inductor"
    ) -> None:
        options = INDUCTOR_OPTIONS if backend == "inductor" else None
        self.compiled = torch.compile(loss_function, backend=backend, options=options)
        self.name = name
        self.breaks: Counter | None = None

    def __call__(self, *args: Any) -> Any:
        first_call = self.breaks is None
        before = graph_break_reasons() if first_call else None
        with distributions_unvalidated():
            out = self.compiled(*args)
        if first_call:
            self.breaks = graph_break_reasons() - before
            rank_zero_info(self.summary())
        return out

    def summary(self) -> str:
        """One line: compiled in one graph, or the graph breaks and what to do."""
        if not self.breaks:
            return f"vaelab: module.compile: {self.name} compiles in one graph"
        reasons = "; ".join(reason.splitlines()[0] for reason in self.breaks)
        return (
            f"vaelab: module.compile: {self.name} does not compile in one graph "
            f"({sum(self.breaks.values())} graph breaks: {reasons}); it runs compiled in "
            "pieces, which may be slower than module.compile=false"
        )
