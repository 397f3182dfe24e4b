"""ftbench's built-in backbone: any timm model, with weights from timm's hub, a local
file or ftbench's pretraining cache. Registered through the `ftbench` entry-point
group like any third-party plugin.

The factory keeps what the model knew before fine-tuning (its source head, source
classes and source dataset) so the runner can measure forgetting, resets timm's
classifier to the target classes under the run seed, and splits the parameters into
depth-ordered layer groups (see `groups`).
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import Field, field_validator

import ftbench
from ftbench.components import Component, Params, lazy

from .names import WEIGHT_SUFFIXES, check_timm, unknown_model_message

__all__ = ["SourceDataset", "TimmParams", "make_timm", "describe_groups", "layer_groups"]

#: What lives in a module that imports torch and timm, imported on first access.
_LAZY = {"make_timm": "build", "describe_groups": "groups", "layer_groups": "groups"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SourceDataset(Params):
    name: str = Field(description="a dataset component, e.g. imagefolder")
    params: dict[str, Any] = Field(default_factory=dict, description="its params")


class TimmParams(Params):
    model: str = Field(description="a timm.create_model name, e.g. resnet18 or resnet18.a1_in1k")
    pretrained: str = Field("hub", description="'hub' (timm's weights; needs network or a warm Hugging Face "
                                               "cache), 'none' (random init), a .safetensors/.pth/.pt file, or "
                                               "'ftbench:<key>' (a checkpoint `ftbench pretrain` built)")
    input_size: int | None = Field(None, ge=8, le=2048, description="input height and width; default from "
                                                                   "the weights' config (timm or checkpoint)")
    source_dataset: SourceDataset | None = Field(None, description="the dataset the weights were trained on "
                                                                   "({name, params}), to measure forgetting; "
                                                                   "ftbench checkpoints record their own")
    source_classes: tuple[str, ...] | None = Field(None, description="class names of the weights' head; default: "
                                                                     "ImageNet's for hub ImageNet models, the "
                                                                     "checkpoint's, else '0', '1', ...")

    @field_validator("model")
    @classmethod
    def _known(cls, value: str) -> str:
        message = unknown_model_message(value)
        if message:
            raise ValueError(message)
        return value

    @field_validator("pretrained")
    @classmethod
    def _source(cls, value: str) -> str:
        if value in ("none", "hub") or value.lower().endswith(WEIGHT_SUFFIXES):
            return value
        if value.startswith("ftbench:") and len(value) > len("ftbench:"):
            return value
        raise ValueError(f"pretrained must be 'none', 'hub', 'ftbench:<key>' or a weights file ending in "
                         f"{', '.join(WEIGHT_SUFFIXES)}; got {value!r}")


@ftbench.hookimpl
def ftbench_register_backbones() -> list[Component]:
    return [Component("timm", lazy(f"{__name__}.build:make_timm"), TimmParams,
                      "any timm model; weights from timm's hub, a local file or ftbench's pretraining cache",
                      check=check_timm)]
