"""Freezing by depth: the first k layer groups (freeze), or all but one (surgical)."""

from __future__ import annotations


from torch import nn

from ftbench.components import Backbone
from ftbench.errors import UserInputError
from ftbench_strategies._common import FixedSelection, body_groups
from ftbench_strategies.params import FreezeParams, SurgicalParams


class Freeze(FixedSelection):
    """Partial fine-tuning: the first `k` layer groups stay at their pretrained values
    and the rest train (Yosinski et al. 2014, "How transferable are features in deep
    neural networks?"). k=0 is full fine-tuning."""

    def __init__(self, params: FreezeParams | None = None):
        self.params = params or FreezeParams()

    def select(self, model: nn.Module, backbone: Backbone) -> list[str]:
        k, n = self.params.k, len(backbone.groups)
        if k >= n:
            raise UserInputError(
                f"freeze: k={k} would freeze the head, but this backbone has {n} layer groups "
                f"({', '.join(g.name for g in backbone.groups)}); use k between 0 and {n - 1}")
        frozen = {name for group in backbone.groups[:k] for name in group.params}
        return [name for name, _ in model.named_parameters() if name not in frozen]


class Surgical(FixedSelection):
    """Surgical fine-tuning (Lee et al. 2023, "Surgical Fine-Tuning Improves Adaptation
    to Distribution Shifts"): only one layer group trains, with the new head. The paper
    finds the first block best for input-level shifts (corruptions) and later blocks for
    output-level shifts."""

    def __init__(self, params: SurgicalParams | None = None):
        self.params = params or SurgicalParams()

    def chosen(self, backbone: Backbone) -> int:
        """The index of the trained group in `backbone.groups`."""
        n, block = len(body_groups(backbone)), self.params.block
        if n == 0:
            raise UserInputError("surgical: the backbone has no layer groups below its head; use linear-probe")
        named = {"first": 0, "middle": (n - 1) // 2, "last": n - 1}
        if isinstance(block, str):
            return named[block]
        if not -n <= block < n:
            raise UserInputError(f"surgical: block={block} is out of range; this backbone has {n} groups below "
                                 f"the head ({', '.join(g.name for g in body_groups(backbone))}), "
                                 f"so use an index from {-n} to {n - 1}")
        return block % n

    def select(self, model: nn.Module, backbone: Backbone) -> list[str]:
        keep = set(backbone.groups[self.chosen(backbone)].params) | set(backbone.head_params)
        return [name for name, _ in model.named_parameters() if name in keep]
