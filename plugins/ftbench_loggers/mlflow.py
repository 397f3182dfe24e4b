"""MLflow: a parent run per `ftbench run` of a suite, a child run per ftbench run.

Each child run holds the resolved config as params (flattened, dotted keys), the
learning curve as metrics at every point (step = samples seen), the final metrics,
the cell labels, seed and status as tags, and the record as `record.json`.

By default runs go to `<results>/mlflow.db` (SQLite) with artifacts in
`<results>/mlartifacts`: MLflow 3 refuses the old `./mlruns` file store unless
MLFLOW_ALLOW_FILE_STORE=true. `mlflow ui --backend-store-uri sqlite:///<results>/mlflow.db`
shows them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from pydantic import Field

from ftbench.components import Params
from ftbench_loggers._base import Logger, curve_points, final_metrics, flatten, require, run_name, safe_name, tags

# MLflow's limit on one param value; longer values (long lists) are cut.
_MAX_PARAM = 6000


class MLflowParams(Params):
    tracking_uri: str | None = Field(
        None, description="where runs go: sqlite:///file.db, http(s)://server, databricks, ...; "
                          "default $MLFLOW_TRACKING_URI, else sqlite:///<results>/mlflow.db")
    experiment: str | None = Field(None, description="experiment name; default the suite's name")


class MLflowLogger(Logger):
    name = "mlflow"

    def __init__(self, params: MLflowParams, *, results: Path):
        super().__init__(params, results=results)
        MlflowClient = require("mlflow.tracking", "mlflow-skinny").MlflowClient

        self.local = not (params.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
        uri = params.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or self.default_uri(results)
        self.client = MlflowClient(tracking_uri=uri)
        self.parent_id: str | None = None
        self.experiment_id: str | None = None

    @staticmethod
    def default_uri(results: Path) -> str:
        Path(results).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(results).resolve() / 'mlflow.db'}"

    def _experiment(self, suite) -> str:
        name = self.params.experiment or suite.name
        found = self.client.get_experiment_by_name(name)
        if found:
            return found.experiment_id
        # Beside the local database rather than MLflow's default ./mlruns in the working folder.
        where = (self.results.resolve() / "mlartifacts").as_uri() if self.local else None
        return self.client.create_experiment(name, artifact_location=where)

    def start(self, suite, runs: list) -> None:
        self.experiment_id = self._experiment(suite)
        parent = self.client.create_run(self.experiment_id, run_name=f"{suite.name} ({len(runs)} runs)",
                                        tags={"suite": suite.name, "ftbench_results": str(self.results)})
        self.parent_id = parent.info.run_id
        self.client.log_text(self.parent_id, json.dumps(suite.model_dump(mode="json"), indent=2), "suite.json")

    def log_run(self, suite, record: dict) -> None:
        from mlflow.entities import Metric, Param

        run_tags = {**tags(record), "mlflow.parentRunId": self.parent_id or ""}
        run = self.client.create_run(self.experiment_id or self._experiment(suite), run_name=run_name(record),
                                     tags={k: v for k, v in run_tags.items() if v})
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        params = [Param(safe_name(k), str(v)[:_MAX_PARAM]) for k, v in flatten(record.get("config") or {}).items()]
        metrics = [Metric(safe_name(k), v, now, samples)
                   for samples, values in curve_points(record) for k, v in values.items()]
        used = int(((record.get("budget") or {}).get("used") or {}).get("samples") or 0)
        metrics += [Metric(safe_name(k), v, now, used) for k, v in final_metrics(record).items()]
        # log_batch takes at most 1000 metrics and 100 params per call.
        for i in range(0, len(params), 100):
            self.client.log_batch(run_id, params=params[i:i + 100])
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[i:i + 1000])
        self.client.log_dict(run_id, record, "record.json")
        self.client.set_terminated(run_id, "FINISHED" if record.get("status") == "ok" else "FAILED")

    def end(self, suite, records: list[dict]) -> None:
        if self.parent_id:
            bad = sum(r.get("status") != "ok" for r in records)
            self.client.set_tag(self.parent_id, "runs", f"{len(records) - bad} ok, {bad} failed or diverged")
            self.client.set_terminated(self.parent_id, "FINISHED")
