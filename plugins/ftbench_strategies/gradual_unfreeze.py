"""Gradual unfreezing: the head first, then one more layer group from the top at a time."""

from __future__ import annotations

import math

from torch import nn

from ftbench.components import Backbone, ParamGroup, Strategy, TrainState
from ftbench_strategies._common import all_names, set_trainable
from ftbench_strategies.params import GradualUnfreezeParams


class GradualUnfreeze(Strategy):
    """Gradual unfreezing (Howard & Ruder 2018, "Universal Language Model Fine-tuning
    for Text Classification", ULMFiT): training starts with only the head; after every
    `interval` of the budget the next layer group below the trained ones thaws, until
    the whole network trains. Changes happen in `on_progress`, which the core calls at
    every epoch start and at least every 1/20 of the budget; an interval shorter than
    that thaws several groups at once.

    `unfrozen_log` records (budget fraction, group name) in unfreezing order, the head
    at 0.0 first.
    """

    def __init__(self, params: GradualUnfreezeParams | None = None):
        self.params = params or GradualUnfreezeParams()
        self.unfrozen_log: list[tuple[float, str]] = []

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        self._groups = list(reversed(backbone.groups))  # head first
        self._interval = self.params.interval or 1 / len(self._groups)
        self._trainable: set[str] = set()
        self.unfrozen_log = []
        self._thaw(model, 1, 0.0)
        return [ParamGroup(all_names(model), name="all")]

    def on_progress(self, model: nn.Module, state: TrainState) -> None:
        # A tiny tolerance: budget fractions such as 2/6 arrive as 0.33333 from step counts.
        due = 1 + math.floor(state.progress / self._interval + 1e-9)
        self._thaw(model, min(due, len(self._groups)), state.progress)

    def _thaw(self, model: nn.Module, count: int, progress: float) -> None:
        for group in self._groups[len(self.unfrozen_log):count]:
            self.unfrozen_log.append((progress, group.name))
            self._trainable.update(group.params)
        if len(self.unfrozen_log) == len(self._groups):  # parameters outside every group thaw last
            self._trainable.update(all_names(model))
        set_trainable(model, self._trainable)
