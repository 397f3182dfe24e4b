"""Images in class folders: one tree, one tree per split (train/ val/ test/), or one
tree per domain. `IMAGEFOLDER_LAYOUT` in `.params` describes the layouts.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes

from ftbench.components import ImageSet, TaskData
from ftbench.errors import DataError

from ._common import FileImages, cap, fresh_copy, image_set, stratified_split
from .params import PRESPLIT, ImageFolderParams


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


def _presplit(root: Path) -> list[str]:
    """The split folders of a pre-split root (train/ plus val/ or test/), else []."""
    found = [s for s in PRESPLIT if (root / s).is_dir()]
    return found if "train" in found and len(found) > 1 else []


def _load_presplit(root: Path, splits: list[str], params: ImageFolderParams) -> TaskData:
    """Each split folder used as given; labels follow train/'s classes by folder name.
    Without test/, val/ is the test split (as timm's train.py evaluates on val)."""
    classes, paths, labels = _scan(root / "train", "train/")
    sets: dict[str, ImageSet] = {}
    for split in splits:
        if split == "train":
            s_paths, s_labels = paths, labels
        else:
            s_classes, s_paths, s_labels = _scan(root / split, f"{split}/")
            extra = sorted(set(s_classes) - set(classes))
            if extra:
                raise DataError(f"imagefolder {root / split} has class folders {extra} that train/ lacks; "
                                "every split needs the train split's class folders (matched by name)")
            to_train = np.asarray([classes.index(c) for c in s_classes], dtype=np.int64)
            s_labels = to_train[s_labels]
        index = _per_class_cap(s_labels, np.arange(len(s_labels)), params.max_per_class, params.split_seed)
        sets[split] = _image_set(s_paths, s_labels, index, params, f"{split}/")
    has_test = "test" in sets
    return TaskData(classes=classes, train=sets["train"], test=sets["test" if has_test else "val"],
                    val=sets.get("val") if has_test else None)


@functools.lru_cache(maxsize=2)
def _load(params: ImageFolderParams) -> TaskData:
    root = Path(params.root).expanduser()
    if not root.is_dir():
        raise DataError(f"imagefolder: root {root.resolve()} is not a folder; set `root:` to a folder of "
                        "class folders (or of domain folders holding class folders)")
    splits = _presplit(root) if params.train_domain is None else []
    if splits:
        return _load_presplit(root, splits, params)
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
