"""ftbench's built-in loggers: MLflow, TensorBoard and Weights & Biases.

Registered through the `ftbench` entry-point group like any third-party plugin. A
suite enables them under `loggers:` (or `ftbench run --logger NAME`); each imports
its library only when it is built, so the package costs nothing when unused.
"""

from __future__ import annotations

import ftbench
from ftbench.components import Component
from ftbench_loggers.mlflow import MLflowLogger, MLflowParams
from ftbench_loggers.tensorboard import TensorBoardLogger, TensorBoardParams
from ftbench_loggers.wandb import WandbLogger, WandbParams

__version__ = "0.1.0"

LOGGERS = [
    Component("mlflow", MLflowLogger, MLflowParams,
              "MLflow: a parent run per suite, a child run per run (params, curve, metrics, record)."),
    Component("tensorboard", TensorBoardLogger, TensorBoardParams,
              "TensorBoard: one log dir per run with curve scalars, final metrics and hparams."),
    Component("wandb", WandbLogger, WandbParams,
              "Weights & Biases: one run per run, offline by default; group = suite, job type = strategy."),
]


@ftbench.hookimpl
def ftbench_register_loggers() -> list[Component]:
    return list(LOGGERS)
