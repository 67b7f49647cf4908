"""One cell of a grid: its papermill execution, its lock and its failure record.

:func:`run_cell` executes the benchmark notebook for one cell in the cell's own directory
``OUT/<env>/<dataset>/<algo>/<swept values>/seed=<s>/`` (:meth:`~marlkit.bench.grid.Cell.directory`); a cell
whose ``record.json`` exists is finished (:func:`is_finished`); a failing cell leaves ``failed.json`` (with its
traceback) and the executed notebook showing the error. A cell runs under an exclusive lock on
``<cell dir>/.lock`` (:func:`cell_lock`, ``flock``, released by the kernel when its holder dies): two
``marlkit bench`` processes on one ``--out`` never run the same cell at once. :func:`die_with_parent` makes a
local worker exit with the process that started it (Linux: ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any


from marlkit.bench.grid import Cell
from marlkit.bench.records import FAILED, NOTEBOOK, RECORD, atomic_write, utc_now

__all__ = ["CHECKOUT", "LOCK", "cell_lock", "die_with_parent", "find_notebook", "is_finished", "record_failure", "run_cell",
           "stderr_to"]

LOCK = ".lock"

CHECKOUT = Path(__file__).resolve().parents[2]
"""The directory that holds this marlkit package (a checkout's root when run from one)."""


def find_notebook(path: str | os.PathLike | None = None, name: str = NOTEBOOK) -> Path:
    """A notebook of the course: ``path`` if given, else ``notebooks/<name>`` (default the benchmark notebook) of
    the checkout that holds this marlkit package, else of the current directory.

    Raises:
        FileNotFoundError: naming the places looked at.
    """
    candidates = [Path(path)] if path else [CHECKOUT / "notebooks" / name, Path.cwd() / "notebooks" / name]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise FileNotFoundError(f"notebook {name} not found (looked at {', '.join(map(str, candidates))}); "
                            f"run from a marlkit checkout or pass --notebook PATH")


@contextlib.contextmanager
def stderr_to(path: Path | None):
    """Redirect this process's fd 2 (inherited by kernels it starts) to ``path`` inside the block (None: no)."""
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def record_failure(cell: Cell, out: Path, exception: str, message: str, tb: str, seconds: float,
                    **extra: Any) -> dict[str, Any]:
    """Write ``failed.json`` of a cell; return the cell's result (status ``failed``)."""
    error = f"{exception}: {message}"
    atomic_write(out / FAILED, json.dumps({
        "status": "failed", "label": cell.label, "error": error, "exception": exception,
        "message": _strip_ansi(message), "traceback": tb, **extra, "notebook": str(out / NOTEBOOK),
        "created_utc": utc_now()}, indent=2))
    return {"label": cell.label, "dir": str(out), "status": "failed", "seconds": seconds, "error": error}


@contextlib.contextmanager
def cell_lock(directory: str | os.PathLike):
    """Hold the exclusive lock of a cell directory inside the block; yields True if this process holds it,
    False if another process does (non-blocking). The lock dies with its holder (``flock``), so a killed
    sweep never leaves a cell locked."""
    import fcntl

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send this process ``sig`` when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``);
    returns whether it took effect (False off Linux). Exits at once if the parent is already gone."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        ok = libc.prctl(1, int(sig), 0, 0, 0) == 0  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)
    return ok


def run_cell(cell: Cell, root: str, notebook: str, threads: int = 1, timeout: float | None = None,
             kernel: str = "python3", capture_kernel_stderr: bool = True) -> dict[str, Any]:
    """Execute the benchmark notebook for one cell with papermill (in this process; the kernel is a child).

    The kernel gets ``MARLKIT_NUM_THREADS=threads`` (and ``OMP_NUM_THREADS``) and this marlkit's checkout on
    ``PYTHONPATH``. The executed notebook is kept next to the record even when the run fails; the kernel's own
    stderr goes to ``kernel.log`` there when ``capture_kernel_stderr`` (this process's fd 2 is redirected while
    the notebook runs, so call it in a worker process).

    The cell runs under its lock (:func:`cell_lock`): if another process holds it the cell is not run
    (status ``busy``), and a cell that process finished meanwhile is not run again.

    Returns:
        ``{"label", "dir", "status": "ok" | "failed" | "busy", "seconds", "error"?}``. Never raises for a failing run:
        the failure (exception name, message, traceback) goes to ``failed.json`` in the cell directory.
    """
    out = cell.directory(root)
    with cell_lock(out) as mine:
        if not mine:
            return {"label": cell.label, "dir": str(out), "status": "busy", "seconds": 0.0}
        if is_finished(cell, root):  # another sweep finished it while this one waited
            return {"label": cell.label, "dir": str(out), "status": "ok", "seconds": 0.0, "skipped": True}
        return _run_cell(cell, root, notebook, threads, timeout, kernel, capture_kernel_stderr)


def _run_cell(cell: Cell, root: str, notebook: str, threads: int, timeout: float | None, kernel: str,
              capture_kernel_stderr: bool) -> dict[str, Any]:
    import papermill as pm  # the optional bench extra

    from marlkit.train import RUN_FILES

    out = cell.directory(root)
    (out / FAILED).unlink(missing_ok=True)
    for name in RUN_FILES:  # what an interrupted or failed attempt left: this attempt starts the run afresh
        (out / name).unlink(missing_ok=True)
    for name in ("MARLKIT_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if str(CHECKOUT) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT), *filter(None, paths)])
    t0 = time.perf_counter()
    try:
        with stderr_to(out / "kernel.log" if capture_kernel_stderr else None):
            pm.execute_notebook(notebook, str(out / NOTEBOOK), parameters=cell.parameters(out, threads),
                                kernel_name=kernel, progress_bar=False, log_output=False,
                                cwd=str(Path(notebook).parent), execution_timeout=timeout)
        if not (out / RECORD).is_file():
            raise RuntimeError(f"the notebook finished without writing {out / RECORD}")
        return {"label": cell.label, "dir": str(out), "status": "ok", "seconds": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, none stops the sweep
        tb = getattr(exc, "traceback", None)
        return record_failure(cell, out, getattr(exc, "ename", type(exc).__name__),
                               str(getattr(exc, "evalue", exc)),
                               _strip_ansi("\n".join(tb)) if isinstance(tb, list) else traceback.format_exc(),
                               time.perf_counter() - t0, parameters=cell.parameters(out, threads))


def is_finished(cell: Cell, root: str | os.PathLike) -> bool:
    """A cell is finished when its directory holds a readable ``record.json`` with status ``ok``."""
    path = cell.directory(root) / RECORD
    try:
        return json.loads(path.read_text()).get("status") == "ok"
    except (OSError, ValueError):
        return False


