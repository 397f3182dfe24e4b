"""ftbench's built-in backbone: any timm model, with weights from timm's hub, a local
file or ftbench's pretraining cache. Registered through the `ftbench` entry-point
group like any third-party plugin.

The factory keeps what the model knew before fine-tuning (its source head, source
classes and source dataset) so the runner can measure forgetting, resets timm's
classifier to the target classes under the run seed, and splits the parameters into
depth-ordered layer groups (see `groups`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import Field, field_validator
from timm.data import resolve_model_data_config

import ftbench
from ftbench.components import Backbone, Component, Params
from ftbench.errors import BackboneError

from .groups import describe_groups, layer_groups
from .weights import (WEIGHT_SUFFIXES, Loaded, create_model, from_checkpoint, from_file, from_hub,
                      unknown_model_message)

__all__ = ["SourceDataset", "TimmParams", "make_timm", "describe_groups", "layer_groups"]


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


def _load(params: TimmParams) -> Loaded | None:
    """The model with its source head, or None for a random init."""
    source = params.pretrained
    if source == "none":
        return None
    if source == "hub":
        return from_hub(params.model, params.input_size)
    if source.startswith("ftbench:"):
        return from_checkpoint(params.model, source.removeprefix("ftbench:"), params.input_size)
    return from_file(params.model, source, params.input_size)


def _source_classes(params: TimmParams, loaded: Loaded, n_source: int) -> list[str] | None:
    if n_source == 0:
        return None
    classes = list(params.source_classes) if params.source_classes else loaded.classes
    classes = classes or [str(i) for i in range(n_source)]
    if len(classes) != n_source:
        raise BackboneError(f"source_classes names {len(classes)} classes but the weights' head has "
                            f"{n_source} outputs; list one name per output")
    return classes


def _data_config(model: torch.nn.Module, params: TimmParams, loaded: Loaded | None) -> dict[str, Any]:
    config = dict(resolve_model_data_config(model))
    if loaded is not None:
        config.update(loaded.data_config)
    if params.input_size:
        config["input_size"] = (3, params.input_size, params.input_size)
    config["input_size"] = tuple(config["input_size"])
    config["mean"], config["std"] = tuple(config["mean"]), tuple(config["std"])
    return config


def make_timm(params: TimmParams, *, num_classes: int, seed: int) -> Backbone:
    """A timm model with a fresh `num_classes` head (initialised under `seed`), its
    source head and classes when pretrained, its data config and layer groups."""
    loaded = _load(params)
    if loaded is None:
        torch.manual_seed(seed)  # a random init is part of the run, so the seed fixes it
        model = create_model(params.model, False, params.input_size)
        source_head, classes, dataset = None, None, None
    else:
        model = loaded.model
        n_source = getattr(model, "num_classes", 0)
        source_head = copy.deepcopy(model.get_classifier()) if n_source else None
        if source_head is not None:
            source_head.requires_grad_(False)
        classes = _source_classes(params, loaded, n_source)
        # the suite's word wins over what a checkpoint recorded
        dataset = ((params.source_dataset.name, dict(params.source_dataset.params))
                   if params.source_dataset else loaded.dataset)
    data_config = _data_config(model, params, loaded)
    torch.manual_seed(seed)  # the new head's init: the same for every strategy at this seed
    model.reset_classifier(num_classes)
    return Backbone(model=model, data_config=data_config, groups=layer_groups(model),
                    pretrained=loaded is not None, source_head=source_head,
                    source_dataset=dataset, source_classes=classes,
                    info={"model": params.model, "pretrained": params.pretrained,
                          "source": loaded.source if loaded else None,
                          "source_dataset": dataset[0] if dataset else None})


@ftbench.hookimpl
def ftbench_register_backbones() -> list[Component]:
    return [Component("timm", make_timm, TimmParams,
                      "any timm model; weights from timm's hub, a local file or ftbench's pretraining cache")]
