"""Devices, seeding and the CPU thread count.

On small CPUs the torch thread count decides speed more than anything else: a small MLP update can run
~50x slower with 2 threads than with 1 (thread start-up dominates), while a paper-size update runs faster
with 2. :func:`choose_num_threads` therefore *measures* the caller's own update at each candidate count and
keeps the fastest. ``MARLKIT_NUM_THREADS`` overrides the measurement everywhere.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from marlkit.errors import DeviceError

MAX_SEED = 2**32 - 1
"""The largest seed marlkit accepts (every generator it seeds takes it)."""

__all__ = ["MAX_SEED", "atomic_path", "choose_num_threads", "cpu_info", "resolve_device", "rng_state", "seed_everything", "set_num_threads", "set_rng_state"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return the training device: ``"auto"``/``None`` picks CUDA when present, else CPU.

    Raises:
        DeviceError: for a string that names no device, a device type marlkit does not train on (``meta``,
            ``tpu``, ...), CUDA requested without CUDA, or a CUDA index beyond the devices present.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"device {str(device)!r} (--device) is not a device; use auto, cpu or cuda[:k]") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {str(device)!r} (--device) is not one marlkit trains on; use auto, cpu or cuda[:k]")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {str(device)!r} (--device) requested but CUDA is not available; "
                              f"use 'cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {str(device)!r} (--device): only {torch.cuda.device_count()} CUDA device(s) "
                              f"present (cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"device {str(device)!r} (--device) requested but MPS is not available; use 'cpu' or 'auto'")
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) from one integer; return a CPU generator seeded alike.

    Raises:
        ValueError: if ``seed`` is not an integer in ``[0, MAX_SEED]``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if seed > MAX_SEED:
        raise ValueError(f"seed must be at most 2**32 - 1 = {MAX_SEED}, got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def rng_state() -> dict:
    """Snapshot of the Python, NumPy and torch global RNG states (for calibration or checkpoints)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore a snapshot taken by :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


_ALLOCATOR_TUNED = {"done": False}


def cpu_info(field: str) -> str:
    """The value of ``field`` (e.g. ``"model name"``, ``"vendor_id"``) for the first CPU in ``/proc/cpuinfo``, or
    ``""`` where the file or the field is missing (other operating systems)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip().lower() == field.lower():
                    return value.strip()
    except OSError:
        pass
    return ""


def tune_allocator() -> bool:
    """Keep freed CPU memory in the process for reuse (glibc ``mallopt``: large blocks from the heap, no trimming).

    A paper-size update allocates and frees tens of MB of activations per layer; by default glibc serves such
    blocks with fresh ``mmap`` pages, and the page faults of writing into them made a ReLU over a
    ``[12, 3840, 256]`` activation 2.7× slower than into reused memory on a 2-core AMD EPYC (33 vs 12 ms).
    The resident memory stays at its peak instead of shrinking between updates. Called by the training loop for
    CPU runs; ``MARLKIT_MALLOC_TUNING=0`` switches it off. Returns whether the setting took effect (False off
    glibc, e.g. on macOS or musl).
    """
    if _ALLOCATOR_TUNED["done"]:
        return True
    if os.environ.get("MARLKIT_MALLOC_TUNING", "1") == "0":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) == 1 and libc.mallopt(m_trim_threshold, 1 << 31) == 1
    except (OSError, AttributeError):
        return False
    _ALLOCATOR_TUNED["done"] = ok
    return ok


def set_num_threads(n: int) -> None:
    """Set torch's intra-op CPU thread count (``n >= 1``)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"number of threads must be a positive integer, got {n!r}")
    torch.set_num_threads(n)


def _env_threads() -> int | None:
    value = os.environ.get("MARLKIT_NUM_THREADS")
    if value in (None, "", "auto"):
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"MARLKIT_NUM_THREADS must be a positive integer or 'auto', got {value!r}") from None
    if n < 1:
        raise ValueError(f"MARLKIT_NUM_THREADS must be a positive integer or 'auto', got {value!r}")
    return n


def choose_num_threads(step: Callable[[], object] | None = None, candidates: list[int] | None = None,
                       repeats: int = 5, apply: bool = True) -> int:
    """Pick the CPU thread count by timing ``step`` (e.g. one training update) at each candidate count.

    ``MARLKIT_NUM_THREADS`` (an integer) wins over the measurement. Without ``step`` the choice is 1 thread,
    the safe default for the small networks of tutorial runs. The caller must make ``step`` side-effect free
    (e.g. run it on a throw-away copy and restore RNG state afterwards).

    Args:
        step: callable timed ``repeats`` times per candidate after one warm-up call.
        candidates: thread counts to try (default: 1 and ``os.cpu_count()``).
        apply: set the chosen count with ``torch.set_num_threads``.

    Returns:
        The chosen thread count (>= 1).
    """
    forced = _env_threads()
    if forced is not None:
        choice = forced
    elif step is None:
        choice = 1
    else:
        cpus = os.cpu_count() or 1
        candidates = sorted(set(candidates or [1, cpus]))
        previous = torch.get_num_threads()
        timings = {}
        for n in candidates:
            torch.set_num_threads(n)
            step()
            t0 = time.perf_counter()
            for _ in range(repeats):
                step()
            timings[n] = (time.perf_counter() - t0) / repeats
        torch.set_num_threads(previous)
        choice = min(timings, key=timings.get)
    if apply:
        torch.set_num_threads(choice)
    return choice


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files :func:`atomic_path` left next to ``path`` when its writer was killed
    (``<name>.<pid>.*.tmp`` of a process that no longer runs); return the removed paths."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f"{glob_escape(path.name)}.*.tmp"):
        parts = tmp.name[len(path.name) + 1:].split(".")
        if len(parts) >= 2 and parts[0].isdigit() and int(parts[0]) != os.getpid() and not _pid_alive(int(parts[0])):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def glob_escape(text: str) -> str:
    """``text`` with the glob metacharacters ``*?[`` escaped."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file name next to ``path``; on success rename it onto ``path``, on any error remove it.

    Readers never see a half-written file and a failed write never touches an existing ``path``. The temporary
    name carries the writer's process id (``<name>.<pid>.<random>.tmp``), so one left behind by a killed
    writer is removed by the next write of the same path (:func:`remove_stale_temporaries`).

    Raises:
        OSError: as the filesystem (the temporary file is removed first).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
