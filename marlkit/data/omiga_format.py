"""Reader (and writer) for the HDF5 layout of the OMIGA multi-agent MuJoCo datasets (omiga.md, App. B).

That layout stores one row per environment step, episodes back to back:

======= ======================== ============================================================
key     shape                    meaning
======= ======================== ============================================================
``s``   [T, state_dim]           global state
``o``   [T, N, obs_dim]          per-agent observations
``a``   [T, N, act_dim]          per-agent actions (or [T, N] / [T, N, 1] integers: discrete)
``r``   [T], [T, 1] or [T, N]    team reward (per-agent columns must be equal; their mean is used)
``d``   [T], [T, 1] or [T, N]    1 where the step ends the episode by termination
======= ======================== ============================================================

There is no next-state key: the next state/observation of row t is row t+1. A terminal row needs no next
state (marlkit stores its own row there; it is never bootstrapped from); the last row is kept only when it is
terminal. Episodes cut by the time limit are not marked in the layout; pass ``max_episode_steps`` to mark the
row that reaches it as a ``timeout`` (so that the next row starts a new episode instead of being used as its
next state); the layout does not hold the true successor of such a row, so marlkit stores the row's own state
as its next state there too.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from marlkit.data.dataset import DatasetError, MultiAgentDataset

__all__ = ["read_omiga_hdf5", "write_omiga_hdf5", "OMIGA_KEYS"]

OMIGA_KEYS = ("s", "o", "a", "r", "d")


def _column(arr: np.ndarray, name: str, T: int) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 2 and arr.shape[0] == T:
        if arr.shape[1] > 1 and not np.allclose(arr, arr[:, :1]):
            raise DatasetError(f"OMIGA key {name!r} has differing per-agent columns; expected a team value")
        arr = arr[:, 0]
    if arr.shape != (T,):
        raise DatasetError(f"OMIGA key {name!r} must have shape [T={T}] (or [T, 1] / [T, N]), got {arr.shape}")
    return arr


def read_omiga_hdf5(path: str | os.PathLike, max_episode_steps: int | None = None,
                    meta: dict | None = None) -> MultiAgentDataset:
    """Read an OMIGA-layout file into a validated :class:`MultiAgentDataset`.

    Args:
        path: the ``.hdf5`` file.
        max_episode_steps: the task's time limit (1000 for MuJoCo); rows reaching it become timeouts.
        meta: provenance merged into ``meta`` (e.g. ``{"env": "mamujoco:Hopper-3x1", "dataset": "medium"}``).

    Raises:
        FileNotFoundError: if the file does not exist.
        DatasetError: for a missing key, inconsistent lengths or shapes, or values the format rejects.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"OMIGA dataset file {path} does not exist")
    with h5py.File(path, "r") as f:
        missing = [k for k in OMIGA_KEYS if k not in f]
        if missing:
            raise DatasetError(f"{path}: missing OMIGA key(s) {missing}; the layout needs {list(OMIGA_KEYS)}")
        s, o, a, r, d = (f[k][()] for k in OMIGA_KEYS)
    T = s.shape[0]
    if s.ndim != 2:
        raise DatasetError(f"OMIGA key 's' must have shape [T, state_dim], got {s.shape}")
    if o.ndim != 3 or o.shape[0] != T:
        raise DatasetError(f"OMIGA key 'o' must have shape [T={T}, N, obs_dim], got {o.shape}")
    N = o.shape[1]
    if a.shape[:2] != (T, N):
        raise DatasetError(f"OMIGA key 'a' must start with [T={T}, N={N}], got {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        a = a.reshape(T, N) if a.ndim == 3 and a.shape[2] == 1 else a
        if a.ndim != 2:
            raise DatasetError(f"integer (discrete) OMIGA actions must be [T, N] or [T, N, 1], got {a.shape}")
    elif a.ndim != 3:
        raise DatasetError(f"continuous OMIGA actions must be [T, N, act_dim], got {a.shape}")
    r = _column(r, "r", T).astype(np.float32)
    d = _column(d, "d", T)
    if not np.isin(d, (0, 1)).all():
        raise DatasetError("OMIGA key 'd' must hold 0/1 flags")
    term = d.astype(bool)
    timeout = np.zeros(T, bool)
    if max_episode_steps is not None:
        if max_episode_steps <= 0:
            raise ValueError(f"max_episode_steps must be positive, got {max_episode_steps}")
        t_in_ep = 0
        for t in range(T):
            t_in_ep += 1
            if term[t]:
                t_in_ep = 0
            elif t_in_ep == max_episode_steps:
                timeout[t] = True
                t_in_ep = 0
    keep = np.arange(T)
    if not (term[-1] or timeout[-1]):
        keep = keep[:-1]                      # the last row has no next row
    if keep.size == 0:
        raise DatasetError(f"{path}: no usable transition (a single non-terminal row)")
    nxt = np.minimum(keep + 1, T - 1)
    ends = term | timeout
    nxt = np.where(ends[keep], keep, nxt)     # episode ends: no successor from the next episode
    starts = np.concatenate([[True], ends[:-1]])[keep]
    info = {"source": f"OMIGA HDF5 layout ({path.name})"}
    info.update(meta or {})
    return MultiAgentDataset(
        observations=o[keep], states=s[keep], actions=a[keep], rewards=r[keep],
        next_observations=o[nxt], next_states=s[nxt], terminals=term[keep], timeouts=timeout[keep],
        episode_starts=starts, meta=info)


def write_omiga_hdf5(dataset: MultiAgentDataset, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Export ``dataset`` in the OMIGA layout (one row per transition; ``d`` = terminal; timeouts are not
    representable and are dropped: read back with ``max_episode_steps``). Written atomically (temp file +
    rename).

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.
    """
    from marlkit.utils import atomic_path

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("s", data=dataset.states)
        f.create_dataset("o", data=dataset.observations)
        f.create_dataset("a", data=dataset.actions)
        f.create_dataset("r", data=dataset.rewards[:, None])
        f.create_dataset("d", data=dataset.terminals.astype(np.float32)[:, None])
    return path
