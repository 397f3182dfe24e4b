"""ftbench's built-in fine-tuning strategies, one module each.

Registered through the `ftbench` entry-point group like any third-party plugin. Each
strategy's class docstring names the method and its paper; its `Params` model lists
its hyperparameters.
"""

from __future__ import annotations

import importlib

import ftbench
from ftbench.components import Component, lazy
from ftbench_strategies.params import (AdaBNParams, BitFitParams, DANNParams, DiscriminativeLRParams,
                                       FeatureExtractParams, FreezeParams, FullParams, GradualUnfreezeParams,
                                       L2SPParams, LinearProbeParams, LoRAParams, LPFTParams, LwFParams,
                                       PeftParams, ScratchParams, SelfTrainingParams, SurgicalParams,
                                       WiSEFTParams)

#: Each strategy class and its module, imported when first used (they import torch).
_CLASSES = {"Full": "full", "LinearProbe": "linear_probe", "Scratch": "scratch", "Freeze": "freeze",
            "Surgical": "freeze", "GradualUnfreeze": "gradual_unfreeze", "DiscriminativeLR": "discriminative_lr",
            "LPFT": "lp_ft", "L2SP": "l2_sp", "WiSEFT": "wise_ft", "BitFit": "bitfit", "LoRA": "lora", "LwF": "lwf",
            "Peft": "peft", "FeatureExtract": "feature_extract", "AdaBN": "adabn", "DANN": "dann",
            "SelfTraining": "self_training"}


def __getattr__(name: str):
    """`ftbench_strategies.Full` and the like, imported on first access."""
    if name in _CLASSES:
        return getattr(importlib.import_module(f"{__name__}.{_CLASSES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _lazy(cls: str) -> lazy:
    return lazy(f"{__name__}.{_CLASSES[cls]}:{cls}")


__version__ = "0.1.0"

STRATEGIES = [
    Component("full", _lazy("Full"), FullParams, "Full fine-tuning: every parameter trains."),
    Component("linear-probe", _lazy("LinearProbe"), LinearProbeParams,
              "Linear probe: only the head trains on the frozen backbone (features cached when possible)."),
    Component("scratch", _lazy("Scratch"), ScratchParams,
              "From scratch: the same architecture, randomly re-initialised, trains fully."),
    Component("freeze", _lazy("Freeze"), FreezeParams, "Freeze the first k layer groups; the rest trains (Yosinski 2014)."),
    Component("surgical", _lazy("Surgical"), SurgicalParams,
              "Surgical fine-tuning: one layer group plus the head trains (Lee et al. 2023)."),
    Component("gradual-unfreeze", _lazy("GradualUnfreeze"), GradualUnfreezeParams,
              "Gradual unfreezing: head first, then one more group from the top per interval (ULMFiT 2018)."),
    Component("discriminative-lr", _lazy("DiscriminativeLR"), DiscriminativeLRParams,
              "Discriminative learning rates by depth (ULMFiT) or layer-wise decay (BEiT), over a base strategy."),
    Component("lp-ft", _lazy("LPFT"), LPFTParams,
              "LP-FT: linear probe, then full fine-tuning from the probed head (Kumar et al. 2022)."),
    Component("l2-sp", _lazy("L2SP"), L2SPParams,
              "L2-SP: full fine-tuning pulled towards the pretrained weights (Li et al. 2018)."),
    Component("wise-ft", _lazy("WiSEFT"), WiSEFTParams,
              "WiSE-FT: full fine-tuning, evaluated at weight-space mixes with the start (Wortsman et al. 2022)."),
    Component("bitfit", _lazy("BitFit"), BitFitParams, "BitFit: only biases and the head train (Ben Zaken et al. 2022)."),
    Component("lora", _lazy("LoRA"), LoRAParams,
              "LoRA: low-rank adapters on linear and conv layers, merged for evaluation (Hu et al. 2022)."),
    Component("peft", _lazy("Peft"), PeftParams,
              "Any Hugging Face peft method (LoRA, LoHa, LoKr, IA3, BOFT, VeRA, ...) on the backbone's "
              "linear/conv layers, merged for evaluation where supported."),
    Component("lwf", _lazy("LwF"), LwFParams,
              "Learning without Forgetting: fine-tuning plus distillation of the source head (Li & Hoiem 2016)."),
    Component("feature-extract", _lazy("FeatureExtract"), FeatureExtractParams,
              "Feature extraction: scikit-learn logistic regression (C on val) or k-NN on frozen features "
              "(Kornblith et al. 2019)."),
    Component("adabn", _lazy("AdaBN"), AdaBNParams,
              "AdaBN: batch-norm statistics re-estimated on unlabelled target images after fine-tuning "
              "(Li et al. 2016); needs adapt:."),
    Component("dann", _lazy("DANN"), DANNParams,
              "DANN: fine-tuning plus a gradient-reversed domain classifier on the features "
              "(Ganin et al. 2016); needs adapt:."),
    Component("self-training", _lazy("SelfTraining"), SelfTrainingParams,
              "Self-training: fine-tuning plus confident pseudo-labels on unlabelled target images "
              "(Lee 2013, FixMatch's threshold); needs adapt:."),
]


@ftbench.hookimpl
def ftbench_register_strategies() -> list[Component]:
    return list(STRATEGIES)
