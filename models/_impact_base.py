"""Shared pieces of :mod:`models.impact`: the minutes of a trading day, float arrays, frozen configs."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict

__all__ = ["MINUTES_PER_DAY", "Floats", "Num"]

MINUTES_PER_DAY = 390.0
"""Minutes in one trading day (a 6.5-hour session)."""

Floats = NDArray[np.float64]
Num = float | Floats
"""A float or a float array: what the ATHL formula functions take and return."""


def _arr(x: ArrayLike) -> Floats:
    """``x`` as a float64 array (no copy when it already is one)."""
    return np.asarray(x, dtype=np.float64)


class _Frozen(BaseModel):
    """Base of the impact configs: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")
