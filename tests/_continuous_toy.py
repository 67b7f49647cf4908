"""A tiny one-step continuous cooperative task for tests (registered as ``toy-cont`` by the tests that use it).

Each of N = 2 agents observes o_i ∈ [-1, 1]^2 and plays a_i ∈ [-1, 1]^2; the team reward is
``r = -Σ_i ‖a_i − 0.5·o_i‖² / N``, so the best joint action is ``a_i = 0.5·o_i`` (return 0). Dataset
``random``: actions uniform on [-1, 1]^2 (reward about -0.75).
"""

from __future__ import annotations

import numpy as np

from marlkit.data.dataset import MultiAgentDataset
from marlkit.envs.base import EnvSpec, MultiAgentEnv, StepResult

N, OBS, ACT = 2, 2, 2


def reward(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    return -((actions - 0.5 * obs) ** 2).sum(-1).mean(-1)


class ToyContinuous(MultiAgentEnv):
    datasets = ("random",)

    def __init__(self):
        self.spec = EnvSpec(name="toy-cont", n_agents=N, obs_dim=OBS, state_dim=N * OBS, act_dim=ACT,
                            episode_limit=1, gamma=0.99, default_steps=200)
        self._obs = None

    def reset(self, n_envs: int = 1, seed: int | None = None):
        rng = np.random.default_rng(seed)
        self._obs = rng.uniform(-1, 1, (n_envs, N, OBS)).astype(np.float32)
        return self._obs, self._obs.reshape(n_envs, -1), None

    def step(self, actions):
        r = reward(self._obs, np.asarray(actions)).astype(np.float32)
        done = np.ones(len(r), bool)
        return StepResult(self._obs, self._obs.reshape(len(r), -1), None, r, done, ~done)

    def make_dataset(self, name: str = "random", size: int = 512, seed: int = 0) -> MultiAgentDataset:
        rng = np.random.default_rng(seed)
        obs = rng.uniform(-1, 1, (size, N, OBS)).astype(np.float32)
        acts = rng.uniform(-1, 1, (size, N, ACT)).astype(np.float32)
        true = np.ones(size, bool)
        nobs = rng.uniform(-1, 1, (size, N, OBS)).astype(np.float32)
        return MultiAgentDataset(
            observations=obs, states=obs.reshape(size, -1), actions=acts, rewards=reward(obs, acts).astype(np.float32),
            next_observations=nobs, next_states=nobs.reshape(size, -1), terminals=true, timeouts=~true,
            episode_starts=true.copy(), meta={"env": "toy-cont", "dataset": name, "seed": int(seed)})


def make() -> ToyContinuous:
    return ToyContinuous()
