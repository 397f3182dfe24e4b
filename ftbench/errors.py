"""Domain errors. The CLI turns them into `Error: ...` messages with exit codes.

Every message says what is wrong and what to do next.
"""

from __future__ import annotations


class FtbenchError(Exception):
    """Base class of every error ftbench reports to a user (exit 1)."""


class UserInputError(FtbenchError):
    """Bad input from the user: a suite, a flag, a file (exit 2)."""


class SuiteError(UserInputError):
    """A suite file failed validation; `problems` lists every problem found."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s) in the suite:\n{lines}")


class PluginError(UserInputError):
    """A plugin could not be loaded, or two plugins claim one name."""


class UnknownComponentError(UserInputError):
    """A suite or flag names a component that no plugin registers."""


class DataError(UserInputError):
    """A dataset cannot be found or loaded; the message says where to put it."""


class BackboneError(UserInputError):
    """A backbone or its weights cannot be loaded; the message lists the alternatives."""


class Diverged(FtbenchError):
    """Training produced a NaN or infinite loss; the run is recorded as diverged."""


class Terminated(KeyboardInterrupt):
    """The driver received SIGTERM: it stops like on Ctrl-C (runs in flight are
    abandoned, their claims released) and `ftbench run` exits 143."""
