"""Subsets, validation carving, batch preprocessing, budgets and schedules."""

import pytest
import torch

from ftbench.components import ImageSet
from ftbench.config import BudgetConfig, TrainConfig
from ftbench.engine.data import Preprocess, carve_val, select_subset
from ftbench.engine.training import Budget, lr_factor

LABELS = torch.arange(5).repeat_interleave(20)  # 5 classes x 20


@pytest.mark.parametrize("kw", [{"shots": 3}, {"fraction": 0.3}, {"examples": 30}])
def test_subsets_are_stratified_and_seed_stable(kw):
    a = select_subset(LABELS, seed=1, **kw)
    assert torch.equal(a, select_subset(LABELS, seed=1, **kw))
    assert not torch.equal(a, select_subset(LABELS, seed=2, **kw))
    counts = torch.bincount(LABELS[a], minlength=5)
    assert set(counts.tolist()) == ({3} if "shots" in kw else {6})


def test_subsets_are_nested():
    for seed in range(3):
        small = set(select_subset(LABELS, shots=2, seed=seed).tolist())
        mid = set(select_subset(LABELS, shots=5, seed=seed).tolist())
        big = set(select_subset(LABELS, fraction=0.5, seed=seed).tolist())
        assert small < mid < big


def test_carve_val_is_stratified_and_disjoint():
    images = torch.zeros(100, 1, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(100)  # an id per image
    train, val = carve_val(ImageSet(images, LABELS), 0.2, seed=0)
    assert torch.bincount(val.labels).tolist() == [4] * 5
    ids = lambda s: set(s.images[:, 0, 0, 0].tolist())
    assert ids(train).isdisjoint(ids(val)) and len(ids(train) | ids(val)) == 100


def test_preprocess_resizes_expands_and_normalises():
    prep = Preprocess((3, 16, 16), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), torch.device("cpu"))
    grey = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
    fitted = prep.fit_images(grey)
    assert fitted.shape == (2, 3, 16, 16) and fitted.dtype == torch.uint8
    x = prep(fitted)
    assert torch.allclose(x, torch.full_like(x, (1.0 - 0.5) / 0.25))


def test_augmentation_is_seeded_and_keeps_shape():
    prep = Preprocess((3, 8, 8), (0.0,) * 3, (1.0,) * 3, torch.device("cpu"))
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    a = prep(images, "crop-flip", torch.Generator().manual_seed(0))
    b = prep(images, "crop-flip", torch.Generator().manual_seed(0))
    assert a.shape == (4, 3, 8, 8) and torch.equal(a, b)
    assert not torch.equal(a, prep(images))


def test_budget_stops_at_the_first_limit_and_says_which():
    budget = Budget(BudgetConfig(epochs=2, steps=5, seconds=100), steps_per_epoch=4)
    budget.steps = 5
    assert budget.exhausted() == "steps"
    budget = Budget(BudgetConfig(epochs=1, samples=1000), steps_per_epoch=4)
    budget.steps, budget.samples = 4, 256
    assert budget.exhausted() == "epochs" and budget.progress() == 1.0
    with pytest.raises(ValueError, match="at least one"):
        BudgetConfig()


@pytest.mark.parametrize("schedule, points", [
    ("constant", {0.0: 1.0, 0.5: 1.0, 1.0: 1.0}),
    ("cosine", {0.0: 1.0, 0.5: 0.5, 1.0: 0.0}),
    ("step", {0.0: 1.0, 0.6: 0.1, 0.8: 0.01}),
])
def test_schedules(schedule, points):
    cfg = TrainConfig(schedule=schedule)
    for progress, factor in points.items():
        assert lr_factor(cfg, progress) == pytest.approx(factor, abs=1e-9)


def test_warmup_and_slanted_triangular():
    cfg = TrainConfig(schedule="cosine", warmup=0.1)
    assert lr_factor(cfg, 0.05) == pytest.approx(0.5) and lr_factor(cfg, 0.1) == pytest.approx(1.0)
    stlr = TrainConfig(schedule="slanted-triangular")
    assert lr_factor(stlr, 0.1) == pytest.approx(1.0) and lr_factor(stlr, 1.0) == pytest.approx(1 / 32)
    assert lr_factor(stlr, 0.05) == pytest.approx(0.5)


def test_a_split_lives_on_the_gpu_only_when_it_leaves_room():
    from ftbench.engine.data import fits_on_device

    assert fits_on_device(10**12, None)  # CPU: the data is where it is
    assert fits_on_device(3 * 2**30, 9 * 2**30) and not fits_on_device(3 * 2**30 + 1, 9 * 2**30)
