"""Fan-out of independent work on Dask distributed: one machine here, a cluster unchanged.

The pure layers take a ``mapper`` (``mapper(fn, items)``, the builtin :func:`map` by default;
:data:`models._desk_execution.Mapper`) and never import an engine. This module gives them one
that runs on Dask workers:

* :func:`cluster` starts a :class:`distributed.LocalCluster` of worker **processes** bound to
  127.0.0.1 (``BESTEX_WORKERS``, default the cores) and shuts it down on exit, or, with
  ``address`` / ``BESTEX_DASK_SCHEDULER``, connects to a running scheduler (``dask scheduler``
  and ``dask worker tcp://host:8786`` on each machine) and leaves it running;
* :class:`DaskMapper` scatters the items to the workers (spread over them, not through the
  scheduler), submits one task per item (``client.map(..., pure=False)``: distinct keys, so a
  task is never skipped as a duplicate) and yields the results **in item order** as they
  arrive; a task's exception is raised in the caller. Keywords bound to ``fn`` with
  :func:`functools.partial` (a market path, a cost model) are scattered to every worker once
  (``broadcast=True``) instead of being pickled into every task.

Why Dask and not Ray: the tasks are CPU-bound numpy/numba/XGBoost calls exchanging frames of a
few MB; Dask distributed is pure Python (``dask``, ``distributed`` in the lock file), its
``LocalCluster`` starts in about 1.5 s here, and the same client code talks to a remote
scheduler. Ray would add a ~100 MB binary, its own object store and runtime for nothing these
tasks need. The workers import the project (``models``, ``validation``) by name: on a cluster
they run the same environment (the lock file) with the project on their path.

Examples
--------
>>> from bestex.distributed import cluster
>>> from validation.stress import run_stress_suite
>>> with cluster(workers=2) as mapper:  # doctest: +SKIP
...     result = run_stress_suite(bundle.predict, mapper=mapper)
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import dask
from distributed import Client, Future, LocalCluster

__all__ = ["DaskMapper", "blas_threads", "cluster", "dask_map", "default_workers", "fanout",
           "scheduler_address"]

_SCALARS = (bool, int, float, complex, str, bytes, type(None))


def default_workers() -> int:
    """``BESTEX_WORKERS`` (the executor's setting in :mod:`pipelines.definitions`), else the
    machine's cores."""
    raw = os.environ.get("BESTEX_WORKERS", "")
    try:
        n = int(raw) if raw else (os.cpu_count() or 2)
    except ValueError:
        raise ValueError(f"BESTEX_WORKERS={raw!r} is not an integer; set it to the number of "
                         "worker processes, e.g. BESTEX_WORKERS=2") from None
    if n < 1:
        raise ValueError(f"BESTEX_WORKERS={raw!r} must be >= 1")
    return n


def scheduler_address() -> str | None:
    """``BESTEX_DASK_SCHEDULER`` (e.g. ``tcp://scheduler:8786``), or None: start a local
    cluster."""
    return os.environ.get("BESTEX_DASK_SCHEDULER") or None


class DaskMapper:
    """``mapper(fn, items)`` on a Dask :class:`distributed.Client`: results in item order.

    Parameters
    ----------
    client : distributed.Client
        A connected client (local or remote scheduler); not closed by the mapper.

    Notes
    -----
    Keywords of a :func:`functools.partial` ``fn`` are shared inputs: scalars travel with the
    tasks, every other value is scattered once to every worker (``hash=False``: no hashing of a
    large frame) and resolved there. Items and results are pickled (cloudpickle): what the
    pure layers send must pickle, and module-level functions are shipped by name, so the
    workers must import the same project.
    """

    def __init__(self, client: Client) -> None:
        self.client = client

    @property
    def n_workers(self) -> int:
        """Workers the scheduler knows now (the natural ``n_chunks`` of a chunked run)."""
        return max(len(self.client.scheduler_info(n_workers=-1)["workers"]), 1)

    def __call__(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]:
        """Submit every call now; iterate over their results in order (raising a task's
        error). Leaving the iteration early cancels what has not run."""
        func, shared = fn, {}
        if isinstance(fn, partial):
            func = partial(fn.func, *fn.args) if fn.args else fn.func
            shared = {k: v if isinstance(v, _SCALARS)
                      else self.client.scatter([v], broadcast=True, hash=False)[0]
                      for k, v in fn.keywords.items()}
        name = getattr(func, "__name__", None) or getattr(getattr(func, "func", None),
                                                          "__name__", "task")
        # items go straight to the workers (spread over them), not through the scheduler
        items = [self.client.scatter(list(it), hash=False) for it in iterables]
        futures = self.client.map(func, *items, key=f"bestex-{name}", pure=False, **shared)
        return self._results(futures, [f for f in shared.values() if isinstance(f, Future)]
                             + [f for col in items for f in col])

    @staticmethod
    def _results(futures: list[Future], shared: list[Future]) -> Iterator[Any]:
        try:
            for f in futures:
                yield f.result()
        finally:
            for f in futures + shared:
                f.release()


def dask_map(client: Client) -> DaskMapper:
    """The :class:`DaskMapper` of a connected ``client``."""
    return DaskMapper(client)


@contextmanager
def cluster(workers: int | None = None, address: str | None = None, *,
            threads_per_worker: int = 1) -> Iterator[DaskMapper]:
    """A :class:`DaskMapper` on a running scheduler or on a local cluster it owns.

    Parameters
    ----------
    workers : int, optional
        Worker processes of the local cluster (default :func:`default_workers`). Ignored with
        a scheduler address (the cluster has its own workers).
    address : str, optional
        A running scheduler, ``tcp://host:8786`` (default :func:`scheduler_address`, the
        ``BESTEX_DASK_SCHEDULER`` variable); without one a local cluster is started.
    threads_per_worker : int, default=1
        Task threads of each local worker: the tasks hold the GIL in pandas and Python loops,
        so processes, not threads, give the parallelism.

    Yields
    ------
    DaskMapper

    Notes
    -----
    The local cluster binds its scheduler, its workers and the scheduler's health endpoint to
    127.0.0.1 (free ports, no dashboard), and is closed (its worker processes ended) when the
    block exits, also on error. A remote
    cluster is only disconnected from.
    """
    address = address or scheduler_address()
    if address:
        with Client(address) as client:
            _check_blas(client)
            yield DaskMapper(client)
        return
    n = default_workers() if workers is None else workers
    if n < 1:
        raise ValueError(f"`workers` must be >= 1, got `workers={n}`")
    # Dask's nanny would start the workers with OMP/MKL/OPENBLAS_NUM_THREADS=1 and
    # MALLOC_TRIM_THRESHOLD_=65536, and sets them in this process too. One BLAS thread instead
    # of this process's changed the last bits of the stress suite's least-squares refits at
    # 16,000 orders a scenario, and the trimming made these allocation-heavy pandas tasks ~40%
    # slower: the workers inherit this process's environment instead (PYTHONHASHSEED, which the
    # nanny always sets, is restored on exit).
    saved = os.environ.get("PYTHONHASHSEED")
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}), \
                LocalCluster(n_workers=n, threads_per_worker=threads_per_worker,
                             processes=True, host="127.0.0.1", dashboard_address=None,
                             # no dashboard; the scheduler's health endpoint on a free port
                             scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                             silence_logs=logging.WARNING) as local, Client(local) as client:
            _check_blas(client)
            yield DaskMapper(client)
    finally:
        if saved is None:
            os.environ.pop("PYTHONHASHSEED", None)
        else:
            os.environ["PYTHONHASHSEED"] = saved


@contextmanager
def fanout(workers: int = 0) -> Iterator[Callable[..., Iterable[Any]]]:
    """The mapper a run config asks for: the builtin ``map`` (serial, in process: the embedded
    default) unless ``workers > 0`` (a local cluster of that many processes) or
    ``BESTEX_DASK_SCHEDULER`` is set (that cluster); see :func:`cluster`.

    Examples
    --------
    >>> with fanout(0) as m:  # no scheduler configured
    ...     m is map
    True
    """
    if workers <= 0 and not scheduler_address():
        yield map
        return
    with cluster(workers if workers > 0 else None) as m:
        yield m


def blas_threads() -> list[tuple[str, int]]:
    """``(library, threads)`` of every BLAS this process has loaded (numpy's and scipy's)."""
    import numpy  # noqa: F401  (load the BLAS libraries the tasks use)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info

    return sorted((str(i["internal_api"]), int(i["num_threads"])) for i in threadpool_info()
                  if i["user_api"] == "blas")


def _check_blas(client: Client) -> None:
    """Warn when a worker's BLAS threads differ from this process's: sums split over another
    number of threads round differently, so a least-squares fit may differ in its last bits
    from the serial run's."""
    mine = blas_threads()
    other = {w: t for w, t in client.run(blas_threads).items() if t != mine}
    if other:
        warnings.warn(f"Dask workers {sorted(other)} run BLAS with {next(iter(other.values()))} "
                      f"threads, this process with {mine}: results may differ from a serial "
                      "run in the last bits; set OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) to "
                      "the same value for the workers and this process", stacklevel=3)
