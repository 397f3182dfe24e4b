"""Generated glyph images: characters drawn with Pillow's built-in font under
controllable domain factors (rotation, scale, shift, stroke width, noise, colour,
background), so a source task and shifted target domains come from one recipe.

Each character is rendered once per stroke width (anti-aliased); every image is
then an affine warp of its mask (torch `grid_sample`, batched), blended
between a foreground and a background colour, with noise added. Generating is a
few tensor operations per batch, not a PIL call per image.

The data depend on the params only (their `seed` field), never on the run seed:
a dataset is one fixed set of images whatever run uses it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from ftbench.cache import cache_dir
from ftbench.components import ImageSet, TaskData
from ftbench.results.store import atomic_file

from ._common import fresh_copy
from .params import CHARSETS, GlyphsParams  # noqa: F401  (schemas live in a torch-free module)

_VERSION = 1  # part of the disk-cache key: bump when the generated images change
_CHUNK = 2048  # images warped at once


@functools.lru_cache(maxsize=16)
def _masks(chars: str, size: int, widths: tuple[int, ...]) -> torch.Tensor:
    """Glyph masks in [0, 1], [len(chars) * len(widths), 1, size, size]: each
    character centred (by its ink), drawn at twice the side and averaged down so
    its edges are anti-aliased."""
    canvas = 2 * size
    font = ImageFont.load_default(size=max(4, round(0.7 * canvas)))
    masks = []
    for ch in chars:
        for width in widths:
            image = Image.new("L", (canvas, canvas), 0)
            draw = ImageDraw.Draw(image)
            left, top, right, bottom = draw.textbbox((0, 0), ch, font=font, stroke_width=2 * width)
            xy = ((canvas - (right - left)) / 2 - left, (canvas - (bottom - top)) / 2 - top)
            draw.text(xy, ch, fill=255, font=font, stroke_width=2 * width, stroke_fill=255)
            masks.append(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255))
    return F.avg_pool2d(torch.stack(masks)[:, None], 2)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _warp(masks: torch.Tensor, gen: torch.Generator, p: GlyphsParams) -> torch.Tensor:
    """Rotate, scale and shift each mask; output [N, 1, size, size]."""
    n, side = len(masks), p.size
    angle = torch.deg2rad(_uniform(n, *p.rotation, gen))
    scale = _uniform(n, *p.scale, gen)
    shift = _uniform(2 * n, -2 * p.translate, 2 * p.translate, gen).view(n, 2, 1, 1)  # [-1, 1] spans the side
    # Each output pixel samples the mask at the inverse of (rotate, scale, shift),
    # in grid_sample's [-1, 1] coordinates. Written out because affine_grid's
    # batched matmul is several times slower here.
    cos, sin = (torch.cos(angle) / scale)[:, None, None], (torch.sin(angle) / scale)[:, None, None]
    coords = (torch.arange(side) * 2 + 1) / side - 1
    x = coords[None, None, :] - shift[:, 0]
    y = coords[None, :, None] - shift[:, 1]
    grid = torch.stack([cos * x + sin * y, cos * y - sin * x], dim=-1)
    return F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _colours(n: int, gen: torch.Generator, p: GlyphsParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground and background colours, [N, 3, 1, 1] each."""
    if p.colour == "mono":
        return torch.ones(n, 3, 1, 1), torch.zeros(n, 3, 1, 1)
    fg, bg = torch.rand(n, 3, generator=gen), torch.rand(n, 3, generator=gen)
    luma = torch.tensor([0.299, 0.587, 0.114])
    weak = ((fg - bg) @ luma).abs() < 0.35
    # too little contrast: white on a dark background, black on a light one
    fallback = ((bg @ luma) < 0.5).float()[:, None].expand(n, 3)
    fg = torch.where(weak[:, None], fallback, fg)
    return fg[:, :, None, None], bg[:, :, None, None]


@functools.lru_cache(maxsize=8)
def _bicubic_matrix(size: int, knots: int) -> torch.Tensor:
    """[size, knots]: bicubic upsampling of `knots` values to `size` as a matrix, so
    a batch of smooth fields is two matmuls instead of interpolate's slower kernel."""
    basis = torch.eye(knots)[:, None, None, :]
    return F.interpolate(basis, size=(1, size), mode="bicubic", align_corners=False)[:, 0, 0].T


def _texture(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Patterns in [0, 1], [N, 3, size, size]: half smooth colour noise, half stripes."""
    up = _bicubic_matrix(size, 5)
    blobs = (up @ torch.rand(n, 3, 5, 5, generator=gen) @ up.T).clamp(0, 1)
    coords = torch.linspace(-1, 1, size)
    direction = _uniform(n, 0, math.pi, gen)[:, None, None]
    freq = _uniform(n, 1.5, 5.0, gen)[:, None, None]
    phase = _uniform(n, 0, 2 * math.pi, gen)[:, None, None]
    along = coords[None, None, :] * torch.cos(direction) + coords[None, :, None] * torch.sin(direction)
    stripes = 0.5 + 0.5 * torch.sin(math.pi * freq * along + phase)
    use_stripes = (torch.rand(n, generator=gen) < 0.5)[:, None, None, None]
    return torch.where(use_stripes, stripes[:, None], blobs)


def _render(labels: torch.Tensor, gen: torch.Generator, p: GlyphsParams) -> torch.Tensor:
    """uint8 [N, 3, size, size] images of the characters `labels` index."""
    widths = tuple(range(p.stroke_width[0], p.stroke_width[1] + 1))
    masks = _masks("".join(p.classes), p.size, widths)
    out = []
    for chunk in labels.split(_CHUNK):
        n = len(chunk)
        width = torch.randint(len(widths), (n,), generator=gen)
        ink = _warp(masks[chunk * len(widths) + width], gen, p)
        fg, bg = _colours(n, gen, p)
        if p.background == "texture":
            pattern = _texture(n, p.size, gen)
            # mono: a dark grey texture keeps the white glyph readable
            bg = (0.35 * pattern.mean(1, keepdim=True) if p.colour == "mono"
                  else (bg + 0.4 * (pattern - 0.5)).clamp(0, 1))
        image = bg * (1 - ink) + fg * ink
        if p.noise > 0:
            image = image + p.noise * torch.randn(image.shape, generator=gen)
        out.append((image * 255).round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def _split(p: GlyphsParams, n: int, stream: int) -> ImageSet:
    # train and test draw from separate streams: changing n_train leaves the test set alone
    gen = torch.Generator().manual_seed(2 * p.seed + stream)
    k = len(p.classes)
    labels = (torch.arange(n) % k)[torch.randperm(n, generator=gen)]
    return ImageSet(_render(labels, gen, p), labels)


def _disk_path(p: GlyphsParams) -> Path:
    recipe = p.model_dump(mode="json", exclude={"disk_cache"}) | {"version": _VERSION}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "data" / f"glyphs-{digest}.npz"


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_file(path, "wb") as fh:
        np.savez(fh, **arrays)


@functools.lru_cache(maxsize=8)
def _generate(p: GlyphsParams) -> TaskData:
    path = _disk_path(p) if p.disk_cache else None
    if path is not None and path.is_file():
        try:
            with np.load(path) as z:
                arrays = {k: torch.from_numpy(z[k]) for k in ("xtr", "ytr", "xte", "yte")}
            return TaskData(classes=p.classes, train=ImageSet(arrays["xtr"], arrays["ytr"]),
                            test=ImageSet(arrays["xte"], arrays["yte"]))
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache file is regenerated and overwritten below
    task = TaskData(classes=p.classes, train=_split(p, p.n_train, 0), test=_split(p, p.n_test, 1))
    if path is not None:
        _save_npz(path, xtr=task.train.images.numpy(), ytr=task.train.labels.numpy(),
                  xte=task.test.images.numpy(), yte=task.test.labels.numpy())
    return task


def make_glyphs(params: GlyphsParams, *, seed: int) -> TaskData:
    """Generated character images (3-channel). `seed` is unused: the images are
    fixed by the params (including their own `seed`)."""
    return fresh_copy(_generate(params))
