"""Lightning's DDP for every model, including those that DistributedDataParallel cannot wrap."""

from __future__ import annotations

from lightning.pytorch import strategies


class DDPStrategy(strategies.DDPStrategy):
    """Lightning's :class:`~lightning.pytorch.strategies.DDPStrategy`, except that a model
    without a trainable parameter (the closed-form fits: PCA, PPCA) is not wrapped in
    ``DistributedDataParallel``: torch refuses to wrap one, and it has no gradients to
    all-reduce (it all-reduces its own sufficient statistics). The process group, the
    distributed sampler, synced logging and rank-0 checkpoints are Lightning's as ever."""

    def configure_ddp(self) -> None:
        if any(parameter.requires_grad for parameter in self.model.parameters()):
            super().configure_ddp()
