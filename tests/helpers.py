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
