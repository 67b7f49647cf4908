"""Running a grid: one papermill execution per cell, on a local process pool or on Ray, resumably.

Every cell runs in its own directory ``OUT/<env>/<dataset>/<algo>/<swept values>/seed=<s>/``
(:meth:`~marlkit.bench.grid.Cell.directory`); a cell whose ``record.json`` exists is skipped, so an interrupted
sweep resumes where it stopped; a failing cell leaves ``failed.json`` (with its traceback) and the executed
notebook showing the error, and the sweep goes on.

:func:`run_sweep` has one execution loop; where the cells run is a *backend*: :class:`LocalPool` (a
``spawn`` process pool, one torch thread per run through ``MARLKIT_NUM_THREADS``) or :class:`RayCluster`
(Ray tasks on a local ``ray.init()`` or a cluster address; the output directory must then be on a filesystem
every node sees). Both submit :func:`run_cell` and hand back its result, or the exception of a lost worker.

Local workers die with the process that started them (Linux: ``PR_SET_PDEATHSIG``; the notebook kernels they
start exit when their parent does), so a killed ``marlkit bench`` leaves no orphans behind. A cell runs under
an exclusive lock on ``<cell dir>/.lock`` (:func:`~marlkit.bench.cells.cell_lock`, ``flock``, released by the kernel when its holder
dies): two ``marlkit bench`` processes on one ``--out`` never run the same cell at once, and the second skips a
cell the first finished.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from marlkit.bench.cells import CHECKOUT, die_with_parent, find_notebook, is_finished, record_failure, run_cell
from marlkit.bench.grid import Grid, GridError
from marlkit.bench.records import FAILED, atomic_write

__all__ = ["BACKENDS", "LocalPool", "RayCluster", "init_ray", "run_sweep"]


def init_ray(address: str | None = None, workers: int | None = None):
    """Connect to Ray (once per process) and return the ``ray`` module.

    Without ``address`` a local Ray is started with ``workers`` CPUs (default: the CPU count) and this marlkit
    checkout on the workers' ``PYTHONPATH``; with an address (``"ray://host:10001"`` or ``"host:6379"``) the
    cluster's nodes must have marlkit installed.

    Raises:
        ImportError: if ray is not installed (``pip install 'marlkit[ray]'``).
    """
    try:
        import ray  # the optional ray extra
    except ImportError as exc:
        raise ImportError("--backend ray needs Ray: pip install 'marlkit[ray]'") from exc
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = workers or os.cpu_count() or 1
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(
                filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH", "")]))}}
        ray.init(**kwargs)
    return ray


class LocalPool:
    """Backend: a ``spawn`` process pool of ``workers`` processes on this machine (a context manager).

    ``address`` is accepted for a constructor shared with :class:`RayCluster` and ignored (a pool is local).
    """

    def __init__(self, workers: int, address: str | None = None):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalPool:
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                         initializer=die_with_parent)
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown()

    def submit(self, fn: Callable, *args):
        """Start ``fn(*args)`` in a worker; return its handle (a future)."""
        return self._pool.submit(fn, *args)

    def finished(self, handles: list) -> list:
        """Block until at least one of ``handles`` is done; return the done ones."""
        return list(wait(handles, return_when=FIRST_COMPLETED)[0])

    def result(self, handle):
        """The value of a done handle; raises the worker's exception (or the pool's, for a dead worker)."""
        return handle.result()


class RayCluster:
    """Backend: Ray tasks of one CPU each, on a local Ray of ``workers`` CPUs or the cluster at ``address``."""

    def __init__(self, workers: int, address: str | None = None):
        self.workers, self.address = workers, address
        self._ray = None
        self._remote: dict[Callable, Any] = {}

    def __enter__(self) -> RayCluster:
        self._ray = init_ray(self.address, self.workers)
        return self

    def __exit__(self, *exc) -> None:
        self._remote.clear()

    def submit(self, fn: Callable, *args):
        """Start ``fn(*args)`` as a Ray task; return its object reference."""
        if fn not in self._remote:
            self._remote[fn] = self._ray.remote(num_cpus=1)(fn)
        return self._remote[fn].remote(*args)

    def finished(self, handles: list) -> list:
        """Block until at least one of ``handles`` is done; return the done ones."""
        return self._ray.wait(handles, num_returns=1)[0]

    def result(self, handle):
        """The value of a done task; raises the task's exception (or Ray's, for a lost worker)."""
        return self._ray.get(handle)


BACKENDS: dict[str, type] = {"local": LocalPool, "ray": RayCluster}
"""Backend name (``run_sweep(backend=...)``, ``marlkit bench --backend``) → backend class."""


def run_sweep(grid: Grid, out: str | os.PathLike, backend: str = "local", workers: int | None = None,
              threads: int = 1, notebook: str | os.PathLike | None = None, ray_address: str | None = None,
              timeout: float | None = None, progress: bool = True, retry_failed: bool = True) -> dict[str, Any]:
    """Run every unfinished cell of ``grid`` under ``out``; return a summary.

    Args:
        grid: what to run.
        out: sweep directory (created); cells live in :meth:`Cell.directory`.
        backend: ``"local"`` (process pool of ``workers``) or ``"ray"`` (see :data:`BACKENDS`).
        workers: parallel runs (default: the CPU count; local Ray gets this many CPUs).
        threads: torch threads per run (``MARLKIT_NUM_THREADS`` of each kernel).
        notebook: benchmark notebook (default: :func:`find_notebook`).
        ray_address: Ray cluster address (None: start a local Ray).
        timeout: per-notebook-cell execution timeout in seconds (None: none).
        progress: tqdm bar over the grid.
        retry_failed: run again cells that failed before (otherwise only cells never tried).

    Returns:
        ``{"out", "cells", "skipped", "ran", "ok", "failed" (labels), "busy" (labels of cells another process
        was running), "results" (per cell), "seconds"}``.

    Raises:
        GridError: for an invalid grid or backend.
        FileNotFoundError: if the notebook cannot be found.
        ImportError: if papermill (or ray for ``backend="ray"``) is not installed.
    """
    if backend not in BACKENDS:
        raise GridError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise GridError(f"threads must be a positive integer, got {threads!r}")
    import papermill  # noqa: F401 - fail early with ImportError when the bench extra is missing

    nb = str(find_notebook(notebook))
    root = Path(out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cells = grid.cells()
    atomic_write(root / "grid.json", json.dumps(
        {"grid": dataclasses.asdict(grid), "cells": [c.label for c in cells], "notebook": nb}, indent=2, default=str))
    todo = [c for c in cells if not is_finished(c, root)
            and (retry_failed or not (c.directory(root) / FAILED).is_file())]
    skipped = len(cells) - len(todo)
    workers = max(1, min(workers or os.cpu_count() or 1, max(len(todo), 1)))
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    bar = tqdm(total=len(cells), initial=skipped, desc="grid", unit="run", disable=not progress,
               dynamic_ncols=True)
    try:
        if todo:
            with BACKENDS[backend](workers, ray_address) as pool:
                pending = {pool.submit(run_cell, c, str(root), nb, threads, timeout): c for c in todo}
                while pending:
                    for handle in pool.finished(list(pending)):
                        cell = pending.pop(handle)
                        try:
                            res = pool.result(handle)
                        except Exception as exc:  # noqa: BLE001 - a lost worker fails its cell only
                            out_dir = cell.directory(root)
                            out_dir.mkdir(parents=True, exist_ok=True)
                            res = record_failure(cell, out_dir, type(exc).__name__, str(exc),
                                                  "".join(traceback.format_exception(exc)), 0.0)
                        results.append(res)
                        bar.update(1)
                        n_fail = sum(r["status"] == "failed" for r in results)
                        bar.set_postfix_str(f"failed={n_fail} last={res['label']}", refresh=True)
    finally:
        bar.close()
    failed = [r["label"] for r in results if r["status"] == "failed"]
    busy = [r["label"] for r in results if r["status"] == "busy"]
    summary = {"out": str(root), "cells": len(cells), "skipped": skipped, "ran": len(results) - len(busy),
               "ok": sum(r["status"] == "ok" for r in results), "failed": failed, "busy": busy, "results": results,
               "seconds": time.perf_counter() - t0}
    atomic_write(root / "sweep.json", json.dumps(summary, indent=2))
    return summary
