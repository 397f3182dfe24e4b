"""The `ftbench` command line: a thin layer over the core.

Domain errors become `Error: ...` messages: bad input exits 2, failed work exits 1.
Log lines go to stderr, tables to stdout.
"""

from __future__ import annotations

import sys

import click

from ftbench import __version__
from ftbench.cli.common import BadInput
from ftbench.cli.listing import list_cmd
from ftbench.cli.run import pretrain, run, validate
from ftbench.cli.status import prune, status
from ftbench.errors import FtbenchError, UserInputError


#: Commands in their own modules, imported only when used: their modules import
#: scipy and the report code, which `ftbench --help` and `ftbench list` need not pay
#: for. The short help is what `--help` shows without importing them (a test checks
#: that it matches each command's docstring).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "baseline": ("ftbench.cli.gate:baseline", "Save results as a baseline for `ftbench compare`."),
    "compare": ("ftbench.cli.gate:compare_cmd", "Compare CURRENT results against a BASELINE; exit 1 on a regression."),
    "new": ("ftbench.cli.new:new", "Create an installable plugin package that adds one KIND named NAME."),
    "reproduce": ("ftbench.cli.reproduce:reproduce", "Rerun a REFERENCE results folder and say whether selection "
                  "and training reproduce."),
    "report": ("ftbench.cli.report:report", "Tables and statistics over the runs in RESULTS_DIR: accuracy with "
               "paired tests against a baseline, training time and cost, data efficiency, domain shift, "
               "forgetting, a summary per strategy and ranks across tasks."),
}


class _Group(click.Group):
    """Turns domain errors raised by any command into click errors, and imports the
    `LAZY_COMMANDS` when they are called."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in LAZY_COMMANDS:
            import importlib

            module, _, attr = LAZY_COMMANDS[name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)  # as click's own
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is None:
                rows.append((name, click.Command(name, help=LAZY_COMMANDS[name][1]).get_short_help_str(limit)))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(limit=limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserInputError as exc:
            raise BadInput(str(exc)) from exc
        except FtbenchError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="ftbench")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="Also load this importable module as a plugin (repeatable).")
@click.pass_context
def cli(ctx: click.Context, plugins: tuple[str, ...]) -> None:
    """Benchmark ways of fine-tuning pretrained models.

    \b
    Example:
        ftbench run suites/quickstart.yaml && ftbench report results/quickstart
    """
    ctx.ensure_object(dict)
    ctx.obj.setdefault("plugins", plugins)
    ctx.obj.setdefault("registry", None)


for _command in (list_cmd, validate, run, pretrain, status, prune):
    cli.add_command(_command)


def main() -> None:
    cli(obj={}, prog_name="ftbench")


if __name__ == "__main__":
    sys.exit(main())
