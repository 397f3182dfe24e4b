"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from torch import nn

from ftbench.components import Backbone
from ftbench_strategies._common import FixedSelection, all_names
from ftbench_strategies.params import FullParams


class Full(FixedSelection):
    """Full fine-tuning: the whole pretrained network and the new head train at the
    run's learning rate (the standard transfer baseline, e.g. Kornblith et al. 2019,
    "Do Better ImageNet Models Transfer Better?")."""

    def __init__(self, params: FullParams | None = None):
        self.params = params or FullParams()

    def select(self, model: nn.Module, backbone: Backbone) -> list[str]:
        return all_names(model)
