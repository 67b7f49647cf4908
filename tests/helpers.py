"""Small builders shared by tests: a random valid dataset and a tiny continuous env."""

import numpy as np

from marlkit.data.dataset import MultiAgentDataset
from marlkit.envs.base import EnvSpec, MultiAgentEnv, StepResult

N, OBS, ACT = 2, 2, 2  # agents, observation and action size of ToyContinuous


def toy_reward(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """ToyContinuous's team reward ``-Σ_i ‖a_i − 0.5·o_i‖² / N``: ``[..., N, 2]`` inputs → ``[...]``."""
    return -((actions - 0.5 * obs) ** 2).sum(-1).mean(-1)


def toy_dataset(T=40, N=2, obs_dim=3, state_dim=4, n_actions=3, act_dim=0, episode_len=5, seed=0, **overrides):
    """A random but valid dataset of ``T`` transitions in episodes of ``episode_len``."""
    rng = np.random.default_rng(seed)
    starts = np.zeros(T, bool)
    starts[::episode_len] = True
    ends = np.roll(starts, -1)
    ends[-1] = True
    fields = dict(
        observations=rng.normal(size=(T, N, obs_dim)).astype(np.float32),
        states=rng.normal(size=(T, state_dim)).astype(np.float32),
        rewards=rng.normal(size=T).astype(np.float32),
        next_observations=rng.normal(size=(T, N, obs_dim)).astype(np.float32),
        next_states=rng.normal(size=(T, state_dim)).astype(np.float32),
        terminals=ends.copy(), timeouts=np.zeros(T, bool), episode_starts=starts,
    )
    if act_dim:
        fields["actions"] = rng.uniform(-1, 1, size=(T, N, act_dim)).astype(np.float32)
    else:
        fields["actions"] = rng.integers(0, n_actions, size=(T, N))
        fields["avail_actions"] = np.ones((T, N, n_actions), bool)
        fields["next_avail_actions"] = np.ones((T, N, n_actions), bool)
    fields.update(overrides)
    meta = {"env": "toy", "dataset": "random"}
    return MultiAgentDataset(**fields, meta=meta)


class ToyContinuous(MultiAgentEnv):
    """A tiny continuous cooperative task for tests (registered as ``toy-cont`` by the tests that name it).

    Each of N = 2 agents observes o_i ∈ [-1, 1]^2 (uniform, fresh every step) and plays a_i ∈ [-1, 1]^2; the team
    reward is ``r = -Σ_i ‖a_i − 0.5·o_i‖² / N``, so the best joint action is ``a_i = 0.5·o_i`` (return 0).
    Episodes last ``episode_limit`` steps (1: a one-step game); the last step is terminal. Dataset ``random``:
    actions uniform on [-1, 1]^2 (reward about -0.75 per step), stored in episode order.
    """

    datasets = ("random",)

    def __init__(self, episode_limit: int = 1):
        self.spec = EnvSpec(name="toy-cont", n_agents=N, obs_dim=OBS, state_dim=N * OBS, act_dim=ACT,
                            episode_limit=episode_limit, gamma=0.99, default_steps=200)
        self._obs, self._rng, self._t = None, None, 0

    def reset(self, n_envs: int = 1, seed: int | None = None):
        self._rng, self._t = np.random.default_rng(seed), 0
        self._obs = self._rng.uniform(-1, 1, (n_envs, N, OBS)).astype(np.float32)
        return self._obs, self._obs.reshape(n_envs, -1), None

    def step(self, actions):
        r = toy_reward(self._obs, np.asarray(actions)).astype(np.float32)
        self._t += 1
        done = np.full(len(r), self._t >= self.spec.episode_limit)
        if not done.all():
            self._obs = self._rng.uniform(-1, 1, self._obs.shape).astype(np.float32)
        return StepResult(self._obs, self._obs.reshape(len(r), -1), None, r, done, np.zeros(len(r), bool))

    def make_dataset(self, name: str = "random", size: int = 512, seed: int = 0) -> MultiAgentDataset:
        rng = np.random.default_rng(seed)
        obs = rng.uniform(-1, 1, (size, N, OBS)).astype(np.float32)
        acts = rng.uniform(-1, 1, (size, N, ACT)).astype(np.float32)
        nobs = rng.uniform(-1, 1, (size, N, OBS)).astype(np.float32)
        t = np.arange(size)
        terminal = t % self.spec.episode_limit == self.spec.episode_limit - 1
        cont = ~terminal[:-1]  # rows whose episode goes on: o' is the next row's o
        nobs[:-1][cont] = obs[1:][cont]
        timeout = (t == size - 1) & ~terminal  # a last episode cut short by the dataset's size
        return MultiAgentDataset(
            observations=obs, states=obs.reshape(size, -1), actions=acts,
            rewards=toy_reward(obs, acts).astype(np.float32), next_observations=nobs,
            next_states=nobs.reshape(size, -1), terminals=terminal, timeouts=timeout,
            episode_starts=t % self.spec.episode_limit == 0,
            meta={"env": "toy-cont", "dataset": name, "seed": int(seed)})


def toy_continuous_dataset(T=200, seed=0):
    """``(data, env)``: ``T`` random transitions of a 5-step :class:`ToyContinuous` and the env."""
    env = ToyContinuous(episode_limit=5)
    return env.make_dataset("random", size=T, seed=seed), env


def assert_checker(checker, solution, wrong, hint: str) -> None:
    """A course checker says right for ``solution``, wrong with ``hint`` in its why for ``wrong``, and "no answer
    yet" for None; its HTML view marks both."""
    right = checker(solution)
    assert right.correct and right, str(right)
    bad = checker(wrong)
    assert not bad.correct and not bad
    assert hint in bad.why, str(bad)
    missing = checker(None)
    assert not missing.correct and "no answer yet" in missing.message
    assert "✘" in missing._repr_html_() and "✔" in right._repr_html_()
