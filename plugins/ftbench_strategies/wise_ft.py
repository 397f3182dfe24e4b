"""WiSE-FT: weight-space ensembles of the starting and the fine-tuned model."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ftbench.components import Backbone, ParamGroup, Strategy
from ftbench_strategies._common import all_names, train_only
from ftbench_strategies.params import WiSEFTParams


class WiSEFT(Strategy):
    """WiSE-FT (Wortsman et al. 2022, "Robust fine-tuning of zero-shot models"): full
    fine-tuning, then every model theta = (1 - alpha) * theta_0 + alpha * theta_ft is
    evaluated as a variant labelled "alpha=<alpha>".

    theta_0 is the pretrained backbone with the head as it was when training started:
    the analogue of the paper's zero-shot head (here usually a random one, so alpha=0
    is near chance unless the backbone plugin supplies a meaningful head). Floating
    buffers (batch-norm running statistics) are interpolated too; integer ones (batch
    counters) come from the fine-tuned model.
    """

    def __init__(self, params: WiSEFTParams | None = None):
        self.params = params or WiSEFTParams()

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        self._start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return train_only(model, all_names(model), "all")

    def eval_models(self, model: nn.Module) -> dict[str, nn.Module]:
        return {f"alpha={alpha:g}": self.interpolate(model, alpha) for alpha in self.params.alphas}

    @torch.no_grad()
    def interpolate(self, model: nn.Module, alpha: float) -> nn.Module:
        """A copy of `model` with weights (1 - alpha) * start + alpha * `model`."""
        mixed = {}
        for key, tuned in model.state_dict().items():
            start = self._start[key]
            mixed[key] = torch.lerp(start, tuned, alpha) if tuned.is_floating_point() else tuned
        out = copy.deepcopy(model)
        out.load_state_dict(mixed)
        return out
