"""Cooperative navigation (MPE ``simple_spread``) from the ``mpe2`` package (PettingZoo parallel API).

N agents (3 or 4) must cover N landmarks (offline-decentralized-marl.md, Sec. 5.4). The team reward is the
task's global reward ``-Σ_j min_i ‖x_i - l_j‖`` (distance from each landmark to its closest agent), i.e.
``simple_spread`` with ``local_ratio = 0`` (no collision term), as in that paper; episodes last 25 steps
(``max_cycles``) and end by timeout.

Registry names ``mpe:simple_spread-3``, ``mpe:simple_spread-4`` (discrete actions: no-op, left, right, down,
up) and ``mpe:simple_spread-3-cont``, ``mpe:simple_spread-4-cont`` (continuous actions ``[-1, 1]^2``, the
force along x and y: marlkit maps ``(x, y)`` onto MPE's 5-vector ``[0, x⁻, x⁺, y⁻, y⁺]``).

Observations are MPE's own (own velocity, own position, landmarks and other agents relative to the agent,
communication); the state is ``env.state()`` (all observations concatenated).

Behavior policies (:class:`SpreadPolicy`): an assignment + steering controller (agents are matched to
landmarks by the Hungarian algorithm on distances every step and steer there with a PD law) whose quality
is set by ``noise``: with that probability per agent and step the action is uniform random. Datasets
``random`` (noise 1), ``medium`` and ``expert`` (noise 0), ``medium-expert`` (equal mix) by
:func:`marlkit.data.build.build_dataset`.

Evaluation mode (``EnvSpec.deterministic_eval``): greedy. offline-decentralized-marl.md does not say how it
evaluates its policies; greedy is the default where a paper says nothing explicit.

Requires the optional extra ``marlkit[mpe]``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from marlkit.data.build import build_dataset
from marlkit.envs.base import EnvSpec, MultiAgentEnv, StepResult

__all__ = ["MPESpreadEnv", "SpreadPolicy", "list_tasks", "make_task", "QUALITY_NOISE"]

_TASKS = ("simple_spread-3", "simple_spread-4", "simple_spread-3-cont", "simple_spread-4-cont")

QUALITY_NOISE = {"random": 1.0, "medium": 0.75, "expert": 0.0}
"""Per-step probability of a uniform random action of each quality level's scripted behavior."""


def list_tasks() -> list[str]:
    """Task names of the ``mpe:`` family (raises ImportError when ``mpe2`` is missing)."""
    import mpe2  # noqa: F401

    return list(_TASKS)


def make_task(task: str) -> "MPESpreadEnv":
    """Build ``mpe:<task>``.

    Raises:
        KeyError: naming the valid tasks.
    """
    if task not in _TASKS:
        raise KeyError(f"unknown MPE task {task!r}; valid: {', '.join(_TASKS)}")
    parts = task.split("-")
    return MPESpreadEnv(n_agents=int(parts[1]), continuous=task.endswith("-cont"))


class MPESpreadEnv(MultiAgentEnv):
    """``n_envs`` parallel ``simple_spread`` episodes (see the module docstring).

    Args:
        n_agents: N (agents = landmarks).
        continuous: continuous ``[-1, 1]^2`` actions instead of 5 discrete ones.
        max_cycles: episode length.
        local_ratio: weight of MPE's per-agent collision penalty (0: the paper's pure distance reward).
    """

    def __init__(self, n_agents: int = 3, continuous: bool = False, max_cycles: int = 25, local_ratio: float = 0.0):
        from mpe2 import simple_spread_v3

        if n_agents < 2:
            raise ValueError(f"n_agents must be >= 2, got {n_agents}")
        self._make = lambda: simple_spread_v3.parallel_env(N=n_agents, local_ratio=local_ratio,
                                                           max_cycles=max_cycles, continuous_actions=continuous)
        probe = self._make()
        probe.reset(seed=0)
        self._agents = list(probe.possible_agents)
        obs_dim = probe.observation_space(self._agents[0]).shape[0]
        state_dim = probe.state().shape[0]
        name = f"mpe:simple_spread-{n_agents}" + ("-cont" if continuous else "")
        self.spec = EnvSpec(name=name, n_agents=n_agents, obs_dim=obs_dim, state_dim=state_dim,
                            n_actions=0 if continuous else 5, act_dim=2 if continuous else 0,
                            episode_limit=max_cycles, gamma=0.99, default_steps=50_000)
        self.continuous = continuous
        self._envs = [probe]
        self._t = 0
        self.datasets = {q: f"scripted assignment + steering, noise {QUALITY_NOISE[q]}" for q in QUALITY_NOISE}
        self.datasets["medium-expert"] = "equal mix of medium and expert episodes"
        self.reference_returns = REFERENCE_RETURNS.get(name)

    # ------------------------------------------------------------------ env API
    def reset(self, n_envs: int = 1, seed: int | None = None):
        if n_envs <= 0:
            raise ValueError(f"n_envs must be positive, got {n_envs}")
        while len(self._envs) < n_envs:
            self._envs.append(self._make())
        self._active = self._envs[:n_envs]
        obs = []
        for e, env in enumerate(self._active):
            o, _ = env.reset(seed=None if seed is None else int(seed) * 10_007 + e)
            obs.append(np.stack([o[a] for a in self._agents]))
        self._t = 0
        return self._pack(np.stack(obs))

    def _pack(self, obs: np.ndarray):
        state = np.stack([env.state() for env in self._active]).astype(np.float32)
        avail = None if self.continuous else np.ones((len(self._active), self.spec.n_agents, 5), bool)
        return obs.astype(np.float32), state, avail

    def _to_mpe(self, a: np.ndarray):
        if not self.continuous:
            return int(a)
        x, y = np.clip(a, -1.0, 1.0)
        return np.array([0.0, max(-x, 0.0), max(x, 0.0), max(-y, 0.0), max(y, 0.0)], np.float32)

    def step(self, actions: np.ndarray) -> StepResult:
        """Step all episodes.

        Raises:
            ValueError: on a wrong action shape or an out-of-range discrete action.
        """
        actions = np.asarray(actions)
        E, N = len(self._active), self.spec.n_agents
        want = (E, N, 2) if self.continuous else (E, N)
        if actions.shape != want:
            raise ValueError(f"actions must have shape {list(want)}, got {list(actions.shape)}")
        if not self.continuous and ((actions < 0).any() or (actions > 4).any()):
            raise ValueError("discrete MPE actions must be in 0..4 (no-op, left, right, down, up)")
        obs, rew, trunc = [], np.zeros(E, np.float32), np.zeros(E, bool)
        for e, env in enumerate(self._active):
            o, r, term, tr, _ = env.step({a: self._to_mpe(actions[e, i]) for i, a in enumerate(self._agents)})
            if not o:  # already finished: keep the last observation
                obs.append(self._last[e])
                trunc[e] = True
                continue
            obs.append(np.stack([o[a] for a in self._agents]))
            rew[e] = r[self._agents[0]]  # local_ratio 0: every agent gets the global reward
            trunc[e] = any(tr.values()) or any(term.values())
        self._t += 1
        obs = np.stack(obs)
        self._last = obs
        o, s, av = self._pack(obs)
        timeout = trunc | (self._t >= self.spec.episode_limit)
        return StepResult(o, s, av, rew, np.zeros(E, bool), timeout)

    def close(self) -> None:
        for env in self._envs:
            env.close()

    # ------------------------------------------------------------------ datasets
    def make_dataset(self, name: str, size: int | None = None, seed: int = 0):
        """Build (or load from the cache) the named dataset; ``size`` = transitions (default 100 000)."""
        return build_dataset(self, name, transitions=size, seed=seed)

    def behavior_policy(self, quality: str) -> "SpreadPolicy":
        """The scripted behavior policy of a quality level (``random``, ``medium``, ``expert``).

        Raises:
            KeyError: for an unknown quality.
        """
        if quality not in QUALITY_NOISE:
            raise KeyError(f"unknown quality {quality!r} for {self.spec.name}; valid: {sorted(QUALITY_NOISE)}")
        return SpreadPolicy(self.spec.n_agents, self.continuous, QUALITY_NOISE[quality])


class SpreadPolicy:
    """Assignment + steering behavior for cooperative navigation, with a uniform-random action w.p. ``noise``.

    Each step agents are matched to landmarks by minimum total distance (Hungarian algorithm) and steer with
    the PD law ``u = k_p (l - x) - k_d v`` (continuous: ``clip(u, -1, 1)``; discrete: the axis action of the
    larger component of ``u``, or no-op when both are small).
    """

    def __init__(self, n_agents: int, continuous: bool, noise: float, kp: float = 3.0, kd: float = 1.0):
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        self.n, self.continuous, self.noise, self.kp, self.kd = n_agents, continuous, noise, kp, kd
        self.description = (f"scripted assignment + PD steering (k_p={kp}, k_d={kd}) with uniform-random "
                            f"actions w.p. {noise}")

    def reset(self, n_envs: int, rng=None) -> None:
        pass

    def control(self, obs: np.ndarray) -> np.ndarray:
        """Noise-free control ``u`` of shape ``[E, N, 2]`` from observations ``[E, N, obs_dim]``."""
        n = self.n
        vel, pos = obs[..., 0:2], obs[..., 2:4]
        lm = pos[:, :1] + obs[:, :1, 4:4 + 2 * n].reshape(-1, n, 2)           # landmarks seen by agent 0
        dist = np.linalg.norm(pos[:, :, None] - lm[:, None], axis=-1)        # [E, N agents, N landmarks]
        target = np.empty_like(pos)
        for e in range(obs.shape[0]):
            rows, cols = linear_sum_assignment(dist[e])
            target[e, rows] = lm[e, cols]
        return self.kp * (target - pos) - self.kd * vel

    def act(self, obs, state, avail, rng: np.random.Generator) -> np.ndarray:
        u = self.control(obs)
        E, N = u.shape[:2]
        explore = rng.random((E, N)) < self.noise
        if self.continuous:
            a = np.clip(u, -1.0, 1.0)
            return np.where(explore[..., None], rng.uniform(-1, 1, (E, N, 2)), a).astype(np.float32)
        axis = np.abs(u).argmax(-1)                                           # 0: x, 1: y
        comp = np.take_along_axis(u, axis[..., None], -1)[..., 0]
        a = 1 + 2 * axis + (comp > 0)                                          # x-:1 x+:2 y-:3 y+:4
        a = np.where(np.abs(comp) < 0.15, 0, a)
        return np.where(explore, rng.integers(0, 5, (E, N)), a).astype(np.int64)


# Reference returns for the normalised score: the scripted random (noise 1) and expert (noise 0) behavior,
# measured over 320 episodes with seed 0 (`collect(env, env.behavior_policy(q), episodes=320, seed=0)`;
# tests/test_envs_mpe.py re-measures them on fewer episodes).
REFERENCE_RETURNS: dict[str, dict[str, float]] = {
    "mpe:simple_spread-3": {"random": -52.561, "expert": -14.885},
    "mpe:simple_spread-4": {"random": -61.212, "expert": -17.441},
    "mpe:simple_spread-3-cont": {"random": -51.961, "expert": -11.925},
    "mpe:simple_spread-4-cont": {"random": -60.821, "expert": -14.12},
}
