"""Weights & Biases: one W&B run per ftbench run, offline by default.

Offline runs need no account or network; `wandb sync <dir>/wandb/offline-run-*`
uploads them later. group = the suite, job type = the strategy; the config is the
resolved run config; the curve is logged with step = samples seen; the final
metrics go to the run summary; the record is a `record.json` artifact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from ftbench.components import Params
from ftbench_loggers._base import Logger, curve_points, final_metrics, require, run_name, tags


class WandbParams(Params):
    mode: Literal["offline", "online", "disabled"] = Field(
        "offline", description="offline writes local files only (default); online needs `wandb login`")
    project: str | None = Field(None, description="W&B project; default the suite's name")
    entity: str | None = Field(None, description="W&B entity (team or user) when online")
    dir: str | None = Field(None, description="where the run files go; default the results folder (<dir>/wandb)")


class WandbLogger(Logger):
    name = "wandb"

    def __init__(self, params: WandbParams, *, results: Path):
        super().__init__(params, results=results)
        self.wandb = require("wandb", "wandb")
        self.dir = Path(params.dir) if params.dir else self.results
        self.dir.mkdir(parents=True, exist_ok=True)

    def log_run(self, suite, record: dict) -> None:
        wandb, cell = self.wandb, record.get("cell") or {}
        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True)
        run = wandb.init(mode=self.params.mode, project=self.params.project or suite.name,
                         entity=self.params.entity, dir=str(self.dir), group=suite.name,
                         job_type=str(cell.get("strategy")), name=run_name(record),
                         config=record.get("config") or {}, tags=[f"{k}={v}" for k, v in tags(record).items()],
                         settings=settings, reinit="create_new")
        try:
            for samples, values in curve_points(record):
                run.log({**values, "samples": samples}, step=samples)
            run.summary.update(final_metrics(record))
            run.summary.update({"status": record.get("status"), "seed": record.get("seed")})
            artifact = wandb.Artifact(f"record-{record.get('id')}", type="ftbench-record")
            with artifact.new_file("record.json") as fh:
                fh.write(json.dumps(record, indent=2, default=str))
            run.log_artifact(artifact)
        finally:
            run.finish(exit_code=0 if record.get("status") == "ok" else 1)

