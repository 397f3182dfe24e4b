"""Discriminative learning rates: lower rates for deeper-down layer groups."""

from __future__ import annotations


import torch
from torch import nn

from ftbench.components import Backbone, ParamGroup, Params, Strategy, TrainState
from ftbench_strategies._common import depth_from_top
from ftbench_strategies.bitfit import BitFit, BitFitParams
from ftbench_strategies.freeze import Freeze, FreezeParams, Surgical, SurgicalParams
from ftbench_strategies.full import Full, FullParams
from ftbench_strategies.gradual_unfreeze import GradualUnfreeze, GradualUnfreezeParams
from ftbench_strategies.l2_sp import L2SP, L2SPParams
from ftbench_strategies.lp_ft import LPFT, LPFTParams
from ftbench_strategies.lwf import LwF, LwFParams
from ftbench_strategies.wise_ft import WiSEFT, WiSEFTParams
from ftbench_strategies.params import DiscriminativeLRParams

#: Strategies that can decide what trains under discriminative rates. LoRA is not one:
#: its adapters are new parameters that the backbone's layer groups do not name.
BASES: dict[str, tuple[type[Strategy], type[Params]]] = {
    "full": (Full, FullParams),
    "freeze": (Freeze, FreezeParams),
    "surgical": (Surgical, SurgicalParams),
    "gradual-unfreeze": (GradualUnfreeze, GradualUnfreezeParams),
    "lp-ft": (LPFT, LPFTParams),
    "bitfit": (BitFit, BitFitParams),
    "l2-sp": (L2SP, L2SPParams),
    "lwf": (LwF, LwFParams),
    "wise-ft": (WiSEFT, WiSEFTParams),
}


class DiscriminativeLR(Strategy):
    """Discriminative fine-tuning (Howard & Ruder 2018, ULMFiT): the head trains at the
    run's rate and each layer group below it at 1/`factor` of the rate of the group
    above (ULMFiT's 2.6). Mode `layer-decay` is the layer-wise decay of BEiT (Bao et
    al. 2022): scale = decay ** depth, depth counted in layer groups below the head.

    Composable: `base` names the strategy that decides what trains, when, and with
    which penalty (e.g. gradual-unfreeze for the full ULMFiT recipe); its parameter
    groups are split by layer group and their scales multiplied by the depth scale.
    Parameters outside every layer group keep the base's scale. `base` holds the
    wrapped strategy instance.
    """

    def __init__(self, params: DiscriminativeLRParams | None = None):
        self.params = params or DiscriminativeLRParams()
        cls, params_cls = BASES[self.params.base]
        self.base = cls(params_cls.model_validate(self.params.base_params))

    def depth_scale(self, depth: int) -> float:
        p = self.params
        return p.decay ** depth if p.mode == "layer-decay" else p.factor ** -depth

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        depth, top = depth_from_top(backbone), len(backbone.groups) - 1
        out: list[ParamGroup] = []
        for group in self.base.setup(model, backbone):
            split: dict[int | None, list[str]] = {}
            for name in group.params:
                split.setdefault(depth.get(name), []).append(name)
            for d, params in split.items():
                label = backbone.groups[top - d].name if d is not None else "other"
                scale = group.lr_scale * (self.depth_scale(d) if d is not None else 1.0)
                out.append(ParamGroup(params, lr_scale=scale,
                                      name=f"{group.name}/{label}" if group.name else label))
        return out

    def on_progress(self, model: nn.Module, state: TrainState) -> None:
        self.base.on_progress(model, state)

    def penalty(self, model: nn.Module, images: torch.Tensor | None, logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor | None:
        return self.base.penalty(model, images, logits, labels)

    def eval_models(self, model: nn.Module) -> dict[str, nn.Module]:
        return self.base.eval_models(model)

    def final_model(self, model: nn.Module) -> nn.Module:
        return self.base.final_model(model)
