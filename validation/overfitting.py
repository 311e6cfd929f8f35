"""Overfitting statistics: deflated Sharpe ratio (PSR, DSR, MinTRL, MinBTL) and PBO via CSCV.

Pure numpy/scipy. Two questions, two tools (the Sharpe statistics live in
``validation._overfitting_sharpe``, PBO in ``validation._overfitting_pbo``; every public name is
importable from here):

* **Is this Sharpe ratio still significant after N tries?** :func:`deflated_sharpe_ratio` raises
  the bar from 0 to the Sharpe ratio that the best of N skill-less trials is expected to show
  (:func:`expected_max_sr`), then asks for the probabilistic Sharpe ratio against that bar
  (:func:`probabilistic_sharpe_ratio`). :func:`min_track_record_length` and
  :func:`min_backtest_length` give the sample sizes these statistics need.
* **Does the in-sample winner stay good out of sample?** :func:`pbo` runs combinatorially
  symmetric cross-validation over a (periods × configurations) performance matrix and returns the
  probability of backtest overfitting with its side statistics (:class:`PBOResult`).

Conventions (shared with ``../shared/REFERENCES.md`` §2):

* Sharpe ratios are **not annualized**: they are at the sampling frequency of the returns
  (daily SR = annual SR / sqrt(250)), and so is the variance of the trials' Sharpe ratios.
* ``kurtosis`` is **Pearson kurtosis, NOT excess** (normal = 3). pandas ``.kurt()`` and
  ``scipy.stats.kurtosis`` (default ``fisher=True``) return *excess* kurtosis: pass those values
  as ``excess_kurtosis=`` instead. A ``kurtosis`` below the bound ``1 + skew**2``, which every
  distribution satisfies, is rejected as a probable excess value.

References
----------
Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier", J. Risk 15(2).
Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", J. Portfolio Mgmt 40(5).
Bailey, Borwein, López de Prado & Zhu (2014), "Pseudo-Mathematics and Financial Charlatanism",
Notices AMS 61(5). Bailey, Borwein, López de Prado & Zhu (2017), "The Probability of Backtest
Overfitting", J. Computational Finance 20(4).
"""

from __future__ import annotations

from validation._overfitting_pbo import Metric, PBOResult, pbo
from validation._overfitting_sharpe import (
    DeflatedSharpeResult,
    deflated_sharpe_ratio,
    expected_max_sr,
    min_backtest_length,
    min_track_record_length,
    probabilistic_sharpe_ratio,
)

__all__ = [
    "DeflatedSharpeResult",
    "Metric",
    "PBOResult",
    "deflated_sharpe_ratio",
    "expected_max_sr",
    "min_backtest_length",
    "min_track_record_length",
    "pbo",
    "probabilistic_sharpe_ratio",
]
