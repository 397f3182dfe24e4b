"""The adaptive seeds table: how each comparison of an adaptive study ended ("decided
at 5 seeds", "undecided at max 10", "undecided, futile at 5"), the seeds each cell
used, and the runs saved against running max seeds everywhere. It reads the plan the
driver wrote beside the records (`ftbench.driver.adaptive`, plan.json)."""

from __future__ import annotations

from ftbench.report.core import Cell, Num, Table


def ended(row: dict, max_seeds: int) -> str:
    """How one comparison ended, in words."""
    if row.get("decided_at") is not None:
        return f"{row['verdict']} at {row['decided_at']} seeds"
    if row.get("futile_at") is not None:
        return f"undecided, futile at {row['futile_at']} (power {row['power']:.2f})"
    return f"undecided at max {max_seeds}" if row.get("n") is not None else "undecided"


def expected_seeds(plan: dict | None) -> dict[Cell, list[int]]:
    """Cell -> the seeds the plan ran it on (the first n from `start`)."""
    if not plan:
        return {}
    start = int((plan.get("settings") or {}).get("start", 0))
    return {Cell(c["backbone"], c["dataset"], c["strategy"], c["data"]): list(range(start, start + int(c["seeds"])))
            for c in plan.get("cells") or []}


def adaptive_table(plan: dict) -> Table:
    """One row per comparison of the plan: its verdict and the look that gave it, the
    mean difference there, and the seeds its two cells used."""
    s = plan.get("settings") or {}
    seeds = {(c["backbone"], c["dataset"], c["strategy"], c["data"]): c["seeds"] for c in plan.get("cells") or []}
    rows = []
    for r in plan.get("comparisons") or []:
        used = [seeds.get((r["backbone"], r["dataset"], k, r["data"])) for k in (r["strategy"], r["vs"])]
        rows.append([r["backbone"], r["dataset"], r["data"], r["strategy"], r["vs"], ended(r, s.get("max")),
                     Num(r.get("mean"), "+.2f"),
                     "/".join(str(u) for u in used)])
    runs = plan.get("runs") or {}
    saved = runs.get("saved", 0)
    share = f" ({saved / runs['max']:.0%})" if runs.get("max") else ""
    looks = ", ".join(map(str, plan.get("looks") or []))
    notes = [f"runs: {runs.get('planned')} of {runs.get('max')} ran, {saved} saved{share} against max "
             f"{s.get('max')} seeds in every cell"
             + ("" if plan.get("complete") else f"; {runs.get('pending')} runs of the current look are still to "
                                               "run (`ftbench run` resumes the same path)"),
             f"seeds {{min: {s.get('min')}, max: {s.get('max')}, step: {s.get('step')}}}: looks at {looks} seeds; "
             f"each comparison is paired (Student's t on matched seeds, test accuracy) and stops once decided: "
             f"'different' (two-sided t) or 'equivalent' (TOST within ±{s.get('margin')} points), each at the "
             f"boundary of a Lan-DeMets {s.get('spending')}-type alpha-spending design, Holm across the family at "
             f"each look; family-wise error <= {s.get('alpha')} over all looks (ftbench.stats.sequential)",
             *([f"futility {s['futility']:g}: a comparison undecided before max stops, undecided ('futile at n'), "
                f"once its predictive power, the chance of either verdict by max given its seeds so far, is below "
                f"{s['futility']:g}; this cannot add false verdicts, it can cost power"]
               if s.get("futility") else []),
             "Δ is the mean paired difference (points) at the look that decided it, or at the last; a fixed-n "
             "interval read after stopping is biased, so the tables above are descriptive for adaptive cells",
             "seeds used: strategy/vs; a cell in no comparison runs min seeds"]
    return Table("adaptive", "Adaptive seeds", ["Backbone", "Dataset", "Data", "Strategy", "vs", "Ended", "Δ",
                                                "Seeds used"], rows, notes, label_cols=6,
                 empty=None if rows else "no comparisons in the plan")
