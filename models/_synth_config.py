"""Configuration of the synthetic market (frozen pydantic models; every default is written here once).

Public names are re-exported by :mod:`models.synthetic_market`; see ``docs/synthetic_market.md``.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "FLASH_2010",
    "FlashEvent",
    "HaltConfig",
    "ImpactConfig",
    "MembershipConfig",
    "MicrostructureConfig",
    "ProfileConfig",
    "ReferenceSymbol",
    "RegimeConfig",
    "ScenarioConfig",
    "SymbolDistribution",
    "SyntheticMarketConfig",
    "VolatilityConfig",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegimeConfig(_Frozen):
    """Market-wide daily Markov-switching regimes (calm / volatile / crisis).

    Parameters
    ----------
    names : tuple of str, default=("calm", "volatile", "crisis")
        Regime labels, in state order; state 0 is the baseline.
    transition : tuple of tuple of float
        Row-stochastic daily transition matrix ``P[i][j] = P(R_{t+1}=j | R_t=i)``.
    vol_mult, spread_mult, volume_mult : tuple of float
        Multipliers of each symbol's daily volatility, quoted spread and trade rate in each state.
        The crisis state carries the REFERENCES.md §5 crisis-week multipliers
        (vol x3-5, spread x2, volume x2-4).
    initial_state : int, default=0
        State of the first session.
    """

    names: tuple[str, ...] = ("calm", "volatile", "crisis")
    transition: tuple[tuple[float, ...], ...] = (
        (0.9850, 0.0145, 0.0005),
        (0.0500, 0.9450, 0.0050),
        (0.0200, 0.1800, 0.8000),
    )
    vol_mult: tuple[float, ...] = (1.0, 1.3, 3.5)
    spread_mult: tuple[float, ...] = (1.0, 1.3, 2.0)
    volume_mult: tuple[float, ...] = (1.0, 1.5, 3.0)
    initial_state: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        k = len(self.names)
        for name in ("transition", "vol_mult", "spread_mult", "volume_mult"):
            if len(getattr(self, name)) != k:
                raise ValueError(f"`{name}` must have {k} entries (one per regime in `names`), "
                                 f"got {len(getattr(self, name))}")
        for i, row in enumerate(self.transition):
            if len(row) != k or min(row) < 0 or abs(sum(row) - 1.0) > 1e-9:
                raise ValueError(f"`transition[{i}]={row}` must be {k} non-negative numbers "
                                 "summing to 1")
        if self.initial_state >= k:
            raise ValueError(f"`initial_state={self.initial_state}` must be < {k}")
        return self


class VolatilityConfig(_Frozen):
    """Daily and intraday volatility dynamics.

    Parameters
    ----------
    student_t_dof : float, default=6.0
        Degrees of freedom of the (unit-variance) Student-t daily innovations (daily-only mode
        and overnight gaps).
    intraday_t_dof : float, default=2.5
        Degrees of freedom of the (unit-variance) Student-t innovations of each quote step. A
        power tail survives aggregation, so 5-min returns keep a Hill tail index of about 3-4
        (the "inverse cubic law" region) instead of turning Gaussian.
    memory_timescales_days : tuple of float, default=(15, 60, 250)
        Time scales of the AR(1) log-volatility components; a ladder of time scales gives a
        slowly (roughly power-law) decaying ACF of ``|r|`` over 1-100 days.
    memory_weights : tuple of float, default=(0.15, 0.25, 0.6)
        Share of the log-volatility variance carried by each time scale.
    memory_log_sd : float, default=0.35
        Stationary standard deviation of the summed log-volatility component ``h``; the daily
        volatility is ``daily_vol * vol_mult[R] * exp(h)``, so ``daily_vol`` is its median in calm.
    market_vol_share : float, default=0.5
        Share of the log-volatility variance common to all symbols.
    market_return_share : float, default=0.3
        Share of each return's variance that comes from a common market factor.
    overnight_var_share : float, default=0.15
        Share of the daily variance realized between the previous close and the open.
    intraday_log_sd : float, default=0.45
        Stationary standard deviation of the intraday log-volatility AR(1).
    intraday_timescale_min : float, default=20.0
        Time scale of the intraday log-volatility AR(1), minutes.
    volume_vol_elasticity : float, default=0.8
        Trade rate scales as ``(sigma_t / sigma)^elasticity`` (volume-volatility correlation).
    """

    student_t_dof: float = Field(default=6.0, gt=2.0)
    intraday_t_dof: float = Field(default=2.5, gt=2.0)
    memory_timescales_days: tuple[float, ...] = (15.0, 60.0, 250.0)
    memory_weights: tuple[float, ...] = (0.15, 0.25, 0.6)
    memory_log_sd: float = Field(default=0.35, ge=0.0)
    market_vol_share: float = Field(default=0.5, ge=0.0, le=1.0)
    market_return_share: float = Field(default=0.3, ge=0.0, le=1.0)
    overnight_var_share: float = Field(default=0.15, ge=0.0, lt=1.0)
    intraday_log_sd: float = Field(default=0.45, ge=0.0)
    intraday_timescale_min: float = Field(default=20.0, gt=0.0)
    volume_vol_elasticity: float = Field(default=0.8, ge=0.0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(self.memory_weights) != len(self.memory_timescales_days) or min(
                self.memory_weights, default=0) < 0 or sum(self.memory_weights) <= 0:
            raise ValueError(
                f"`memory_weights={self.memory_weights}` must be {len(self.memory_timescales_days)} "
                "non-negative numbers (one per `memory_timescales_days`) with a positive sum")
        return self


class ProfileConfig(_Frozen):
    """Intraday seasonality over session time ``u`` in [0, 1] (``m`` = minutes since the open).

    volume(u) = base + smile*(2u-1)^2 + open_amp*exp(-u/open_decay) + close_amp*exp(-(1-u)/close_decay)
    variance(u) = same form with the ``vol_*`` parameters; both normalized to mean 1 over the session.
    spread(m) = 1 + spread_open_amp*exp(-m/spread_open_decay_min)   (reverse J)
    depth(m) = spread(m)^(-depth_spread_elasticity)
    """

    volume_base: float = 0.35
    volume_smile: float = 0.45
    volume_open_amp: float = 1.8
    volume_open_decay: float = 0.06
    volume_close_amp: float = 1.0
    volume_close_decay: float = 0.05
    vol_base: float = 0.7
    vol_smile: float = 0.2
    vol_open_amp: float = 2.0
    vol_open_decay: float = 0.04
    vol_close_amp: float = 0.4
    vol_close_decay: float = 0.04
    spread_open_amp: float = Field(default=1.5, ge=0.0)
    spread_open_decay_min: float = Field(default=20.0, gt=0.0)
    depth_spread_elasticity: float = Field(default=0.5, ge=0.0)


class MicrostructureConfig(_Frozen):
    """Grid, tick/lot rounding, auction prints, feed latency and trade-size model.

    Parameters
    ----------
    quote_interval_s : float, default=5.0
        One L1 quote per symbol every ``quote_interval_s`` seconds of the session.
    tick_size : float, default=0.01
        Price grid (currency units).
    lot_size : int, default=100
        Quote sizes are whole multiples of ``lot_size`` shares.
    trade_qty_step : int, default=1
        Trade sizes are whole multiples of ``trade_qty_step`` shares.
    round_lot_trade_share : float, default=0.38
        Probability that a continuous trade is a whole number of lots (AMZN 2012-06-21: 0.38).
    odd_lot_log_sd : float, default=1.2
        Log-sd of the lognormal size of the other trades.
    latency_ns : int, default=1_000_000
        Feed latency: ``available_at = ts + latency_ns``.
    open_auction_share, close_auction_share : float, default=0.02, 0.07
        Share of the day's volume printed at the opening / closing auction (``aggressor = 0``).
    spread_noise_log_sd : float, default=0.25
        Log-sd of the quote-by-quote spread noise.
    spread_vol_elasticity : float, default=0.5
        The spread scales as ``g^elasticity`` with the intraday volatility factor ``g``.
    """

    quote_interval_s: float = Field(default=5.0, gt=0.0, le=3600.0)
    tick_size: float = Field(default=0.01, gt=0.0)
    lot_size: int = Field(default=100, ge=1)
    trade_qty_step: int = Field(default=1, ge=1)
    round_lot_trade_share: float = Field(default=0.38, ge=0.0, le=1.0)
    odd_lot_log_sd: float = Field(default=1.2, ge=0.0)
    latency_ns: int = Field(default=1_000_000, ge=0)
    open_auction_share: float = Field(default=0.02, ge=0.0, lt=0.5)
    close_auction_share: float = Field(default=0.07, ge=0.0, lt=0.5)
    spread_noise_log_sd: float = Field(default=0.25, ge=0.0)
    spread_vol_elasticity: float = Field(default=0.5, ge=0.0)


class ReferenceSymbol(_Frozen):
    """The calibrated reference symbol (symbol 0), matched to LOBSTER AMZN 2012-06-21.

    AMZN measured: median spread 5.86 bps, 1-min mid volatility 7.27 bps, 29.3 trades/min,
    mean trade size 71 shares, price about $223 (see ``docs/synthetic_market.md``).
    ``daily_vol`` is set so that ``sqrt((1 - overnight_var_share)/390) * daily_vol`` is the
    1-min volatility of a median calm session, and ``spread_bps`` so that the median quoted
    spread lands near 5.9 bps.
    """

    price: float = Field(default=223.0, gt=0.0)
    daily_vol: float = Field(default=0.019, gt=0.0)
    spread_bps: float = Field(default=6.1, gt=0.0)
    trades_per_min: float = Field(default=29.3, gt=0.0)
    mean_trade_size: float = Field(default=71.0, gt=0.0)
    depth_lots: float = Field(default=2.5, ge=1.0)


class SymbolDistribution(_Frozen):
    """Lognormal draws ``median * exp(log_sd * N(0,1))`` (clipped) of the other symbols' parameters."""

    price_median: float = 60.0
    price_log_sd: float = 0.8
    price_clip: tuple[float, float] = (5.0, 1000.0)
    daily_vol_median: float = 0.02
    daily_vol_log_sd: float = 0.3
    daily_vol_clip: tuple[float, float] = (0.006, 0.06)
    spread_bps_median: float = 8.0
    spread_bps_log_sd: float = 0.5
    spread_bps_clip: tuple[float, float] = (1.0, 80.0)
    trades_per_min_median: float = 10.0
    trades_per_min_log_sd: float = 0.6
    trades_per_min_clip: tuple[float, float] = (0.5, 200.0)
    mean_trade_size_median: float = 120.0
    mean_trade_size_log_sd: float = 0.4
    mean_trade_size_clip: tuple[float, float] = (60.0, 2000.0)
    depth_lots_median: float = 8.0
    depth_lots_log_sd: float = 0.6
    depth_lots_clip: tuple[float, float] = (1.0, 200.0)


class MembershipConfig(_Frozen):
    """Listings and delistings inside the sample.

    Up to ``n_listings`` symbols start after the first session and up to ``n_delistings`` others
    end before the last one (``end_date`` = the first session after their last session with data: exclusive, as in the
    membership contract) with an
    ``exit_reason`` drawn from ``exit_reasons``. The reference symbol (symbol 0) is a member for
    the whole sample; when fewer than ``n_listings + n_delistings`` other symbols exist, listings
    are served first. Samples shorter than 3 sessions get no listing or delisting.
    """

    n_listings: int = Field(default=2, ge=0)
    n_delistings: int = Field(default=2, ge=0)
    exit_reasons: tuple[str, ...] = ("acquired", "delisted", "bankrupt")

    @model_validator(mode="after")
    def _check(self) -> Self:
        allowed = ("acquired", "bankrupt", "delisted", "replaced", "other")
        bad = [r for r in self.exit_reasons if r not in allowed]
        if bad or not self.exit_reasons:
            raise ValueError(f"`exit_reasons={self.exit_reasons}` must be a non-empty subset of "
                             f"{allowed} (the membership contract's EXIT_REASONS)")
        return self


class HaltConfig(_Frozen):
    """A trading halt: no quote and no continuous trade prints inside the window.

    Parameters
    ----------
    at : float
        Session of the halt as a fraction of the sample (``floor(at * n_sessions)``, as
        ``ScenarioConfig.flash_crash_at``).
    start : datetime.time
        New York time the halt starts.
    minutes : float, default=5
        Length of the halt (5-minute LULD pauses; 15 minutes for a Level-1 market-wide halt).
    symbols : tuple of int or None, default=None
        Indices of the halted symbols (``None``: market-wide); indices ``>= n_symbols`` are
        ignored.

    Notes
    -----
    The mid keeps moving under the halt (prices reopen where the latent path went); auction
    prints at the open and the close stand.
    """

    at: float = Field(ge=0.0, lt=1.0)
    start: dt.time
    minutes: float = Field(default=5.0, gt=0.0, le=390.0)
    symbols: tuple[int, ...] | None = None


class FlashEvent(_Frozen):
    """An intraday stress window: the flash-crash mechanism of the generator (and of every
    stress scenario's event).

    Inside ``[start, start + minutes)`` (New York time) the intraday volatility, quoted spread,
    L1 depth and trade rate are multiplied by ``vol_mult, spread_mult, depth_mult,
    volume_mult`` (2010-05-06 template: x10-20, x5-50, x0.01-0.2); the mid falls by ``drop``
    until ``trough_at`` of the window and recovers ``rebound`` of the fall by its end. The
    window must end before the session close. Defaults are neutral (no stress).
    """

    start: dt.time
    minutes: float = Field(gt=0.0, le=120.0)
    vol_mult: float = Field(default=1.0, ge=1.0)
    spread_mult: float = Field(default=1.0, ge=1.0)
    depth_mult: float = Field(default=1.0, gt=0.0, le=1.0)
    volume_mult: float = Field(default=1.0, ge=1.0)
    drop: float = Field(default=0.0, ge=0.0, lt=0.9)
    trough_at: float = Field(default=0.4, gt=0.0, lt=1.0)
    rebound: float = Field(default=0.0, ge=0.0, le=1.0)


FLASH_2010: Final = FlashEvent(start=dt.time(14, 32), minutes=15.0, vol_mult=10.0,
                               spread_mult=20.0, depth_mult=0.05, volume_mult=5.0, drop=0.06,
                               trough_at=0.4, rebound=0.8)
"""The generator's default flash crash (REFERENCES.md §5, 2010-05-06 template)."""


class ScenarioConfig(_Frozen):
    """Stress scenarios (REFERENCES.md §5 multipliers); placed by fraction of the sample.

    Parameters
    ----------
    flash_crash_at : float or None, default=0.4
        Session of the flash crash as a fraction of the sample (``floor(at * n_sessions)``);
        ``None`` disables it.
    flash : FlashEvent, default=FLASH_2010
        The crash itself: window (14:32 New York, 15 minutes), multipliers, drop and rebound.
    crisis_week_at : float or None, default=0.67
        First session of the crisis week as a fraction of the sample; ``None`` disables it.
    crisis_week_sessions : int, default=5
        Length of the crisis week; those sessions are forced into the last regime ("crisis").
    gap_at : float or None, default=None
        Session of a market-wide overnight gap as a fraction of the sample; ``None`` disables it.
    gap_return : float, default=-0.05
        The gap: every symbol's open moves by this simple return on top of its usual overnight
        move (2015-08-24: the E-mini was limit-down 5% before the open).
    halts : tuple of HaltConfig, default=()
        Trading halts (intraday markets only).
    """

    flash_crash_at: float | None = Field(default=0.4, ge=0.0, lt=1.0)
    flash: FlashEvent = FLASH_2010
    crisis_week_at: float | None = Field(default=0.67, ge=0.0, lt=1.0)
    crisis_week_sessions: int = Field(default=5, ge=1)
    gap_at: float | None = Field(default=None, ge=0.0, lt=1.0)
    gap_return: float = Field(default=-0.05, gt=-0.9, lt=1.0)
    halts: tuple[HaltConfig, ...] = ()


class ImpactConfig(_Frozen):
    """True impact parameters of the market (stored in the ground truth; REFERENCES.md §3).

    Square-root law ``I = Y * sigma * sqrt(Q/V)``; ATHL permanent ``gamma*sigma*(X/V)^alpha*(Theta/V)^delta``
    and temporary ``eta*sigma*|X/(V T)|^beta``; propagator kernel ``G(t) ~ t^-decay_exponent``;
    Kissell I-star ``a1*(Q/ADV)^a2*sigma^a3``, ``MI = b1*I*POV^a4 + (1-b1)*I``.
    """

    sqrt_law_y: float = 0.8
    sqrt_law_exponent: float = 0.5
    athl_gamma: float = 0.314
    athl_alpha: float = 1.0
    athl_delta: float = 0.25
    athl_eta: float = 0.142
    athl_beta: float = 0.6
    propagator_decay_exponent: float = 0.5
    kissell_a1: float = 708.0
    kissell_a2: float = 0.55
    kissell_a3: float = 0.71
    kissell_a4: float = 0.5
    kissell_b1: float = 0.98


class SyntheticMarketConfig(_Frozen):
    """Everything that defines a synthetic market; same config (and seed) -> identical frames.

    Parameters
    ----------
    n_symbols : int, default=8
        Number of symbols; symbol 0 is the reference symbol calibrated to AMZN.
    start_date : datetime.date, default=2024-11-01
        First session is the first XNYS session on or after this date.
    n_sessions : int, default=30
        Number of XNYS sessions (holidays and early closes come from ``exchange_calendars``).
        The default sample holds Thanksgiving 2024 and the 13:00 early close of 2024-11-29.
    seed : int, default=7
        Root of every random stream (``numpy.random.SeedSequence(seed).spawn``).
    intraday : bool, default=True
        ``False`` skips quotes and trades and draws daily bars directly from the daily model
        (cheap: thousands of sessions for daily stylized facts).
    symbol_prefix : str, default="SYN"
        Symbols are ``f"{symbol_prefix}{i:02d}"``.
    """

    n_symbols: int = Field(default=8, ge=1, le=10_000)
    start_date: dt.date = dt.date(2024, 11, 1)
    n_sessions: int = Field(default=30, ge=1, le=20_000)
    seed: int = Field(default=7, ge=0)
    intraday: bool = True
    symbol_prefix: str = Field(default="SYN", min_length=1)
    micro: MicrostructureConfig = MicrostructureConfig()
    regimes: RegimeConfig = RegimeConfig()
    volatility: VolatilityConfig = VolatilityConfig()
    profiles: ProfileConfig = ProfileConfig()
    reference: ReferenceSymbol = ReferenceSymbol()
    symbols: SymbolDistribution = SymbolDistribution()
    membership: MembershipConfig = MembershipConfig()
    scenarios: ScenarioConfig = ScenarioConfig()
    impact: ImpactConfig = ImpactConfig()

    @model_validator(mode="after")
    def _check(self) -> Self:
        steps = 23_400 / self.micro.quote_interval_s
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError(f"`micro.quote_interval_s={self.micro.quote_interval_s}` must divide "
                             "the 6.5-hour session (23,400 s) into whole steps, e.g. 1, 5, 10, 60")
        return self
