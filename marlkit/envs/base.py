"""One small environment interface for every task marlkit trains on.

An environment runs a batch of ``n_envs`` episodes in lock-step (vectorised, like PettingZoo's parallel API
with all agents acting at once):

- ``reset(seed) -> (obs [E, N, obs_dim], state [E, state_dim], avail [E, N, n_actions] | None)``
- ``step(actions) -> StepResult`` with ``actions`` of shape ``[E, N]`` (int) or ``[E, N, act_dim]`` in [-1, 1].

``EnvSpec`` describes the shapes; datasets are checked against it with
:meth:`~marlkit.data.dataset.MultiAgentDataset.check_compatible`. It also carries two run defaults an environment
takes from the paper that used it: ``deterministic_eval`` (greedy or stochastic rollouts) and ``algo_defaults``
(per-algorithm hyperparameters and update counts, :class:`AlgoDefaults`), both applied before a user's options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["AlgoDefaults", "EnvSpec", "StepResult", "MultiAgentEnv"]


@dataclass(frozen=True)
class AlgoDefaults:
    """An environment's defaults for one algorithm: what reproduces its paper's result at a bare command line.

    Applied before the user's options (``build_algo`` merges ``hyperparameters`` under the user's overrides;
    a run without ``steps`` takes ``steps``), so the user still wins.

    Attributes:
        hyperparameters: config field → value (e.g. ``{"threshold": 0.2, "hidden": (32, 32)}``).
        steps: gradient updates (None: the env's ``default_steps``).
        source: where the values come from (paper and section), for the env's docstring and ``marlkit algos``.
    """

    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    steps: int | None = None
    source: str = ""


@dataclass(frozen=True)
class EnvSpec:
    """Static description of a multi-agent task.

    Attributes:
        name: registry name (e.g. ``"xor"``).
        n_agents: N.
        obs_dim: per-agent observation size (after padding).
        state_dim: global state size.
        n_actions: number of discrete actions (0 for continuous tasks).
        act_dim: continuous action size (0 for discrete tasks); actions live in [-1, 1].
        episode_limit: maximum episode length in steps.
        gamma: discount the task is usually evaluated with.
        obs_mask: optional ``[N, obs_dim]`` bool mask of real (unpadded) observation entries.
        default_steps: training updates a run uses when none are given.
        deterministic_eval: the evaluation mode of the paper that used the env: greedy (True) or sampled (False)
            actions in rollouts; None where it does not apply (matrix games are evaluated exactly). A run's
            ``RunConfig.deterministic_eval=None`` takes it.
        algo_defaults: algorithm name → :class:`AlgoDefaults` (see :meth:`defaults_for`).
    """

    name: str
    n_agents: int
    obs_dim: int
    state_dim: int
    n_actions: int = 0
    act_dim: int = 0
    episode_limit: int = 1
    gamma: float = 0.99
    obs_mask: Any = field(default=None, compare=False)
    default_steps: int = 100_000
    deterministic_eval: bool | None = True
    algo_defaults: Mapping[str, AlgoDefaults] = field(default_factory=dict, compare=False)

    @property
    def discrete(self) -> bool:
        return self.n_actions > 0

    def defaults_for(self, algo: str) -> AlgoDefaults:
        """The env's defaults for algorithm ``algo`` (empty :class:`AlgoDefaults` when it has none)."""
        return self.algo_defaults.get(algo, AlgoDefaults())

    def steps_for(self, algo: str) -> int:
        """Gradient updates of a run of ``algo`` that names none: the algorithm's env default, else
        ``default_steps``."""
        steps = self.defaults_for(algo).steps
        return self.default_steps if steps is None else steps


@dataclass
class StepResult:
    """What one vectorised step returns (E = number of parallel episodes)."""

    obs: np.ndarray          # [E, N, obs_dim]
    state: np.ndarray        # [E, state_dim]
    avail: np.ndarray | None  # [E, N, n_actions] bool or None
    reward: np.ndarray       # [E] team reward
    terminal: np.ndarray     # [E] bool: true end of the episode
    timeout: np.ndarray      # [E] bool: cut by the episode limit
    info: dict = field(default_factory=dict)


class MultiAgentEnv:
    """Base class: subclasses set ``spec`` and implement :meth:`reset` and :meth:`step`."""

    spec: EnvSpec

    def reset(self, n_envs: int = 1, seed: int | None = None):
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> StepResult:
        raise NotImplementedError

    def close(self) -> None:  # noqa: D401 - nothing to release by default
        """Release simulator resources."""
