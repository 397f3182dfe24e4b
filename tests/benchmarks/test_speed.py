"""Micro-benchmarks (pytest-benchmark). Run: pytest tests/benchmarks --benchmark-only.

Compare runs with --benchmark-autosave and --benchmark-compare (CONTRIBUTING.md).
"""

import pytest
import torch

from ftbench.components import ImageSet
from ftbench.config import BudgetConfig, TrainConfig
from ftbench.engine.data import Preprocess, batches
from ftbench.plugins import default_registry
from ftbench.report import build_report
from ftbench.testing import toy_backbone, toy_task
from ftbench.engine.training import fit
from tests.fixtures.report_records import make_records

STRATEGIES = ["full", "linear-probe", "scratch", "freeze", "surgical", "gradual-unfreeze", "discriminative-lr",
              "lp-ft", "l2-sp", "wise-ft", "bitfit", "lora", "lwf"]


@pytest.mark.parametrize("name", STRATEGIES)
def test_training_steps(benchmark, name):
    """Five training steps of a strategy on timm's test_resnet (16 px, batch 32)."""
    comp = default_registry().get("strategy", name)
    task = toy_task()
    prep = Preprocess((3, 16, 16), (0.5,) * 3, (0.5,) * 3, torch.device("cpu"))
    train = ImageSet(prep.fit_images(task.train.images), task.train.labels)

    def run():
        backbone = toy_backbone(num_classes=3, seed=0)
        backbone.source_head = torch.nn.Linear(backbone.model.num_features, 5)  # for lwf
        return fit(backbone.model, backbone, comp.factory(comp.params()), train,
                   cfg=TrainConfig(batch_size=32), budget_cfg=BudgetConfig(steps=5), prep=prep, seed=0)

    result = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    assert result.steps == 5


def test_in_memory_data_path(benchmark):
    """One epoch of augmented, normalised batches over 10k 32 px images."""
    images = torch.randint(0, 256, (10_000, 3, 32, 32), dtype=torch.uint8)
    prep = Preprocess((3, 32, 32), (0.5,) * 3, (0.25,) * 3, torch.device("cpu"))

    def epoch():
        gen, aug = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
        return sum(len(prep(images[idx], "crop-flip", aug)) for idx in batches(len(images), 256, gen))

    assert benchmark(epoch) == 10_000


def test_statistics_over_a_large_results_folder(benchmark):
    """build_report over 2 datasets x 3 strategies x 3 data amounts x 25 seeds (450 records)."""
    records = make_records(seeds=25)
    report = benchmark.pedantic(build_report, args=(records,), rounds=3)
    assert report.table("accuracy").rows
