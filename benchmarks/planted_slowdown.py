"""A planted slowdown for benchmarks/gate_under_load.py: `slow-full` is full
fine-tuning whose penalty runs the model once more (forward and backward) on a
share `extra` of the steps, spread evenly. Measured against plain full on
test_resnet at 16 px (benchmarks/gate_under_load.py, idle): extra 0.5 1.34x, 0.8
1.45x and 1.54x in two runs. The result is unchanged (the extra term is 0 times)."""

from __future__ import annotations

import math

from pydantic import Field

import ftbench
from ftbench.components import Component, Params, Strategy


class SlowParams(Params):
    extra: float = Field(1.0, ge=0, le=1, description="Share of steps that run the model a second time.")


class SlowFull(Strategy):
    def __init__(self, extra: float):
        self.extra, self.steps = extra, 0

    def penalty(self, model, images, logits, labels):
        if images is None:
            return None
        i, self.steps = self.steps, self.steps + 1
        if math.floor((i + 1) * self.extra) == math.floor(i * self.extra):
            return None
        return 0.0 * model(images).sum()  # a second forward and backward: more work, same result


@ftbench.hookimpl
def ftbench_register_strategies():
    return [Component("slow-full", lambda params: SlowFull(params.extra), SlowParams,
                      "Full fine-tuning, with a second pass of the model on a share `extra` of the steps.")]
