"""The multi-agent transition container.

One :class:`MultiAgentDataset` holds T transitions of N agents. Field by field (``float32`` unless stated):

==================== ======================== ===========================================================
field                shape                    meaning
==================== ======================== ===========================================================
observations         [T, N, obs_dim]          per-agent observation o_i (zero-padded to ``obs_dim``)
states               [T, state_dim]           global state s (or the joint observation)
actions              [T, N] int64             discrete actions, or
                     [T, N, act_dim]          continuous actions in [-1, 1]
rewards              [T]                      team reward r
next_observations    [T, N, obs_dim]          o_i'
next_states          [T, state_dim]           s'
terminals            [T] bool                 s' is terminal (no bootstrapping)
timeouts             [T] bool                 episode cut by the time limit (bootstrapping still valid)
episode_starts       [T] bool                 s is an initial state s_0 (DICE's (1-γ) E[ν(s_0)] term)
avail_actions        [T, N, n_actions] bool   optional: legal actions in s (discrete only)
next_avail_actions   [T, N, n_actions] bool   optional: legal actions in s'
obs_mask             [N, obs_dim] bool        optional: True where agent i's padded observation is real
==================== ======================== ===========================================================

``meta`` carries the provenance (env id, dataset name, behavior description, seed, ...). The invariants are
checked by :meth:`MultiAgentDataset.validate`, which every constructor and loader calls.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MultiAgentDataset", "DatasetError", "REQUIRED_FIELDS", "OPTIONAL_FIELDS"]

REQUIRED_FIELDS = (
    "observations", "states", "actions", "rewards", "next_observations", "next_states",
    "terminals", "timeouts", "episode_starts",
)
OPTIONAL_FIELDS = ("avail_actions", "next_avail_actions", "obs_mask")
_BOOL_FIELDS = ("terminals", "timeouts", "episode_starts", "avail_actions", "next_avail_actions", "obs_mask")


def _all_finite(arr: np.ndarray) -> bool:
    """No NaN/inf in ``arr``, without a full-size temporary (min and max propagate NaN and reach ±inf)."""
    if arr.size == 0 or not np.issubdtype(arr.dtype, np.floating):
        return True
    return bool(np.isfinite(arr.min()) and np.isfinite(arr.max()))


def _check_float32(name: str, arr: np.ndarray) -> None:
    """Raise :class:`DatasetError` if ``arr`` holds NaN/inf, or values that become inf as float32 (the training
    dtype): the check is made on the converted values, so a float64 1e39 is refused, not trained on as inf."""
    if not _all_finite(arr):
        raise DatasetError(f"{name} contains {int((~np.isfinite(arr)).sum())} NaN/inf value(s)")
    if np.issubdtype(arr.dtype, np.floating) and arr.dtype.itemsize > 4 and arr.size:
        limit = float(np.finfo(np.float32).max)
        if max(abs(float(arr.min())), abs(float(arr.max()))) > limit:
            with np.errstate(over="ignore"):
                bad = int((~np.isfinite(arr.astype(np.float32))).sum())
            if bad:
                raise DatasetError(f"{name} contains {bad} value(s) beyond float32's range (|x| > {limit:.3g}), "
                                   f"which would become inf in training")


class DatasetError(ValueError):
    """A dataset that violates the format: names the field and the problem."""


@dataclass
class MultiAgentDataset:
    """T transitions of an N-agent task; see the module docstring for every field's shape.

    Raises:
        DatasetError: on construction if any field is missing, mis-shaped, of the wrong dtype or non-finite.
    """

    observations: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    next_states: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    episode_starts: np.ndarray
    avail_actions: np.ndarray | None = None
    next_avail_actions: np.ndarray | None = None
    obs_mask: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ shape facts
    @property
    def size(self) -> int:
        """Number of transitions T."""
        return int(self.rewards.shape[0])

    def __len__(self) -> int:
        return self.size

    @property
    def n_agents(self) -> int:
        return int(self.observations.shape[1])

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[2])

    @property
    def state_dim(self) -> int:
        return int(self.states.shape[1])

    @property
    def discrete(self) -> bool:
        """True for integer actions ``[T, N]``."""
        return self.actions.ndim == 2

    @property
    def act_dim(self) -> int:
        """Continuous action size (0 for discrete)."""
        return 0 if self.discrete else int(self.actions.shape[2])

    @property
    def n_actions(self) -> int | None:
        """Number of discrete actions if known (from ``avail_actions`` or ``meta['n_actions']``)."""
        if self.avail_actions is not None:
            return int(self.avail_actions.shape[2])
        n = self.meta.get("n_actions")
        return int(n) if n is not None else None

    def fields(self) -> dict[str, np.ndarray]:
        """All present array fields by name (required first, then optional ones that are set)."""
        out = {k: getattr(self, k) for k in REQUIRED_FIELDS}
        out.update({k: getattr(self, k) for k in OPTIONAL_FIELDS if getattr(self, k) is not None})
        return out

    def episode_returns(self) -> np.ndarray:
        """Undiscounted team return of each complete episode, shape ``[E]`` (episodes end at terminal/timeout)."""
        ends = np.flatnonzero(self.terminals | self.timeouts)
        if ends.size == 0:
            return np.zeros(0)
        csum = np.concatenate([[0.0], np.cumsum(self.rewards, dtype=np.float64)])
        starts = np.concatenate([[0], ends[:-1] + 1])
        return csum[ends + 1] - csum[starts]

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every invariant of the format.

        Raises:
            DatasetError: naming the field and the problem (missing, shape, dtype, NaN/inf, values beyond
                float32's range, inconsistency).
        """
        for name in REQUIRED_FIELDS:
            value = getattr(self, name)
            if value is None:
                raise DatasetError(f"dataset field {name!r} is missing")
            if not isinstance(value, np.ndarray):
                setattr(self, name, np.asarray(value))
        for name in OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, np.ndarray):
                setattr(self, name, np.asarray(value))

        obs, states, actions = self.observations, self.states, self.actions
        if obs.ndim != 3:
            raise DatasetError(f"observations must have shape [T, N, obs_dim], got {obs.shape}")
        T, N, _ = obs.shape
        if T <= 0:
            raise DatasetError("dataset has no transitions (T = 0)")
        if N <= 0:
            raise DatasetError("dataset has no agents (N = 0)")
        expect = {
            "states": (T, None), "rewards": (T,), "next_observations": obs.shape, "next_states": None,
            "terminals": (T,), "timeouts": (T,), "episode_starts": (T,),
        }
        if states.ndim != 2 or states.shape[0] != T:
            raise DatasetError(f"states must have shape [T={T}, state_dim], got {states.shape}")
        expect["next_states"] = states.shape
        for name, shape in expect.items():
            arr = getattr(self, name)
            if shape is None:
                continue
            if len(shape) != arr.ndim or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
                raise DatasetError(f"{name} must have shape {tuple(s if s is not None else '*' for s in shape)},"
                                   f" got {arr.shape} (inconsistent length or size)")
        if actions.ndim == 2:
            if actions.shape != (T, N):
                raise DatasetError(f"discrete actions must have shape [T={T}, N={N}], got {actions.shape}")
            if not np.issubdtype(actions.dtype, np.integer):
                raise DatasetError(f"discrete actions must be integers, got dtype {actions.dtype}")
            if (actions < 0).any():
                raise DatasetError("discrete actions must be non-negative indices")
        elif actions.ndim == 3:
            if actions.shape[:2] != (T, N):
                raise DatasetError(f"continuous actions must have shape [T={T}, N={N}, act_dim], got {actions.shape}")
            if not np.issubdtype(actions.dtype, np.floating):
                raise DatasetError(f"continuous actions must be floats, got dtype {actions.dtype}")
        else:
            raise DatasetError(f"actions must be [T, N] (discrete) or [T, N, act_dim] (continuous), got {actions.shape}")

        for name in ("observations", "states", "rewards", "next_observations", "next_states"):
            arr = getattr(self, name)
            if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
                raise DatasetError(f"{name} must be numeric, got dtype {arr.dtype}")
            _check_float32(name, arr)
        if not self.discrete:
            _check_float32("actions", actions)
        for name in _BOOL_FIELDS:
            arr = getattr(self, name)
            if arr is None:
                continue
            if arr.dtype != np.bool_:
                if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                    raise DatasetError(f"{name} contains NaN/inf value(s)")
                if not np.isin(arr, (0, 1)).all():
                    raise DatasetError(f"{name} must be boolean (0/1), got values other than 0 and 1")
                setattr(self, name, arr.astype(bool))
        if (self.terminals & self.timeouts).any():
            raise DatasetError("a transition cannot be both terminal and timeout")
        if not self.episode_starts[0]:
            raise DatasetError("episode_starts[0] must be True (the first transition starts an episode)")
        ends = self.terminals | self.timeouts
        # a transition following an episode end must start a new episode, and vice versa
        should_start = np.concatenate([[True], ends[:-1]])
        if (should_start != self.episode_starts).any():
            i = int(np.flatnonzero(should_start != self.episode_starts)[0])
            raise DatasetError(f"episode_starts inconsistent with terminals/timeouts at index {i}: "
                               f"episode_starts={bool(self.episode_starts[i])}, previous transition ended="
                               f"{bool(should_start[i])}")
        for name in ("avail_actions", "next_avail_actions"):
            arr = getattr(self, name)
            if arr is None:
                continue
            if not self.discrete:
                raise DatasetError(f"{name} is only meaningful for discrete actions")
            if arr.ndim != 3 or arr.shape[:2] != (T, N):
                raise DatasetError(f"{name} must have shape [T={T}, N={N}, n_actions], got {arr.shape}")
            if not arr.any(axis=-1).all():
                raise DatasetError(f"{name} has a row with no available action")
        if self.discrete:
            n_act = self.n_actions
            if n_act is not None and (actions >= n_act).any():
                raise DatasetError(f"discrete actions out of range: max {int(actions.max())} >= n_actions {n_act}")
            if self.avail_actions is not None:
                taken = np.take_along_axis(self.avail_actions, actions[..., None], axis=-1)[..., 0]
                if not taken.all():
                    raise DatasetError("a dataset action is not in avail_actions")
        if self.obs_mask is not None and self.obs_mask.shape != (N, obs.shape[2]):
            raise DatasetError(f"obs_mask must have shape [N={N}, obs_dim={obs.shape[2]}], got {self.obs_mask.shape}")
        # canonical dtypes
        for name in ("observations", "states", "rewards", "next_observations", "next_states"):
            setattr(self, name, getattr(self, name).astype(np.float32, copy=False))
        if self.discrete:
            self.actions = actions.astype(np.int64, copy=False)
        else:
            self.actions = actions.astype(np.float32, copy=False)

    # ------------------------------------------------------------------ convenience
    def subset(self, index: np.ndarray) -> "MultiAgentDataset":
        """Rows ``index`` as a new dataset (episode flags are kept as they are; use whole episodes)."""
        kw = {k: v[index] for k, v in self.fields().items() if k != "obs_mask"}
        return MultiAgentDataset(**kw, obs_mask=self.obs_mask, meta=dict(self.meta))

    def replace(self, **changes: Any) -> "MultiAgentDataset":
        """A validated copy with some fields replaced."""
        return dataclasses.replace(self, **changes)

    def check_compatible(self, spec: Any) -> None:
        """Raise :class:`DatasetError` if this dataset does not match an environment's :class:`EnvSpec`."""
        if self.n_agents != spec.n_agents:
            raise DatasetError(f"dataset has {self.n_agents} agents but env {spec.name!r} has {spec.n_agents}")
        if self.discrete != spec.discrete:
            kind = "discrete" if self.discrete else "continuous"
            raise DatasetError(f"dataset has {kind} actions but env {spec.name!r} does not")
        if self.obs_dim != spec.obs_dim:
            raise DatasetError(f"dataset obs_dim {self.obs_dim} != env {spec.name!r} obs_dim {spec.obs_dim}")
        if self.state_dim != spec.state_dim:
            raise DatasetError(f"dataset state_dim {self.state_dim} != env {spec.name!r} state_dim {spec.state_dim}")
        if spec.discrete:
            if self.actions.max() >= spec.n_actions:
                raise DatasetError(f"dataset action {int(self.actions.max())} out of range for env {spec.name!r} "
                                   f"with {spec.n_actions} actions")
        elif self.act_dim != spec.act_dim:
            raise DatasetError(f"dataset act_dim {self.act_dim} != env {spec.name!r} act_dim {spec.act_dim}")

    def summary(self) -> dict[str, Any]:
        """Dataset card: size, episodes, mean ± std episode return and provenance."""
        rets = self.episode_returns()
        return {
            "transitions": self.size, "episodes": int(rets.size),
            "return_mean": float(rets.mean()) if rets.size else float("nan"),
            "return_std": float(rets.std()) if rets.size else float("nan"),
            **{k: v for k, v in self.meta.items() if isinstance(v, (str, int, float, bool))},
        }
