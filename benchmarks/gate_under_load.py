"""Does the speed gate hold on a busy machine, and still catch a real slowdown?

1. Runs a small suite with `--calibrate` on the machine as it is: the baseline.
2. Starts CPU burners (one busy process per core) and runs the same suite again:
   `ftbench compare` must pass (the calibration loop slows as much as the runs).
3. Under the same burners runs the suite with a planted ~2x slowdown (the strategy
   does each step's work twice, `benchmarks/planted_slowdown.py`): it must fail.
Prints each calibrated speed ratio, the uncalibrated one, and the gate's exit codes.

    python benchmarks/gate_under_load.py [--steps 30] [--speed-ratio 0.7]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = """\
name: gate-under-load
backbones: [{{name: timm, label: test-resnet, params: {{model: test_resnet, pretrained: none, input_size: 32}}}}]
datasets: [{{name: digits}}]
strategies: [{{name: {strategy}, label: full}}]
seeds: [0, 1, 2]
budget: {{steps: {steps}}}
train: {{batch_size: 32}}
eval: {{curve: false}}
device: cpu
"""


def _ftbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ftbench", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})


def _run(tmp: Path, name: str, strategy: str, steps: int) -> Path:
    suite = tmp / f"{name}.yaml"
    suite.write_text(SUITE.format(strategy=strategy, steps=steps))
    out = tmp / name
    done = _ftbench("--plugin", "benchmarks.planted_slowdown", "run", str(suite), "--results", str(out),
                    "--calibrate", "-q")
    if done.returncode:
        sys.exit(f"the suite failed: {done.stderr}")
    return out


def _compare(baseline: Path, current: Path, ratio: float) -> tuple[int, str]:
    done = _ftbench("compare", str(baseline), str(current), "--speed-ratio", str(ratio))
    # the table's one row: ... | speed ratio | verdict (columns are 2+ spaces apart)
    rows = [re.split(r"\s{2,}", line.strip()) for line in done.stdout.splitlines() if line.startswith("test-resnet/")]
    return done.returncode, rows[0][-2] if rows else f"? ({(done.stdout + done.stderr).strip()[-300:]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--speed-ratio", type=float, default=0.7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base = _run(tmp, "base", "full", args.steps)
        baseline = tmp / "baseline.json"
        _ftbench("baseline", "save", str(base), "-o", str(baseline))
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
        try:
            loaded = _run(tmp, "loaded", "full", args.steps)
            planted = _run(tmp, "planted", "slow-full", args.steps)
        finally:
            for proc in burners:
                proc.kill()
        uncalibrated = tmp / "uncalibrated.json"
        uncalibrated.write_text(json.dumps({**json.loads(baseline.read_text()), "calibration": None}))
        for label, base_file, current in (("unchanged, under load", baseline, loaded),
                                          ("unchanged, under load, uncalibrated gate", uncalibrated, loaded),
                                          ("planted 2x slowdown, under load", baseline, planted)):
            rc, ratio = _compare(base_file, current, args.speed_ratio)
            print(f"{label}: speed ratio {ratio}, gate exit {rc} ({'fail' if rc else 'pass'})")
        cal = [json.loads((d / "calibration.json").read_text())["samples_per_s"] for d in (base, loaded, planted)]
        print("calibration loop samples/s (base, loaded, planted): " + ", ".join(f"{c:.0f}" for c in cal))


if __name__ == "__main__":
    main()
