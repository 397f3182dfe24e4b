"""Training from scratch: the same architecture, randomly re-initialised."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from ftbench.components import Backbone, ParamGroup, Strategy
from ftbench_strategies._common import all_names, train_only
from ftbench_strategies.params import ScratchParams


class Scratch(Strategy):
    """Training from scratch: the pretrained weights are thrown away and the whole
    network trains from a random initialisation (the no-transfer reference, as in
    He, Girshick & Dollar 2019, "Rethinking ImageNet Pre-training").

    Re-initialisation: every module's own `reset_parameters()` (convolutions, linear
    layers, norms; batch-norm running statistics too), then the model's `init_weights()`
    when it has one, which applies the architecture's own scheme (timm: Kaiming
    convolutions and zero-initialised last BN per residual block for ResNets, truncated
    normal weights and position embeddings for ViTs). Bare parameters of a model
    without `init_weights` (a position embedding, a layer scale) keep their values.
    """

    def __init__(self, params: ScratchParams | None = None):
        self.params = params or ScratchParams()

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        seeded = self.params.init_seed is not None
        cuda = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
        with torch.random.fork_rng(devices=cuda) if seeded else nullcontext():
            if seeded:
                torch.manual_seed(self.params.init_seed)
            reinitialise(model)
        return train_only(model, all_names(model), "all")


@torch.no_grad()
def reinitialise(model: nn.Module) -> None:
    """Draw fresh random weights for `model` in place, from torch's global generator."""
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    init = getattr(model, "init_weights", None)
    if callable(init):
        init()
