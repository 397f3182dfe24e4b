"""Measured costs of the built-in strategies, on scikit-learn's digits at 32 px.

(a) Linear probing on cached features against running the frozen backbone every
    epoch (`train.cache_features: false`): training time, ratio and test accuracy.
(b) Training time per step of every strategy, and its ratio to `full`.

The model is a randomly initialised timm resnet18: the timing does not depend on the
weights, and nothing is downloaded. Run:

    .venv/bin/python benchmarks/strategies.py                          # wall time, torch's threads
    .venv/bin/python benchmarks/strategies.py --threads 1 --cpu-clock  # on a shared, busy machine
    .venv/bin/python benchmarks/strategies.py --quick                  # 5 epochs in (a), 1 round of (b)

About 6 minutes on 2 busy cores with `--threads 1 --cpu-clock`. The accuracies in (b)
are after 2 epochs from random weights: a sanity check, not a comparison.
"""

from __future__ import annotations

import argparse
import math
import time

import timm
import torch
from sklearn.datasets import load_digits
from tabulate import tabulate

from ftbench.components import Backbone, ImageSet, LayerGroup
from ftbench.config import BudgetConfig, TrainConfig
from ftbench.engine.data import Preprocess, select_subset
from ftbench.engine.evaluate import classification_metrics, predict_logits
from ftbench.engine.training import fit
from ftbench_strategies import STRATEGIES


def digits() -> tuple[ImageSet, ImageSet]:
    """(train, test): 80/20 per class, 8x8 grey levels 0..16 scaled to uint8."""
    data = load_digits()
    images = torch.from_numpy(data.images * (255 / 16)).round().to(torch.uint8).unsqueeze(1)
    full = ImageSet(images, torch.from_numpy(data.target))
    train_idx = select_subset(full.labels, fraction=0.8, seed=0)
    test_idx = torch.tensor(sorted(set(range(len(full))) - set(train_idx.tolist())))
    return full.subset(train_idx), full.subset(test_idx)


def backbone(arch: str, size: int, seed: int = 0) -> Backbone:
    """A random-weight timm model with its top-level children as layer groups, head last."""
    torch.manual_seed(seed)
    model = timm.create_model(arch, num_classes=10)
    head = model.get_classifier()
    head_ids = {id(p) for p in head.parameters()}
    groups = []
    for name, child in model.named_children():
        params = [f"{name}.{n}" for n, p in child.named_parameters() if id(p) not in head_ids]
        if params:
            groups.append(LayerGroup(name, params))
    head_name = next(n for n, m in model.named_modules() if m is head)
    groups.append(LayerGroup(head_name, [n for n, p in model.named_parameters() if id(p) in head_ids]))
    return Backbone(model, {"input_size": (3, size, size), "mean": (0.5,) * 3, "std": (0.25,) * 3}, groups,
                    source_head=torch.nn.Linear(model.num_features, 26))


def run(strategy_name: str, arch: str, prep: Preprocess, train: ImageSet, test: ImageSet,
        cfg: TrainConfig, budget: BudgetConfig, cpu_clock: bool = False) -> tuple[float, int, float]:
    """(training seconds, steps, test accuracy %) of one fit. The seconds are the core's
    training wall time, or with `cpu_clock` this process's CPU time during `fit`."""
    comp = next(c for c in STRATEGIES if c.name == strategy_name)
    bb = backbone(arch, prep.input_size[1])
    strategy = comp.factory(comp.params())
    cpu0 = time.process_time()
    result = fit(bb.model, bb, strategy, train, cfg=cfg, budget_cfg=budget, prep=prep, seed=0)
    seconds = time.process_time() - cpu0 if cpu_clock else result.train_seconds
    logits = predict_logits(strategy.final_model(bb.model), test.images, prep, cfg.eval_batch_size)
    return seconds, result.steps, classification_metrics(logits, test.labels)["acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=20, help="linear-probe epochs in (a)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (b); the fastest counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--cpu-clock", action="store_true",
                        help="time by this process's CPU time, not wall time: with --threads 1 it is "
                             "robust to other processes on a busy machine")
    parser.add_argument("--quick", action="store_true", help="5 epochs in (a), 1 round of (b)")
    args = parser.parse_args()
    epochs, rounds = (5, 1) if args.quick else (args.epochs, args.rounds)
    if args.threads:
        torch.set_num_threads(args.threads)

    prep = Preprocess((3, args.size, args.size), (0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    train, test = digits()
    train = ImageSet(prep.fit_images(train.images), train.labels)
    test = ImageSet(prep.fit_images(test.images), test.labels)
    cfg = TrainConfig(lr=1e-2, batch_size=64, precision="fp32")
    print(f"{args.arch}, random weights, {args.size} px, digits: {len(train)} train / {len(test)} test, "
          f"batch {cfg.batch_size}, {torch.get_num_threads()} threads, "
          f"{'CPU' if args.cpu_clock else 'wall'} time\n")

    # (a) caching: the same computation with and without the repeated backbone passes
    rows = {}
    for cache in (True, False):
        t0 = time.perf_counter()
        seconds, _, acc = run("linear-probe", args.arch, prep, train, test,
                              cfg.model_copy(update={"cache_features": cache}), BudgetConfig(epochs=epochs),
                              args.cpu_clock)
        rows[cache] = (seconds, time.perf_counter() - t0, acc)
    print(f"(a) linear probe, {epochs:g} epochs")
    print(tabulate([["cached features", *rows[True]], ["backbone every epoch", *rows[False]]],
                   headers=["", "train s", "wall s (all)", "test acc %"], floatfmt=".2f"))
    print(f"speed-up (train s): {rows[False][0] / rows[True][0]:.1f}x   "
          f"accuracy difference: {abs(rows[True][2] - rows[False][2]):.2f} points\n")

    # (b) cost per step on a 640-image subset, 2 epochs each; strategies take turns
    # over `rounds` rounds and the fastest round counts, so a busy machine skews less
    subset = train.subset(select_subset(train.labels, shots=64, seed=0))
    budget = BudgetConfig(epochs=2)
    run("full", args.arch, prep, subset, test, cfg, BudgetConfig(steps=3))  # warm-up
    best: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for comp in STRATEGIES:
            seconds, n, acc = run(comp.name, args.arch, prep, subset, test, cfg, budget, args.cpu_clock)
            best[comp.name] = min(best.get(comp.name, (math.inf, 0.0)), (1000 * seconds / n, acc))
    full_ms = best["full"][0]
    print(f"(b) {len(subset)} images, 2 epochs ({math.ceil(len(subset) / cfg.batch_size) * 2} steps) each, "
          f"fastest of {rounds} rounds; linear-probe and lp-ft include computing the cached features")
    print(tabulate([[name, ms, ms / full_ms, acc] for name, (ms, acc) in best.items()],
                   headers=["strategy", "ms/step", "x full", "test acc %"], floatfmt=(".0f", ".1f", ".2f", ".1f")))

if __name__ == "__main__":
    main()
