"""What every command module shares: the registry a command works with, and the
click exception for bad input."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import click

from ftbench.errors import UserInputError


class BadInput(click.ClickException):
    """A user's input is wrong: `Error: ...` and exit code 2, like click's usage errors."""

    exit_code = 2


@contextmanager
def user_errors() -> Iterator[None]:
    """Bad input as `BadInput` also where a command runs outside the `ftbench` group
    (which converts them itself), e.g. a command object invoked on its own."""
    try:
        yield
    except UserInputError as exc:
        raise BadInput(str(exc)) from exc


def plugin_modules(ctx: click.Context) -> tuple[str, ...]:
    """The `--plugin` modules given to the `ftbench` group (a child process loads them too)."""
    return tuple(ctx.find_root().ensure_object(dict).get("plugins", ()))


def registry(ctx: click.Context):
    from ftbench.plugins import Registry, make_plugin_manager, use_registry

    obj = ctx.find_root().ensure_object(dict)  # a command invoked on its own has no group's obj
    obj.setdefault("plugins", ())
    if obj.get("registry") is None:
        obj["registry"] = Registry(make_plugin_manager(extra=obj["plugins"]))
        use_registry(obj["registry"])
        for broken in obj["registry"].broken:  # skipped, so that everything else still works
            click.echo(f"warning: {broken.message()}", err=True)
    return obj["registry"]
