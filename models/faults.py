"""Fault injection for the re-execution drill: ``BESTEX_FAULT`` kills the process at a named point.

Inert unless the environment variable ``BESTEX_FAULT`` is set. Its value names one point, with an
optional number that the point must be called with::

    BESTEX_FAULT=tuning.trial:2        # inside Optuna trial number 2 (models.tuning)
    BESTEX_FAULT=registry.registered   # a version created, before its alias and audit row
    BESTEX_FAULT=registry.promoted     # the champion alias moved, before the tags and audit row
    BESTEX_FAULT=lake.replace          # a lake file written aside, before it is moved in place

At the point the process sends itself ``SIGKILL``: no ``finally``, no ``atexit``, nothing
recorded, as when a worker's machine dies (``tests/test_reexecution.py``). The module lives at the
``models`` layer, the lowest layer with a fault point, so that every layer above can call it.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["FAULT_ENV", "FAULT_POINTS", "fault_point"]

FAULT_ENV = "BESTEX_FAULT"
FAULT_POINTS = ("tuning.trial", "registry.registered", "registry.promoted", "lake.replace")


def fault_point(name: str, *, at: int | None = None) -> None:
    """Kill this process with ``SIGKILL`` when ``BESTEX_FAULT`` names ``name`` (and ``at``).

    Parameters
    ----------
    name : str
        One of :data:`FAULT_POINTS`.
    at : int, optional
        The point's counter (a trial number); ``BESTEX_FAULT=name:n`` fires only where
        ``at == n``, ``BESTEX_FAULT=name`` wherever the point is reached.

    Raises
    ------
    ValueError
        ``BESTEX_FAULT`` names no point of :data:`FAULT_POINTS`, or its number is not an
        integer (a misspelt drill must not pass as a run without a fault).
    """
    spec = os.environ.get(FAULT_ENV, "").strip()
    if not spec:
        return
    point, _, number = spec.partition(":")
    if point not in FAULT_POINTS or (number and not number.lstrip("-").isdigit()):
        raise ValueError(f"{FAULT_ENV}={spec!r} is not a fault point; use one of "
                         f"{', '.join(FAULT_POINTS)}, optionally with ':<number>', or unset it")
    if point != name or (number and at != int(number)):
        return
    print(f"{FAULT_ENV}={spec}: killing pid {os.getpid()} with SIGKILL", file=sys.stderr,
          flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
