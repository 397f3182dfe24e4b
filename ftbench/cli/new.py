"""`ftbench new KIND NAME`: a plugin package from the scaffold's templates."""

from __future__ import annotations

import click

from ftbench import scaffold as scaffolding
from ftbench.cli.common import user_errors


@click.command("new")
@click.argument("kind", type=click.Choice(scaffolding.KINDS))
@click.argument("name")
@click.option("--dir", "dest", type=click.Path(file_okay=False),
              help="Folder to create.  [default: ./ftbench-NAME]")
def new(kind: str, name: str, dest: str | None) -> None:
    """Create an installable plugin package that adds one KIND named NAME.

    KIND is strategy, backbone, dataset or executor; NAME is lowercase letters,
    digits and dashes. The package has a pyproject.toml with the `ftbench` entry
    point, a documented parameter schema, a working implementation to edit, a
    README and tests.

    \b
    Example:
        ftbench new strategy top-k --dir ftbench-top-k
        pip install -e './ftbench-top-k[test]' && pytest ftbench-top-k
        ftbench new executor my-exec     # creates ./ftbench-my-exec
    """
    with user_errors():
        path = scaffolding.scaffold(kind, name, dest)
    click.echo(f"created {path}/ ; next: pip install -e '{path}[test]' && pytest {path}")
    click.echo(f"then `ftbench list {scaffolding.placeholders(kind, name)['kinds']}` shows '{name}'")
