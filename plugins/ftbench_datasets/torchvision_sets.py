"""torchvision datasets by name, as uint8 tensors in memory or streamed from their files.

Nothing is downloaded unless a suite says `download: true`; otherwise the files must
already be under `root` (default `<cache>/datasets`), where torchvision looks.
Datasets without an official test split (eurosat, caltech101) get a stratified one
carved with `split_seed`. Datasets of image files stream (`stream:`) when they are
too large to decode into memory; those torchvision keeps as one array (CIFAR, SVHN,
STL-10, MNIST, Fashion-MNIST) are in memory already.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.datasets

from ftbench.cache import cache_dir
from ftbench.components import ImageSet, TaskData
from ftbench.errors import DataError

from ._common import DatasetImages, cap, fresh_copy, image_set, resize_batch, stratified_split
from .params import SPECS, TorchvisionParams, _Spec

def _root(params: TorchvisionParams) -> Path:
    return Path(params.root).expanduser() if params.root else cache_dir() / "datasets"


def _open(name: str, spec: _Spec, params: TorchvisionParams, kwargs: dict) -> Any:
    root = _root(params)
    cls = getattr(torchvision.datasets, spec.cls)
    try:
        return cls(root=str(root), download=params.download, **kwargs)
    except (RuntimeError, OSError, ValueError) as exc:
        looked = root / spec.folder if spec.folder != "." else root
        action = ("the download failed; check the network, or place the files there yourself"
                  if params.download else
                  "pass `download: true` in its params (needs network) or place the files there")
        raise DataError(f"dataset '{name}' ({spec.title}): torchvision.datasets.{spec.cls} found no usable files "
                        f"in {looked} ({exc}); {action}, or set `root:` to the folder that holds them") from None


def _labels(ds: Any) -> np.ndarray:
    """Every label of a torchvision dataset without decoding its images."""
    for attr in ("targets", "labels", "_labels", "y"):
        if getattr(ds, attr, None) is not None:
            return np.asarray(getattr(ds, attr), dtype=np.int64)
    if hasattr(ds, "_samples"):
        return np.asarray([target for _, target in ds._samples], dtype=np.int64)
    return np.asarray([ds[i][1] for i in range(len(ds))], dtype=np.int64)


def _classes(ds: Any, spec: _Spec, labels: list[np.ndarray]) -> list[str]:
    if spec.classes is not None:
        return list(spec.classes)
    names = getattr(ds, "classes", None) or getattr(ds, "categories", None)
    if names:
        return [str(c) for c in names]
    return [str(i) for i in range(int(max(lab.max() for lab in labels if len(lab))) + 1)]


def _split(name: str, spec: _Spec, ds: Any, labels: np.ndarray, index: np.ndarray,
           params: TorchvisionParams) -> ImageSet:
    """The selected items as an ImageSet; in-memory arrays skip PIL, image files may stream."""
    data = getattr(ds, "data", None)
    if spec.layout is not None and data is not None:
        if params.stream is True:
            raise DataError(f"dataset '{name}': torchvision holds {spec.title} in memory as one array, so it "
                            "cannot stream; remove `stream: true`")
        images = torch.as_tensor(np.asarray(data)[index])
        if spec.layout == "NHWC":
            images = images.permute(0, 3, 1, 2).contiguous()
        elif spec.layout == "NHW":
            images = images[:, None]
        images = resize_batch(images, params.size) if params.size is not None else images
        return ImageSet(images, torch.from_numpy(labels[index]))
    source = DatasetImages(ds, "L" if spec.grey else "RGB", params.size)
    return image_set(source, labels, index, f"dataset '{name}'", params.stream, params.size)


@functools.lru_cache(maxsize=2)
def _load(name: str, params: TorchvisionParams) -> TaskData:
    spec = SPECS[name]
    datasets = {split: _open(name, spec, params, kwargs) for split, kwargs in spec.splits.items()}
    labels = {split: _labels(ds) for split, ds in datasets.items()}
    picks = {split: np.arange(len(lab)) for split, lab in labels.items()}
    if "test" not in datasets:
        picks["train"], picks["test"] = stratified_split(labels["train"], params.test_fraction, params.split_seed,
                                                          f"dataset '{name}'")
        datasets["test"], labels["test"] = datasets["train"], labels["train"]
    sets = {}
    for split, ds in datasets.items():
        index = cap(picks[split], params.max_per_split, params.split_seed)
        sets[split] = _split(name, spec, ds, labels[split], index, params)
    classes = _classes(datasets["train"], spec, list(labels.values()))
    return TaskData(classes=classes, train=sets["train"], test=sets["test"], val=sets.get("val"))


def make_torchvision(name: str, params: TorchvisionParams, *, seed: int) -> TaskData:
    """The torchvision dataset `name` (a key of SPECS). `seed` is unused: splits are
    official or carved with `split_seed`."""
    return fresh_copy(_load(name, params))
