"""Self-training on the unlabelled target domain with confident pseudo-labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from ftbench.components import Backbone, ParamGroup, Params, Strategy, TrainState, UnlabelledData
from ftbench.errors import UserInputError
from ftbench_strategies._common import all_names, train_only


class SelfTrainingParams(Params):
    threshold: float = Field(0.9, ge=0, lt=1, description="a target image counts only when the model's top "
                                                          "softmax probability is at least this")
    weight: float = Field(1.0, ge=0, description="weight of the pseudo-label loss at the end of the ramp "
                                                 "(the paper's alpha_f)")
    ramp_start: float = Field(0.2, ge=0, le=1, description="fraction of the budget before which the "
                                                           "pseudo-label loss is off (the paper's T1)")
    ramp_end: float = Field(0.6, ge=0, le=1, description="fraction of the budget at which it reaches "
                                                         "`weight` (the paper's T2)")

    @model_validator(mode="after")
    def _ordered(self) -> "SelfTrainingParams":
        if self.ramp_end < self.ramp_start:
            raise ValueError(f"ramp_end ({self.ramp_end}) must not come before ramp_start ({self.ramp_start})")
        return self


class SelfTraining(Strategy):
    """Pseudo-labelling (Lee 2013, "Pseudo-Label: The Simple and Efficient
    Semi-Supervised Learning Method for Deep Neural Networks", ICML workshop), with
    the confidence threshold of FixMatch (Sohn et al. 2020) in place of its
    consistency term: full fine-tuning on the labelled data plus, on each step, one
    batch of unlabelled target-domain images whose own most probable class is taken
    as their label, when the top probability reaches `threshold`. The loss is
    task CE + alpha(t) * CE(target logits, pseudo-labels), summed over the confident
    images and divided by the batch size (FixMatch's normalisation),
    alpha(t) 0 until `ramp_start` of the budget, then rising linearly to `weight` at
    `ramp_end` (the paper's schedule, in budget fractions instead of epochs). The
    pseudo-labels come from the same forward pass (detached). Needs a suite `adapt:`.
    """

    wants_unlabelled = True

    def __init__(self, params: SelfTrainingParams | None = None):
        self.params = params or SelfTrainingParams()
        self._data: UnlabelledData | None = None
        self._alpha = 0.0
        self._used = self._seen = 0

    def use_unlabelled(self, data: UnlabelledData) -> None:
        self._data = data

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        if self._data is None:
            raise UserInputError("self-training got no unlabelled target data; add `adapt:` to the dataset entry")
        return train_only(model, all_names(model), "all")

    def alpha(self, progress: float) -> float:
        """The pseudo-label loss weight at `progress` of the budget."""
        p = self.params
        if progress < p.ramp_start:
            return 0.0
        if progress >= p.ramp_end:
            return p.weight
        return p.weight * (progress - p.ramp_start) / (p.ramp_end - p.ramp_start)

    def on_progress(self, model: nn.Module, state: TrainState) -> None:
        self._alpha = self.alpha(state.progress)

    def pseudo_label_loss(self, target_logits: torch.Tensor) -> torch.Tensor:
        """Mean CE over the images whose top probability reaches the threshold, to
        their argmax class; zero (with a gradient path) when none does."""
        with torch.no_grad():
            probs = F.softmax(target_logits.detach().float(), 1)
            confidence, pseudo = probs.max(1)
            keep = confidence >= self.params.threshold
        self._seen += len(keep)
        self._used += int(keep.sum())
        losses = F.cross_entropy(target_logits.float(), pseudo, reduction="none")
        return (losses * keep).sum() / max(len(keep), 1)

    def penalty(self, model: nn.Module, images: torch.Tensor | None, logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor | None:
        if images is None or self._alpha == 0:
            return None
        return self._alpha * self.pseudo_label_loss(model(self._data.next_batch()))

    def info(self) -> dict:
        return {"pseudo_labelled_fraction": self._used / self._seen if self._seen else None}
