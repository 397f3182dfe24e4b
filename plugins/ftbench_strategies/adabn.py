"""AdaBN: batch-norm statistics re-estimated on the unlabelled target domain."""

from __future__ import annotations

import copy
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from ftbench.components import Backbone, ParamGroup, Params, Strategy, UnlabelledData
from ftbench.errors import UserInputError
from ftbench_strategies._common import all_names, train_only


class AdaBNParams(Params):
    train: Literal["full", "head", "none"] = Field(
        "full", description="what fine-tunes on the labelled data before the statistics are re-estimated: "
                            "'full' (every parameter), 'head' (a linear probe) or 'none' (the pretrained "
                            "model and its new head, untrained)")
    max_images: int | None = Field(None, ge=1, description="re-estimate on at most this many unlabelled images "
                                                           "(default all)")


def _batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def reestimate_bn(model: nn.Module, data: UnlabelledData, max_images: int | None = None) -> nn.Module:
    """A copy of `model` whose batch-norm running mean and variance are re-estimated
    on `data`: the average of the batch statistics (momentum None, as torch's
    `swa_utils.update_bn`; the norms in train mode, every other module in eval mode,
    so dropout stays off). Every weight and every other buffer stays as it was."""
    adapted = copy.deepcopy(model)
    adapted.eval()
    norms = _batch_norms(adapted)
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()  # only the norms: dropout and the like stay in eval mode
    for batch in data.in_order(max_images):
        adapted(batch)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    return adapted.eval()


class AdaBN(Strategy):
    """AdaBN (Li, Wang, Shi, Liu & Hou 2016/2018, "Revisiting Batch Normalization For
    Practical Domain Adaptation"): the network trained on labelled data is adapted to
    the target domain by replacing every batch-norm layer's running mean and variance
    with the target domain's own, computed on its unlabelled images; no weight
    changes. Here the statistics are re-estimated AFTER fine-tuning on the labelled
    target-task data (`train: full`, the default; `head`: after a linear probe), or
    on the pretrained model with its untrained new head (`train: none`, then only the
    statistics differ from the starting model). The evaluated model carries the
    target-domain statistics, so its in-distribution test accuracy is measured with
    them too (the paper's trade-off). Needs a suite `adapt:` and a model with batch norm.
    """

    wants_unlabelled = True

    def __init__(self, params: AdaBNParams | None = None):
        self.params = params or AdaBNParams()
        self._data: UnlabelledData | None = None

    def use_unlabelled(self, data: UnlabelledData) -> None:
        self._data = data

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        if not _batch_norms(model):
            raise UserInputError("adabn re-estimates batch-norm statistics, and this model has no batch norm; "
                                 "pick a backbone with batch norm (ResNets), or another adaptation strategy")
        if self.params.train == "full":
            return train_only(model, all_names(model), "all")
        # 'none' still needs a group for the optimiser: the head, at learning-rate scale 0
        groups = train_only(model, backbone.head_params, "head")
        if self.params.train == "none":
            groups[0].lr_scale = 0.0
        return groups

    def final_model(self, model: nn.Module) -> nn.Module:
        if self._data is None:
            raise UserInputError("adabn got no unlabelled target data; add `adapt:` to the dataset entry")
        return reestimate_bn(model, self._data, self.params.max_images)
