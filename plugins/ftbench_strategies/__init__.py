"""ftbench's built-in fine-tuning strategies, one module each.

Registered through the `ftbench` entry-point group like any third-party plugin. Each
strategy's class docstring names the method and its paper; its `Params` model lists
its hyperparameters.
"""

from __future__ import annotations

import ftbench
from ftbench.components import Component
from ftbench_strategies.adabn import AdaBN, AdaBNParams
from ftbench_strategies.bitfit import BitFit, BitFitParams
from ftbench_strategies.dann import DANN, DANNParams
from ftbench_strategies.discriminative_lr import DiscriminativeLR, DiscriminativeLRParams
from ftbench_strategies.feature_extract import FeatureExtract, FeatureExtractParams
from ftbench_strategies.freeze import Freeze, FreezeParams, Surgical, SurgicalParams
from ftbench_strategies.full import Full, FullParams
from ftbench_strategies.gradual_unfreeze import GradualUnfreeze, GradualUnfreezeParams
from ftbench_strategies.l2_sp import L2SP, L2SPParams
from ftbench_strategies.linear_probe import LinearProbe, LinearProbeParams
from ftbench_strategies.lora import LoRA, LoRAParams
from ftbench_strategies.lp_ft import LPFT, LPFTParams
from ftbench_strategies.lwf import LwF, LwFParams
from ftbench_strategies.peft import Peft, PeftParams
from ftbench_strategies.scratch import Scratch, ScratchParams
from ftbench_strategies.self_training import SelfTraining, SelfTrainingParams
from ftbench_strategies.wise_ft import WiSEFT, WiSEFTParams

__version__ = "0.1.0"

STRATEGIES = [
    Component("full", Full, FullParams, "Full fine-tuning: every parameter trains."),
    Component("linear-probe", LinearProbe, LinearProbeParams,
              "Linear probe: only the head trains on the frozen backbone (features cached when possible)."),
    Component("scratch", Scratch, ScratchParams,
              "From scratch: the same architecture, randomly re-initialised, trains fully."),
    Component("freeze", Freeze, FreezeParams, "Freeze the first k layer groups; the rest trains (Yosinski 2014)."),
    Component("surgical", Surgical, SurgicalParams,
              "Surgical fine-tuning: one layer group plus the head trains (Lee et al. 2023)."),
    Component("gradual-unfreeze", GradualUnfreeze, GradualUnfreezeParams,
              "Gradual unfreezing: head first, then one more group from the top per interval (ULMFiT 2018)."),
    Component("discriminative-lr", DiscriminativeLR, DiscriminativeLRParams,
              "Discriminative learning rates by depth (ULMFiT) or layer-wise decay (BEiT), over a base strategy."),
    Component("lp-ft", LPFT, LPFTParams,
              "LP-FT: linear probe, then full fine-tuning from the probed head (Kumar et al. 2022)."),
    Component("l2-sp", L2SP, L2SPParams,
              "L2-SP: full fine-tuning pulled towards the pretrained weights (Li et al. 2018)."),
    Component("wise-ft", WiSEFT, WiSEFTParams,
              "WiSE-FT: full fine-tuning, evaluated at weight-space mixes with the start (Wortsman et al. 2022)."),
    Component("bitfit", BitFit, BitFitParams, "BitFit: only biases and the head train (Ben Zaken et al. 2022)."),
    Component("lora", LoRA, LoRAParams,
              "LoRA: low-rank adapters on linear and conv layers, merged for evaluation (Hu et al. 2022)."),
    Component("peft", Peft, PeftParams,
              "Any Hugging Face peft method (LoRA, LoHa, LoKr, IA3, BOFT, VeRA, ...) on the backbone's "
              "linear/conv layers, merged for evaluation where supported."),
    Component("lwf", LwF, LwFParams,
              "Learning without Forgetting: fine-tuning plus distillation of the source head (Li & Hoiem 2016)."),
    Component("feature-extract", FeatureExtract, FeatureExtractParams,
              "Feature extraction: scikit-learn logistic regression (C on val) or k-NN on frozen features "
              "(Kornblith et al. 2019)."),
    Component("adabn", AdaBN, AdaBNParams,
              "AdaBN: batch-norm statistics re-estimated on unlabelled target images after fine-tuning "
              "(Li et al. 2016); needs adapt:."),
    Component("dann", DANN, DANNParams,
              "DANN: fine-tuning plus a gradient-reversed domain classifier on the features "
              "(Ganin et al. 2016); needs adapt:."),
    Component("self-training", SelfTraining, SelfTrainingParams,
              "Self-training: fine-tuning plus confident pseudo-labels on unlabelled target images "
              "(Lee 2013, FixMatch's threshold); needs adapt:."),
]


@ftbench.hookimpl
def ftbench_register_strategies() -> list[Component]:
    return list(STRATEGIES)
