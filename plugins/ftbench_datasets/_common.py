"""Helpers shared by the dataset loaders: PIL to uint8 tensors, resizing, splits."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from sklearn.model_selection import train_test_split
from torchvision.transforms.v2 import functional as TF

from ftbench.components import ImageSet, TaskData
from ftbench.errors import DataError


def pil_to_tensor(image: Image.Image, mode: str, size: int | None) -> torch.Tensor:
    """A PIL image as uint8 [C, H, W] in `mode` ("L" or "RGB"); with `size`, its
    shorter side resized to `size` and the centre cropped to size x size."""
    image = image.convert(mode)
    if size is not None:
        image = TF.center_crop(TF.resize(image, size, antialias=True), [size, size])
    return TF.pil_to_tensor(image)


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, C, H, W] resized like `pil_to_tensor` does (shorter side, centre crop)."""
    if images.shape[-2:] == (size, size):
        return images
    return TF.center_crop(TF.resize(images, size, antialias=True), [size, size])


def stack_images(images: Sequence[torch.Tensor], what: str) -> torch.Tensor:
    """Stack [C, H, W] images into [N, C, H, W]; a clear error when sizes differ.
    `what` names the data in messages ("dataset 'eurosat'")."""
    shapes = {tuple(img.shape) for img in images}
    if len(shapes) > 1:
        a, b = sorted(shapes)[:2]
        raise DataError(f"{what}: images differ in size ({a[2]}x{a[1]} and {b[2]}x{b[1]}, "
                        "W x H); set `size:` (e.g. size: 224) in its params to resize them")
    if not images:
        raise DataError(f"{what}: no images selected")
    return torch.stack(list(images))


def load_many(load: Callable[[int], torch.Tensor], indices: Sequence[int]) -> list[torch.Tensor]:
    """`load(i)` for every index, in order, decoding in threads (PIL releases the GIL)."""
    workers = min(8, os.cpu_count() or 1)
    if len(indices) < 64 or workers == 1:
        return [load(i) for i in indices]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(load, indices))


def stratified_split(labels: np.ndarray, test_fraction: float, split_seed: int,
                     what: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified (train, test) split, fixed by `split_seed`."""
    index = np.arange(len(labels))
    try:
        train, test = train_test_split(index, test_size=test_fraction, random_state=split_seed,
                                       stratify=labels)
    except ValueError as exc:  # a class too small to appear in both splits
        raise DataError(f"{what}: cannot split {len(labels)} images into train and test "
                        f"with test_fraction={test_fraction} ({exc}); add images or change test_fraction") from None
    return np.sort(train), np.sort(test)


def cap(indices: np.ndarray, limit: int | None, split_seed: int) -> np.ndarray:
    """At most `limit` of `indices`, drawn at random (fixed by `split_seed`), in order."""
    if limit is None or len(indices) <= limit:
        return indices
    chosen = np.random.default_rng(split_seed).choice(len(indices), size=limit, replace=False)
    return indices[np.sort(chosen)]


def fresh_copy(task: TaskData) -> TaskData:
    """New containers around the same tensors, so a caller that rebinds a split
    cannot change what an in-process cache holds. Tensors must not be edited in place."""
    def copy(s: ImageSet) -> ImageSet:
        return ImageSet(s.images, s.labels)

    return TaskData(classes=list(task.classes), train=copy(task.train), test=copy(task.test),
                    val=copy(task.val) if task.val is not None else None,
                    shifted={k: copy(v) for k, v in task.shifted.items()})
