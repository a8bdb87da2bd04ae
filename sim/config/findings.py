"""What ``srcip-lab explain`` reports about a user's files: its record types and its one error.

Every record says where it came from (``file``, 1-based ``line``; line 0 = the file as a
whole, or the command line), so a user can jump to the line that decided it. The JSON form of
each record is its :func:`dataclasses.asdict` (``docs/reference/explain-json.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Assumed", "ExplainError", "Ignored", "Inferred", "Located", "Pitfall", "Where"]


class ExplainError(ValueError):
    """Input ``explain`` cannot read or would answer wrongly: ``FILE:LINE: what was expected``.

    A :class:`ValueError`, so the CLI prints it as one line and exits with status 2.
    """

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = " ".join(message.split())  # always one line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {self.message}")


@dataclass(frozen=True)
class Where:
    """A place in the input: ``file`` and 1-based ``line`` (0: the whole file)."""

    file: str
    line: int = 0


@dataclass(frozen=True)
class Located:
    """A value read from the input and the place it was read."""

    value: Any
    where: Where


@dataclass(frozen=True)
class Inferred:
    """A scenario field read from the files: ``field = value`` from ``file:line``, and why."""

    field: str
    value: Any
    file: str
    line: int
    why: str


@dataclass(frozen=True)
class Assumed:
    """A scenario field the files do not decide: the value taken, and the reason for it."""

    field: str
    value: Any
    reason: str


@dataclass(frozen=True)
class Ignored:
    """Something read but not used (a resource kind, a directive, a file), and why not."""

    file: str
    line: int
    what: str


@dataclass(frozen=True)
class Pitfall:
    """A known pitfall the files walk into (or a note about one), with its fact ID.

    ``level`` is ``"warning"`` (the setup loses client IPs or connections, or is fragile) or
    ``"note"`` (correct as written, but worth knowing).
    """

    fact: str
    message: str
    file: str
    line: int
    level: str = "warning"
