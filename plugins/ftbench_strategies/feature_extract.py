"""Feature extraction: a classical classifier on the frozen backbone's features."""

from __future__ import annotations

import copy
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import nn

from ftbench.components import Backbone, ParamGroup, Params, Strategy
from ftbench.errors import UserInputError
from ftbench_strategies._common import train_only


class FeatureExtractParams(Params):
    classifier: Literal["logreg", "knn"] = Field(
        "logreg", description="'logreg': multinomial logistic regression (L-BFGS), C chosen on val; "
                              "'knn': k nearest neighbours, k chosen on val")
    C_grid: tuple[float, ...] = Field(tuple(float(c) for c in np.logspace(-4, 4, 9)),
                                      description="inverse regularisation strengths tried (a log grid)")
    k_grid: tuple[int, ...] = Field((1, 5, 10, 20), description="neighbour counts tried (knn)")
    standardize: bool = Field(True, description="scale each feature to zero mean, unit variance on the "
                                                "training features first (folded into the head)")
    max_iter: int = Field(1000, ge=1, description="L-BFGS iterations per fit")

    @field_validator("C_grid", "k_grid")
    @classmethod
    def _positive(cls, grid: tuple) -> tuple:
        if not grid or any(v <= 0 for v in grid):
            raise ValueError(f"give at least one value, each above 0; got {list(grid)}")
        return grid


class KNNHead(nn.Module):
    """Cosine k-NN over stored training features: logits are the log of the
    neighbours' (smoothed) vote shares, so argmax is the majority vote."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, classes: int, k: int):
        super().__init__()
        self.register_buffer("bank", nn.functional.normalize(features.float(), dim=1))
        self.register_buffer("labels", labels.long())
        self.classes, self.k = classes, min(k, len(labels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sims = nn.functional.normalize(x.float(), dim=1) @ self.bank.T
        top = sims.topk(self.k, dim=1)
        votes = torch.zeros(len(x), self.classes, device=x.device)
        # ties: a tiny similarity-weighted share breaks them towards the closer neighbours
        votes.scatter_add_(1, self.labels[top.indices], 1 + 1e-3 * top.values)
        return torch.log((votes + 1e-3) / (self.k + 1e-3 * self.classes))


def _replace_classifier(model: nn.Module, new: nn.Module) -> None:
    old = model.get_classifier()
    path = next(n for n, m in model.named_modules() if m is old)
    parent = model.get_submodule(path.rpartition(".")[0]) if "." in path else model
    setattr(parent, path.rpartition(".")[2], new)


class FeatureExtract(Strategy):
    """Feature extraction with a classical classifier: the pretrained backbone stays
    frozen, its pre-logits features are computed once (the linear probe's cached-
    features path) and a scikit-learn classifier is fitted on them. `logreg` is the
    linear-probe protocol of Kornblith, Shlens & Le 2019 ("Do Better ImageNet Models
    Transfer Better?") and CLIP (Radford et al. 2021): L-BFGS multinomial logistic
    regression with C chosen on the validation split over a log grid, then the
    chosen model's weights become the linear head. `knn` is a cosine k-NN vote
    (as in Wu et al. 2018 / DINO 2021) with k chosen on val. Training cost is one
    forward pass over train and val plus the fits; the budget's limits do not apply.
    The choice is recorded under metrics.strategy. Needs a val split.
    """

    solves_head = True

    def __init__(self, params: FeatureExtractParams | None = None):
        self.params = params or FeatureExtractParams()
        self._chosen: dict = {}
        self._knn: KNNHead | None = None

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        head = model.get_classifier()
        if self.params.classifier == "logreg" and not isinstance(head, nn.Linear):
            raise UserInputError(f"feature-extract (logreg) writes its weights into a linear head, and this "
                                 f"model's classifier is {type(head).__name__}; use classifier: knn")
        return train_only(model, [n for n, _ in model.named_parameters() if n in set(backbone.head_params)],
                          "head")

    def solve_head(self, model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                   val: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        if val is None:
            raise UserInputError("feature-extract chooses its hyperparameter on the val split, and this run has "
                                 "none; set the dataset's val_fraction above 0")
        x, y = train[0].cpu().double().numpy(), train[1].cpu().numpy()
        xv, yv = val[0].cpu().double().numpy(), val[1].cpu().numpy()
        if self.params.classifier == "knn":
            self._solve_knn(model, train, val)
            return
        mean, std = (x.mean(0), x.std(0) + 1e-8) if self.params.standardize else (0.0, 1.0)
        best = self.choose_C((x - mean) / std, y, (xv - mean) / std, yv)
        head = model.get_classifier()
        coef = np.zeros((head.out_features, x.shape[1]))
        intercept = np.full(head.out_features, -1e4)  # classes absent from train are never predicted
        fitted = best["model"]
        rows = fitted.coef_, fitted.intercept_
        if len(fitted.classes_) == 2:  # binary: sklearn keeps one row, the logit of classes_[1]
            rows = np.concatenate([-rows[0] / 2, rows[0] / 2]), np.array([-rows[1][0] / 2, rows[1][0] / 2])
        coef[fitted.classes_], intercept[fitted.classes_] = rows
        # fold the standardisation in: w . (x - m) / s + b = (w / s) . x + (b - w . m / s)
        weight = coef / std
        bias = intercept - (coef * (mean / std)).sum(1)
        with torch.no_grad():
            head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
            head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))
        self._chosen = {"classifier": "logreg", "C": best["C"], "val_acc_by_C": best["scores"]}

    def choose_C(self, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray) -> dict:
        """Fit one logistic regression per C on train; keep the best on val (ties:
        the smaller C, the stronger regularisation). The test split never enters."""
        from sklearn.linear_model import LogisticRegression

        scores, best = {}, None
        for C in sorted(self.params.C_grid):
            fitted = LogisticRegression(C=C, solver="lbfgs", max_iter=self.params.max_iter).fit(x, y)
            acc = float((fitted.predict(xv) == yv).mean() * 100)
            scores[f"{C:g}"] = acc
            if best is None or acc > best["acc"]:
                best = {"C": C, "acc": acc, "model": fitted}
        return {**best, "scores": scores}

    def _solve_knn(self, model: nn.Module, train, val) -> None:
        classes = model.get_classifier().out_features if isinstance(model.get_classifier(), nn.Linear) \
            else int(train[1].max()) + 1
        scores, best = {}, None
        for k in sorted(self.params.k_grid):
            head = KNNHead(train[0], train[1], classes, k)
            acc = float((head(val[0]).argmax(1) == val[1]).float().mean() * 100)
            scores[str(k)] = acc
            if best is None or acc > best[1]:
                best = (k, acc, head)
        self._knn = best[2]
        self._chosen = {"classifier": "knn", "k": best[0], "val_acc_by_k": scores}

    def final_model(self, model: nn.Module) -> nn.Module:
        if self._knn is None:
            return model
        out = copy.deepcopy(model)
        _replace_classifier(out, self._knn)
        return out

    def info(self) -> dict:
        return dict(self._chosen)
