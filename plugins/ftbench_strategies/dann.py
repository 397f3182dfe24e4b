"""DANN: domain-adversarial training through a gradient reversal layer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ftbench.components import Backbone, ParamGroup, Strategy, TrainState, UnlabelledData
from ftbench.errors import UserInputError
from ftbench.engine.evaluate import pre_logits
from ftbench_strategies._common import all_names, set_trainable
from ftbench_strategies.params import DANNParams  # noqa: F401  (re-exported)

# The domain classifier lives on the model while training (so the core's optimiser
# trains it) under this name, and is removed before evaluation.
DOMAIN_HEAD = "dann_domain_classifier"


class GradReverse(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the gradient by -scale."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return GradReverse.apply(x, scale)


def domain_classifier(features: int, hidden: int) -> nn.Module:
    """The paper's domain classifier: two ReLU hidden layers, one logit (target vs source)."""
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1))


class DANN(Strategy):
    """DANN (Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand &
    Lempitsky 2016, "Domain-Adversarial Training of Neural Networks", JMLR): full
    fine-tuning on the labelled data plus a domain classifier on the backbone's
    pre-logits features, fed through a gradient reversal layer. The classifier
    learns to tell labelled-domain features (label 0) from unlabelled target-domain
    ones (label 1); the reversed gradient pushes the backbone towards features it
    cannot tell apart. Loss: task CE + weight * BCE(domain), with the reversal's
    strength ramped 0 -> 1 by 2 / (1 + exp(-10 p)) - 1. The classifier trains with
    the run's optimiser and learning rate (the paper uses one SGD for both) and is
    dropped before evaluation, though the record's trainable-parameter count includes
    it (so it can exceed the model's total). Each step draws one target batch of the
    run's batch size. Needs a suite `adapt:`.
    """

    wants_unlabelled = True

    def __init__(self, params: DANNParams | None = None):
        self.params = params or DANNParams()
        self._data: UnlabelledData | None = None
        self._hook = None
        self._strength = 0.0 if self.params.ramp else 1.0

    def use_unlabelled(self, data: UnlabelledData) -> None:
        self._data = data

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        if self._data is None:
            raise UserInputError("dann got no unlabelled target data; add `adapt:` to the dataset entry")
        device = next(model.parameters()).device
        model.add_module(DOMAIN_HEAD, domain_classifier(model.num_features, self.params.hidden).to(device))
        caught: dict[str, torch.Tensor] = {}
        self._caught = caught

        def catch(module: nn.Module, args: tuple) -> None:
            caught["features"] = args[0]

        self._hook = model.get_classifier().register_forward_pre_hook(catch)
        names = all_names(model)
        set_trainable(model, names)
        return [ParamGroup(names, name="all")]

    def on_progress(self, model: nn.Module, state: TrainState) -> None:
        if self.params.ramp:
            self._strength = 2 / (1 + math.exp(-10 * state.progress)) - 1

    def penalty(self, model: nn.Module, images: torch.Tensor | None, logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor | None:
        source = self._caught.pop("features", None)
        if images is None or source is None or self.params.weight == 0:
            return None
        target = pre_logits(model, self._data.next_batch())
        self._caught.pop("features", None)
        return self.params.weight * self.domain_loss(model, source, target, self._strength)

    @staticmethod
    def domain_loss(model: nn.Module, source: torch.Tensor, target: torch.Tensor, strength: float) -> torch.Tensor:
        """BCE of the domain classifier on reversed features: source 0, target 1."""
        features = grad_reverse(torch.cat([source, target]).float(), strength)
        domain = torch.cat([torch.zeros(len(source)), torch.ones(len(target))]).to(features.device)
        return F.binary_cross_entropy_with_logits(getattr(model, DOMAIN_HEAD)(features).squeeze(1), domain)

    def final_model(self, model: nn.Module) -> nn.Module:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if hasattr(model, DOMAIN_HEAD):
            delattr(model, DOMAIN_HEAD)
        return model
