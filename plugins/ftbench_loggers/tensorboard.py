"""TensorBoard: one log dir per run (torch.utils.tensorboard), named after the cell.

Scalars at every learning-curve point (step = samples seen), the final metrics at
the last step, and an hparams summary (the flattened config against the final
metrics) so TensorBoard's HPARAMS tab compares runs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ftbench.components import Params
from ftbench_loggers._base import Logger, curve_points, final_metrics, flatten, require, safe_name, tags


class TensorBoardParams(Params):
    log_dir: str | None = Field(None, description="parent folder of the runs' log dirs; default "
                                                  "<results>/tensorboard (`tensorboard --logdir` it)")


def run_dir_name(record: dict) -> str:
    """`<strategy>_<data>_s<seed>_<id>`, safe as a folder name."""
    cell = record.get("cell") or {}
    parts = [cell.get("strategy"), cell.get("data"), f"s{record.get('seed')}", record.get("id")]
    return "_".join(safe_name(str(p)).replace("/", "_").replace(" ", "_") for p in parts)


class TensorBoardLogger(Logger):
    name = "tensorboard"

    def __init__(self, params: TensorBoardParams, *, results: Path):
        super().__init__(params, results=results)
        require("tensorboard", "tensorboard")  # torch.utils.tensorboard writes with it
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter
        self.root = Path(params.log_dir) if params.log_dir else self.results / "tensorboard"

    def log_run(self, suite, record: dict) -> None:
        from torch.utils.tensorboard.summary import hparams

        writer = self._writer(log_dir=str(self.root / run_dir_name(record)))
        try:
            for samples, values in curve_points(record):
                for key, value in values.items():
                    writer.add_scalar(f"curve/{key}", value, samples)
            used = int(((record.get("budget") or {}).get("used") or {}).get("samples") or 0)
            final = {f"final/{safe_name(k)}": v for k, v in final_metrics(record).items()}
            for key, value in final.items():
                writer.add_scalar(key, value, used)
            config = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
                      for k, v in flatten(record.get("config") or {}).items() if v is not None}
            config.update({f"tag.{k}": v for k, v in tags(record).items()})
            # Written into this run's own dir (SummaryWriter.add_hparams would make a subdir).
            for summary in hparams(config, final):
                writer.file_writer.add_summary(summary)
        finally:
            writer.close()
