"""The parameter schemas of the built-in strategies, apart from the strategies
themselves: `ftbench list` and `ftbench validate` read them without importing torch.
Each strategy module re-exports its own.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np  # the default C grid of feature-extract (numpy, not torch)
from pydantic import ConfigDict, Field, field_validator, model_validator

from ftbench.components import Params


class FullParams(Params):
    """Full fine-tuning takes no parameters."""


class LinearProbeParams(Params):
    """Linear probing takes no parameters."""


class ScratchParams(Params):
    init_seed: int | None = Field(
        None, ge=0, description="seed of the re-initialisation; default: the run's random state (the runner "
                                "seeds it with the run's seed, so each seed gets its own initialisation)")


class FreezeParams(Params):
    k: int = Field(1, ge=0, description="number of leading layer groups (stem first) kept frozen; "
                                        "must be below the number of groups, the head always trains")


class SurgicalParams(Params):
    block: Literal["first", "middle", "last"] | int = Field(
        "first", description="the layer group below the head that trains: first, middle or last, or its "
                             "index (0 = the stem; negative counts from the head)")


class GradualUnfreezeParams(Params):
    interval: float | None = Field(
        None, gt=0, le=1, description="fraction of the budget between two unfreezings; default 1/(number of "
                                      "layer groups), so the last group thaws for the last such fraction")


class LPFTParams(Params):
    lp_fraction: float = Field(0.5, gt=0, lt=1, description="fraction of the budget spent training the head only")
    ft_lr_scale: float = Field(1.0, gt=0, description="learning-rate multiplier of the backbone, which only "
                                                      "trains in the fine-tuning phase")
    restart_schedule: bool = Field(True, description="each phase runs the whole learning-rate schedule (warm-up, "
                                                     "decay), as in the paper; false: one schedule across both")


class L2SPParams(Params):
    alpha: float = Field(0.01, ge=0, description="weight of alpha/2 * ||w - w0||^2 over the backbone's "
                                                 "parameters, w0 their pretrained values")
    beta: float = Field(0.01, ge=0, description="weight of beta/2 * ||w||^2 over the head's parameters")


class WiSEFTParams(Params):
    alphas: tuple[float, ...] = Field(
        (0.0, 0.25, 0.5, 0.75, 1.0),
        description="mixing coefficients: each evaluates (1 - alpha) * start + alpha * fine-tuned")

    @field_validator("alphas")
    @classmethod
    def _unit_interval(cls, alphas: tuple[float, ...]) -> tuple[float, ...]:
        if not alphas:
            raise ValueError("give at least one alpha")
        if any(not 0 <= a <= 1 for a in alphas):
            raise ValueError(f"every alpha must lie in [0, 1], got {list(alphas)}")
        if len(set(alphas)) != len(alphas):
            raise ValueError(f"alphas repeat: {list(alphas)}")
        return alphas


class BitFitParams(Params):
    """BitFit takes no parameters."""


class LoRAParams(Params):
    rank: int = Field(4, ge=1, description="rank r of each adapter")
    alpha: float = Field(8.0, gt=0, description="adapter output scale numerator: updates are scaled by alpha / rank")
    target: Literal["linear", "conv", "all"] = Field(
        "all", description="which backbone layers get adapters: nn.Linear, nn.Conv2d, or both")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter's input")


class LwFParams(Params):
    # `lambda` is a Python keyword: the field is `lam`, written and recorded as `lambda`.
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    lam: float = Field(1.0, ge=0, alias="lambda",
                       description="weight of the distillation loss on the source task's outputs")
    T: float = Field(2.0, gt=0, description="distillation temperature")


#: Parameters of the strategies that can decide what trains under discriminative rates.
#: LoRA is not one: its adapters are new parameters that the backbone's layer groups do not name.
BASE_PARAMS: dict[str, type[Params]] = {
    "full": FullParams,
    "freeze": FreezeParams,
    "surgical": SurgicalParams,
    "gradual-unfreeze": GradualUnfreezeParams,
    "lp-ft": LPFTParams,
    "bitfit": BitFitParams,
    "l2-sp": L2SPParams,
    "lwf": LwFParams,
    "wise-ft": WiSEFTParams,
}


class DiscriminativeLRParams(Params):
    mode: Literal["ulmfit", "layer-decay"] = Field(
        "ulmfit", description="ulmfit: each group down from the head divides the rate by `factor`; "
                              "layer-decay: multiplies it by `decay` (BEiT style)")
    factor: float = Field(2.6, ge=1, description="ulmfit: rate of a group = rate of the group above / factor")
    decay: float = Field(0.65, gt=0, le=1, description="layer-decay: rate scale = decay ** (groups below the head)")
    base: Literal[tuple(BASE_PARAMS)] = Field(  # type: ignore[valid-type]
        "full", description="the strategy that decides what trains; its groups are then rescaled by depth")
    base_params: dict[str, Any] = Field(default_factory=dict, description="parameters of the base strategy")

    @model_validator(mode="after")
    def _consistent(self) -> "DiscriminativeLRParams":
        unused = {"ulmfit": "decay", "layer-decay": "factor"}[self.mode]
        if unused in self.model_fields_set:
            raise ValueError(f"`{unused}` does not apply to mode {self.mode}; remove it or change the mode")
        BASE_PARAMS[self.base].model_validate(self.base_params)  # errors name the base's bad keys
        return self


class AdaBNParams(Params):
    train: Literal["full", "head", "none"] = Field(
        "full", description="what fine-tunes on the labelled data before the statistics are re-estimated: "
                            "'full' (every parameter), 'head' (a linear probe) or 'none' (the pretrained "
                            "model and its new head, untrained)")
    max_images: int | None = Field(None, ge=1, description="re-estimate on at most this many unlabelled images "
                                                           "(default all)")


class DANNParams(Params):
    weight: float = Field(1.0, ge=0, description="weight of the domain loss (the paper's lambda at the "
                                                 "end of the ramp)")
    ramp: bool = Field(True, description="ramp the reversal's strength as 2 / (1 + exp(-10 p)) - 1 over the "
                                         "budget's progress p, as the paper does (False: full strength throughout)")
    hidden: int = Field(256, ge=1, description="width of the domain classifier's two hidden layers "
                                               "(1024 in the paper)")


class FeatureExtractParams(Params):
    classifier: Literal["logreg", "knn"] = Field(
        "logreg", description="'logreg': multinomial logistic regression (L-BFGS), C chosen on val; "
                              "'knn': k nearest neighbours, k chosen on val")
    C_grid: tuple[float, ...] = Field(tuple(float(c) for c in np.logspace(-4, 4, 9)),
                                      description="inverse regularisation strengths tried (a log grid)")
    k_grid: tuple[int, ...] = Field((1, 5, 10, 20), description="neighbour counts tried (knn)")
    standardize: bool = Field(True, description="scale each feature to zero mean, unit variance on the "
                                                "training features first (folded into the head)")
    max_iter: int = Field(1000, ge=1, description="L-BFGS iterations per fit")

    @field_validator("C_grid", "k_grid")
    @classmethod
    def _positive(cls, grid: tuple) -> tuple:
        if not grid or any(v <= 0 for v in grid):
            raise ValueError(f"give at least one value, each above 0; got {list(grid)}")
        return grid


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
