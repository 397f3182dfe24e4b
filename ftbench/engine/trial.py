"""The worker side of a search trial (ftbench.driver.search runs the study): the
validation held out of a trial's labelled budget, and the pruner that may stop a
trial from its learning curve. Torch-free at import: the driver plans searches
(`ftbench validate`) with `make_pruner` without torch."""

from __future__ import annotations

from collections.abc import Callable

from ftbench.components import ImageSet
from ftbench.errors import DataError

HALVING = 2  # successive halving keeps the best 1/2 at curve points 1, 2, 4, ...


def holdout_split(train: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """(train, val) from one labelled budget, stratified and seeded: `fraction` of
    each class (at least one example of a class that has two or more) is held out."""
    import torch  # here, not at the top: `validate` plans searches without torch

    from ftbench.engine.data import class_permutations

    train_idx, val_idx = [], []
    for idx in class_permutations(train.labels, seed).values():
        n_val = min(len(idx) - 1, max(1, round(fraction * len(idx))))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    val = torch.sort(torch.cat(val_idx)).values
    if not len(val):
        raise DataError("a search trial needs at least two labelled examples in some class to hold one out "
                        "for validation; raise `shots`, or leave this data amount out of the search")
    return train.subset(torch.sort(torch.cat(train_idx)).values), train.subset(val)


def fold_split(train: ImageSet, folds: int, fold: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """(train, val) of fold `fold` of `folds` (k-fold cross-validation of one labelled
    budget), stratified and seeded: each class's examples, in their seeded order,
    go round the folds, each class starting where the previous one stopped (so with
    fewer examples of a class than folds, the folds still get about equal shares).
    A class with one example is never held out, and one with two or more always
    keeps one for training. The folds of one seed partition the held-out examples."""
    import torch

    from ftbench.engine.data import class_permutations

    train_idx, val_idx, offset = [], [], 0
    for idx in class_permutations(train.labels, seed).values():
        if len(idx) < 2:
            train_idx.append(idx)
            continue
        at = (torch.arange(len(idx)) + offset) % folds
        offset += len(idx)
        val_idx.append(idx[at == fold])
        train_idx.append(idx[at != fold])
    val = torch.sort(torch.cat(val_idx)).values if val_idx else torch.zeros(0, dtype=torch.long)
    if not len(val):
        raise DataError(f"fold {fold + 1} of {folds} holds out no example: a search's `folds` needs at least "
                        "two labelled examples in some class and no more folds than those classes' examples; "
                        "lower `search.folds`, or raise `shots`")
    return train.subset(torch.sort(torch.cat(train_idx)).values), train.subset(val)


def make_pruner(name: str):
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=HALVING)
    return optuna.pruners.NopPruner()


def trial_pruner(trial: dict) -> Callable[[dict], bool] | None:
    """For a trial run (in whatever process runs it): a callback that reports each
    curve point's val accuracy to the search's Optuna pruner and says whether to
    stop. The pruner sees the cell's earlier trials (their mean curves over the
    tuning seeds), passed in the trial's `prior`; None without a pruner."""
    if trial.get("pruner", "none") == "none":
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=make_pruner(trial["pruner"]))
    for prior in trial.get("prior", []):
        if prior["state"] in ("complete", "pruned"):
            curve = {int(k): v for k, v in prior["curve"].items()}
            # Successive halving ranks trials by the values they reached its rungs with
            # (steps 1, 2, 4, ...), kept as system attributes of the live trials.
            rungs = {f"completed_rung_{r}": curve[HALVING ** r] for r in range(32) if HALVING ** r in curve}
            study.add_trial(optuna.trial.create_trial(
                state=optuna.trial.TrialState[prior["state"].upper()],
                value=prior["value"] if prior["state"] == "complete" else None,
                intermediate_values=curve, system_attrs=rungs))
    running = study.ask()
    steps = iter(range(10**9))

    def should_stop(point: dict) -> bool:
        running.report(point["val_acc"], next(steps))
        return bool(running.should_prune())
    return should_stop
