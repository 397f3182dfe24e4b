"""LoRA: low-rank adapters beside the frozen linear and convolution layers."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ftbench.components import Backbone, ParamGroup, Strategy
from ftbench.errors import UserInputError
from ftbench_strategies._common import train_only
from ftbench_strategies.params import LoRAParams


class LoRALayer(nn.Module):
    """A frozen `base` layer plus scale * B(A(x)), B zero-initialised so the wrapped
    layer starts out equal to the base. For a convolution A has the base's kernel,
    stride, padding and dilation with `rank` outputs, and B is a 1x1 convolution."""

    def __init__(self, base: nn.Linear | nn.Conv2d, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        if isinstance(base, nn.Linear):
            self.lora_A = nn.Linear(base.in_features, rank, bias=False)
            self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        else:
            self.lora_A = nn.Conv2d(base.in_channels, rank, base.kernel_size, base.stride, base.padding,
                                    base.dilation, bias=False, padding_mode=base.padding_mode)
            self.lora_B = nn.Conv2d(rank, base.out_channels, 1, bias=False)
        # As in Hu et al.: A random (Kaiming-uniform, torch's default), B zero.
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.lora_A.to(base.weight.device, base.weight.dtype)
        self.lora_B.to(base.weight.device, base.weight.dtype)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.lora_B(self.lora_A(self.dropout(x)))

    @torch.no_grad()
    def merged(self) -> nn.Module:
        """A copy of the base layer whose weight includes the adapter's update."""
        out = copy.deepcopy(self.base)
        a, b = self.lora_A.weight, self.lora_B.weight.flatten(1)  # b: [out, rank]
        # Conv: B(A(x)) is one convolution with kernel sum_r B[o, r] * A[r, i, :, :].
        delta = b @ a if a.ndim == 2 else torch.einsum("or,rikl->oikl", b, a)
        out.weight.add_(self.scale * delta.to(out.weight.dtype))
        return out


def _targets(model: nn.Module, backbone: Backbone, target: str) -> list[str]:
    """Names of the backbone's modules to wrap: plain (ungrouped) linear/conv layers
    outside the head. Subclasses with their own forward (timm's Conv2dSame) and grouped
    or depthwise convolutions are left as they are."""
    head = set(backbone.head_params)
    kinds = {"linear": (nn.Linear,), "conv": (nn.Conv2d,), "all": (nn.Linear, nn.Conv2d)}[target]
    names = []
    for name, module in model.named_modules():
        if type(module) not in kinds or any(f"{name}.{p}" in head for p, _ in module.named_parameters()):
            continue
        if isinstance(module, nn.Conv2d) and module.groups != 1:
            continue
        names.append(name)
    return names


class LoRA(Strategy):
    """LoRA (Hu et al. 2022, "LoRA: Low-Rank Adaptation of Large Language Models"),
    applied to vision backbones: every targeted backbone layer is frozen and gets a
    trainable low-rank update scale * B @ A (scale = alpha / rank); the new head trains
    fully; everything else (norms, biases, embeddings) stays frozen. `final_model`
    returns a copy with the updates merged into the weights, so the evaluated model has
    the original architecture and cost.

    `setup` replaces the layers in place: the model's parameter names change
    (`layer.weight` becomes `layer.base.weight`, plus `layer.lora_A.weight` and
    `layer.lora_B.weight`). `wrapped` lists the wrapped layers.
    """

    def __init__(self, params: LoRAParams | None = None):
        self.params = params or LoRAParams()
        self.wrapped: list[str] = []

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        p = self.params
        self.wrapped = _targets(model, backbone, p.target)
        if not self.wrapped:
            raise UserInputError(f"lora: the backbone has no plain {p.target} layers to adapt "
                                 "(grouped convolutions are skipped); try target: all, or another strategy")
        for name in self.wrapped:
            _replace(model, name, LoRALayer(model.get_submodule(name), p.rank, p.alpha, p.dropout))
        head = set(backbone.head_params)
        adapters = {f"{w}.lora_{ab}.weight" for w in self.wrapped for ab in "AB"}
        names = [n for n, _ in model.named_parameters() if n in head or n in adapters]
        return train_only(model, names, "lora+head")

    def final_model(self, model: nn.Module) -> nn.Module:
        merged = copy.deepcopy(model)
        for name in self.wrapped:
            _replace(merged, name, merged.get_submodule(name).merged())
        return merged


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, module)
