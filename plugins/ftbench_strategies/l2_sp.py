"""L2-SP: fine-tuning with the weights pulled towards their pretrained values."""

from __future__ import annotations

import torch
from torch import nn

from ftbench.components import Backbone, ParamGroup, Strategy
from ftbench_strategies._common import all_names, train_only
from ftbench_strategies.params import L2SPParams


class L2SP(Strategy):
    """L2-SP (Li, Grandvalet & Davoine 2018, "Explicit Inductive Bias for Transfer
    Learning with Convolutional Networks"): full fine-tuning plus the penalty
    alpha/2 * ||w_backbone - w0||^2 + beta/2 * ||w_head||^2, where w0 are the
    pretrained values (the starting point, not zero, is what the backbone is pulled to).

    Set `train.weight_decay: 0` with it: the core's weight decay pulls every weight
    towards zero, which is the very bias L2-SP replaces.
    """

    def __init__(self, params: L2SPParams | None = None):
        self.params = params or L2SPParams()

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        head = set(backbone.head_params)
        named = dict(model.named_parameters())
        self._body = [(named[n], named[n].detach().clone()) for n in named if n not in head]
        self._head = [named[n] for n in named if n in head]
        return train_only(model, all_names(model), "all")

    def penalty(self, model: nn.Module, images: torch.Tensor | None, logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        drift = sum(((w - w0).float().pow(2).sum() for w, w0 in self._body),
                    torch.zeros((), device=logits.device))
        size = sum((w.float().pow(2).sum() for w in self._head),
                   torch.zeros((), device=logits.device))
        return self.params.alpha / 2 * drift + self.params.beta / 2 * size
