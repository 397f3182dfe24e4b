"""The click exception for bad input, shared by every command module."""

import click


class BadInput(click.ClickException):
    """A user's input is wrong: `Error: ...` and exit code 2, like click's usage errors."""

    exit_code = 2
