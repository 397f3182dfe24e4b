"""Strategies that misbehave the way a flaky machine or a careless plugin does, for
tests/test_hardening.py (loaded by worker processes as `--plugin tests.hardplugin`)."""

from __future__ import annotations

import os
import sys
import time

import ftbench
from ftbench.components import Component, Params, Strategy


class SleepParams(Params):
    seconds: float = 30.0


class DieParams(Params):
    code: int = 1


class _Die(Strategy):
    """Kills its process at the first training step, as the OOM killer would."""

    def __init__(self, params: DieParams):
        self.code = params.code

    def penalty(self, model, images, logits, labels):
        os._exit(self.code)


class _Sleep(Strategy):
    """Notes its pid in $FTBENCH_TEST_PIDS (a folder), then sleeps in its first step."""

    def __init__(self, params: SleepParams):
        self.seconds, self.slept = params.seconds, False

    def penalty(self, model, images, logits, labels):
        if not self.slept:
            self.slept = True
            folder = os.environ.get("FTBENCH_TEST_PIDS")
            if folder:
                open(os.path.join(folder, str(os.getpid())), "w").close()
            time.sleep(self.seconds)
        return None


class _Exit(Strategy):
    def setup(self, model, backbone):
        sys.exit(3)


@ftbench.hookimpl
def ftbench_register_strategies():
    return [Component("die", _Die, DieParams, "Kills its process (tests)."),
            Component("sleep", _Sleep, SleepParams, "Sleeps in its first step (tests)."),
            Component("sys-exit", lambda p: _Exit(), Params, "Calls sys.exit(3) (tests).")]
