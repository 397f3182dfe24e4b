"""The suite file's schema: pydantic models, one per section, each field with its
description (docs/suite.md; `ftbench validate` reports every problem at once), and
the labels that name a suite's entries in run ids' cells and reports."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator,
                      model_validator)

from ftbench.config import BudgetConfig, TrainConfig
from ftbench.suite.strict import did_you_mean

PRETRAIN_PREFIX = "pretrain:"
CHECKPOINT_PREFIX = "ftbench:"
# A fixed default, not the machine's core count or -j: CPU float sums depend on how
# work is split over threads, so a run's numbers depend on its thread count. One, as
# a thread that waits at a barrier for another thread whose core a second process
# holds makes a run several times slower (benchmarks/contention.py: 2 threads 3.4x
# slower with one of two cores busy, 1 thread 1.1x); `-j N` fills N cores.
DEFAULT_THREADS = 1


Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="what numpy and torch accept: 0 .. 2**32-1")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentRef(_Strict):
    name: str = Field(description="a registered component name (`ftbench list`)")
    label: str | None = Field(None, description="name shown in reports; default: the name (plus params if repeated)")
    params: dict[str, Any] = Field(default_factory=dict, description="the component's parameters")


class ShiftConfig(_Strict):
    corruptions: list[str] = Field(default_factory=list, description="corruptions of the test split")
    severities: list[int] = Field(default_factory=lambda: [3], description="severities 1-5 of each corruption")
    datasets: list[ComponentRef] = Field(default_factory=list, description="other datasets as OOD test sets")
    aliases: dict[str, str] = Field(default_factory=dict,
                                    description="an OOD set's class name -> the target's (STL-10 'car' -> 'automobile')")

    @field_validator("severities")
    @classmethod
    def _severity_range(cls, v: list[int]) -> list[int]:
        if any(s < 1 or s > 5 for s in v):
            raise ValueError("severities must be between 1 and 5")
        return v


class AdaptConfig(_Strict):
    """The unlabelled target domain handed to strategies that adapt (adabn, dann, ...)."""

    domain: str | None = Field(None, description="a shifted domain: the label of a `shifts.datasets` entry (its "
                                                 "train split) or a domain the dataset provides (a disjoint part "
                                                 "of it, left out of that domain's evaluation)")
    corruption: str | None = Field(None, description="a corruption of this dataset's training split instead")
    severity: int = Field(3, ge=1, le=5, description="the corruption's severity, 1-5")
    fraction: float = Field(0.5, gt=0, lt=1, description="for a domain the dataset provides in one split: the "
                                                         "part carved off as unlabelled training images")

    @model_validator(mode="after")
    def _one(self) -> "AdaptConfig":
        if (self.domain is None) == (self.corruption is None):
            raise ValueError("give one of domain or corruption")
        return self

    @property
    def source(self) -> str:
        """A short name of the unlabelled set: domain:<name> or corruption:<name>@<severity>."""
        return f"domain:{self.domain}" if self.domain else f"corruption:{self.corruption}@{self.severity}"


class DatasetEntry(ComponentRef):
    shifts: ShiftConfig = Field(default_factory=ShiftConfig)
    adapt: AdaptConfig | None = Field(None, description="unlabelled target-domain images for strategies that adapt")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="val split carved from train when the dataset has none")


class Dimension(_Strict):
    """One searched key: exactly one of the forms below."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    loguniform: tuple[float, float] | None = Field(None, description="[low, high], sampled on a log scale")
    uniform: tuple[float, float] | None = Field(None, description="[low, high]")
    int_: tuple[int, int] | None = Field(None, alias="int", description="[low, high], integers, both included")
    choice: list[Any] | None = Field(None, min_length=1, description="one of these values")
    grid: list[Any] | None = Field(None, min_length=1, description="these values; the grid sampler tries each")

    @model_validator(mode="after")
    def _one_form(self) -> "Dimension":
        given = [k for k in ("loguniform", "uniform", "int_", "choice", "grid") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of loguniform, uniform, int, choice, grid "
                             "(e.g. {loguniform: [0.0001, 0.1]})")
        for kind in ("loguniform", "uniform", "int_"):
            low_high = getattr(self, kind)
            if low_high is not None and not low_high[0] < low_high[1]:
                raise ValueError(f"{kind.rstrip('_')}: [low, high] needs low < high")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError("loguniform: low must be > 0")
        return self

    @property
    def kind(self) -> str:
        return next(k.rstrip("_") for k in ("loguniform", "uniform", "int_", "choice", "grid")
                    if getattr(self, k) is not None)

    def values(self) -> list[Any]:
        """The listed values of a choice or grid dimension."""
        return list(self.choice if self.choice is not None else self.grid or [])


def search_key(key: str) -> str:
    section, _, name = key.partition(".")
    if section not in ("train", "params") or not name:
        raise ValueError("search keys are `train.KEY` (a `train:` setting) or `params.KEY` (a strategy parameter)")
    if section == "train" and name not in TrainConfig.model_fields:
        raise ValueError(f"`train:` has no key '{name}'{did_you_mean(name, TrainConfig.model_fields)} "
                         f"(keys: {', '.join(TrainConfig.model_fields)})")
    return key


# Checked key by key, so that every bad key of a space is reported at once.
SearchKey = Annotated[str, AfterValidator(search_key)]


class SearchConfig(_Strict):
    """A hyperparameter search: resolved for a strategy entry from the suite-wide
    `search:` and the entry's own (entry keys win; spaces merge key by key)."""

    space: dict[SearchKey, Dimension] = Field(default_factory=dict,
                                              description="`train.KEY` or `params.KEY` -> the values to search")
    trials: int | None = Field(None, ge=1, description="trials per strategy and cell (the same for every "
                                                       "strategy unless an entry sets its own); default: "
                                                       "the grid's size for the grid sampler")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1,
                             description="tuning seeds; a trial's score is its mean val accuracy over them")
    sampler: Literal["tpe", "random", "grid"] | None = Field(
        None, description="Optuna sampler; default: grid when every dimension is `grid`, else tpe")
    seed: int = Field(0, description="the sampler's seed")
    pruner: Literal["none", "median", "successive-halving"] = Field(
        "none", description="stop unpromising trials early from their learning curve")
    prune_points: int | None = Field(None, ge=1, le=100,
                                     description="a trial measures val accuracy at this many points of its budget "
                                                 "(1/N, 2/N, ...), where the pruner may stop it; default: "
                                                 "eval.curve_points")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="part of each class's labelled budget held out "
                                                             "as the trials' validation set")
    folds: int | None = Field(None, ge=2, le=20,
                              description="k-fold cross-validation: each trial is k fits per tuning seed, each "
                                          "validated on one fold of the cell's labelled budget and trained on the "
                                          "rest, scored by the mean validation accuracy; replaces `val_fraction`")
    final_top: int = Field(1, ge=1, le=2, description="2: a cell whose selection is uncertain (P(selected) < "
                                                      "0.8) also runs its final seeds at the runner-up values "
                                                      "(results/<suite>/runner-up/), and the report says whether "
                                                      "its verdict against the baseline is the same at both")
    enabled: bool = Field(True, description="false: this strategy entry is not searched")
    select: Literal["validation", "oracle"] = Field(
        "validation", description="validation: the best mean validation accuracy (a fair comparison); "
                                  "oracle: the best mean TEST accuracy, optimistic and labelled so (DomainBed's "
                                  "oracle), never the default")
    allow_unequal_budget: bool = Field(False, description="suite-wide only: let searched strategies have different "
                                                          "numbers of trial runs (trials x tuning seeds); refused "
                                                          "otherwise, as an unfair comparison")

    def resolved_sampler(self) -> str:
        if self.sampler:
            return self.sampler
        return "grid" if self.space and all(d.grid is not None for d in self.space.values()) else "tpe"

    def n_trials(self) -> int | None:
        if self.trials is not None:
            return self.trials
        if self.resolved_sampler() == "grid":
            return math.prod(len(d.values()) for d in self.space.values())
        return None


class SearchOverride(_Strict):
    """A strategy entry's `search:`: any SearchConfig key; the rest come from the suite's."""

    space: dict[SearchKey, Dimension] | None = None
    trials: int | None = Field(None, ge=1)
    seeds: list[int] | None = Field(None, min_length=1)
    sampler: Literal["tpe", "random", "grid"] | None = None
    seed: int | None = None
    pruner: Literal["none", "median", "successive-halving"] | None = None
    prune_points: int | None = Field(None, ge=1, le=100)
    val_fraction: float | None = Field(None, gt=0, lt=1)
    folds: int | None = Field(None, ge=2, le=20)
    final_top: int | None = Field(None, ge=1, le=2)
    enabled: bool | None = None
    select: Literal["validation", "oracle"] | None = None


class StrategyEntry(ComponentRef):
    train: dict[str, Any] = Field(default_factory=dict, description="overrides of the suite's `train:` for this strategy")
    search: SearchOverride | None = Field(None, description="this strategy's search, over the suite's `search:`")


class DataAmount(_Strict):
    shots: int | None = Field(None, ge=1, description="labelled examples per class")
    fraction: float | None = Field(None, gt=0, le=1, description="fraction of each class")
    examples: int | None = Field(None, ge=1, description="labelled examples in all, split across classes "
                                                         "in proportion (VTAB-1k style)")

    @model_validator(mode="after")
    def _one(self) -> "DataAmount":
        if sum(v is not None for v in (self.shots, self.fraction, self.examples)) > 1:
            raise ValueError("give one of shots, fraction or examples")
        return self

    @property
    def label(self) -> str:
        if self.shots is not None:
            return f"{self.shots}-shot"
        if self.examples is not None:
            return f"{self.examples}-examples"
        if self.fraction is not None and self.fraction < 1:
            return f"{self.fraction * 100:g}%"
        return "all"


class EvalConfig(_Strict):
    curve: bool = Field(True, description="evaluate on val during training (learning curve, time to target)")
    curve_points: int = Field(10, ge=1, description="at most this many val evaluations: at the first epoch end "
                                                    "past each 1/curve_points of the budget, and the last")
    target_drop: float = Field(1.0, ge=0, description="time-to-target: first epoch within this many points of the final val accuracy")
    target_acc: float | None = Field(None, description="time-to-target: a fixed val accuracy instead")
    source_max: int | None = Field(2000, ge=1, description="cap on source-task test images for forgetting")


class PretrainJob(_Strict):
    backbone: ComponentRef = Field(description="backbone to train from scratch (pretrained: none)")
    dataset: ComponentRef = Field(description="the source dataset")
    train: TrainConfig = Field(default_factory=TrainConfig)
    budget: BudgetConfig
    seed: Seed = 0
    threads: int | None = Field(None, ge=1, description="torch CPU threads of this pretraining; default the "
                                                        "suite's `threads:`")
    min_source_acc: float | None = Field(None, ge=0, le=100, description="source test accuracy (%) below which "
                                                                         "the pretraining fails and is not cached; "
                                                                         "default twice chance, at most halfway from "
                                                                         "chance to 100%")


class MatrixRule(_Strict):
    backbone: str | None = None
    dataset: str | None = None
    strategy: str | None = None
    data: str | None = None
    seed: Seed | None = None


class PrimaryComparison(_Strict):
    """One question the study declares before its runs: is `strategy` better than,
    worse than or equivalent to `vs`? Optionally at one backbone, dataset or data
    amount only (labels); otherwise at every task where both ran."""

    strategy: str = Field(description="the strategy label under test")
    vs: str = Field(description="the strategy label it is compared with")
    backbone: str | None = None
    dataset: str | None = None
    data: str | None = None


class AdaptiveSeeds(_Strict):
    """`seeds: {min, max, step, until: decided}`: every cell runs `min` seeds, then only
    the cells whose comparisons with the baseline are still undecided get `step` more,
    up to `max` (group-sequential tests, `ftbench.stats.sequential`; the driver's
    `ftbench.driver.adaptive`). Seeds are start, start + 1, ... in that order."""

    min: int = Field(ge=2, description="seeds every cell runs before the first look (at least 2, for a paired test)")
    max: int = Field(ge=2, le=1000, description="the most seeds a cell runs")
    step: int = Field(1, ge=1, description="seeds added at each later look to the cells still undecided")
    until: Literal["decided"] = Field("decided", description="stop a cell once its comparisons are decided: "
                                                             "different, or equivalent within the margin")
    start: Seed = Field(0, description="the first seed; the seeds are start, start + 1, ..., start + max - 1")
    baseline: str = Field("full", description="the strategy label every other strategy of a task is compared "
                                              "with (when the suite declares no `primary:` comparisons)")
    margin: float = Field(1.0, gt=0, description="equivalence margin in points (TOST), as `ftbench report --margin`")
    alpha: float = Field(0.05, gt=0, lt=1, description="family-wise error rate over all looks (Holm per look)")
    spending: Literal["obrien-fleming", "pocock"] = Field("obrien-fleming",
                                                         description="Lan-DeMets alpha-spending function")
    futility: float | None = Field(None, gt=0, lt=1,
                                   description="stop a comparison undecided before max once its predictive power "
                                               "(the chance of either verdict by max, given its seeds so far) is "
                                               "below this, e.g. 0.1; none: undecided ones run to max")

    @model_validator(mode="after")
    def _order(self) -> "AdaptiveSeeds":
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be at least min ({self.min})")
        if self.start + self.max - 1 > 2**32 - 1:
            raise ValueError("start + max - 1 must be a valid seed (at most 2**32-1)")
        return self

    @property
    def values(self) -> list[int]:
        """Every seed a cell may run, in the order they are added."""
        return list(range(self.start, self.start + self.max))


def _seeds_form(v: Any) -> str:
    return "tag:adaptive" if isinstance(v, (dict, AdaptiveSeeds)) else "tag:list"


# A list, or adaptive seeds: the form is picked by the value's type, so a problem is
# reported against that form alone ("tag:..." is left out of the path it names).
SeedsSetting = Annotated[
    Annotated[list[Seed], Field(min_length=1), Tag("tag:list")] | Annotated[AdaptiveSeeds, Tag("tag:adaptive")],
    Discriminator(_seeds_form)]


class Suite(_Strict):
    name: str = Field(description="names the results folder: results/<name>")
    description: str = ""
    pretrain: dict[str, PretrainJob] = Field(default_factory=dict)
    backbones: list[ComponentRef] = Field(min_length=1)
    datasets: list[DatasetEntry] = Field(min_length=1)
    strategies: list[StrategyEntry] = Field(min_length=1)
    seeds: SeedsSetting = Field(
        default_factory=lambda: [0], description="a list of seeds every cell runs, or {min, max, step, until: "
                                                 "decided}: more seeds only where a comparison is undecided")
    data: list[DataAmount] = Field(default_factory=lambda: [DataAmount()], min_length=1)
    budget: BudgetConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    search: SearchConfig | None = Field(None, description="hyperparameter search for every strategy (docs/suite.md)")
    primary: list[PrimaryComparison] = Field(
        default_factory=list, description="the study's primary comparisons, declared before the runs: the report's "
                                          "one confirmatory family (not part of any run's config or id)")
    exclude: list[MatrixRule] = Field(default_factory=list)
    include: list[MatrixRule] = Field(default_factory=list)
    executor: ComponentRef = Field(default_factory=lambda: ComponentRef(name="sequential"))
    loggers: list[ComponentRef] = Field(default_factory=list, description="experiment trackers that see every "
                                                                          "run (`ftbench list loggers`)")
    device: str = Field("auto", description="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    deterministic: bool = Field(False, description="torch deterministic algorithms (slower on GPU)")
    threads: int = Field(DEFAULT_THREADS, ge=1, description="torch intra-op CPU threads of every run and "
                                                            "pretraining, whatever the executor or -j: the "
                                                            "thread count changes CPU results in the last bits; "
                                                            "more than 1 is fast only on idle cores")
    numerics: Literal["default", "portable"] = Field(
        "default", description="default: the fastest code paths this CPU offers; portable: CPU arithmetic pinned "
                               "to paths every AVX2 CPU takes alike, so another CPU gives equal numbers "
                               "(ftbench.numerics)")
    loader_workers: int | None = Field(None, ge=0, description="DataLoader worker processes per run that decode "
                                                               "streamed datasets; default the run's CPU threads "
                                                               "but one (at most 8); 0 decodes in the run's process")

    @property
    def seed_list(self) -> list[int]:
        """Every seed a cell may run (for adaptive seeds, up to max, in order)."""
        return self.seeds.values if isinstance(self.seeds, AdaptiveSeeds) else list(self.seeds)

    @property
    def adaptive(self) -> "AdaptiveSeeds | None":
        return self.seeds if isinstance(self.seeds, AdaptiveSeeds) else None

    @field_validator("name")
    @classmethod
    def _name_is_a_folder(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v):
            raise ValueError("use letters, digits, '.', '_' and '-' (it names a folder)")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v):
            raise ValueError("use auto, cpu, cuda, cuda:N or mps")
        return v


# ---------------------------------------------------------------- labels


def entry_label(entry: ComponentRef, siblings: list[ComponentRef]) -> str:
    if entry.label:
        return entry.label
    same = [e for e in siblings if e.name == entry.name and not e.label]
    if len(same) <= 1 or not entry.params:
        return entry.name
    return entry.name + "(" + ",".join(f"{k}={v}" for k, v in sorted(entry.params.items())) + ")"


def entry_labels(entries: list[ComponentRef]) -> list[str]:
    return [entry_label(e, entries) for e in entries]
