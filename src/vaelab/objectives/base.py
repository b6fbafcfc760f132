"""Interface of a training objective and its named, open per-data-point outputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from vaelab.models.interface import LatentVariableModel
from vaelab.schedules.base import Weighting

#: logged names that mean a bound on log p(x): never given to a reconstruction loss's value
BOUND_NAMES = frozenset({"elbo", "iwae_bound", "miwae_bound", "ciwae_bound", "piwae_bound"})


@dataclass
class ObjectiveOutput:
    """What an objective computed for a batch of B data points, all in nats per data point.

    ``loss`` [B] is what training minimises (weighted regularisers included); ``bound`` [B]
    is the lower bound on log p(x) the objective estimates at β = 1 (None for objectives that
    bound nothing), logged as ``<stage>/<Objective.bound_name>``; every entry of ``terms``
    ([B] each) is logged as ``<stage>/<name>``. ``per_dimension`` holds [B, D] parts of a
    term for objectives and schedules that need them (``kl`` of a factorising posterior),
    never logged as scalars.
    """

    loss: Tensor
    bound: Tensor | None
    terms: dict[str, Tensor] = field(default_factory=dict)
    per_dimension: dict[str, Tensor] = field(default_factory=dict)
    #: tensors of this forward pass that the objective's later optimiser groups reuse
    #: (VAE-GAN's codes and decoded images, detached), never logged
    intermediates: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class GroupLoss:
    """The loss one optimiser group steps on (a scalar), computed after the earlier groups
    of the same batch stepped, and the terms it logs as ``train/<name>`` (scalars)."""

    loss: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)


#: a second network trained against the model (FactorVAE's discriminator): its group's loss
AdversaryStep = GroupLoss

#: torch's parameter groups: tensors, or dicts {"params": [...], option: value} (a
#: decoder-only weight decay)
ParameterGroups = list[nn.Parameter] | list[dict[str, Any]]


@dataclass(frozen=True)
class OptimiserGroup:
    """One optimiser of a model trained by several (manual optimisation): ``name`` (its loss
    is logged as ``train/<name>_loss`` for every group after the first), the ``parameters``
    it steps (or torch parameter-group dicts with their own options), and ``optimizer``, a
    partial (None: the module's ``optimizer=``, with its ``lr_scheduler=``)."""

    name: str
    parameters: ParameterGroups
    optimizer: Callable[..., torch.optim.Optimizer] | None = None


class Objective(nn.Module):
    """Computes :class:`ObjectiveOutput` for a batch. A module, so an objective may own
    networks (an adversary) that train and are checkpointed with the model.

    Lifecycle: :meth:`setup` once, when the LightningModule is built (resolve choices that
    depend on the model, the weighting or the data, e.g. analytic vs Monte-Carlo KL, dataset
    size); then :meth:`forward` every step. Objectives with an adversary override
    :meth:`adversary_parameters` and :meth:`adversary_step`; the module then optimises the
    two parameter sets in turn with two optimisers. Objectives with more optimisers (VAE-GAN:
    encoder, decoder, discriminator) override :meth:`optimiser_groups` and
    :meth:`group_loss`.
    """

    #: the name the bound is logged under (``<stage>/<bound_name>``); "elbo" only for the ELBO
    bound_name: ClassVar[str | None] = "elbo"
    #: names of the per-data-point terms this objective reports (logged as <stage>/<name>)
    term_names: ClassVar[tuple[str, ...]] = ()

    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        """Check that the objective applies to ``model`` with ``weighting``; resolve automatic
        choices. Called when the module is built (``data_info`` may be empty then) and again
        once the datamodule is set up, with what it knows (``num_train``, ``num_classes``, …):
        it must be idempotent."""

    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
        split: str = "train",
    ) -> ObjectiveOutput:
        """The batch's outputs at optimiser step ``step``; ``split`` ("train", "val" or
        "test") is the split the batch comes from (an estimator that needs that split's size,
        such as β-TCVAE's log q(z), reads ``num_<split>`` from the data info)."""
        raise NotImplementedError

    def resolved_choices(self) -> dict[str, Any]:
        """Choices made in :meth:`setup` (written to the run's hparams and printed once)."""
        return {}

    def logged_names(self) -> tuple[str, ...]:
        """The per-data-point quantities logged for each stage (besides ``loss``)."""
        bound = (self.bound_name,) if self.bound_name else ()
        return bound + tuple(name for name in self.term_names if name != self.bound_name)

    def for_reconstruction_loss(self, model: LatentVariableModel) -> None:  # noqa: ARG002
        """Called once by the module when the model's p(x|z) is a reconstruction loss, not a
        normalised likelihood (``model.likelihood_is_normalised`` is False): −(recon + KL)
        then bounds nothing, so no bound and no term named like one is logged (``recon`` is
        the loss, ``kl`` the KL) and checkpoints watch ``val/loss``. An objective that is
        nothing but a bound on log p(x) overrides this to refuse in one line."""
        self.bound_name = None
        self.term_names = tuple(name for name in self.term_names if name not in BOUND_NAMES)

    # -- adversaries ----------------------------------------------------------------------
    def adversary_parameters(self) -> Iterator[nn.Parameter] | None:
        """The parameters of a second network trained with its own optimiser, or None."""
        return None

    #: a partial optimiser for :meth:`adversary_parameters` (set by the objective's config)
    adversary_optimizer: Callable[..., torch.optim.Optimizer] | None = None

    def adversary_step(
        self, model: LatentVariableModel, x: Tensor, y: Tensor | None, output: ObjectiveOutput
    ) -> AdversaryStep:
        """The adversary's loss for the batch the model was just trained on."""
        raise NotImplementedError

    @property
    def has_adversary(self) -> bool:
        return self.adversary_parameters() is not None

    # -- optimiser groups -----------------------------------------------------------------
    def optimiser_groups(self, model: LatentVariableModel) -> tuple[OptimiserGroup, ...]:
        """The optimisers that train ``model`` on this objective, stepped in this order on
        each batch. Default: one group ``model`` (every trainable parameter of the model,
        the module's optimiser), followed by ``adversary`` (:meth:`adversary_parameters`,
        :attr:`adversary_optimizer`) for an objective with an adversary. More than one group
        makes the module optimise manually (``regimes.AdversarialRegime``)."""
        groups = [OptimiserGroup("model", [p for p in model.parameters() if p.requires_grad])]
        adversary = self.adversary_parameters()
        if adversary is not None:
            groups.append(OptimiserGroup("adversary", list(adversary), self.adversary_optimizer))
        return tuple(groups)

    def group_loss(
        self,
        name: str,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        output: ObjectiveOutput,
    ) -> GroupLoss:
        """The loss of the optimiser group ``name`` on the batch whose forward gave
        ``output``, asked for after the earlier groups stepped. Default: the batch's mean
        ``loss`` for the first group, :meth:`adversary_step` for ``adversary``."""
        if name == "adversary":
            return self.adversary_step(model, x, y, output)
        return GroupLoss(loss=output.loss.mean())
