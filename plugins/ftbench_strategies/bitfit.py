"""BitFit: only the bias terms (and the new head) train."""

from __future__ import annotations

from torch import nn

from ftbench.components import Backbone
from ftbench_strategies._common import FixedSelection
from ftbench_strategies.params import BitFitParams


class BitFit(FixedSelection):
    """BitFit (Ben Zaken, Ravfogel & Goldberg 2022, "BitFit: Simple Parameter-efficient
    Fine-tuning for Transformer-based Masked Language-models"): every parameter whose
    name's last part is `bias` trains, plus the whole head. Convolutional networks often have
    bias-free convolutions; their batch-norm shifts (`bn.bias`) are the biases then."""

    def __init__(self, params: BitFitParams | None = None):
        self.params = params or BitFitParams()

    def select(self, model: nn.Module, backbone: Backbone) -> list[str]:
        head = set(backbone.head_params)
        return [name for name, _ in model.named_parameters() if name in head or name.rsplit(".", 1)[-1] == "bias"]
