"""Cooperative navigation (mpe2 simple_spread): shapes, reward, action mapping, behavior quality, datasets."""

import numpy as np
import pytest

pytest.importorskip("mpe2")

from marlkit.data.build import build_dataset, dataset_path  # noqa: E402
from marlkit.data.rollout import collect  # noqa: E402
from marlkit.envs.mpe import QUALITY_NOISE, REFERENCE_RETURNS, SpreadPolicy  # noqa: E402
from marlkit.envs.registry import UnknownNameError, list_envs, load_dataset, make_env  # noqa: E402


@pytest.mark.parametrize("name,n,obs,state,cont", [
    ("mpe:simple_spread-3", 3, 18, 54, False), ("mpe:simple_spread-4", 4, 24, 96, False),
    ("mpe:simple_spread-3-cont", 3, 18, 54, True), ("mpe:simple_spread-4-cont", 4, 24, 96, True)])
def test_shapes(name, n, obs, state, cont):
    env = make_env(name)
    assert name in list_envs()
    spec = env.spec
    assert (spec.n_agents, spec.obs_dim, spec.state_dim, spec.episode_limit) == (n, obs, state, 25)
    assert spec.discrete != cont and (spec.act_dim == 2 if cont else spec.n_actions == 5)
    o, s, av = env.reset(n_envs=2, seed=0)
    assert o.shape == (2, n, obs) and s.shape == (2, state)
    assert (av is None) == cont
    bad = np.zeros((2, n, 3)) if cont else np.zeros((2, n + 1), np.int64)
    with pytest.raises(ValueError, match="shape"):
        env.step(bad)
    assert env.reference_returns["random"] < env.reference_returns["expert"]


def test_unknown_task():
    with pytest.raises(UnknownNameError, match="simple_spread-3"):
        make_env("mpe:simple_tag")


def test_reward_is_minus_sum_of_closest_distances_and_episode_length():
    env = make_env("mpe:simple_spread-3")
    o, s, _ = env.reset(n_envs=3, seed=1)
    for t in range(25):
        res = env.step(np.full((3, 3), t % 5))
        pos = res.obs[..., 2:4]                                            # [E, N, 2]
        lm = pos[:, :1] + res.obs[:, :1, 4:10].reshape(3, 3, 2)           # landmarks from agent 0
        d = np.linalg.norm(pos[:, :, None] - lm[:, None], axis=-1).min(1).sum(-1)
        np.testing.assert_allclose(res.reward, -d, rtol=1e-4, atol=1e-4)
        assert not res.terminal.any()
        assert res.timeout.all() == (t == 24)


def test_continuous_action_mapping_moves_along_x():
    env = make_env("mpe:simple_spread-3-cont")
    o, _, _ = env.reset(n_envs=1, seed=0)
    a = np.zeros((1, 3, 2), np.float32)
    a[0, :, 0] = 1.0                                                     # push +x, no y
    res = env.step(a)
    vel = res.obs[0, :, 0:2]
    assert (vel[:, 0] > 0).all() and np.allclose(vel[:, 1], 0.0, atol=1e-6)


@pytest.mark.parametrize("name", ["mpe:simple_spread-3", "mpe:simple_spread-4-cont"])
def test_behavior_quality_ordering(name):
    env = make_env(name)
    means = {q: collect(env, env.behavior_policy(q), episodes=32, seed=3).episode_returns().mean()
             for q in QUALITY_NOISE}
    assert means["random"] < means["medium"] < means["expert"]
    ref = REFERENCE_RETURNS[name]
    assert abs(means["expert"] - ref["expert"]) < 3.0 and abs(means["random"] - ref["random"]) < 8.0
    with pytest.raises(ValueError, match="noise"):
        SpreadPolicy(3, False, 1.5)
    with pytest.raises(KeyError, match="expert"):
        env.behavior_policy("perfect")


def test_build_dataset_cached_and_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("MARLKIT_DATA", str(tmp_path))
    ds = build_dataset("mpe:simple_spread-3", "medium-expert", transitions=300, seed=5)
    assert ds.size == 300 and ds.discrete and ds.avail_actions is not None
    assert ds.meta["dataset"] == "medium-expert" and ds.meta["transitions"] == 300
    path = dataset_path("mpe:simple_spread-3", "medium-expert", 300, None, 5)
    assert path.exists()
    again = build_dataset("mpe:simple_spread-3", "medium-expert", transitions=300, seed=5, cache=False)
    np.testing.assert_array_equal(again.actions, ds.actions)
    np.testing.assert_allclose(again.rewards, ds.rewards)
    cached = build_dataset("mpe:simple_spread-3", "medium-expert", transitions=300, seed=5)
    assert cached.meta["return_mean"] == pytest.approx(ds.meta["return_mean"])
    cont = load_dataset(make_env("mpe:simple_spread-3-cont"), "random", size=100)
    assert cont.actions.shape == (100, 3, 2) and np.abs(cont.actions).max() <= 1.0
    with pytest.raises(ValueError, match="at most one"):
        build_dataset("mpe:simple_spread-3", "random", transitions=10, episodes=1)
