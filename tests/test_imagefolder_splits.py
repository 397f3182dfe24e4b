"""imagefolder with the dataset's own split: root/train, root/val, root/test used as given."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ftbench.errors import DataError
from ftbench_datasets.imagefolder import ImageFolderParams, make_imagefolder


def _write(root: Path, split: str, counts: dict[str, int]) -> None:
    for c, (cls, n) in enumerate(counts.items()):
        folder = root / split / cls
        folder.mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (12, 10), (100 * (cls == "dog"), 10 * i, 0)).save(folder / f"{i}.png")


def test_train_val_test_folders_are_used_as_given(tmp_path):
    _write(tmp_path, "train", {"cat": 5, "dog": 4})
    _write(tmp_path, "val", {"cat": 2, "dog": 2})
    _write(tmp_path, "test", {"cat": 3})  # a split may lack a class; labels still follow train/'s
    task = make_imagefolder(ImageFolderParams(root=str(tmp_path), size=8), seed=0)
    assert task.classes == ["cat", "dog"]
    assert (len(task.train), len(task.val), len(task.test)) == (9, 4, 3)
    assert task.test.labels.tolist() == [0, 0, 0]
    assert ((task.val.images[:, 0, 0, 0] > 50).long() == task.val.labels).all()  # red marks the dogs


def test_without_test_folder_val_is_the_test_split(tmp_path):
    _write(tmp_path, "train", {"cat": 4, "dog": 4})
    _write(tmp_path, "val", {"cat": 1, "dog": 2})
    task = make_imagefolder(ImageFolderParams(root=str(tmp_path), size=8), seed=0)
    assert (len(task.train), len(task.test), task.val) == (8, 3, None)  # the core carves val from train


def test_a_split_with_a_class_train_lacks_is_an_error(tmp_path):
    _write(tmp_path, "train", {"cat": 2, "dog": 2})
    _write(tmp_path, "test", {"cat": 1, "owl": 1})
    with pytest.raises(DataError, match=r"class folders \['owl'\] that train/ lacks"):
        make_imagefolder(ImageFolderParams(root=str(tmp_path), size=8), seed=0)
