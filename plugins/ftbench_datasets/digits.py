"""scikit-learn's handwritten digits: 1797 real 8x8 grey images, bundled, offline."""

from __future__ import annotations

import functools

import numpy as np
import torch
from sklearn.datasets import load_digits

from ftbench.components import ImageSet, TaskData

from ._common import fresh_copy, stratified_split
from .params import DigitsParams


@functools.lru_cache(maxsize=4)
def _load(params: DigitsParams) -> TaskData:
    bunch = load_digits()
    # pixel values are counts 0..16 of a 4x4 block; spread them over 0..255
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    train, test = stratified_split(labels, params.test_fraction, params.split_seed, "dataset 'digits'")
    images_t, labels_t = torch.from_numpy(images), torch.from_numpy(labels)
    return TaskData(classes=[str(d) for d in range(10)],
                    train=ImageSet(images_t[train], labels_t[train]),
                    test=ImageSet(images_t[test], labels_t[test]))


def make_digits(params: DigitsParams, *, seed: int) -> TaskData:
    """scikit-learn's handwritten digits (8x8 grey, classes "0".."9"). `seed` is
    unused: the split depends on `split_seed` only."""
    return fresh_copy(_load(params))
