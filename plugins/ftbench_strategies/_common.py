"""Helpers the strategies share: choosing what trains, and layer-group lookups."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from ftbench.components import Backbone, LayerGroup, ParamGroup, Strategy


def set_trainable(model: nn.Module, names: Iterable[str]) -> None:
    """`requires_grad` True for the named parameters, False for every other one."""
    wanted = set(names)
    for name, param in model.named_parameters():
        param.requires_grad_(name in wanted)


def all_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_parameters()]


def train_only(model: nn.Module, names: list[str], group: str) -> list[ParamGroup]:
    """Make exactly the named parameters trainable; one group of them at the run's rate."""
    set_trainable(model, names)
    return [ParamGroup(names, name=group)]


def body_groups(backbone: Backbone) -> list[LayerGroup]:
    """The layer groups below the head, stem first."""
    return backbone.groups[:-1]


def depth_from_top(backbone: Backbone) -> dict[str, int]:
    """Parameter name -> its group's distance from the head (head 0, the group below it 1, ...)."""
    top = len(backbone.groups) - 1
    return {name: top - i for i, group in enumerate(backbone.groups) for name in group.params}


class FixedSelection(Strategy):
    """A strategy that trains one fixed set of parameters for the whole run."""

    def select(self, model: nn.Module, backbone: Backbone) -> list[str]:
        """The names of the parameters that train (in `model.named_parameters()` order)."""
        raise NotImplementedError

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        return train_only(model, self.select(model, backbone), "trainable")
