"""A planted slowdown for benchmarks/gate_under_load.py: `slow-full` is full
fine-tuning whose penalty runs the model once more per step (about 2x the work)."""

from __future__ import annotations

import ftbench
from ftbench.components import Component, Params, Strategy


class SlowFull(Strategy):
    def penalty(self, model, images, logits, labels):
        if images is None:
            return None
        return 0.0 * model(images).sum()  # a second forward and backward: twice the work, same result


@ftbench.hookimpl
def ftbench_register_strategies():
    return [Component("slow-full", lambda params: SlowFull(), Params, "Full fine-tuning, twice the work per step.")]
