"""Corruptions: shape, dtype, determinism, growing damage, clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ftbench.engine.corruptions import CORRUPTIONS, SEVERITY_TABLE, corrupt
from ftbench.errors import UserInputError


def _images(channels: int = 3, n: int = 32, size: int = 32) -> torch.Tensor:
    # smooth random images: closer to photos than white noise, so blur and pixelation bite
    g = torch.Generator().manual_seed(0)
    low = torch.rand(n, channels, 8, 8, generator=g)
    return (F.interpolate(low, size=size, mode="bilinear") * 200 + 20).to(torch.uint8)


def _damage(x: torch.Tensor, y: torch.Tensor) -> float:
    return (x.float() - y.float()).abs().mean().item()


def test_all_corruptions_have_five_severities():
    assert set(CORRUPTIONS) == set(SEVERITY_TABLE)
    assert {"gaussian_noise", "shot_noise", "impulse_noise", "gaussian_blur", "contrast", "brightness",
            "rotate", "pixelate", "jpeg"} <= set(CORRUPTIONS)
    assert all(len(v) == 5 for v in SEVERITY_TABLE.values())


@pytest.mark.parametrize("name", CORRUPTIONS)
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_dtype_and_determinism(name, channels):
    x = _images(channels, n=6, size=24)
    y = corrupt(x, name, 3, seed=5)
    assert y.dtype == torch.uint8 and y.shape == x.shape
    assert torch.equal(y, corrupt(x, name, 3, seed=5))
    assert not torch.equal(y, x)
    assert torch.equal(x, _images(channels, n=6, size=24))  # the input is left alone


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "rotate"])
def test_random_corruptions_depend_on_seed(name):
    x = _images()
    assert not torch.equal(corrupt(x, name, 3, seed=0), corrupt(x, name, 3, seed=1))


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_damage_grows_with_severity(name):
    x = _images()
    damage = [_damage(x, corrupt(x, name, s)) for s in range(1, 6)]
    assert all(a < b for a, b in zip(damage, damage[1:])), damage


def test_brightness_adds_a_fixed_amount():
    x = torch.full((1, 3, 4, 4), 100, dtype=torch.uint8)
    assert torch.all(corrupt(x, "brightness", 1) == 100 + round(0.05 * 255))


def test_empty_batch():
    x = torch.zeros(0, 3, 8, 8, dtype=torch.uint8)
    assert corrupt(x, "gaussian_noise", 1).shape == x.shape


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UserInputError, match="unknown corruption 'gausian_noise'; did you mean 'gaussian_noise'"):
        corrupt(_images(n=1), "gausian_noise", 1)


@pytest.mark.parametrize("severity", [0, 6, 2.5])
def test_severity_must_be_1_to_5(severity):
    with pytest.raises(UserInputError, match="severity must be an integer 1..5"):
        corrupt(_images(n=1), "contrast", severity)
