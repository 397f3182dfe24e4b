"""A run: everything that decides its result (`RunSpec`), and its id, the hash of
its resolved config. Search trials and tuned runs are runs with one more part."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from ftbench.config import BudgetConfig, TrainConfig
from ftbench.suite.schema import DEFAULT_THREADS, ComponentRef, DataAmount, DatasetEntry, EvalConfig, StrategyEntry


@dataclass(frozen=True)
class RunSpec:
    """One run: everything that decides its result, plus where it comes from."""

    suite: str
    backbone: ComponentRef
    dataset: DatasetEntry
    strategy: StrategyEntry
    train: TrainConfig
    budget: BudgetConfig
    eval: EvalConfig
    seed: int
    data: DataAmount
    device: str = "auto"
    deterministic: bool = False
    loader_workers: int | None = None  # how data is read, not what: not in the config or id
    threads: int = DEFAULT_THREADS  # torch CPU threads; recorded in the record's env (like the device)
    numerics: str = "default"  # ftbench.numerics mode; in the config (and id) when not the default
    labels: tuple[str, str, str] = ("", "", "")  # backbone, dataset, strategy labels

    def config(self) -> dict:
        """The resolved config the run id hashes (device excluded: where a run runs
        is not what it is; the record states the device)."""
        return {
            "backbone": {"name": self.backbone.name, "params": self.backbone.params},
            "dataset": {"name": self.dataset.name, "params": self.dataset.params,
                        "shifts": self.dataset.shifts.model_dump(mode="json"),
                        "val_fraction": self.dataset.val_fraction,
                        **({"adapt": self.dataset.adapt.model_dump(mode="json")} if self.dataset.adapt else {})},
            "strategy": {"name": self.strategy.name, "params": self.strategy.params},
            "train": self.train.model_dump(mode="json"),
            "budget": self.budget.model_dump(mode="json"),
            "eval": self.eval.model_dump(mode="json"),
            "seed": self.seed,
            "data": self.data.model_dump(mode="json"),
            "deterministic": self.deterministic,
            **({"numerics": self.numerics} if self.numerics != "default" else {}),
        }

    @property
    def id(self) -> str:
        return config_hash(self.config())

    @property
    def cell(self) -> dict:
        b, d, s = self.labels
        return {"backbone": b, "dataset": d, "strategy": s, "data": self.data.label}


def config_hash(config: dict) -> str:
    """16 hex digits of the SHA-256 of `config` as canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class TrialSpec(RunSpec):
    """A search trial: a run scored on validation carved from its labelled budget."""

    trial: dict = dataclasses.field(default_factory=dict)  # {number, params, val_fraction, pruner, prior}

    def config(self) -> dict:
        trial = {"params": self.trial["params"], "val_fraction": self.trial["val_fraction"]}
        if self.trial.get("pruner", "none") != "none":
            # A pruned trial's fate depends on the trials before it.
            trial |= {"pruner": self.trial["pruner"], "number": self.trial["number"]}
        if self.trial.get("folds"):  # one fold of a cross-validated trial (trials without folds keep their ids)
            trial |= {"folds": self.trial["folds"], "fold": self.trial["fold"]}
        if self.trial.get("select", "validation") != "validation":  # validation trials keep their ids
            trial["select"] = self.trial["select"]
        return {**super().config(), "trial": trial}


@dataclasses.dataclass(frozen=True)
class TunedSpec(RunSpec):
    """A final run at a searched configuration; `selection` goes into its record."""

    selection: dict = dataclasses.field(default_factory=dict)

    def config(self) -> dict:
        # An oracle-selected run is apart from a validation-selected one at the same
        # values: its record says how it was chosen, and one folder never mixes them.
        oracle = {"select": "oracle"} if self.selection.get("select") == "oracle" else {}
        return {**super().config(), **oracle}
