"""Configs, input columns and results of the execution simulator (see :mod:`models.simulator`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Final, Literal, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models._synth_config import ImpactConfig
from models.impact import ATHLImpact
from models.risk_controls import rejections_frame

MARKETABLE: Final = 0
PASSIVE: Final = 1
SESSION_NS: Final = 23_400_000_000_000  # 6.5 h: one trading day for sigma_daily and ADV
_TRUTH: Final = ImpactConfig()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- physics components
class FeeModel(Protocol):
    """Fee of one fill in currency (negative = rebate)."""

    def fee(self, px: float, qty: float, liquidity: Literal["maker", "taker"]) -> float:
        """Currency amount charged for ``qty`` shares at ``px``."""
        ...


class FillModel(Protocol):
    """Probability that a passive child resting at the touch for its slot is filled."""

    def prob_fill(self, qty: float, market_volume: float, adv: float) -> float:
        """``market_volume``: shares traded in the child's slot; ``adv``: the parent's ADV."""
        ...


class FeeSchedule(_Frozen):
    """Maker/taker fees: ``taker = bps * notional + per_share * qty``; makers earn the rebates."""

    taker_fee_bps: float = 0.0
    taker_fee_per_share: float = 0.0
    maker_rebate_bps: float = 0.0
    maker_rebate_per_share: float = 0.0

    def fee(self, px: float, qty: float, liquidity: Literal["maker", "taker"]) -> float:
        """Currency fee of one fill (negative = rebate)."""
        if liquidity == "maker":
            return -(self.maker_rebate_bps * 1e-4 * px * qty + self.maker_rebate_per_share * qty)
        return self.taker_fee_bps * 1e-4 * px * qty + self.taker_fee_per_share * qty


class ConstantFillProb(_Frozen):
    """Passive fill with a fixed probability; ``prob=1`` (always) and ``0`` are deterministic."""

    kind: Literal["constant"] = "constant"
    prob: float = Field(default=1.0, ge=0.0, le=1.0)

    def prob_fill(self, qty: float, market_volume: float, adv: float) -> float:
        """``prob``, whatever the order."""
        return self.prob


class QueueFillProb(_Frozen):
    """Queue model: ``P = 1 - exp(-side_volume_share * V_slot / (queue_ahead_adv * ADV + qty))``.

    The volume hitting our side over the slot (``side_volume_share`` of the market volume
    ``V_slot``) arrives as a Poisson stream of unit intensity per share of queue; we fill once it
    has eaten the queue ahead of us and our own size. Longer slots and smaller orders fill more.
    """

    kind: Literal["queue"] = "queue"
    queue_ahead_adv: float = Field(default=5e-4, ge=0.0)
    side_volume_share: float = Field(default=0.5, gt=0.0, le=1.0)

    def prob_fill(self, qty: float, market_volume: float, adv: float) -> float:
        """The formula above."""
        return 1.0 - math.exp(-self.side_volume_share * market_volume
                              / (self.queue_ahead_adv * adv + qty))


class TransientImpact(_Frozen):
    """Propagator decay of temporary impact: a child's ``K`` lingers as ``K (1 + t/tau)^-decay``."""

    decay_exponent: float = Field(default=_TRUTH.propagator_decay_exponent, gt=0.0)
    tau_ns: int = Field(default=60_000_000_000, gt=0)


class SimulatorConfig(_Frozen):
    """Physics of the execution simulator; defaults = the synthetic market's true impact.

    Parameters
    ----------
    gamma, delta : float
        ATHL permanent impact ``I = gamma * sigma * (X/V) * (Theta/V)^delta`` (fraction of mid).
    eta, beta : float
        ATHL temporary impact ``K = eta * sigma * |rate|^beta``, rate = child / market volume of
        its slot (= ``X/(V T)`` for a uniform schedule). The four are the simulator's impact
        model, :meth:`impact_model` (a linear-permanent :class:`models.impact.ATHLImpact`);
        :meth:`from_impact` builds a config from such a model.
    session_ns : int, default=23_400 s
        Length of the trading day that ``sigma_daily`` and ``adv`` refer to.
    latency_ns : int, default=0
        Decision to arrival at the venue.
    pay_half_spread : bool, default=True
        Marketable children pay, passive children earn, half the quoted spread.
    fees : FeeSchedule
    participation_cap : float or None, default=None
        A child sends at most this fraction of its slot's market volume; the excess is carried to
        the parent's next child (unfilled after the last).
    fill : ConstantFillProb or QueueFillProb, default=ConstantFillProb(prob=1)
        Passive fill model (deterministic baseline: always filled at the touch).
    transient : TransientImpact or None, default=None
        Power-law decay of temporary impact into the mid later children see.
    mid_noise : bool, default=True
        Mid diffusion ``sigma * sqrt(dt)`` (``False``: deterministic baseline).
    shared_footprint : bool, default=False
        Permanent impact of every parent moves the mid of all parents on the same symbol
        (default: each parent sees its own footprint only).
    min_slot_ns : int, default=1 s
        Floor of a child's slot (its time to the parent's next child, or to ``end_ts``).
    l1_excess : {"impact", "carry"}, default="impact"
        Replay: size beyond the touch pays temporary impact, or is carried to the next child.
    venue : str, default="SIM"
    """

    gamma: float = Field(default=_TRUTH.athl_gamma, ge=0.0)
    delta: float = Field(default=_TRUTH.athl_delta)
    eta: float = Field(default=_TRUTH.athl_eta, ge=0.0)
    beta: float = Field(default=_TRUTH.athl_beta, gt=0.0)
    session_ns: int = Field(default=SESSION_NS, gt=0)
    latency_ns: int = Field(default=0, ge=0)
    pay_half_spread: bool = True
    fees: FeeSchedule = FeeSchedule()
    participation_cap: float | None = Field(default=None, gt=0.0)
    fill: Annotated[ConstantFillProb | QueueFillProb, Field(discriminator="kind")] = (
        ConstantFillProb())
    transient: TransientImpact | None = None
    mid_noise: bool = True
    shared_footprint: bool = False
    min_slot_ns: int = Field(default=1_000_000_000, gt=0)
    l1_excess: Literal["impact", "carry"] = "impact"
    venue: str = Field(default="SIM", min_length=1)

    @classmethod
    def from_truth(cls, impact: ImpactConfig, **overrides: object) -> SimulatorConfig:
        """The config whose impact is ``impact`` (e.g. ``generate_market(...).truth.impact``)."""
        return cls.model_validate({"gamma": impact.athl_gamma, "delta": impact.athl_delta,
                                   "eta": impact.athl_eta, "beta": impact.athl_beta, **overrides})

    @classmethod
    def from_impact(cls, model: ATHLImpact, **overrides: object) -> SimulatorConfig:
        """The config whose impact is the ATHL ``model`` (its ``gamma, delta, eta, beta``).

        Raises
        ------
        ValueError
            If ``model.alpha != 1``: the simulator's permanent impact is linear in shares.
        """
        if model.alpha != 1.0:
            raise ValueError(f"SimulatorConfig.from_impact: the simulator's permanent impact is "
                             f"linear (alpha=1), got alpha={model.alpha}")
        return cls.model_validate({"gamma": model.gamma, "delta": model.delta, "eta": model.eta,
                                   "beta": model.beta, **overrides})

    def impact_model(self) -> ATHLImpact:
        """The simulator's impact: :class:`models.impact.ATHLImpact` with these ``gamma, delta,
        eta, beta`` and ``alpha=1``; the kernels compute every child's impact through it.

        Built without re-validating: the config checked its own fields, and ATHLImpact's ranges
        of published values are narrower than what a simulator config may ask for.
        """
        return ATHLImpact.model_construct(gamma=self.gamma, eta=self.eta, beta=self.beta,
                                          delta=self.delta, alpha=1.0)


# --------------------------------------------------------------------------- inputs
def _col(x: object, dtype: type) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=dtype))


@dataclass(frozen=True)
class Parents:
    """Per-parent columns (one entry per parent order; times in ns since the epoch, UTC).

    ``arrival_mid`` may be NaN for a replay (then the book mid known at ``start_ns``).
    ``shares_outstanding`` is ATHL's Theta; ``spread_bps`` the quoted spread (synthetic only).
    """

    symbol_idx: np.ndarray
    arrival_mid: np.ndarray
    sigma_daily: np.ndarray
    adv: np.ndarray
    spread_bps: np.ndarray
    shares_outstanding: np.ndarray
    start_ns: np.ndarray
    end_ns: np.ndarray
    order_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name, dt in (("symbol_idx", np.int64), ("start_ns", np.int64), ("end_ns", np.int64),
                         ("arrival_mid", np.float64), ("sigma_daily", np.float64),
                         ("adv", np.float64), ("spread_bps", np.float64),
                         ("shares_outstanding", np.float64)):
            object.__setattr__(self, name, _col(getattr(self, name), dt))
        n = len(self.start_ns)
        bad = [k for k in ("symbol_idx", "arrival_mid", "sigma_daily", "adv", "spread_bps",
                           "shares_outstanding", "end_ns") if len(getattr(self, k)) != n]
        if bad:
            raise ValueError(f"Parents: columns {bad} do not have len(start_ns)={n} entries")
        if np.any(self.end_ns < self.start_ns):
            i = int(np.flatnonzero(self.end_ns < self.start_ns)[0])
            raise ValueError(f"Parents row {i}: end_ns < start_ns; end_ts must not precede "
                             "the decision")
        if np.any(self.adv <= 0):
            raise ValueError(f"Parents row {int(np.argmin(self.adv))}: adv must be > 0")
        if self.order_id is None:
            object.__setattr__(self, "order_id", np.char.add("P", np.arange(n).astype(str)))
        else:
            object.__setattr__(self, "order_id", np.asarray(self.order_id).astype(str))

    def __len__(self) -> int:
        return len(self.start_ns)


@dataclass(frozen=True)
class Children:
    """Per-child columns: parent index, decision time (ns), qty (> 0), side (+1/-1), kind
    (:data:`MARKETABLE` 0 / :data:`PASSIVE` 1) and limit offset in bps (NaN = none; beyond the
    far touch for a marketable child, behind the near touch for a passive one)."""

    parent_idx: np.ndarray
    decision_ns: np.ndarray
    qty: np.ndarray
    side: np.ndarray
    kind: np.ndarray
    limit_offset_bps: np.ndarray

    def __post_init__(self) -> None:
        for name, dt in (("parent_idx", np.int64), ("decision_ns", np.int64), ("qty", np.float64),
                         ("side", np.int64), ("kind", np.int8), ("limit_offset_bps", np.float64)):
            object.__setattr__(self, name, _col(getattr(self, name), dt))
        n = len(self.parent_idx)
        bad = [k for k in ("decision_ns", "qty", "side", "kind", "limit_offset_bps")
               if len(getattr(self, k)) != n]
        if bad:
            raise ValueError(f"Children: columns {bad} do not have len(parent_idx)={n} entries")
        if n and not np.all(np.abs(self.side) == 1):
            raise ValueError(f"Children row {int(np.flatnonzero(np.abs(self.side) != 1)[0])}: "
                             "side must be +1 (buy) or -1 (sell)")
        if n and not np.all(self.qty > 0):
            raise ValueError(f"Children row {int(np.argmin(self.qty))}: qty must be > 0")

    def __len__(self) -> int:
        return len(self.parent_idx)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class SimResult:
    """Per-child fills and rejections, per-parent summaries.

    Per child (input order): ``fill_qty`` (0 = no fill), ``fill_px``, ``fee``, ``maker``,
    ``fill_ts``, ``arrival_ns``, ``reject_code`` (0 = accepted; :data:`risk_controls.REASONS`),
    ``reject_value``, ``reject_limit``. Per parent: ``side``, ``qty``, ``filled_qty``,
    ``avg_px`` (NaN when nothing filled), ``unfilled_qty``, ``fees``, ``end_mid``,
    ``shortfall_bps`` (realized, fees included, on the filled part) and ``truth_bps`` (the true
    expected cost, see :func:`models.simulator.simulate`; NaN on a replay).
    """

    child_parent: np.ndarray
    arrival_ns: np.ndarray
    fill_qty: np.ndarray
    fill_px: np.ndarray
    fee: np.ndarray
    maker: np.ndarray
    fill_ts: np.ndarray
    reject_code: np.ndarray
    reject_value: np.ndarray
    reject_limit: np.ndarray
    order_id: np.ndarray
    side: np.ndarray
    arrival_mid: np.ndarray
    qty: np.ndarray
    filled_qty: np.ndarray
    avg_px: np.ndarray
    unfilled_qty: np.ndarray
    fees: np.ndarray
    end_mid: np.ndarray
    shortfall_bps: np.ndarray
    truth_bps: np.ndarray
    venue: str

    def child_fills(self) -> pd.DataFrame:
        """Fills in the ``child_fills`` contract (``order_id`` = the parent's id), time order."""
        idx = np.flatnonzero(self.fill_qty > 0)
        idx = idx[np.argsort(self.fill_ts[idx], kind="stable")]
        return pd.DataFrame({
            "order_id": pd.array(self.order_id[self.child_parent[idx]], dtype="str"),
            "fill_ts": pd.to_datetime(self.fill_ts[idx], unit="ns", utc=True),
            "px": self.fill_px[idx],
            "qty": self.fill_qty[idx],
            "fee": self.fee[idx],
            "liquidity": pd.array(np.where(self.maker[idx] != 0, "maker", "taker"), dtype="str"),
            "venue": pd.array(np.full(len(idx), self.venue), dtype="str"),
        })

    def rejections(self) -> pd.DataFrame:
        """One row per rejected child: ``order_id, child, ts, reason, detail``."""
        return rejections_frame(self.order_id, self.child_parent, self.arrival_ns,
                                self.reject_code, self.reject_value, self.reject_limit)

    def parents_summary(self) -> pd.DataFrame:
        """One row per parent: the per-parent arrays as columns."""
        return pd.DataFrame({
            "order_id": pd.array(self.order_id, dtype="str"), "side": self.side,
            "arrival_mid": self.arrival_mid, "qty": self.qty, "filled_qty": self.filled_qty,
            "avg_px": self.avg_px, "unfilled_qty": self.unfilled_qty, "fees": self.fees,
            "end_mid": self.end_mid, "shortfall_bps": self.shortfall_bps,
            "truth_bps": self.truth_bps,
        })


def cost_bps(side: np.ndarray, mid: np.ndarray, filled: np.ndarray, notional: np.ndarray,
             fees: np.ndarray) -> np.ndarray:
    """Shortfall of the filled part in bps of the arrival mid, fees included (NaN if unfilled)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (side * (notional - mid * filled) + fees) / (mid * filled) * 1e4
    return np.where(filled > 0, out, np.nan)


# --------------------------------------------------------------------------- shared preparation
@dataclass(frozen=True)
class Prepared:
    """Columns derived once for a kernel call."""

    p_side: np.ndarray
    p_qty: np.ndarray
    arrival_ns: np.ndarray
    slot_ns: np.ndarray
    mvol: np.ndarray
    limit_frac: np.ndarray
    by_time: np.ndarray
    by_parent: np.ndarray


def prepare(parents: Parents, children: Children, config: SimulatorConfig,
            time_order: bool = False) -> Prepared:
    """Parent sides, slots (time to the parent's next child or ``end_ts``), market volume per
    slot, arrival times, limit offsets as fractions (NaN -> inf), the arrival-time order and the
    parent-major order (time order within each parent).

    Parents interact only through the daily loss limit and the shared footprint; without them
    the kernels run parent by parent (``by_parent``: cache-friendly, same result), else in
    global arrival-time order (``by_time``, computed only with ``time_order``)."""
    n_par = len(parents)
    pi = children.parent_idx
    if len(pi) and (pi.min() < 0 or pi.max() >= n_par):
        raise ValueError(f"Children: parent_idx must lie in [0, {n_par}); "
                         f"got [{pi.min()}, {pi.max()}]")
    p_side = np.ones(n_par, np.int64)
    p_side[pi] = children.side
    if not np.array_equal(p_side[pi], children.side):
        row = int(np.flatnonzero(p_side[pi] != children.side)[0])
        raise ValueError(f"Children row {row}: side differs from the other children of parent "
                         f"{pi[row]}; all children of a parent trade one side")
    p_qty = np.bincount(pi, weights=children.qty, minlength=n_par)
    dec = children.decision_ns
    grouped = bool(np.all(np.diff(pi) >= 0)) and bool(
        np.all((np.diff(dec) >= 0) | (np.diff(pi) != 0)))
    perm = np.arange(len(pi)) if grouped else np.lexsort((dec, pi))
    spi, sdec = pi[perm], dec[perm]
    nxt = np.empty_like(sdec)
    nxt[:-1] = sdec[1:]
    last = np.ones(len(spi), bool)
    last[:-1] = spi[1:] != spi[:-1]
    nxt[last] = parents.end_ns[spi[last]]
    slot = np.empty_like(sdec)
    slot[perm] = np.maximum(nxt - sdec, config.min_slot_ns)
    mvol = parents.adv[pi] * (slot / config.session_ns)
    arrival = dec + config.latency_ns
    if not time_order:
        by_time = perm
    elif bool(np.all(np.diff(arrival) >= 0)):
        by_time = np.arange(len(pi))
    else:
        by_time = np.argsort(arrival, kind="stable")
    limit = children.limit_offset_bps * 1e-4
    limit = np.where(np.isnan(limit), np.inf, limit)
    return Prepared(p_side, p_qty, arrival, slot, mvol, limit, by_time, perm)


def child_outputs(n: int) -> dict[str, np.ndarray]:
    """Zeroed per-child output arrays."""
    return {"f_qty": np.zeros(n), "f_px": np.zeros(n), "f_fee": np.zeros(n),
            "f_maker": np.zeros(n, np.int8), "f_ts": np.zeros(n, np.int64),
            "r_code": np.zeros(n, np.int8), "r_val": np.zeros(n), "r_lim": np.zeros(n)}


def assemble(parents: Parents, children: Children, prep: Prepared, out: dict[str, np.ndarray],
             mid: np.ndarray, filled: np.ndarray, notional: np.ndarray, fees: np.ndarray,
             end_mid: np.ndarray, truth_bps: np.ndarray, venue: str) -> SimResult:
    """Build the :class:`SimResult` from kernel outputs."""
    with np.errstate(divide="ignore", invalid="ignore"):
        avg = np.where(filled > 0, notional / filled, np.nan)
    return SimResult(
        child_parent=children.parent_idx, arrival_ns=prep.arrival_ns, fill_qty=out["f_qty"],
        fill_px=out["f_px"], fee=out["f_fee"], maker=out["f_maker"], fill_ts=out["f_ts"],
        reject_code=out["r_code"], reject_value=out["r_val"], reject_limit=out["r_lim"],
        order_id=np.asarray(parents.order_id), side=prep.p_side, arrival_mid=mid, qty=prep.p_qty,
        filled_qty=filled, avg_px=avg, unfilled_qty=np.maximum(prep.p_qty - filled, 0.0),
        fees=fees, end_mid=end_mid,
        shortfall_bps=cost_bps(prep.p_side, mid, filled, notional, fees), truth_bps=truth_bps,
        venue=venue)
