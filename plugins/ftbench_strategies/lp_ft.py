"""LP-FT: linear probing first, then full fine-tuning from the probed head."""

from __future__ import annotations

from torch import nn

from ftbench.components import Backbone, ParamGroup, Strategy, TrainState
from ftbench_strategies._common import all_names, set_trainable
from ftbench_strategies.params import LPFTParams


class LPFT(Strategy):
    """LP-FT (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features and
    Underperform Out-of-Distribution"): train the head alone on the frozen backbone
    for `lp_fraction` of the budget, then everything, starting from the probed head,
    so the backbone's features are not distorted by a random head's gradients.

    As in the paper, each phase runs the run's whole learning-rate schedule
    (`restart_schedule`; the schedule restarts where the fine-tuning phase begins).
    Simplifications, because the core runs one optimiser per run: the head's
    optimiser state carries over into the second phase, and `ft_lr_scale` scales the
    backbone only (it trains in the second phase alone); the head keeps the run's
    rate in both phases. The switch happens at the first `on_progress` call at or
    after `lp_fraction` (the core calls it at least every 1/20 of the budget). During
    the probing phase the core may train the head on cached features, as for
    `linear-probe`.
    """

    def __init__(self, params: LPFTParams | None = None):
        self.params = params or LPFTParams()
        self.phase = "lp"
        self.switched_at = 1.0  # budget progress where fine-tuning began

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        self.phase, self.switched_at = "lp", 1.0
        head = set(backbone.head_params)
        set_trainable(model, head)
        body = [name for name in all_names(model) if name not in head]
        return [ParamGroup([n for n in all_names(model) if n in head], name="head"),
                ParamGroup(body, lr_scale=self.params.ft_lr_scale, name="backbone")]

    def on_progress(self, model: nn.Module, state: TrainState) -> None:
        if self.phase == "lp" and state.progress >= self.params.lp_fraction - 1e-9:
            self.phase, self.switched_at = "ft", state.progress
            set_trainable(model, all_names(model))

    def schedule_progress(self, progress: float) -> float:
        if not self.params.restart_schedule:
            return progress
        if self.phase == "lp":
            return min(1.0, progress / self.params.lp_fraction)
        return (progress - self.switched_at) / (1.0 - self.switched_at) if self.switched_at < 1 else 1.0
