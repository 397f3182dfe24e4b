"""`--dry-run` and `validate` on a searched suite: the search's trials and, once a
cell's trials are all recorded, its runs at the selected values with their real ids
(replayed from the trial records; nothing runs)."""

from ftbench.driver.search import TRIALS_FOLDER
from ftbench.results.records import load_records
from tests.test_search import FLIPPED, invoke


def _row(output: str, start: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(start))


def test_dry_run_shows_the_search_plan_then_the_tuned_runs_done(tmp_path):
    suite_file, out = tmp_path / "flipped.yaml", tmp_path / "res"
    suite_file.write_text(FLIPPED)
    before = invoke("run", str(suite_file), "--results", str(out), "--dry-run")
    assert before.exit_code == 0, before.output
    assert _row(before.output, "(after search)")[-2:] == ["tuned", "later"]  # its values, so its id, come from the search
    assert "1 runs (0 finished, 1 to run)" in before.output
    assert _row(before.output, "toy-timm")[-5:] == ["2", "0", "after", "its", "trials"]  # trial runs, done
    assert "2 trial runs first (1 cells; per cell, trials x tuning seeds: 2 x 1), 0 finished; no cell selected" \
        in before.output
    assert not (out / TRIALS_FOLDER).exists()  # a dry run runs nothing

    assert invoke("run", str(suite_file), "--results", str(out), "-q").exit_code == 0
    [final] = load_records(out)
    for command in ("run", "validate"):
        after = invoke(command, str(suite_file), "--results", str(out), *(["--dry-run"] if command == "run" else []))
        assert after.exit_code == 0, after.output
        assert _row(after.output, final["id"])[-1] == "ok" and "(after search)" not in after.output
        assert "1 runs (1 finished, 0 to run)" in after.output
        assert _row(after.output, "toy-timm")[-3:] == ["2", "2", "train.lr=0.01"]
        assert "2 finished; every cell selected" in after.output
    status = invoke("status", str(out))  # counts the tuned run, not the untuned id
    assert _row(status.output, "ok")[-1] == "1" and _row(status.output, "pending")[-1] == "0", status.output

    # A lost trial: the cell's selection is unknown again until it reruns.
    next((out / TRIALS_FOLDER).glob("*.json")).unlink()
    lost = invoke("run", str(suite_file), "--results", str(out), "--dry-run")
    assert "(after search)" in lost.output and final["id"] not in lost.output
    assert "1 runs (0 finished, 1 to run)" in lost.output and "1 finished; no cell selected" in lost.output
