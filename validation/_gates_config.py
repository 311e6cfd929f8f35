"""Configuration of the promotion gates (:mod:`validation.gates`): one TOML file, one frozen model.

The sections (:class:`OOSGate`, :class:`WalkForwardGate`, :class:`StressGate`,
:class:`ChallengerGate`) make a :class:`GateConfig`, read and validated by :func:`load_gates`
from ``validation/gates.toml`` by default (:data:`DEFAULT_GATES_PATH`); :func:`gates_text` is the
raw text reports print verbatim. The public names are re-exported by :mod:`validation.gates`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "DEFAULT_GATES_PATH",
    "ChallengerGate",
    "GateConfig",
    "OOSGate",
    "RealBooksGate",
    "StressGate",
    "WalkForwardGate",
    "gates_text",
    "load_gates",
]

DEFAULT_GATES_PATH: Final = Path(__file__).resolve().parent / "gates.toml"
"""The packaged gate file, read when :func:`load_gates` gets no path."""


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


class RealBooksGate(_Section):
    """``[real_books]``: leave one real book out (:mod:`validation._stress_lobo`).

    Parameters
    ----------
    variant : str
        The table's training variant judged (``"synthetic+real"``: the model as trained, with
        every other real book).
    max_abs_bias_sd : float
        Largest ``|bias_bps| / noise_sd_bps`` of each held-out book.
    coverage_column : str
        The coverage judged: ``coverage80_paths`` (over resampled paths of the book) or
        ``coverage80`` (over the recorded path alone).
    coverage_min, coverage_max : float
        Bounds on each held-out book's 80 % band coverage.
    max_mae_ratio : float
        Largest pooled ``mae_bps / mae_sqrt_law_bps`` over the held-out books.
    min_books : int
        Fewest real books the table must hold (fewer: the gate fails; nothing was judged).
    binding : bool
        Whether a failure blocks promotion; ``false``: judged and reported in every gate report
        (``real_books (not binding)``), but a model that fails it can still be promoted.
    """

    variant: str = Field(min_length=1)
    max_abs_bias_sd: float = Field(gt=0)
    coverage_column: str = Field(min_length=1)
    coverage_min: float = Field(ge=0, le=1)
    coverage_max: float = Field(ge=0, le=1)
    max_mae_ratio: float = Field(gt=0)
    min_books: int = Field(ge=2)
    binding: bool

    @model_validator(mode="after")
    def _ordered(self) -> RealBooksGate:
        if self.coverage_min > self.coverage_max:
            raise ValueError(f"coverage_min {self.coverage_min} > coverage_max "
                             f"{self.coverage_max}")
        return self


class PolicyGate(_Section):
    """``[policy]``: the execution policy's closed-loop backtest on out-of-sample synthetic
    orders (:func:`validation.policy_backtest.backtest_table`), paired on the same orders and
    paths.

    Parameters
    ----------
    max_minus_oracle_ac_bps : float
        Upper 95 % bound of the mean true IS of the policy minus the oracle Almgren–Chriss's
        (the AC urgency that minimizes the true ``E + lambda sd`` per order).
    max_objective_minus_oracle_bps : float
        Upper 95 % bound of the policy's true ``E + lambda sd`` minus the best plan's of the
        grid (the oracle with a perfect cost model).
    min_volatile_saving : float
        Least relative saving of mean true IS against TWAP in the volatile regime that the
        paired 95 % interval guarantees (``-upper bound of (policy - twap) / twap``).
    min_volatile_orders : int
        Fewest volatile orders the saving is judged on (fewer: the gate fails).
    max_bucket_excess_bps : float
        In every size bucket, the lower 95 % bound of policy minus TWAP (true IS) at most this:
        never worse than TWAP beyond its interval.
    binding : bool
        Whether a failure blocks promotion.
    """

    max_minus_oracle_ac_bps: float
    max_objective_minus_oracle_bps: float
    min_volatile_saving: float = Field(ge=0, lt=1)
    min_volatile_orders: int = Field(ge=1)
    max_bucket_excess_bps: float = Field(ge=0)
    binding: bool


class PaperGate(_Section):
    """``[paper]``: stage 5, a paper-trading session of the model's policy on a replayed real
    day against a backtest of the same parents and planned children
    (:func:`validation.paper_reconcile.reconcile`).

    Parameters
    ----------
    max_mean_abs_diff_bps : float
        Largest mean over orders of ``|IS(paper) - IS(backtest)|``.
    max_p95_abs_diff_bps : float
        Largest 95th percentile of that difference.
    max_fill_rate_gap : float
        Largest ``|fill rate(paper) - fill rate(backtest)|`` over the session's quantity.
    min_orders : int
        Fewest orders compared (fewer: the gate fails, nothing was judged).
    binding : bool
        Whether a failure blocks promotion.
    """

    max_mean_abs_diff_bps: float = Field(ge=0)
    max_p95_abs_diff_bps: float = Field(ge=0)
    max_fill_rate_gap: float = Field(ge=0, le=1)
    min_orders: int = Field(ge=1)
    binding: bool


class GateConfig(BaseModel):
    """All gate bounds (frozen): one section per gate, read from one TOML file.

    Parameters
    ----------
    oos, walk_forward, stress, challenger, real_books, policy, paper : section models
        The ``[oos]``, ``[walk_forward]``, ``[stress]``, ``[challenger]``, ``[real_books]``,
        ``[policy]`` and ``[paper]`` tables.
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
    real_books: RealBooksGate
    policy: PolicyGate
    paper: PaperGate
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


_SECTIONS: Final = ("oos", "walk_forward", "stress", "challenger", "real_books", "policy",
                    "paper")


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
