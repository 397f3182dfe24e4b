"""Linear probing: only the new head trains on the frozen backbone."""

from __future__ import annotations

from torch import nn

from ftbench.components import Backbone
from ftbench_strategies._common import FixedSelection
from ftbench_strategies.params import LinearProbeParams


class LinearProbe(FixedSelection):
    """Linear probe: the backbone is frozen and only the head trains (the classic
    transfer evaluation, e.g. Kornblith et al. 2019). With `train.augment: none` and
    `train.bn: eval` the core computes the backbone's features once and trains the
    head on them, which is the same computation without the repeated forward passes."""

    def __init__(self, params: LinearProbeParams | None = None):
        self.params = params or LinearProbeParams()

    def select(self, model: nn.Module, backbone: Backbone) -> list[str]:
        head = set(backbone.head_params)
        return [name for name, _ in model.named_parameters() if name in head]
