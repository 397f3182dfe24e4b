"""`--only KEY=VALUE`: the subset of a suite's runs a command works on."""

from __future__ import annotations

from ftbench.errors import UserInputError
from ftbench.suite.runs import RunSpec

ONLY_KEYS = ("backbone", "dataset", "strategy", "data", "seed")


def parse_only(filters: tuple[str, ...]) -> dict[str, set[str]]:
    """`--only key=value` filters -> {key: values}: values of one key are
    alternatives, different keys must all match."""
    out: dict[str, set[str]] = {}
    for text in filters:
        key, sep, value = text.partition("=")
        if not sep or key not in ONLY_KEYS or not value:
            raise UserInputError(f"--only '{text}': write KEY=VALUE with KEY one of {', '.join(ONLY_KEYS)} "
                                 "(e.g. --only strategy=full --only seed=0)")
        out.setdefault(key, set()).add(value)
    return out


def _run_labels(spec: RunSpec) -> dict[str, str]:
    return {**spec.cell, "seed": str(spec.seed)}


def select_runs(specs: list[RunSpec], only: dict[str, set[str]]) -> list[RunSpec]:
    """The runs whose labels match every `only` key; a value that matches no run of
    the suite is an error naming the labels there are."""
    for key, values in only.items():
        known = sorted({_run_labels(s)[key] for s in specs})
        unknown = sorted(values - set(known))
        if unknown:
            raise UserInputError(f"--only {key}={','.join(unknown)} matches no run of the suite "
                                 f"({key} labels: {', '.join(known)})")
    return [s for s in specs if all(_run_labels(s)[k] in v for k, v in only.items())]
