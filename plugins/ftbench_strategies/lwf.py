"""Learning without Forgetting: fine-tuning while keeping the source task's outputs."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ftbench.components import Backbone, ParamGroup, Strategy
from ftbench.errors import UserInputError
from ftbench.engine.evaluate import pre_logits
from ftbench_strategies._common import all_names, train_only
from ftbench_strategies.params import LwFParams


class LwF(Strategy):
    """Learning without Forgetting (Li & Hoiem 2016): full fine-tuning plus
    lambda * T^2 * KL(softmax(z_old / T) || softmax(z_new / T)), where z_old are the
    source-task logits of the original (pretrained, frozen, eval-mode) network on the
    current batch and z_new those of the network being trained: the backbone's source
    head applied to its pre-logits features. The paper records z_old once before
    training; computing them on every batch is the same thing under augmentation.

    Simplification: the paper also trains the old task's head; here it stays frozen
    (the core trains the model's parameters only, and the source head is a separate
    module), so the distillation term acts on the shared backbone alone.
    Needs a backbone with a source head.
    """

    def __init__(self, params: LwFParams | None = None):
        self.params = params or LwFParams()
        self._hook = None

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        if backbone.source_head is None:
            raise UserInputError("lwf needs the backbone's source-task head, and this backbone has none; "
                                 "pick a backbone with a known source task, or use l2-sp")
        device = next(model.parameters()).device
        self._old = copy.deepcopy(model).eval().requires_grad_(False)
        self._source_head = copy.deepcopy(backbone.source_head).to(device).eval().requires_grad_(False)
        # The head's input is the pre-logits feature: catch it in the forward pass that
        # computes the task loss instead of running the network a second time. A closure,
        # not a bound method, so that copying the model does not copy the strategy.
        caught: dict[str, torch.Tensor] = {}
        self._caught = caught

        def catch(module: nn.Module, args: tuple) -> None:
            caught["features"] = args[0]

        self._hook = model.get_classifier().register_forward_pre_hook(catch)
        return train_only(model, all_names(model), "all")

    def penalty(self, model: nn.Module, images: torch.Tensor | None, logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor | None:
        features = self._caught.pop("features", None)
        if images is None or features is None:
            return None
        with torch.no_grad():
            old = self._source_head(pre_logits(self._old, images)).float()
        new = self._source_head(features).float()
        T = self.params.T
        kl = F.kl_div(F.log_softmax(new / T, 1), F.log_softmax(old / T, 1), log_target=True,
                      reduction="batchmean")
        return self.params.lam * T * T * kl

    def final_model(self, model: nn.Module) -> nn.Module:
        if self._hook is not None:  # training is over: stop catching features
            self._hook.remove()
            self._hook = None
        return model
