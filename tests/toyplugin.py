"""A plugin for the core's tests: a tiny timm backbone, a generated learnable
dataset and a few strategies that misbehave on purpose. Registered by tests (and
importable by worker processes through `--plugin tests.toyplugin`)."""

from __future__ import annotations

import timm
import torch
from pydantic import Field

import ftbench
from ftbench.components import Backbone, Component, ImageSet, LayerGroup, Params, Strategy, TaskData


class ToyDataParams(Params):
    n_per_class: int = Field(24, ge=1)
    classes: int = Field(3, ge=2, le=6)
    size: int = Field(16, ge=8)


def toy_images(n_per_class: int, classes: int, size: int, seed: int) -> ImageSet:
    """Class c is a bright horizontal band at height c plus noise: learnable in a few steps."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    images = torch.randint(0, 60, (len(labels), 3, size, size), generator=gen)
    band = size // classes
    for c in range(classes):
        images[labels == c, :, c * band:(c + 1) * band, :] += 180
    return ImageSet(images.clamp(0, 255).to(torch.uint8), labels)


def make_toy_data(params: ToyDataParams, *, seed: int) -> TaskData:
    """Generated bands, one per class."""
    classes = [f"band{c}" for c in range(params.classes)]
    return TaskData(classes=classes, train=toy_images(params.n_per_class, params.classes, params.size, 1),
                    test=toy_images(max(4, params.n_per_class // 2), params.classes, params.size, 2))


class ToyBackboneParams(Params):
    model: str = "test_resnet"
    pretrained: str = "none"


def make_toy_backbone(params: ToyBackboneParams, *, num_classes: int, seed: int) -> Backbone:
    """A timm test model with random weights; groups are its top-level children."""
    torch.manual_seed(seed)
    model = timm.create_model(params.model, pretrained=False, num_classes=num_classes)
    head = {f"{n}" for n, _ in model.named_parameters()
            if any(n.startswith(prefix) for prefix in ("fc.", "head.", "classifier."))}
    groups: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        if name not in head:
            groups.setdefault(name.split(".")[0], []).append(name)
    layer_groups = [LayerGroup(k, v) for k, v in groups.items()] + [LayerGroup("head", sorted(head))]
    return Backbone(model=model, data_config={"input_size": (3, 16, 16), "mean": (0.5,) * 3, "std": (0.5,) * 3},
                    groups=layer_groups, pretrained=False)


class RaisingStrategy(Strategy):
    def setup(self, model, backbone):
        raise RuntimeError("this strategy always fails")


class NanStrategy(Strategy):
    def penalty(self, model, images, logits, labels):
        return torch.tensor(float("nan"))


@ftbench.hookimpl
def ftbench_register_datasets():
    return [Component("toy", make_toy_data, ToyDataParams, "Generated bands (tests).")]


@ftbench.hookimpl
def ftbench_register_backbones():
    return [Component("toy-timm", make_toy_backbone, ToyBackboneParams, "A timm test model (tests).")]


@ftbench.hookimpl
def ftbench_register_strategies():
    return [Component("toy-full", lambda p: Strategy(), Params, "Everything trains (tests)."),
            Component("toy-raise", lambda p: RaisingStrategy(), Params, "Always fails (tests)."),
            Component("toy-nan", lambda p: NanStrategy(), Params, "Always diverges (tests).")]
