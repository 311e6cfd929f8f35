"""What every ``bestex`` command shares: exit status 2 for bad input, raised as :class:`BadInput`."""

from __future__ import annotations

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def _fail(msg: str) -> None:
    raise BadInput(msg)
