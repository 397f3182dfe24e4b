"""A plugin for the core's tests: a tiny timm backbone, a generated learnable
dataset and a few strategies that misbehave on purpose. Registered by tests (and
importable by worker processes through `--plugin tests.toyplugin`)."""

from __future__ import annotations

import torch

import ftbench
from ftbench.components import Component, ImageSet, Params, Strategy, TaskData
from ftbench.testing import ToyBackboneParams, ToyDataParams, toy_backbone, toy_task


class RaisingStrategy(Strategy):
    def setup(self, model, backbone):
        raise RuntimeError("this strategy always fails")


class NanStrategy(Strategy):
    def penalty(self, model, images, logits, labels):
        return torch.tensor(float("nan"))


def flipped_task(params: ToyDataParams | None = None, *, seed: int = 0):
    """The toy bands with every test label moved to the next class: what wins on
    validation loses on test, so a selection that peeks at test shows."""
    task = toy_task(params, seed=seed)
    test = ImageSet(task.test.images, (task.test.labels + 1) % len(task.classes))
    return TaskData(classes=task.classes, train=task.train, test=test)


@ftbench.hookimpl
def ftbench_register_datasets():
    return [Component("toy", toy_task, ToyDataParams, "Generated bands (tests)."),
            Component("toy-flipped", flipped_task, ToyDataParams, "Toy bands, test labels flipped (tests).")]


@ftbench.hookimpl
def ftbench_register_backbones():
    return [Component("toy-timm", toy_backbone, ToyBackboneParams, "A timm test model (tests).")]


@ftbench.hookimpl
def ftbench_register_strategies():
    return [Component("toy-full", lambda p: Strategy(), Params, "Everything trains (tests)."),
            Component("toy-raise", lambda p: RaisingStrategy(), Params, "Always fails (tests)."),
            Component("toy-nan", lambda p: NanStrategy(), Params, "Always diverges (tests).")]
