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
from typing import Any, Literal

from pydantic import Field, model_validator
from torch import nn

from ftbench.components import Backbone, ParamGroup, Params, Strategy
from ftbench.errors import UserInputError
from ftbench_strategies._common import train_only

_KINDS = {"linear": (nn.Linear,), "conv": (nn.Conv2d,), "all": (nn.Linear, nn.Conv2d)}


def peft_methods() -> dict[str, type]:
    """Lower-case method name -> peft config class, for every method this peft has."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    return {str(getattr(k, "value", k)).lower(): v for k, v in PEFT_TYPE_TO_CONFIG_MAPPING.items()}


class PeftParams(Params):
    method: str = Field("lora", description="peft method: lora, loha, lokr, ia3, boft, vera, ... "
                                            "(any key of peft's PEFT_TYPE_TO_CONFIG_MAPPING)")
    config: dict[str, Any] = Field(default_factory=dict,
                                   description="the method's peft config fields, e.g. {r: 4, lora_alpha: 8}")
    target: Literal["linear", "conv", "all"] | list[str] = Field(
        "all", description="layers that get adapters: plain nn.Linear, nn.Conv2d or both outside the head, "
                           "or a list of module names")
    merge: bool = Field(True, description="merge adapters into the weights for evaluation where supported")

    @model_validator(mode="after")
    def _known_method_and_fields(self) -> "PeftParams":
        try:
            methods = peft_methods()
        except ImportError:
            raise ValueError("the peft strategy needs the peft package: pip install 'ftbench[peft]'") from None
        if self.method not in methods:
            raise ValueError(f"unknown peft method '{self.method}'; choose one of {', '.join(sorted(methods))}")
        if "target_modules" in self.config:
            raise ValueError("give the layers as `target`, not config.target_modules")
        try:
            make_config(self, ["probe"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"peft {self.method} config: {exc}") from None
        return self


def make_config(params: PeftParams, targets: list[str]):
    """The peft config object for `params` with these target module names. IA3
    gets `feedforward_modules: []` unless given (scale every layer's output) since
    a vision backbone has no layer peft knows as feed-forward."""
    defaults = {"feedforward_modules": []} if params.method == "ia3" else {}
    return peft_methods()[params.method](target_modules=targets, **{**defaults, **params.config})


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
