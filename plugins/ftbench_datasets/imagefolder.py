"""Images in class folders, optionally one such tree per domain.

    root/<class>/<image>                 one domain: a stratified train/test split
    root/<domain>/<class>/<image>        with `train_domain`: train and test come from
                                         that domain, every other domain (or those in
                                         `test_domains`) is a shifted test set

Classes are aligned across domains by folder name, so each domain must hold the
same class folders (PACS, Office-Home, DomainNet are laid out this way).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from pydantic import Field, field_validator, model_validator
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes

from ftbench.components import ImageSet, Params, TaskData
from ftbench.errors import DataError

from ._common import STREAM_HELP, FileImages, Stream, cap, fresh_copy, image_set, stratified_split


class ImageFolderParams(Params):
    root: str = Field(description="folder of class folders, or of domain folders holding class folders")
    train_domain: str | None = Field(None, description="the domain (subfolder of root) to train and test on; "
                                                       "unset: root itself holds the class folders")
    test_domains: tuple[str, ...] | None = Field(None, description="domains used as shifted test sets; "
                                                                   "default every domain but train_domain")
    size: int = Field(64, ge=8, le=1024, description="resize the shorter side to this and centre-crop a square")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="share of the (train-domain) images held out for test")
    split_seed: int = Field(0, description="seed of the stratified train/test split (not the run seed)")
    max_per_class: int | None = Field(None, ge=1, description="keep at most this many images per class and "
                                                              "domain (a fixed random subset)")
    stream: Stream = Field("auto", description=STREAM_HELP)

    @field_validator("test_domains")
    @classmethod
    def _distinct(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"test_domains lists a domain twice: {list(value)}")
        return value

    @model_validator(mode="after")
    def _domains_consistent(self) -> "ImageFolderParams":
        if self.test_domains is not None and self.train_domain is None:
            raise ValueError("test_domains needs train_domain (the domain to train on)")
        if self.train_domain is not None and self.train_domain in (self.test_domains or ()):
            raise ValueError(f"test_domains must not include the train domain '{self.train_domain}'")
        return self


def _scan(folder: Path, label: str) -> tuple[list[str], list[str], np.ndarray]:
    """(classes, image paths, labels) of one class-folder tree."""
    try:
        classes, class_to_idx = find_classes(str(folder))
        samples = _samples(folder, class_to_idx)
    except FileNotFoundError as exc:
        raise DataError(f"imagefolder {label}: {exc}; each class needs a folder of images "
                        f"({', '.join(IMG_EXTENSIONS)}) under {folder}") from None
    paths = [p for p, _ in samples]
    return classes, paths, np.asarray([t for _, t in samples], dtype=np.int64)


def _samples(folder: Path, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    """(path, class index) of every image under each class folder, in torchvision's
    order, without following symlinked folders (torchvision's `make_dataset` does:
    a link to a parent folder would loop, repeating images under wrong labels)."""
    samples, empty = [], []
    for name, index in sorted(class_to_idx.items()):
        found = [(os.path.join(here, f), index)
                 for here, _, files in sorted(os.walk(folder / name, followlinks=False))
                 for f in sorted(files) if f.lower().endswith(IMG_EXTENSIONS)]
        samples += found
        empty += [] if found else [name]
    if empty:
        raise FileNotFoundError(f"found no image for the classes {', '.join(empty)}")
    return samples


def _check_aligned(domain: str, classes: list[str], reference: list[str], train_domain: str) -> None:
    missing, extra = sorted(set(reference) - set(classes)), sorted(set(classes) - set(reference))
    if missing or extra:
        parts = ([f"lacks {missing}"] if missing else []) + ([f"has extra {extra}"] if extra else [])
        raise DataError(f"imagefolder domain '{domain}' {' and '.join(parts)} compared with the train domain "
                        f"'{train_domain}'; every domain needs the same class folders (classes are matched "
                        "by folder name)")


def _per_class_cap(labels: np.ndarray, index: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    if limit is None:
        return index
    kept = [cap(index[labels[index] == c], limit, seed) for c in np.unique(labels[index])]
    return np.sort(np.concatenate(kept))


def _image_set(paths: list[str], labels: np.ndarray, index: np.ndarray, params: ImageFolderParams,
               label: str) -> ImageSet:
    source = FileImages(paths, "RGB", params.size, f"imagefolder {label}")
    return image_set(source, labels, index, f"imagefolder {label}", params.stream, params.size)


def _domains(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


@functools.lru_cache(maxsize=2)
def _load(params: ImageFolderParams) -> TaskData:
    root = Path(params.root).expanduser()
    if not root.is_dir():
        raise DataError(f"imagefolder: root {root.resolve()} is not a folder; set `root:` to a folder of "
                        "class folders (or of domain folders holding class folders)")
    train_root, label = root, str(root)
    if params.train_domain is not None:
        domains = _domains(root)
        wanted = [params.train_domain, *(params.test_domains or [])]
        absent = [d for d in wanted if d not in domains]
        if absent:
            raise DataError(f"imagefolder: domain(s) {absent} not found in {root}; its domains are {domains}")
        train_root, label = root / params.train_domain, f"domain '{params.train_domain}'"
    classes, paths, labels = _scan(train_root, label)
    index = _per_class_cap(labels, np.arange(len(labels)), params.max_per_class, params.split_seed)
    train, test = stratified_split(labels[index], params.test_fraction, params.split_seed, f"imagefolder {label}")
    task = TaskData(classes=classes,
                    train=_image_set(paths, labels, index[train], params, label),
                    test=_image_set(paths, labels, index[test], params, label))
    if params.train_domain is not None:
        others = params.test_domains if params.test_domains is not None else [
            d for d in _domains(root) if d != params.train_domain]
        for domain in others:
            d_classes, d_paths, d_labels = _scan(root / domain, f"domain '{domain}'")
            _check_aligned(domain, d_classes, classes, params.train_domain)
            d_index = _per_class_cap(d_labels, np.arange(len(d_labels)), params.max_per_class, params.split_seed)
            task.shifted[domain] = _image_set(d_paths, d_labels, d_index, params, f"domain '{domain}'")
    return task


def make_imagefolder(params: ImageFolderParams, *, seed: int) -> TaskData:
    """Class-folder images; with `train_domain`, the other domains as shifted test
    sets. `seed` is unused: the split depends on `split_seed` only."""
    return fresh_copy(_load(params))
