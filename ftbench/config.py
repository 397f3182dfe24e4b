"""Training and budget settings shared by every strategy, set per suite entry.

Both are pydantic models: a suite's `train:` and `budget:` blocks are validated
against them, and their resolved values are part of each run's id.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainConfig(_Strict):
    """How the core trains, whatever the strategy."""

    optimizer: Literal["sgd", "adamw"] = Field("adamw", description="SGD with momentum, or AdamW")
    lr: float = Field(1e-3, gt=0, description="peak learning rate of the run (strategies scale it per group)")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: float = Field(1e-4, ge=0, description="decoupled weight decay; never applied to norms and biases")
    schedule: Literal["constant", "cosine", "step", "onecycle", "slanted-triangular"] = Field(
        "cosine", description="learning-rate schedule over the budget")
    warmup: float = Field(0.0, ge=0, lt=1, description="fraction of the budget spent in linear warm-up")
    step_gamma: float = Field(0.1, gt=0, le=1, description="`step` schedule: factor at 50% and 75% of the budget")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="cross-entropy label smoothing")
    grad_clip: float | None = Field(None, gt=0, description="clip the gradient norm to this value")
    batch_size: int = Field(64, ge=1, description="training batch size")
    bn: Literal["train", "eval"] = Field(
        "eval", description="batch-norm layers whose parameters are all frozen: keep updating their running "
                            "statistics (train) or freeze them too (eval)")
    augment: Literal["none", "flip", "crop", "crop-flip"] = Field(
        "none", description="on-device batch augmentation: random horizontal flip and/or 4-pixel-padded random crop")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 autocast on GPUs that support it, fp16 with a grad scaler on older GPUs, "
                            "fp32 on CPU")
    channels_last: bool | None = Field(None, description="channels_last memory format; default: on for GPUs")
    compile: bool = Field(False, description="torch.compile the model (GPU; slow to start)")
    eval_batch_size: int = Field(256, ge=1, description="batch size for evaluation and feature caching")
    cache_features: bool = Field(
        True, description="when only the head trains on a frozen, eval-mode backbone without augmentation, "
                          "compute features once and train the head on them")


class BudgetConfig(_Strict):
    """The compute a run may spend; the first limit reached stops it."""

    # Finite upper bounds: an infinite or absurd budget would never stop (a year of seconds, ...).
    epochs: float | None = Field(None, gt=0, le=1e6, allow_inf_nan=False, description="passes over the training subset")
    steps: int | None = Field(None, gt=0, le=10**12, description="optimizer steps")
    samples: int | None = Field(None, gt=0, le=10**15, description="training samples seen")
    seconds: float | None = Field(None, gt=0, le=366 * 86400, allow_inf_nan=False,
                                  description="training wall-clock seconds (evaluation excluded)")

    @model_validator(mode="after")
    def _at_least_one(self) -> "BudgetConfig":
        if not any(v is not None for v in self.limits().values()):
            raise ValueError("set at least one of epochs, steps, samples, seconds")
        return self

    def limits(self) -> dict[str, float | None]:
        return {"epochs": self.epochs, "steps": self.steps, "samples": self.samples, "seconds": self.seconds}
