"""LoRA: the `peft` strategy with method lora, under its own name and parameters.

This was a hand-written LoRA; peft's LoRA on the same layers has the same
trainable parameters, the same initialisation (A Kaiming-uniform, B zero; a
convolution's A keeps the base kernel, stride and padding, B is 1x1) and merges
exactly (tests/test_peft.py checks both), so peft does the work now.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ftbench.components import Params
from ftbench_strategies.peft import Peft, PeftParams


class LoRAParams(Params):
    rank: int = Field(4, ge=1, description="rank r of each adapter")
    alpha: float = Field(8.0, gt=0, description="adapter output scale numerator: updates are scaled by alpha / rank")
    target: Literal["linear", "conv", "all"] = Field(
        "all", description="which backbone layers get adapters: nn.Linear, nn.Conv2d, or both")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter's input")


def as_peft(params: LoRAParams) -> PeftParams:
    return PeftParams(method="lora", target=params.target,
                      config={"r": params.rank, "lora_alpha": params.alpha, "lora_dropout": params.dropout})


class LoRA(Peft):
    """LoRA (Hu et al. 2022, "LoRA: Low-Rank Adaptation of Large Language Models"),
    applied to vision backbones: every targeted plain linear/conv layer outside the
    head is frozen and gets a trainable low-rank update (alpha / rank) * B @ A; the
    new head trains fully; everything else stays frozen. `final_model` merges the
    updates, so the evaluated model has the original architecture and cost."""

    def __init__(self, params: LoRAParams | None = None):
        params = params or LoRAParams()
        super().__init__(as_peft(params))
        self.params = params
