"""Domain exceptions of bestex.

Every guard that fails a run raises one of these, with a message that names the table (or file),
the offending rows and the rule, and says how to fix it. ``ContractError`` lives in the leaf
module :mod:`validation.contracts` and is re-exported here so callers import every domain
exception from one place.

Examples
--------
>>> from validation.errors import ContractError, SurvivorshipError
>>> issubclass(SurvivorshipError, ValueError), issubclass(ContractError, ValueError)
(True, True)
"""

from __future__ import annotations

from validation.contracts import ContractError

__all__ = ["ContractError", "GateFailed", "LeakageError", "SurvivorshipError"]


class SurvivorshipError(ValueError):
    """A universe looks built from survivors: later leavers missing, or names outside their span."""


class LeakageError(ValueError):
    """A feature, split or model used information that was not yet known at decision time."""


class GateFailed(RuntimeError):
    """A promotion or validation gate did not pass; the message lists the failed rules."""
