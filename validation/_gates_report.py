"""Results of the promotion gates (:mod:`validation.gates`): one :class:`GateResult` per gate,
gathered in a :class:`GateReport` (verdict, failures, Markdown table with the gate file, JSON).

The public names are re-exported by :mod:`validation.gates`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from validation.errors import GateFailed

__all__ = ["GateReport", "GateResult"]


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate.

    Attributes
    ----------
    name : str
        The gate (``"oos_degradation"``, ``"walk_forward_beats_baseline"``, ...).
    passed : bool
        Whether ``value`` is within ``bound``.
    value : float
        The statistic the bound applies to (NaN when it could not be computed: a failure).
    bound : str
        The rule, e.g. ``"<= 25.0%"``.
    detail : str
        What was measured and, on failure, why it failed.
    """

    name: str
    passed: bool
    value: float
    bound: str
    detail: str


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass
class GateReport:
    """The gates run for one candidate model.

    Attributes
    ----------
    results : list of GateResult
        One per gate run, in order.
    config_text : str, default=""
        The gate configuration shown under the table (:meth:`GateConfig.render`).
    """

    results: list[GateResult]
    config_text: str = field(default="", repr=False)

    @property
    def passed(self) -> bool:
        """All gates passed; False when no gate ran (nothing was shown to hold)."""
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failures(self) -> list[str]:
        """``"name: detail"`` of each failed gate."""
        return [f"{r.name}: {r.detail}" for r in self.results if not r.passed]

    def raise_for_failures(self) -> None:
        """Raise :class:`validation.errors.GateFailed` listing the failures, if any gate failed.

        Raises
        ------
        GateFailed
            A gate failed, or no gate ran.
        """
        if not self.results:
            raise GateFailed("no promotion gate ran: pass at least one gate's inputs to "
                             "evaluate_gates")
        if not self.passed:
            raise GateFailed("promotion gates failed:\n  " + "\n  ".join(self.failures))

    def to_frame(self) -> pd.DataFrame:
        """One row per gate: ``name, passed, value, bound, detail``."""
        cols = ["name", "passed", "value", "bound", "detail"]
        return pd.DataFrame([asdict(r) for r in self.results], columns=cols)

    def to_markdown(self, config_text: str | None = None) -> str:
        """A Markdown table of the gates (PASS/FAIL), then the gate configuration verbatim.

        Parameters
        ----------
        config_text : str, optional
            The configuration to print; default ``self.config_text`` (omitted when both are
            empty).
        """
        text = self.config_text if config_text is None else config_text
        verdict = "PASS" if self.passed else "FAIL"
        lines = [f"**Promotion gates: {verdict}** ({sum(r.passed for r in self.results)} of "
                 f"{len(self.results)} passed)", "",
                 "| gate | result | value | bound | detail |",
                 "|---|---|---:|---|---|"]
        for r in self.results:
            cells = [r.name, "PASS" if r.passed else "FAIL", f"{r.value:.4g}", r.bound, r.detail]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        if text:
            fence = "~~~" if "```" in text else "```"
            lines += ["", "Gate configuration:", "", f"{fence}toml", text.rstrip("\n"), fence]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (non-finite values become None), for tracking tags and artifacts."""
        return {
            "passed": self.passed,
            "n_gates": len(self.results),
            "failures": self.failures,
            "results": [{**asdict(r), "passed": bool(r.passed), "value": _json_float(r.value)}
                        for r in self.results],
            "config": self.config_text,
        }
