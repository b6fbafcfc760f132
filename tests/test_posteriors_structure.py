"""vaelab.posteriors.structure: the per-distribution answers dispatch by class (MRO, as
functools.singledispatch does) and can be called inside torch.compile without a graph break."""

from __future__ import annotations

import torch
from torch.distributions import Distribution, Independent, Normal

from vaelab.posteriors.structure import (
    distribution_dispatch,
    factorised_marginals,
    rejection_score,
)


class _Base(Distribution):
    pass


class _Derived(_Base):
    pass


def test_dispatch_follows_the_class_hierarchy_like_singledispatch():
    @distribution_dispatch
    def answer(distribution: Distribution) -> str:  # noqa: ARG001
        return "default"

    @answer.register
    def _(distribution: _Base) -> str:  # noqa: ARG001
        return "base"

    def normal_answer(distribution: Normal) -> str:  # noqa: ARG001
        return "normal"

    answer.register(Normal, normal_answer)
    assert answer(_Derived(validate_args=False)) == "base"
    assert answer(Normal(0.0, 1.0)) == "normal"
    assert answer(Independent(Normal(torch.zeros(2), 1.0), 1)) == "default"


def test_the_engines_questions_trace_in_one_graph():
    """rejection_score's first lookup of a class used to crash dynamo (module.compile=true)."""

    def kl_terms(loc: torch.Tensor) -> torch.Tensor:
        posterior = Independent(Normal(loc, torch.ones_like(loc)), 1)
        z = posterior.rsample()
        score = rejection_score(posterior, z)
        marginals = factorised_marginals(posterior)
        return marginals.log_prob(z).sum(-1) + (0.0 if score is None else score)

    loc = torch.zeros(3, 2)
    torch.manual_seed(0)
    eager = kl_terms(loc)
    torch.manual_seed(0)
    traced = torch.compile(kl_terms, backend="eager", fullgraph=True)(loc)  # a break raises
    torch.testing.assert_close(traced, eager)
