"""The paper service's planner in a process of its own.

Deciding a plan is CPU work in Python (the state's features, 14 candidates priced, the chosen
plan's children: about a millisecond an order). In a thread of the service it competes with the
FIX gateway for the GIL: every SQLite call of the gateway releases the GIL and then waits up to
a switch interval to get it back while the planner computes, so acknowledgements took tens of
milliseconds under load. Here the planner runs in a spawned process with its own copy of the
feed and the model: a request carries the orders, the feed position they were decided at
(the worker publishes exactly that much of its copy: nothing later) and the model version the
service uses (the worker follows the same registry reference, or the bundle it was given).
The worker also watches the registry alias for the service (:meth:`PlannerProcess.check`).
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

__all__ = ["PlannerProcess"]

_WORKER: dict[str, Any] = {}


def _init(feed_blob: bytes, source: dict[str, Any]) -> None:  # pragma: no cover - worker
    import gc
    import os

    from bestex.paper.service import ModelSource

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1:  # a core of its own: the gateway keeps the others, caches stay warm
        os.sched_setaffinity(0, {cores[-1]})

    feed = pickle.loads(feed_blob)
    if source["bundle"] is not None:
        model = ModelSource(feed, bundle=pickle.loads(source["bundle"]),
                            version=source["version"], risk_aversion=source["risk_aversion"])
    else:
        model = ModelSource(feed, alias=source["alias"], risk_aversion=source["risk_aversion"])
    _WORKER.update(feed=feed, model=model)
    gc.collect()
    gc.freeze()  # the feed and the model are long-lived: out of the collector's sight
    gc.set_threshold(50_000, 50, 100)  # as the service: young collections rarer


def _ping() -> bool:  # pragma: no cover - worker
    return "model" in _WORKER


def _check() -> str:  # pragma: no cover - worker
    model = _WORKER["model"]
    model.check()
    return model.version


def _plan(cursor: int, states: list[dict[str, Any]], version: str
          ) -> list[dict[str, Any]]:  # pragma: no cover - worker
    from bestex.paper.engine import ParentOrder, plan_orders

    feed, model = _WORKER["feed"], _WORKER["model"]
    if model.version != version and model.follows_alias:
        model.check()  # the alias moved in the service: follow it
    feed.seek(cursor)
    return plan_orders(feed, model, [ParentOrder(**s) for s in states])


class PlannerProcess:
    """One spawned worker that plans batches of orders (:func:`bestex.paper.engine.plan_orders`).

    Parameters
    ----------
    feed : bestex.paper.market.Feed
        Copied into the worker once.
    model : bestex.paper.service.ModelSource
        Its bundle is copied when it was given directly; otherwise the worker loads the same
        registry reference.
    """

    def __init__(self, feed: Any, model: Any) -> None:
        direct = not model.from_registry
        source = {"bundle": pickle.dumps(model.bundle) if direct else None,
                  "version": model.version, "alias": model.alias,
                  "risk_aversion": model.risk_aversion}
        self._pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"),
                                         initializer=_init,
                                         initargs=(pickle.dumps(feed), source))
        self.ready: Future = self._pool.submit(_ping)

    def submit(self, cursor: int, orders: list[Any], version: str) -> Future:
        """Plan ``orders`` (``ParentOrder``) as decided at feed position ``cursor``."""
        return self._pool.submit(_plan, cursor, [o.state() for o in orders], version)

    def check(self) -> Future:
        """The worker reads the registry alias again (reloading its model when it moved) and
        returns the version it now uses. The registry read (Python in MLflow's
        client) runs there, between two batches, not in a thread of the gateway: there it held
        the GIL the event loop needed, every few seconds, for up to a switch interval at a
        time."""
        return self._pool.submit(_check)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
