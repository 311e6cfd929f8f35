"""Compiled inner loops of :mod:`models.simulator` (numba ``@njit(cache=True)``, single thread).

Everything here works on flat numpy columns prepared by the wrappers; the physics is documented
in :mod:`models.simulator`. Units: times in ns (int64), prices in currency, sizes in shares,
impact and spread as fractions of the arrival mid (``1 bp = 1e-4``).

Impact comes from the simulator's :class:`models.impact.ATHLImpact`
(``SimulatorConfig.impact_model()``): the wrappers pass each parent's permanent impact per share
(``ATHLImpact.permanent_per_share``) and the model's ``eta, beta``; the temporary impact of a
child is :func:`models.impact.athl_temporary` and the size a limit lets it fill
:func:`models.impact.athl_temporary_rate`, compiled here from the same source. Numba's cache
does not notice edits of functions compiled from another file: after changing those two, touch
this file (or delete its ``__pycache__/*.nbi``) so the kernels are recompiled.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from models.impact import athl_temporary, athl_temporary_rate
from models.risk_controls import check_child

DAY_NS = 86_400_000_000_000

_temporary = njit(cache=True, inline="always")(athl_temporary)
_temporary_rate = njit(cache=True, inline="always")(athl_temporary_rate)


@njit(cache=True)
def _fee(px, q, maker, taker_bps, taker_ps, maker_bps, maker_ps):
    if maker:
        return -(maker_bps * 1e-4 * px * q + maker_ps * q)
    return taker_bps * 1e-4 * px * q + taker_ps * q


@njit(cache=True, inline="always")
def _price_check(i, p, t, q, px, mid0, side, maker, mvol, dist, day, day_loss, loss,
                 taker_bps, taker_ps, maker_bps, maker_ps,
                 kill, max_qty, max_part, collar_bps, order_lim, daily_lim, r_code, r_val, r_lim):
    """Fee and loss of child ``i`` (parent ``p``) filling ``q`` at ``px``, then the risk check.

    The fee is the maker/taker schedule's; the child's loss is ``side * (px - mid0) * q + fee``.
    The day's running loss ``day_loss`` restarts when the child's UTC day ``t // DAY_NS``
    differs from ``day``. :func:`models.risk_controls.check_child` sees the child's size, its
    participation ``q / mvol``, its distance ``dist`` (fraction, sent in bps) and the parent's
    and the day's losses with this child. A rejection is written to ``r_code, r_val, r_lim[i]``.

    Returns
    -------
    tuple
        ``(fee, child_loss, day, day_loss, accepted)``: the child's fee and loss, the day
        counters to carry on with, and whether the child passed the risk check.
    """
    fee = _fee(px, q, maker, taker_bps, taker_ps, maker_bps, maker_ps)
    child_loss = side * (px - mid0) * q + fee
    d = t // DAY_NS
    if d != day:
        day = d
        day_loss = 0.0
    code, val, lim = check_child(kill, max_qty, max_part, collar_bps, order_lim, daily_lim,
                                 q, q / mvol, dist * 1e4, loss[p] + child_loss,
                                 day_loss + child_loss)
    if code != 0:
        r_code[i] = code
        r_val[i] = val
        r_lim[i] = lim
    return fee, child_loss, day, day_loss, code == 0


@njit(cache=True, inline="always")
def _record_fill(i, p, q, px, fee, maker, ts, child_loss, f_qty, f_px, f_fee, f_maker, f_ts,
                 o_filled, o_notional, o_fees, loss):
    """Write the fill of child ``i`` and add it to parent ``p``'s filled size, notional, fees
    and loss (the day's loss is the caller's)."""
    f_qty[i] = q
    f_px[i] = px
    f_fee[i] = fee
    f_maker[i] = maker
    f_ts[i] = ts
    o_filled[p] += q
    o_notional[p] += px * q
    o_fees[p] += fee
    loss[p] += child_loss


@njit(cache=True)
def _transient(t, head, f_ts, amp, prev, tau_ns, expo):
    """Sum over earlier fills ``j`` of ``amp_j * (1 + (t - t_j)/tau)^-expo`` (linked list)."""
    s = 0.0
    j = head
    while j >= 0:
        s += amp[j] * (1.0 + (t - f_ts[j]) / tau_ns) ** (-expo)
        j = prev[j]
    return s


@njit(cache=True)
def simulate_kernel(
    order, c_parent, c_arr, c_qty, c_kind, c_limit, c_mvol, c_z, c_u,
    p_side, p_symbol, p_mid, p_sig_ns, p_adv, p_hs, p_perm, p_sig, p_start, p_end, p_zend,
    n_symbols, eta, beta, taker_bps, taker_ps, maker_bps, maker_ps, part_cap,
    fill_kind, fill_prob, queue_adv, side_share, trans_on, tau_ns, trans_expo, shared,
    kill, max_qty, max_part, collar_bps, order_lim, daily_lim,
    f_qty, f_px, f_fee, f_maker, f_ts, r_code, r_val, r_lim,
    o_filled, o_notional, o_fees, o_det_notional, o_det_fees, o_end_mid,
):
    """Execute children in ``order`` (ids >= 0 children; ``-1-p`` parent start, ``-1-P-p`` end).

    ``p_perm``: permanent impact per share of each parent (fraction); ``p_sig``: its daily
    volatility; ``eta, beta``: the temporary law of :func:`models.impact.athl_temporary`.
    """
    n_par = p_side.shape[0]
    n_ch = c_parent.shape[0]
    w = np.zeros(n_par)  # mid diffusion of each parent since its decision (fraction of mid)
    last_t = p_start.copy()
    own = np.zeros(n_par)  # own accumulated permanent impact (fraction)
    base = np.zeros(n_par)  # symbol footprint at the parent's decision (shared mode)
    fp = np.zeros(n_symbols)
    carry = np.zeros(n_par)
    loss = np.zeros(n_par)
    head = np.full(n_par, -1, np.int64)
    prev = np.full(n_ch if trans_on else 1, -1, np.int64)
    amp = np.zeros(n_ch if trans_on else 1)
    day = -1
    day_loss = 0.0
    for e in order:
        if e < 0:  # parent events (shared-footprint mode only)
            p = -1 - e
            if p < n_par:
                base[p] = fp[p_symbol[p]]
            else:
                p -= n_par
                _close(p, w, last_t, own, base, fp, head, prev, amp, f_ts, p_side, p_symbol,
                       p_mid, p_sig_ns, p_end, p_zend, trans_on, tau_ns, trans_expo, shared,
                       o_end_mid)
            continue
        i = e
        p = c_parent[i]
        t = c_arr[i]
        if t > p_end[p]:
            continue  # arrives after end_ts: never sent, stays unfilled
        dt = t - last_t[p]
        if dt > 0:
            w[p] += p_sig_ns[p] * math.sqrt(dt) * c_z[i]
            last_t[p] = t
        side = p_side[p]
        mid0 = p_mid[p]
        perm = fp[p_symbol[p]] - base[p] if shared else own[p]
        disp = perm
        if trans_on:
            disp += _transient(t, head[p], f_ts, amp, prev, tau_ns, trans_expo)
        mvol = c_mvol[i]
        q = c_qty[i] + carry[p]
        carry[p] = 0.0
        qcap = part_cap * mvol
        if q > qcap:
            carry[p] = q - qcap
            q = qcap
        if q <= 0.0:
            continue
        off = c_limit[i]
        hs = p_hs[p]
        maker = c_kind[i] != 0
        k = 0.0
        if not maker:
            k = _temporary(eta, p_sig[p], q / mvol, beta)
            if k > off:  # the limit binds: fill what costs at most `off`, carry the rest
                qmax = mvol * _temporary_rate(eta, p_sig[p], off, beta) if off > 0.0 else 0.0
                carry[p] += q - qmax
                q = qmax
                k = off
                if q <= 0.0:
                    continue
            c = hs + k
            dist = hs + (off if off < 1e300 else k)
        else:
            off_p = off if off < 1e300 else 0.0
            c = -hs - off_p
            dist = hs + off_p
        di = p_perm[p] * q
        det = side * (disp + c + 0.5 * di)
        px = mid0 * (1.0 + w[p] + det)
        fee, child_loss, day, day_loss, ok = _price_check(
            i, p, t, q, px, mid0, side, maker, mvol, dist, day, day_loss, loss,
            taker_bps, taker_ps, maker_bps, maker_ps,
            kill, max_qty, max_part, collar_bps, order_lim, daily_lim, r_code, r_val, r_lim)
        if not ok:
            continue
        if maker:
            if fill_kind == 0:
                pf = fill_prob
            else:
                pf = 1.0 - math.exp(-side_share * mvol / (queue_adv * p_adv[p] + q))
            if not c_u[i] < pf:
                carry[p] += q
                continue
        px_det = mid0 * (1.0 + det)
        _record_fill(i, p, q, px, fee, maker, t, child_loss, f_qty, f_px, f_fee, f_maker, f_ts,
                     o_filled, o_notional, o_fees, loss)
        day_loss += child_loss
        own[p] += di
        fp[p_symbol[p]] += di
        o_det_notional[p] += px_det * q
        o_det_fees[p] += _fee(px_det, q, maker, taker_bps, taker_ps, maker_bps, maker_ps)
        if trans_on and not maker:
            amp[i] = k
            prev[i] = head[p]
            head[p] = i
    if not shared:
        for p in range(n_par):
            _close(p, w, last_t, own, base, fp, head, prev, amp, f_ts, p_side, p_symbol, p_mid,
                   p_sig_ns, p_end, p_zend, trans_on, tau_ns, trans_expo, shared, o_end_mid)


@njit(cache=True)
def _close(p, w, last_t, own, base, fp, head, prev, amp, f_ts, p_side, p_symbol, p_mid, p_sig_ns,
           p_end, p_zend, trans_on, tau_ns, trans_expo, shared, o_end_mid):
    """The mid at ``end_ts``: diffusion to the end plus our permanent (and transient) footprint."""
    wend = w[p]
    dt = p_end[p] - last_t[p]
    if dt > 0:
        wend += p_sig_ns[p] * math.sqrt(dt) * p_zend[p]
    disp = fp[p_symbol[p]] - base[p] if shared else own[p]
    if trans_on:
        disp += _transient(p_end[p], head[p], f_ts, amp, prev, tau_ns, trans_expo)
    o_end_mid[p] = p_mid[p] * (1.0 + wend + p_side[p] * disp)


@njit(cache=True)
def replay_kernel(
    order, c_parent, c_arr, c_qty, c_kind, c_limit, c_mvol, c_slot,
    p_side, p_mid, p_lo, p_hi, p_perm, p_sig, p_end,
    b_ts, b_bpx, b_bsz, b_apx, b_asz, eta, beta, excess_impact,
    taker_bps, taker_ps, maker_bps, maker_ps, part_cap,
    kill, max_qty, max_part, collar_bps, order_lim, daily_lim,
    f_qty, f_px, f_fee, f_maker, f_ts, r_code, r_val, r_lim,
    o_filled, o_notional, o_fees, o_end_mid,
):
    """Execute children against a recorded book (rows ``p_lo[p]:p_hi[p]`` for parent ``p``).

    ``p_perm, p_sig, eta, beta`` as in :func:`simulate_kernel`.
    """
    n_par = p_side.shape[0]
    n_lev = b_apx.shape[1]
    own = np.zeros(n_par)
    carry = np.zeros(n_par)
    loss = np.zeros(n_par)
    day = -1
    day_loss = 0.0
    for i in order:
        p = c_parent[i]
        t = c_arr[i]
        if t > p_end[p]:
            continue
        lo = p_lo[p]
        hi = p_hi[p]
        j = lo + np.searchsorted(b_ts[lo:hi], t, side="right") - 1
        mvol = c_mvol[i]
        q = c_qty[i] + carry[p]
        carry[p] = 0.0
        if j < lo:  # no book yet: carry everything
            carry[p] = q
            continue
        qcap = part_cap * mvol
        if q > qcap:
            carry[p] = q - qcap
            q = qcap
        if q <= 0.0:
            continue
        side = p_side[p]
        mid0 = p_mid[p]
        shift = side * own[p] * mid0
        ref = 0.5 * (b_bpx[j, 0] + b_apx[j, 0]) + shift
        off = c_limit[i]
        maker = c_kind[i] != 0
        fts = t
        if not maker:
            bpx = b_apx if side > 0 else b_bpx
            bsz = b_asz if side > 0 else b_bsz
            touch = bpx[j, 0]
            lim_px = touch + side * off * ref if off < 1e300 else side * np.inf
            got = 0.0
            val = 0.0
            for lev in range(n_lev):
                lp = bpx[j, lev]
                ls = bsz[j, lev]
                if not (ls > 0.0) or not (lp == lp) or side * (lp - lim_px) > 0.0:
                    continue
                take = min(ls, q - got)
                got += take
                val += take * lp
                if got >= q:
                    break
            rem = q - got
            if rem > 0.0 and excess_impact:
                k = _temporary(eta, p_sig[p], rem / mvol, beta)
                if k > off:
                    qmax = mvol * _temporary_rate(eta, p_sig[p], off, beta) if off > 0.0 else 0.0
                    rem = min(rem, qmax)
                    k = off
                got += rem
                val += rem * touch * (1.0 + side * k)
            carry[p] += q - got
            q = got
            if q <= 0.0:
                continue
            px = val / q + shift
            dist = (px - ref) / ref if off >= 1e300 else (lim_px + shift - ref) / ref
        else:
            near = b_bpx[j, 0] if side > 0 else b_apx[j, 0]
            our = near - side * (off if off < 1e300 else 0.0) * ref
            px = our + shift
            dist = (px - ref) / ref
        fee, child_loss, day, day_loss, ok = _price_check(
            i, p, t, q, px, mid0, side, maker, mvol, dist, day, day_loss, loss,
            taker_bps, taker_ps, maker_bps, maker_ps,
            kill, max_qty, max_part, collar_bps, order_lim, daily_lim, r_code, r_val, r_lim)
        if not ok:
            continue
        if maker:  # trade-through rule: the opposite touch reaches our price within the slot
            t_stop = t + c_slot[i]
            filled = False
            for j2 in range(j + 1, hi):
                if b_ts[j2] > t_stop:
                    break
                opp = b_apx[j2, 0] if side > 0 else b_bpx[j2, 0]
                if opp == opp and side * (our - opp) >= 0.0:
                    filled = True
                    fts = b_ts[j2]
                    break
            if not filled:
                carry[p] += q
                continue
        _record_fill(i, p, q, px, fee, maker, fts, child_loss, f_qty, f_px, f_fee, f_maker, f_ts,
                     o_filled, o_notional, o_fees, loss)
        day_loss += child_loss
        own[p] += p_perm[p] * q
    for p in range(n_par):
        lo = p_lo[p]
        hi = p_hi[p]
        j = lo + np.searchsorted(b_ts[lo:hi], p_end[p], side="right") - 1
        if j >= lo:
            o_end_mid[p] = (0.5 * (b_bpx[j, 0] + b_apx[j, 0])
                            + p_side[p] * own[p] * p_mid[p])
