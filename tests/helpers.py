"""Small builders shared by tests."""

import numpy as np

from marlkit.data.dataset import MultiAgentDataset


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


class ToyContinuousEnv:
    """A tiny continuous 2-agent task for generic tests: reward −mean(a²), 5-step episodes."""

    def __init__(self, n_agents=2, obs_dim=3, state_dim=4, act_dim=2):
        from marlkit.envs.base import EnvSpec

        self.spec = EnvSpec("toy-cont", n_agents, obs_dim, state_dim, act_dim=act_dim, episode_limit=5,
                            default_steps=50)
        self._t = 0

    def reset(self, n_envs=1, seed=None):
        self._rng = np.random.default_rng(seed)
        self._n, self._t = n_envs, 0
        s = self.spec
        return (self._rng.normal(size=(n_envs, s.n_agents, s.obs_dim)).astype(np.float32),
                self._rng.normal(size=(n_envs, s.state_dim)).astype(np.float32), None)

    def step(self, actions):
        from marlkit.envs.base import StepResult

        self._t += 1
        obs, state, _ = self.reset(self._n, self._t)
        reward = -(np.asarray(actions) ** 2).mean(axis=(1, 2))
        done = np.full(self._n, self._t >= self.spec.episode_limit)
        return StepResult(obs, state, None, reward.astype(np.float32), np.zeros(self._n, bool), done)


def toy_continuous_dataset(T=200, seed=0):
    """Data for :class:`ToyContinuousEnv`: episodes of 5 steps, uniform random actions."""
    env = ToyContinuousEnv()
    ds = toy_dataset(T=T, N=2, obs_dim=3, state_dim=4, act_dim=2, episode_len=5, seed=seed)
    ends = ds.terminals
    return ds.replace(rewards=-(ds.actions ** 2).mean(axis=(1, 2)), terminals=np.zeros_like(ends), timeouts=ends), env
