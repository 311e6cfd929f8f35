"""Promotion gates of the cost-model validation pipeline, configured by one file.

A model is promoted only when every gate that has inputs passes. The bounds live in one TOML file,
``validation/gates.toml`` by default (:func:`load_gates`), and every report prints that file
verbatim under its gate table (:meth:`GateReport.to_markdown`), so a reader sees the exact rules
a model was judged by.

* :func:`gate_oos_degradation`: the out-of-sample loss may exceed the purged-CV loss by at most
  ``oos.max_degradation_pct`` %.
* :func:`gate_walk_forward`: the model beats the baseline in at least a share of walk-forward
  windows, and its metric is stable across windows (coefficient of variation).
* :func:`gate_stress`: per stress scenario, the bias and the 80% band coverage stay within
  bounds, in at least a share of the scored scenarios.
* :func:`gate_challenger`: on the same holdout, the upper end of a paired moving-block bootstrap
  interval (:func:`paired_bootstrap`) of ``mean(|err_challenger|) - mean(|err_champion|)`` is at
  most ``challenger.max_worsening_bps``.

:func:`evaluate_gates` runs whichever gates have inputs and returns a :class:`GateReport`.

Pure: numpy, pandas and pydantic only (no orchestration, no tracking).

Examples
--------
>>> cfg = load_gates()
>>> r = gate_oos_degradation(10.0, 12.0, cfg)
>>> r.name, r.passed, round(r.value, 6), r.bound
('oos_degradation', True, 20.0, '<= 25.0%')
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from validation.errors import GateFailed

__all__ = [
    "DEFAULT_GATES_PATH",
    "ChallengerGate",
    "GateConfig",
    "GateReport",
    "GateResult",
    "OOSGate",
    "StressGate",
    "WalkForwardGate",
    "evaluate_gates",
    "gate_challenger",
    "gate_oos_degradation",
    "gate_stress",
    "gate_walk_forward",
    "gates_text",
    "load_gates",
    "paired_bootstrap",
]

DEFAULT_GATES_PATH: Final = Path(__file__).resolve().parent / "gates.toml"
"""The packaged gate file, read when :func:`load_gates` gets no path."""

_MAX_DRAWS: Final = 1 << 22  # bootstrap block draws held in memory at once (32 MiB of int64)
_STRESS_COLUMNS: Final = ("scenario", "n", "bias_bps", "noise_sd_bps", "coverage_80")

Floats = NDArray[np.float64]


# --------------------------------------------------------------------------- configuration


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OOSGate(_Section):
    """``[oos]``: out-of-sample degradation against purged CV.

    Parameters
    ----------
    metric : str
        Name of the loss both numbers are measured in (``"wrmse"``: inverse-noise weighted RMSE);
        a label for the report, the caller computes the losses.
    max_degradation_pct : float
        Largest allowed ``100 (oos_loss / cv_loss - 1)``, %.
    """

    metric: str = Field(min_length=1)
    max_degradation_pct: float = Field(ge=0)


class WalkForwardGate(_Section):
    """``[walk_forward]``: walk-forward windows against a baseline.

    Parameters
    ----------
    metric : str
        Metric read from ``model_<metric>`` and ``<baseline>_<metric>`` (lower is better).
    truth_metric : str
        Metric used instead when both of its columns are present and complete (synthetic data).
    baseline : str
        Prefix of the baseline's columns (``"sqrt"``: the square-root impact baseline).
    min_share_beating : float
        Least share of windows in which the model's metric is strictly below the baseline's.
    max_cv : float
        Largest coefficient of variation (sample std / mean) of the model's metric over windows.
    """

    metric: str = Field(min_length=1)
    truth_metric: str = Field(min_length=1)
    baseline: str = Field(min_length=1)
    min_share_beating: float = Field(ge=0, le=1)
    max_cv: float = Field(ge=0)


class StressGate(_Section):
    """``[stress]``: bias and coverage bounds per stress scenario.

    Parameters
    ----------
    max_abs_bias_sd : float
        Largest ``|bias_bps| / noise_sd_bps`` (bias in units of the predicted timing-noise sd).
    max_abs_bias_bps : float
        Largest ``|bias_bps|``; the bias bound holds when either of the two bias bounds holds.
    coverage_min, coverage_max : float
        Bounds on the 80% band's coverage, ``coverage_min <= coverage_80 <= coverage_max``.
    min_share_passing : float
        Least share of scored scenarios that must pass both bounds.
    kinds : list of str
        Scenario kinds the gate judges (the table's ``kind`` column, when it has one); the
        others are reported by the stress stage but not gated.
    """

    max_abs_bias_sd: float = Field(ge=0)
    max_abs_bias_bps: float = Field(ge=0)
    coverage_min: float = Field(ge=0, le=1)
    coverage_max: float = Field(ge=0, le=1)
    min_share_passing: float = Field(ge=0, le=1)
    kinds: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> StressGate:
        if self.coverage_min > self.coverage_max:
            raise ValueError(f"coverage_min ({self.coverage_min}) must be <= coverage_max "
                             f"({self.coverage_max})")
        return self


class ChallengerGate(_Section):
    """``[challenger]``: challenger against champion, paired block bootstrap.

    Parameters
    ----------
    n_boot : int
        Bootstrap resamples.
    confidence : float
        Two-sided confidence level of the percentile interval, in (0, 1).
    block : int
        Consecutive orders per bootstrap block (1: the ordinary paired bootstrap).
    max_worsening_bps : float
        Largest allowed upper end of the interval of ``mean(|err_ch|) - mean(|err_champ|)``.
    seed : int
        Seed of the resampling (``numpy.random.default_rng``).
    """

    n_boot: int = Field(ge=1)
    confidence: float = Field(gt=0, lt=1)
    block: int = Field(ge=1)
    max_worsening_bps: float
    seed: int = Field(ge=0)


class GateConfig(BaseModel):
    """All gate bounds (frozen): one section per gate, read from one TOML file.

    Parameters
    ----------
    oos, walk_forward, stress, challenger : section models
        The ``[oos]``, ``[walk_forward]``, ``[stress]`` and ``[challenger]`` tables.
    source : str, default=""
        The file the configuration was read from ("" when built in code).
    text : str, default=""
        The file's raw text, shown verbatim in reports ("" when built in code; see
        :meth:`render`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    oos: OOSGate
    walk_forward: WalkForwardGate
    stress: StressGate
    challenger: ChallengerGate
    source: str = Field("", repr=False)
    text: str = Field("", repr=False)

    def render(self) -> str:
        """The configuration as shown in reports: the file's text, or a TOML dump of the values."""
        if self.text:
            return self.text
        lines: list[str] = []
        for name in _SECTIONS:
            lines.append(f"[{name}]")
            for key, value in getattr(self, name).model_dump().items():
                lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


_SECTIONS: Final = ("oos", "walk_forward", "stress", "challenger")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _resolve(path: str | Path | None) -> Path:
    return DEFAULT_GATES_PATH if path is None else Path(path)


def gates_text(path: str | Path | None = None) -> str:
    """The raw text of a gate file (default: the packaged ``validation/gates.toml``).

    Raises
    ------
    ValueError
        The file does not exist or cannot be read; the message names it.
    """
    p = _resolve(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"gate config {p}: file not found; pass the path of a gates.toml "
                         f"(the packaged one is {DEFAULT_GATES_PATH})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"gate config {p}: cannot read the file ({exc})") from None


def load_gates(path: str | Path | None = None) -> GateConfig:
    """Read and validate a gate file (default: the packaged ``validation/gates.toml``).

    Parameters
    ----------
    path : str or Path, optional
        The TOML file. Every section and key of ``validation/gates.toml`` is required; no other
        section or key is allowed.

    Returns
    -------
    GateConfig
        Frozen; ``source`` is the path and ``text`` the file's raw text.

    Raises
    ------
    ValueError
        The file is missing, is not valid TOML, lacks a section or key, has an unknown section or
        key, or holds a value out of range. The message names the file and the key.
    """
    p = _resolve(path)
    text = gates_text(p)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"gate config {p}: not valid TOML ({exc})") from None
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ValueError(f"gate config {p}: unknown section or key {unknown}; the allowed "
                         f"sections are {list(_SECTIONS)}")
    for name in _SECTIONS:
        if name in raw and not isinstance(raw[name], dict):
            raise ValueError(f"gate config {p}: `{name}` must be a [{name}] table, got "
                             f"{type(raw[name]).__name__}")
    try:
        return GateConfig.model_validate({**raw, "source": str(p), "text": text})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"]) or "(file)"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key `{key}`")
            elif err["type"] == "missing":
                problems.append(f"missing key `{key}`")
            else:
                problems.append(f"`{key}`: {err['msg']} (got {err.get('input')!r})")
        raise ValueError(f"gate config {p}: " + "; ".join(problems)) from None


# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- gates


def _finite(name: str, x: float) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"`{name}` must be a finite number, got {x!r}")
    return v


def gate_oos_degradation(cv_loss: float, oos_loss: float, cfg: GateConfig) -> GateResult:
    """Out-of-sample loss against the purged-CV loss.

    Parameters
    ----------
    cv_loss, oos_loss : float
        The purged-CV loss and the out-of-sample loss of the same model, in ``cfg.oos.metric``.
    cfg : GateConfig

    Returns
    -------
    GateResult
        ``value`` = degradation % = ``100 (oos_loss / cv_loss - 1)``; passes when it is at most
        ``cfg.oos.max_degradation_pct``.

    Raises
    ------
    ValueError
        A loss is not finite, or ``cv_loss <= 0``.
    """
    cv, oos = _finite("cv_loss", cv_loss), _finite("oos_loss", oos_loss)
    if cv <= 0:
        raise ValueError(f"`cv_loss` must be > 0 to measure a degradation, got {cv}")
    g = cfg.oos
    deg = 100.0 * oos / cv - 100.0
    ok = deg <= g.max_degradation_pct
    detail = (f"{g.metric}: OOS {oos:.4g} vs purged CV {cv:.4g} = {deg:+.1f}%"
              + ("" if ok else f", above the {g.max_degradation_pct}% allowed"))
    return GateResult("oos_degradation", ok, deg, f"<= {g.max_degradation_pct}%", detail)


def gate_walk_forward(windows: pd.DataFrame, cfg: GateConfig) -> list[GateResult]:
    """Walk-forward windows: the model beats the baseline, and is stable across windows.

    Parameters
    ----------
    windows : pandas.DataFrame
        One row per window. Columns ``model_<m>`` and ``<baseline>_<m>``, where ``m`` is
        ``cfg.walk_forward.truth_metric`` when both of its columns are present with no missing
        value, else ``cfg.walk_forward.metric``. Windows with a missing value in the fallback
        metric's columns are left out (and counted in the detail).
    cfg : GateConfig

    Returns
    -------
    list of GateResult
        ``walk_forward_beats_baseline`` (value = share of windows with ``model_<m>`` strictly
        below ``<baseline>_<m>``, at least ``min_share_beating``) and ``walk_forward_stability``
        (value = sample std (ddof=1) / mean of ``model_<m> / <baseline>_<m>``, the model's error
        relative to the baseline's, at most ``max_cv``; NaN and failing
        with fewer than 2 windows or a non-positive mean).

    Raises
    ------
    ValueError
        The metric's columns are missing (the message names them), or no window is complete.
    """
    g = cfg.walk_forward
    truth = [f"model_{g.truth_metric}", f"{g.baseline}_{g.truth_metric}"]
    if all(c in windows.columns for c in truth) and windows[truth].notna().all().all():
        m, cols = g.truth_metric, truth
    else:
        m, cols = g.metric, [f"model_{g.metric}", f"{g.baseline}_{g.metric}"]
        missing = [c for c in cols if c not in windows.columns]
        if missing:
            raise ValueError(f"walk-forward windows lack column(s) {missing} (metric {m!r}, "
                             f"baseline {g.baseline!r} of [walk_forward] in the gate config); "
                             f"got {list(windows.columns)}")
    vals = windows[cols].apply(pd.to_numeric, errors="coerce")
    complete = vals.notna().all(axis=1)
    dropped = int((~complete).sum())
    vals = vals[complete]
    n = len(vals)
    if n == 0:
        raise ValueError(f"walk-forward windows: no window has both {cols} (of {len(windows)} "
                         "rows)")
    model = vals[cols[0]].to_numpy(dtype=np.float64)
    base = vals[cols[1]].to_numpy(dtype=np.float64)
    note = f"; {dropped} incomplete window(s) left out" if dropped else ""

    wins = int(np.sum(model < base))
    share = wins / n
    ok_share = share >= g.min_share_beating
    beats = GateResult(
        "walk_forward_beats_baseline", ok_share, share, f">= {g.min_share_beating}",
        f"{m}: model < {g.baseline} in {wins} of {n} windows ({share:.0%})" + note
        + ("" if ok_share else f", below the {g.min_share_beating:.0%} required"))

    # stability of the model's skill relative to the baseline: the error itself moves with the
    # regime (a crisis window costs more for every model), the ratio should not
    rel = model / base
    mean = float(rel.mean())
    if n < 2 or mean <= 0 or not np.isfinite(mean):
        cv, why = float("nan"), ("needs at least 2 windows" if n < 2
                                 else f"mean {m} is {mean:.4g}, not > 0")
        stab = GateResult("walk_forward_stability", False, cv, f"<= {g.max_cv}",
                          f"{m}: cv undefined ({why})" + note)
    else:
        sd = float(rel.std(ddof=1))
        cv = sd / mean
        ok_cv = cv <= g.max_cv
        stab = GateResult(
            "walk_forward_stability", ok_cv, cv, f"<= {g.max_cv}",
            f"{m} model/{g.baseline}: sd {sd:.4g} / mean {mean:.4g} = {cv:.3f} over {n} "
            "windows" + note
            + ("" if ok_cv else f", above the {g.max_cv} allowed"))
    return [beats, stab]


def gate_stress(table: pd.DataFrame, cfg: GateConfig) -> GateResult:
    """Stress scenarios: bias and 80% band coverage within bounds.

    A scored scenario passes when ``coverage_min <= coverage_80 <= coverage_max`` and its bias
    bound holds: ``|bias_bps| <= max_abs_bias_bps`` or ``|bias_bps| / noise_sd_bps <=
    max_abs_bias_sd`` (the latter only with ``noise_sd_bps > 0``). A missing bias fails.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per scenario: ``scenario, n, bias_bps, noise_sd_bps, coverage_80`` with
        ``bias_bps = mean(realized - predicted)`` and ``noise_sd_bps`` the mean predicted
        timing-noise sd. Rows with ``n == 0`` or a missing ``coverage_80`` are not scored.
    cfg : GateConfig

    Returns
    -------
    GateResult
        ``value`` = share of scored scenarios that pass, at least ``min_share_passing``; the
        detail names each failing scenario with its reason, and the unscored ones. NaN and
        failing when no scenario is scored.

    Raises
    ------
    ValueError
        A column is missing (the message names it).
    """
    g = cfg.stress
    missing = [c for c in _STRESS_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"stress table lacks column(s) {missing}; expected "
                         f"{list(_STRESS_COLUMNS)}, got {list(table.columns)}")
    num = {c: pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64)
           for c in _STRESS_COLUMNS[1:]}
    names = table["scenario"].astype(str).to_numpy()
    gated = (table["kind"].astype(str).isin(g.kinds).to_numpy() if "kind" in table.columns
             else np.ones(len(table), bool))
    scored = (num["n"] > 0) & np.isfinite(num["coverage_80"]) & gated
    bound = f">= {g.min_share_passing} of scored scenarios"
    unscored = [str(s) for s in names[~scored & gated]]
    unscored_note = f"; not scored: {', '.join(unscored)}" if unscored else ""
    if not gated.all():
        unscored_note += (f"; not gated (kind not in {list(g.kinds)}): "
                          f"{', '.join(names[~gated])}")
    if not scored.any():
        return GateResult("stress", False, float("nan"), bound,
                          "no scenario scored (n == 0 or no coverage)" + unscored_note)

    failing: list[str] = []
    n_pass = 0
    for i in np.flatnonzero(scored):
        bias, sd, cov = num["bias_bps"][i], num["noise_sd_bps"][i], num["coverage_80"][i]
        reasons = []
        if not np.isfinite(bias):
            reasons.append("bias missing")
        else:
            in_sd = abs(bias) / sd if np.isfinite(sd) and sd > 0 else float("nan")
            if not (abs(bias) <= g.max_abs_bias_bps or in_sd <= g.max_abs_bias_sd):
                reasons.append(f"|bias| {abs(bias):.3g} bps = {in_sd:.3g} sd > "
                               f"{g.max_abs_bias_bps} bps and {g.max_abs_bias_sd} sd")
        if not g.coverage_min <= cov <= g.coverage_max:
            reasons.append(f"coverage {cov:.3f} outside [{g.coverage_min}, {g.coverage_max}]")
        if reasons:
            failing.append(f"{names[i]} ({'; '.join(reasons)})")
        else:
            n_pass += 1
    n_scored = int(scored.sum())
    share = n_pass / n_scored
    ok = share >= g.min_share_passing
    detail = f"{n_pass} of {n_scored} scored scenarios pass ({share:.0%})"
    if failing:
        detail += "; failing: " + ", ".join(failing)
    return GateResult("stress", ok, share, bound, detail + unscored_note)


def _pair(a: ArrayLike, b: ArrayLike, names: tuple[str, str]) -> tuple[Floats, Floats]:
    if isinstance(a, pd.Series) and isinstance(b, pd.Series) and not a.index.equals(b.index):
        raise ValueError(f"`{names[0]}` and `{names[1]}` have different indexes: score both "
                         "models on the same holdout orders, in the same order")
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.size != y.size:
        raise ValueError(f"`{names[0]}` has {x.size} values but `{names[1]}` has {y.size}; "
                         "pair them order by order on the same holdout")
    for name, v in zip(names, (x, y), strict=True):
        bad = int(np.sum(~np.isfinite(v)))
        if bad:
            raise ValueError(f"`{name}` has {bad} non-finite value(s); drop those orders from "
                             "both arrays")
    return x, y


def paired_bootstrap(a: ArrayLike, b: ArrayLike, *, n_boot: int = 2000,
                     confidence: float = 0.95, block: int = 1,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of the paired differences ``a - b`` and its circular moving-block bootstrap interval.

    The pairs are in time order. Each resample concatenates ``ceil(n / block)`` blocks of
    ``block`` consecutive differences, each starting at a uniformly drawn position and wrapping
    around the end of the sample (circular, Politis & Romano 1992: every difference is equally
    likely to be drawn, so the resampled means are centred on the sample mean), and is cut to
    ``n`` values. Blocks keep the serial dependence within ``block`` neighbours, which widens the
    interval when neighbouring differences are correlated; ``block=1`` is the ordinary paired
    bootstrap. The interval is the percentile interval of the ``n_boot`` resampled means.

    Parameters
    ----------
    a, b : array_like of float
        Paired values (e.g. absolute errors of two models on the same orders), same length ``n``.
    n_boot : int, default=2000
        Resamples.
    confidence : float, default=0.95
        Two-sided level, in (0, 1).
    block : int, default=1
        Block length, ``1 <= block <= n // 2`` (at least two blocks).
    seed : int, default=0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    (mean, lo, hi) : tuple of float
        ``mean(a - b)`` and the bounds of the percentile interval.

    Raises
    ------
    ValueError
        Lengths differ, a value is not finite, or a parameter is out of range.

    Examples
    --------
    >>> paired_bootstrap([3.0, 4.0, 5.0, 6.0], [2.5, 3.5, 4.5, 5.5], n_boot=100, block=2)
    (0.5, 0.5, 0.5)
    """
    x, y = _pair(a, b, ("a", "b"))
    d = x - y
    n = d.size
    if n < 2:
        raise ValueError(f"paired_bootstrap needs at least 2 pairs, got {n}")
    if not 1 <= int(block) <= n // 2:
        raise ValueError(f"`block` must be in [1, n // 2] = [1, {n // 2}] for n = {n} pairs (at "
                         f"least two blocks), got block={block}")
    if int(n_boot) < 1:
        raise ValueError(f"`n_boot` must be >= 1, got n_boot={n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1), got confidence={confidence}")
    block, n_boot = int(block), int(n_boot)
    k = -(-n // block)  # blocks per resample
    r = n - (k - 1) * block  # length of the last, possibly cut, block
    ring = np.concatenate([d, d[: block - 1]])
    window = np.lib.stride_tricks.sliding_window_view
    full = window(ring, block).sum(axis=1)[:n]  # sum of the block starting at each position
    last = full if r == block else window(ring[: n + r - 1], r).sum(axis=1)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, _MAX_DRAWS // k)
    for i in range(0, n_boot, step):
        m = min(step, n_boot - i)
        starts = rng.integers(0, n, size=(m, k))
        means[i:i + m] = (full[starts[:, :-1]].sum(axis=1) + last[starts[:, -1]]) / n
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(d.mean()), float(lo), float(hi)


def gate_challenger(err_challenger: ArrayLike, err_champion: ArrayLike,
                    cfg: GateConfig) -> GateResult:
    """Challenger against champion on the same holdout: not worse beyond the margin.

    Parameters
    ----------
    err_challenger, err_champion : array_like of float
        Each model's errors (signed or absolute; the gate takes ``|err|``) on the same holdout
        orders, in time order. Two pandas Series must share their index.
    cfg : GateConfig

    Returns
    -------
    GateResult
        ``value`` = ``mean(|err_challenger|) - mean(|err_champion|)`` (bps, negative: the
        challenger is better); passes when the upper end of its :func:`paired_bootstrap`
        interval (``cfg.challenger``) is at most ``max_worsening_bps``. The detail gives the
        interval.

    Raises
    ------
    ValueError
        The arrays cannot be paired, hold non-finite values, or are shorter than two blocks.
    """
    g = cfg.challenger
    ch, champ = _pair(err_challenger, err_champion, ("err_challenger", "err_champion"))
    mean, lo, hi = paired_bootstrap(np.abs(ch), np.abs(champ), n_boot=g.n_boot,
                                    confidence=g.confidence, block=g.block, seed=g.seed)
    ok = hi <= g.max_worsening_bps
    detail = (f"mean |err| challenger - champion = {mean:+.4g} bps, {g.confidence:.0%} CI "
              f"[{lo:+.4g}, {hi:+.4g}] (n={ch.size}, block={g.block}, n_boot={g.n_boot})"
              + ("" if ok else f"; upper end above {g.max_worsening_bps} bps: the challenger "
                 "is not shown to be at least as good"))
    return GateResult("challenger_vs_champion", ok, mean, f"CI upper <= {g.max_worsening_bps} bps",
                      detail)


def evaluate_gates(*, cfg: GateConfig, cv_loss: float | None = None,
                   oos_loss: float | None = None, walk_forward: pd.DataFrame | None = None,
                   stress: pd.DataFrame | None = None, challenger_err: ArrayLike | None = None,
                   champion_err: ArrayLike | None = None) -> GateReport:
    """Run every gate that has inputs, in the order OOS, walk-forward, stress, challenger.

    Parameters
    ----------
    cfg : GateConfig
    cv_loss, oos_loss : float, optional
        Both or neither: :func:`gate_oos_degradation`.
    walk_forward : pandas.DataFrame, optional
        :func:`gate_walk_forward`.
    stress : pandas.DataFrame, optional
        :func:`gate_stress`.
    challenger_err, champion_err : array_like, optional
        :func:`gate_challenger`, run only when a champion exists (``champion_err`` given); a
        first model has no champion and skips it.

    Returns
    -------
    GateReport
        With ``config_text = cfg.render()``.

    Raises
    ------
    ValueError
        Only one of ``cv_loss``/``oos_loss`` is given, or ``champion_err`` without
        ``challenger_err``.
    """
    if (cv_loss is None) != (oos_loss is None):
        raise ValueError("pass both `cv_loss` and `oos_loss` (or neither) for the OOS "
                         "degradation gate")
    if champion_err is not None and challenger_err is None:
        raise ValueError("`champion_err` given without `challenger_err`: score the challenger "
                         "on the champion's holdout")
    results: list[GateResult] = []
    if cv_loss is not None and oos_loss is not None:
        results.append(gate_oos_degradation(cv_loss, oos_loss, cfg))
    if walk_forward is not None:
        results.extend(gate_walk_forward(walk_forward, cfg))
    if stress is not None:
        results.append(gate_stress(stress, cfg))
    if challenger_err is not None and champion_err is not None:
        results.append(gate_challenger(challenger_err, champion_err, cfg))
    return GateReport(results, config_text=cfg.render())

