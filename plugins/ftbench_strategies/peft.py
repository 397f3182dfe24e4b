"""PEFT: any method of Hugging Face's `peft` library on a timm backbone.

`method` picks the PEFT config class (lora, loha, lokr, ia3, boft, vera, ...),
`config` holds that class's own fields (r, lora_alpha, ...), and `target` says
which backbone layers get adapters: linear, conv or all plain layers outside the
head, or an explicit list of module names. The new head trains fully; everything
else stays frozen. `final_model` merges the adapters into the weights where the
method supports it, so the evaluated model has the original architecture.
"""

from __future__ import annotations

import copy

from torch import nn

from ftbench.components import Backbone, ParamGroup, Strategy
from ftbench.errors import UserInputError
from ftbench_strategies._common import train_only
from ftbench_strategies.params import PeftParams, make_config, peft_methods  # noqa: F401  (re-exported)

_KINDS = {"linear": (nn.Linear,), "conv": (nn.Conv2d,), "all": (nn.Linear, nn.Conv2d)}


def plain_layers(model: nn.Module, backbone: Backbone, target: str) -> list[str]:
    """Names of plain (ungrouped) linear/conv layers outside the head. Subclasses with
    their own forward (timm's Conv2dSame) and grouped or depthwise convolutions are
    left out: adapters assume an ordinary layer."""
    head = set(backbone.head_params)
    names = []
    for name, module in model.named_modules():
        if type(module) not in _KINDS[target] or any(f"{name}.{p}" in head for p, _ in module.named_parameters()):
            continue
        if isinstance(module, nn.Conv2d) and module.groups != 1:
            continue
        names.append(name)
    return names


class Peft(Strategy):
    """A PEFT method (LoRA: Hu et al. 2022; LoHa: Hyeon-Woo et al. 2022; LoKr:
    Yeh et al. 2023; IA3: Liu et al. 2022; BOFT: Liu et al. 2024; VeRA: Kopiczko
    et al. 2024) injected into the backbone's layers in place by
    `peft.get_peft_model`. Parameter names of adapted layers change
    (`layer.weight` becomes `layer.base_layer.weight`, plus the adapter's own).
    `wrapped` lists the adapted layers."""

    def __init__(self, params: PeftParams | None = None):
        self.params = params or PeftParams()
        self.peft = self.params  # what peft gets: `lora` keeps its own params and sets this
        self.wrapped: list[str] = []

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        from peft import get_peft_model

        p = self.peft
        names = plain_layers(model, backbone, p.target) if isinstance(p.target, str) else list(p.target)
        if not names:
            raise UserInputError(f"peft: the backbone has no plain {p.target} layers to adapt "
                                 "(grouped convolutions are skipped); try target: all, or name the layers")
        missing = [n for n in names if not _has(model, n)]
        if missing:
            raise UserInputError(f"peft: no module named {', '.join(missing)} in the backbone; "
                                 "give names from model.named_modules()")
        head = set(backbone.head_params)
        before = {n for n, _ in model.named_parameters()}
        try:
            # The wrapper is dropped: peft adapts `model`'s layers in place, and the
            # adapted layers hold everything they need (VeRA's shared matrices too).
            get_peft_model(model, make_config(p, names))
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise UserInputError(f"peft {p.method} cannot adapt these layers: {exc}") from None
        self.wrapped = names
        # New parameters are the adapters' (the base layers' come back as `*.base_layer.*`).
        trainable = [n for n, _ in model.named_parameters()
                     if n in head or (n not in before and ".base_layer." not in n)]
        return train_only(model, trainable, f"{p.method}+head")

    def final_model(self, model: nn.Module) -> nn.Module:
        """A copy with each adapter merged into its base layer and the wrapper
        removed; layers whose method cannot merge keep their adapter."""
        if not self.peft.merge:
            return model
        from peft.tuners.tuners_utils import BaseTunerLayer

        merged = copy.deepcopy(model)
        for name, module in list(merged.named_modules()):
            if not isinstance(module, BaseTunerLayer):
                continue
            try:
                module.merge()
            except (NotImplementedError, ValueError, TypeError):
                continue
            _replace(merged, name, module.get_base_layer())
        return merged


def _has(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
        return True
    except AttributeError:
        return False


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)
