"""ftbench's built-in datasets: scikit-learn digits, generated glyphs, torchvision
datasets by name and image folders (with domains). Registered through the
`ftbench` entry-point group like any third-party plugin.
"""

from __future__ import annotations

import functools

import ftbench
from ftbench.components import Component

from .digits import DigitsParams, make_digits
from .glyphs import GlyphsParams, make_glyphs
from .imagefolder import ImageFolderParams, make_imagefolder
from .torchvision_sets import SPECS, TorchvisionParams, make_torchvision

__all__ = ["DigitsParams", "GlyphsParams", "ImageFolderParams", "TorchvisionParams", "make_digits",
           "make_glyphs", "make_imagefolder", "make_torchvision"]


@ftbench.hookimpl
def ftbench_register_datasets() -> list[Component]:
    components = [
        Component("digits", make_digits, DigitsParams,
                  "scikit-learn's handwritten digits: 1797 real 8x8 grey images, bundled, offline"),
        Component("glyphs", make_glyphs, GlyphsParams,
                  "generated character images (Pillow's font) with controllable rotation, scale, "
                  "stroke, noise, colour and background; offline"),
        Component("imagefolder", make_imagefolder, ImageFolderParams,
                  "images in class folders, optionally one tree per domain (PACS / Office-Home layout)"),
    ]
    for name, spec in SPECS.items():
        components.append(Component(name, functools.partial(make_torchvision, name), TorchvisionParams,
                                    f"{spec.title} via torchvision.datasets.{spec.cls}; files under `root`, "
                                    "or `download: true`"))
    return components
