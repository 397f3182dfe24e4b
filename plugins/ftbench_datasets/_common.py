"""Helpers shared by the dataset loaders: PIL to uint8 tensors, resizing, splits."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from sklearn.model_selection import train_test_split
from torchvision.transforms.v2 import functional as TF

from ftbench.components import ImageSet, StreamedImages, TaskData
from ftbench.engine.data import memory_limit_bytes
from ftbench.errors import DataError
from .params import STREAM_HELP, Stream  # noqa: F401  (schemas live in a torch-free module)


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


class FileImages:
    """Image files as an image source (see `StreamedImages`): `self[i]` decodes
    paths[i] in `mode` at `size`. Picklable, for DataLoader workers."""

    def __init__(self, paths: Sequence[str], mode: str, size: int | None, what: str):
        self.paths, self.mode, self.size, self.what = list(paths), mode, size, what

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        try:
            with Image.open(self.paths[i]) as image:
                return pil_to_tensor(image, self.mode, self.size)
        except OSError as exc:
            raise DataError(f"{self.what}: cannot read {self.paths[i]} ({exc}); remove or replace it") from None


class DatasetImages:
    """The PIL images of a torchvision-style dataset (`ds[i] = (image, target)`) as an
    image source, decoded in `mode` at `size`."""

    def __init__(self, ds: Any, mode: str, size: int | None):
        self.ds, self.mode, self.size = ds, mode, size

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> torch.Tensor:
        return pil_to_tensor(self.ds[int(i)][0], self.mode, self.size)


def image_set(source: Any, labels: np.ndarray, index: np.ndarray, what: str, stream: Stream,
              size: int | None) -> ImageSet:
    """The images `index` of `source` with their labels: decoded into memory, or
    streamed when `stream` says so (auto: when the decoded split would not fit in
    the memory limit). Streaming needs one image size, so it needs `size`."""
    if len(index) == 0:
        raise DataError(f"{what}: no images selected")
    labels_t = torch.from_numpy(labels[index])
    first = source[int(index[0])]
    decoded = len(index) * first.numel()
    limit = memory_limit_bytes() if stream == "auto" else None
    if stream is True or (limit is not None and decoded > limit):
        if size is None:
            why = "stream: true" if stream is True else (
                f"its {len(index)} images would take about {decoded / 1024**3:.1f} GB decoded, more than the "
                f"in-memory limit of {limit / 1024**3:.1f} GB (FTBENCH_IN_MEMORY_GB)")
            raise DataError(f"{what}: {why}, so it must stream, and streaming needs one image size; set `size:` "
                            "(e.g. size: 224) in its params")
        return ImageSet(StreamedImages(source, tuple(first.shape), torch.from_numpy(index)), labels_t)
    return ImageSet(decode_all(source, index, first, what), labels_t)


def decode_all(source: Any, index: np.ndarray, first: torch.Tensor, what: str) -> torch.Tensor:
    """Every image `index` of `source` decoded into one preallocated uint8 [N, C, H, W]
    tensor (no second copy), in threads (PIL releases the GIL). `first` is image
    index[0], already decoded; `what` names the data in messages ("dataset 'eurosat'")."""
    out = torch.empty((len(index), *first.shape), dtype=torch.uint8)

    def fill(k: int) -> None:
        image = first if k == 0 else source[int(index[k])]
        if image.shape != first.shape:
            (_, h, w), (_, h2, w2) = first.shape, image.shape
            raise DataError(f"{what}: images differ in size ({w}x{h} and {w2}x{h2}, W x H); set `size:` "
                            "(e.g. size: 224) in its params to resize them")
        out[k] = image

    workers = min(8, os.cpu_count() or 1)
    if len(index) < 64 or workers == 1:
        for k in range(len(index)):
            fill(k)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fill, range(len(index))))
    return out


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
