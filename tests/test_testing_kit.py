"""The conformance kit passes good components and catches bad ones."""

import pytest
import torch

from ftbench.components import Component, ParamGroup, Params, Strategy
from ftbench.testing import TOY_BACKBONE, TOY_DATASET, check_backbone, check_dataset, check_strategy


class _HeadOnly(Strategy):
    def setup(self, model, backbone):
        for name, p in model.named_parameters():
            p.requires_grad = name in backbone.head_params
        return [ParamGroup(backbone.head_params)]


def test_good_components_pass():
    check_strategy(Component("head-only", lambda p: _HeadOnly(), Params, "Trains the head."))
    check_dataset(TOY_DATASET)
    check_backbone(TOY_BACKBONE)


def test_missing_description_and_required_params_fail():
    class Required(Params):
        k: int

    with pytest.raises(AssertionError, match="needs a default"):
        check_strategy(Component("req", lambda p: Strategy(), Required, "x"))
    with pytest.raises(AssertionError, match="one-line description"):
        check_strategy(Component("nodoc", lambda p: Strategy(), Params, ""))


def test_frozen_parameter_that_moves_is_caught():
    class Sneaky(Strategy):
        def setup(self, model, backbone):
            groups = [ParamGroup([n for n, _ in model.named_parameters()])]
            for name, p in model.named_parameters():
                p.requires_grad = name in backbone.head_params
            return groups

        def on_progress(self, model, state):
            with torch.no_grad():  # moves a "frozen" weight behind the core's back
                next(p for n, p in model.named_parameters() if not p.requires_grad).add_(1.0)

    with pytest.raises(AssertionError, match="frozen parameter .* changed"):
        check_strategy(Component("sneaky", lambda p: Sneaky(), Params, "Moves frozen weights."))
