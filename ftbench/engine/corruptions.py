"""Synthetic corruptions of test images, in the spirit of CIFAR-10-C (Hendrycks &
Dietterich, 2019): the same kinds, five severities each, parameters taken from the
CIFAR-10-C tables where that benchmark has the corruption. Departures: pixelate uses
whole-pixel blocks, brightness adds to every channel (not to HSV value), and rotate
is not in CIFAR-10-C.

`corrupt(images, name, severity, seed)` is deterministic: the same images and
arguments give bitwise the same output, whatever device the images are on (random
draws come from seeded CPU generators, one per image, so an image's corruption does
not depend on the batch it is corrupted in). Sizes in pixels (blur sigma, pixelate
blocks) are given for 32 px images and scale with the image, so a corruption damages
an 8 px digit as much as a 224 px photo.
"""

from __future__ import annotations

import functools
import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from ftbench.components import StreamedImages
from ftbench.corruption_names import CORRUPTIONS, SEVERITY_TABLE, check_corruption  # noqa: F401  (re-exported)

_CHUNK = 512  # images processed at once, to bound float working memory


# Each corruption takes images in [0, 1], its severity parameter and one generator per
# image (random ones draw each image's numbers from its own generator).
Gens = list[torch.Generator]


def _gaussian_noise(x: torch.Tensor, c: float, gens: Gens) -> torch.Tensor:
    return x + c * torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens])


def _shot_noise(x: torch.Tensor, c: float, gens: Gens) -> torch.Tensor:
    return torch.stack([torch.poisson(xi * c, generator=g) for xi, g in zip(x, gens)]) / c


def _impulse_noise(x: torch.Tensor, c: float, gens: Gens) -> torch.Tensor:
    # per pixel and channel as in CIFAR-10-C: with probability c, 0 or 1 with equal odds
    u = torch.stack([torch.rand(x.shape[1:], generator=g) for g in gens])
    x = torch.where(u < c / 2, 0.0, x)
    return torch.where((u >= c / 2) & (u < c), 1.0, x)


def _gaussian_blur(x: torch.Tensor, c: float, gens: Gens) -> torch.Tensor:
    sigma = c * max(x.shape[-2:]) / 32
    radius = max(1, math.ceil(3 * sigma))
    return TF.gaussian_blur(x, kernel_size=[2 * radius + 1] * 2, sigma=[sigma, sigma])


def _contrast(x: torch.Tensor, c: float, gens: Gens) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * c + mean


def _brightness(x: torch.Tensor, c: float, gens: Gens) -> torch.Tensor:
    return x + c


def _rotate(x: torch.Tensor, c: float, gens: Gens) -> torch.Tensor:
    clockwise = torch.cat([torch.rand(1, generator=g) for g in gens]) < 0.5
    out = x.clone()
    for mask, angle in ((clockwise, -c), (~clockwise, c)):
        if mask.any():
            out[mask] = TF.rotate(x[mask], angle, interpolation=TF.InterpolationMode.BILINEAR)
    return out


def _pixelate(x: torch.Tensor, c: float, gens: Gens) -> torch.Tensor:
    # Whole-pixel blocks: resizing by a fraction (as CIFAR-10-C does) aligns blocks
    # unevenly, so damage would not grow with severity. Blocks under one pixel on
    # small images round to 1, which leaves the image unchanged.
    h, w = x.shape[-2:]
    k = max(1, round(c * max(h, w) / 32))
    blocks = F.avg_pool2d(x, k, stride=k, ceil_mode=True)
    return blocks.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1)[..., :h, :w]


def _jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer)).reshape(image.shape)


def _jpeg(x: torch.Tensor, c: float, gens: Gens) -> torch.Tensor:
    # PIL, because torchvision.io's JPEG codec is deprecated (torchvision 0.29);
    # threads, because PIL's codec releases the GIL
    images = _to_uint8(x).permute(0, 2, 3, 1).numpy()
    round_trip = functools.partial(_jpeg_round_trip, quality=int(c))
    if len(images) < 16:  # one image at a time (a streamed set): no pool to start
        out = [round_trip(image) for image in images]
    else:
        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            out = list(pool.map(round_trip, images))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


_APPLY: dict[str, Callable[[torch.Tensor, float, Gens], torch.Tensor]] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "gaussian_blur": _gaussian_blur,
    "contrast": _contrast,
    "brightness": _brightness,
    "rotate": _rotate,
    "pixelate": _pixelate,
    "jpeg": _jpeg,
}


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round_().clamp_(0, 255).to(torch.uint8)


# Corruptions that draw random numbers: each image gets its own generator.
_RANDOM = frozenset({"gaussian_noise", "shot_noise", "impulse_noise", "rotate"})


def _image_generator(seed: int, position: int) -> torch.Generator:
    """The generator of the image at `position`: its draws depend on the seed and the
    image's place in its dataset, not on which images are corrupted with it."""
    state = np.random.SeedSequence([seed, position]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed((int(state[0]) >> 1) << 32 | int(state[1]))  # 63 bits


def corrupt(images: torch.Tensor, name: str, severity: int, seed: int = 0, first: int = 0) -> torch.Tensor:
    """A corrupted copy of uint8 [N, C, H, W] `images` (C is 1 or 3), on their device.
    `first` is the position of images[0] in its dataset: image i's random draws are
    seeded by (seed, first + i), so corrupting a dataset in one call, in batches or
    one image at a time (as a streamed dataset does) gives the same images.

    >>> x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    >>> corrupt(x, "brightness", 5).max().item()
    76
    """
    check_corruption(name, severity)
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"corrupt expects uint8 [N,C,H,W], got {images.dtype} {tuple(images.shape)}")
    apply, c = _APPLY[name], SEVERITY_TABLE[name][severity - 1]
    if len(images) == 0:
        return images.clone()
    out = []
    # CPU work keeps the random draws (and so the output) independent of the device
    for start in range(0, len(images), _CHUNK):
        x = images[start:start + _CHUNK].cpu().float() / 255
        if name in _RANDOM:
            gens = [_image_generator(seed, first + start + i) for i in range(len(x))]
        else:
            gens = []
        out.append(_to_uint8(apply(x, c, gens)))
    return torch.cat(out).to(images.device)


class CorruptedImages:
    """An image source (see `StreamedImages`): a streamed dataset's images, each
    corrupted as it is decoded, the same as `corrupt` on the whole set in memory."""

    def __init__(self, base: StreamedImages, name: str, severity: int, seed: int = 0):
        check_corruption(name, severity)
        self.base, self.name, self.severity, self.seed = base, name, severity, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> torch.Tensor:
        return corrupt(self.base.load(i)[None], self.name, self.severity, self.seed, first=i)[0]


def corrupt_images(images: torch.Tensor | StreamedImages, name: str, severity: int,
                   seed: int = 0) -> torch.Tensor | StreamedImages:
    """`corrupt` for a split's images: in memory at once, or streamed image by image."""
    if isinstance(images, StreamedImages):
        return StreamedImages(CorruptedImages(images, name, severity, seed), images.chw)
    return corrupt(images, name, severity, seed)
