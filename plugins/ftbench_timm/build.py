"""Building a timm backbone for a run: weights, source head, data config, layer groups."""

from __future__ import annotations

import copy
from typing import Any

import torch
from timm.data import resolve_model_data_config

from ftbench.components import Backbone
from ftbench.errors import BackboneError

from . import TimmParams
from .groups import layer_groups
from .weights import Loaded, create_model, from_checkpoint, from_file, from_hub


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
