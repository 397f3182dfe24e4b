"""What the regression gate counts as a regression (`Tolerances`), from flags and an
optional YAML or TOML file (`ftbench compare --config`)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from ftbench.errors import UserInputError
from ftbench.gate.baseline import BASELINE_METRICS


@dataclass(frozen=True)
class Tolerances:
    """What counts as a regression. Load from a file with `load_tolerances`."""

    acc_drop: float = 1.0  # points (accuracies are percentages) the mean may drop before it counts
    alpha: float = 0.05  # level of the one-sided Welch t-test that must also reject
    speed_ratio: float = 0.9  # current/baseline mean samples/s below this is a regression
    metric: str = "acc"  # which test metric: acc, balanced_acc or top5
    fail_on_missing: bool = False  # a baseline cell absent from the current results fails the gate
    # Reproduction (`make reproduce`): every seed on both sides must be within this many
    # points of the baseline's same seed (0: equal accuracies); None compares means only.
    seed_tolerance: float | None = None
    # {min, max, step}: judge accuracy sequentially on matched seeds and let `ftbench
    # compare` add seeds to ambiguous cells up to max (`ftbench.gate.more_seeds`); None: off.
    more_seeds: Any = None
    # {min, max, step}: judge speed sequentially on timing repetitions (the baseline file's,
    # and ones `ftbench compare` times), `speed_ratio` the threshold (`ftbench.gate.speed`); None: off.
    speed_reps: Any = None

    def __post_init__(self) -> None:
        from ftbench.gate.more_seeds import MoreSeeds
        from ftbench.gate.speed import SpeedReps

        object.__setattr__(self, "more_seeds", MoreSeeds.parse(self.more_seeds))
        object.__setattr__(self, "speed_reps", SpeedReps.parse(self.speed_reps))
        for name in ("acc_drop", "alpha", "speed_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserInputError(f"tolerance {name} must be a number, got {value!r}")
        if self.acc_drop < 0:
            raise UserInputError(f"acc_drop must be >= 0 points, got {self.acc_drop}")
        if not 0 < self.alpha < 1:
            raise UserInputError(f"alpha must be between 0 and 1 (e.g. 0.05), got {self.alpha}")
        if self.speed_ratio <= 0:
            raise UserInputError(f"speed_ratio must be > 0 (e.g. 0.9), got {self.speed_ratio}")
        if self.metric not in BASELINE_METRICS:
            raise UserInputError(f"metric '{self.metric}' is not one of {', '.join(BASELINE_METRICS)}")
        if self.seed_tolerance is not None and (isinstance(self.seed_tolerance, bool) or not isinstance(
                self.seed_tolerance, (int, float)) or self.seed_tolerance < 0):
            raise UserInputError(f"seed_tolerance must be a number of points >= 0 (0: exact), got "
                                 f"{self.seed_tolerance!r}")
        if not isinstance(self.fail_on_missing, bool):
            raise UserInputError(f"fail_on_missing must be true or false, got {self.fail_on_missing!r}")


def load_tolerances(path: str | Path | None = None, **overrides: Any) -> Tolerances:
    """Tolerances from a YAML or TOML file (top-level keys: the fields of
    `Tolerances`), then `overrides` that are not None."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text()
            values = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        except (OSError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise UserInputError(f"{path}: cannot read the gate config ({exc})") from exc
        values = values or {}
        if not isinstance(values, dict):
            raise UserInputError(f"{path}: the gate config must be a mapping of keys to values")
        allowed = [f.name for f in fields(Tolerances)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise UserInputError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        _build(values, f"{path}: ")  # a bad value in the file names the file
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _build(values, "")


def _build(values: dict[str, Any], where: str) -> Tolerances:
    try:
        return Tolerances(**values)
    except UserInputError as exc:
        raise UserInputError(f"{where}{exc}") from None
