"""Bridge: the rules, the scripted behavior policies, the datasets and the evaluation hook."""

import numpy as np
import pytest
import torch

from marlkit.data.rollout import collect
from marlkit.envs.bridge import (
    OPTIMAL_DATA_RETURN,
    RANDOM_RETURN,
    ROUTE_RETURNS,
    BridgeEnv,
    UniformPolicy,
    YieldPolicy,
    _transition,
    optimal_value,
)
from marlkit.envs.registry import load_dataset, make_env
from marlkit.eval.evaluate import evaluate

STAY, UP, DOWN, RIGHT, LEFT = range(5)


def _step(pos, actions, done=((False, False),)):
    new, rew = _transition(np.array([pos]), np.array(done), np.array([actions]))
    return new[0].tolist(), rew[0]


def test_walls_borders_and_rewards():
    # from the start both up/down moves hit walls (B cells above and below the bridge)
    assert _step([[1, 2], [1, 3]], [UP, DOWN])[0] == [[1, 2], [1, 3]]
    # border
    assert _step([[0, 0], [1, 3]], [UP, STAY])[0] == [[0, 0], [1, 3]]
    # reward: -0.1 * euclidean distance to the goal after the move; goals (2,5) and (0,0)
    new, rew = _step([[1, 2], [1, 3]], [LEFT, STAY])
    assert new == [[1, 1], [1, 3]]
    np.testing.assert_allclose(rew, [-0.1 * np.sqrt(1 + 16), -0.1 * np.sqrt(1 + 9)])


def test_collisions_swap_follow_and_priority():
    # facing each other: moving into each other is a swap -> both stay
    assert _step([[1, 2], [1, 3]], [RIGHT, LEFT])[0] == [[1, 2], [1, 3]]
    # moving into a standing agent is blocked
    assert _step([[1, 2], [1, 3]], [RIGHT, STAY])[0] == [[1, 2], [1, 3]]
    assert _step([[1, 2], [1, 3]], [STAY, LEFT])[0] == [[1, 2], [1, 3]]
    # following into the cell the other leaves is allowed (both orders)
    assert _step([[1, 2], [1, 3]], [RIGHT, RIGHT])[0] == [[1, 3], [1, 4]]
    assert _step([[1, 2], [1, 3]], [LEFT, LEFT])[0] == [[1, 1], [1, 2]]
    # both into the same free cell: agent 0 gets it
    assert _step([[1, 0], [1, 2]], [RIGHT, LEFT])[0] == [[1, 1], [1, 2]]


def test_done_agents_are_ghosts_and_frozen():
    # agent 1 done at (0,0): its actions are ignored, it earns 0, and agent 0 may walk through its cell
    new, rew = _step([[0, 1], [0, 0]], [LEFT, RIGHT], done=((False, True),))
    assert new == [[0, 0], [0, 0]]
    assert rew[1] == 0.0


def test_episode_flags_and_shapes():
    env = BridgeEnv()
    obs, state, avail = env.reset(n_envs=3)
    assert obs.shape == (3, 2, 8) and state.shape == (3, 8) and avail.shape == (3, 2, 5) and avail.all()
    np.testing.assert_array_equal(state[0], [1, 2, 2, 5, 1, 3, 0, 0])
    for t in range(50):
        res = env.step(np.zeros((3, 2), np.int64))
    assert res.timeout.all() and not res.terminal.any()
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="0..4"):
        env.step(np.full((3, 2), 5))


def test_yield_policies_reproduce_optimal_returns():
    env = BridgeEnv()
    for route, expected in ROUTE_RETURNS.items():
        for who in (0, 1):
            ds = collect(env, YieldPolicy(route, who), episodes=8, n_envs=8)
            assert ds.terminals[-1] and ds.size == 64      # every ordering ends in 8 steps
            np.testing.assert_allclose(ds.episode_returns(), expected, atol=1e-4)
            first = LEFT if who == 0 else RIGHT            # the yielder backs off, the crosser follows
            assert ds.actions[ds.episode_starts].tolist() == [[first, first]] * 8
    np.testing.assert_allclose(collect(env, YieldPolicy("far", 0), episodes=1).episode_returns(), [-1.2590594],
                               atol=1e-6)                  # the route of the papers' ≈ −1.26
    # value iteration: the "near" route is the exact optimum and no policy beats it
    assert optimal_value() == pytest.approx(-1.2354526, abs=1e-6) == pytest.approx(ROUTE_RETURNS["near"], abs=1e-4)
    with pytest.raises(ValueError, match="route"):
        YieldPolicy("sideways")
    with pytest.raises(ValueError, match="yielder"):
        YieldPolicy(yielder=2)


def test_optimal_data_draws_yielder_route_and_done_actions_like_alberdice():
    """AlberDICE's buffer: a random yielder per episode (241 / 259 of 500), the three routes (173 / 160 / 167) and
    random actions of agents already at their goal; a marlkit build has the same structure."""
    ds = BridgeEnv().make_dataset("optimal", seed=0)
    first = ds.actions[ds.episode_starts]
    yield0 = (first == LEFT).all(1)
    assert (yield0 | (first == RIGHT).all(1)).all() and 200 < yield0.sum() < 300
    rets = ds.episode_returns()
    for value in ROUTE_RETURNS.values():
        assert 120 < np.isclose(rets, value, atol=1e-4).sum() < 215
    pos = ds.observations[:, 0, [0, 1, 4, 5]].reshape(-1, 2, 2)
    goals = ds.observations[:, 0, [2, 3, 6, 7]].reshape(-1, 2, 2)
    done_before = (pos == goals).all(-1)                 # agent at its goal before the step
    counts = np.bincount(ds.actions[done_before], minlength=5)
    assert (counts > 0.15 * counts.sum()).all()          # roughly uniform over the five actions
    again = BridgeEnv().make_dataset("optimal", seed=0)
    np.testing.assert_array_equal(again.actions, ds.actions)
    assert not np.array_equal(BridgeEnv().make_dataset("optimal", seed=1).actions[:40], ds.actions[:40])


def test_datasets_and_reference_returns():
    env = make_env("bridge")
    opt = load_dataset(env, "optimal")
    rets = opt.episode_returns()
    assert rets.size == 500 and rets.mean() == pytest.approx(OPTIMAL_DATA_RETURN, abs=1e-4)
    assert opt.actions[:1].tolist() in ([[LEFT, LEFT]], [[RIGHT, RIGHT]])
    mixed = env.make_dataset("mixed", seed=0)
    mrets = mixed.episode_returns()
    assert mrets.size == 1000
    # the random half: measured reference return (uniform random, 1000 episodes, seed 0 -> RANDOM_RETURN)
    rand = collect(env, UniformPolicy(), episodes=1000, seed=0).episode_returns()
    assert rand.mean() == pytest.approx(RANDOM_RETURN, abs=1e-3)
    assert mrets[500:].mean() == pytest.approx(-17.65, abs=0.5)
    assert mrets.mean() == pytest.approx((mrets[:500].mean() + mrets[500:].mean()) / 2)
    # deterministic per seed, different across seeds
    again = env.make_dataset("mixed", seed=0)
    np.testing.assert_array_equal(again.actions, mixed.actions)
    other = env.make_dataset("mixed", seed=1)
    assert other.size != mixed.size or not np.array_equal(other.actions, mixed.actions)
    small = env.make_dataset("mixed", size=2000)
    assert small.size <= 2000 and small.episode_starts[0]
    with pytest.raises(KeyError, match="optimal"):
        env.make_dataset("expert")


class _Scripted(torch.nn.Module):
    """Adapter exposing a scripted policy through the algorithm interface evaluate() uses."""

    def __init__(self, policy):
        super().__init__()
        self.policy, self.device, self._started = policy, torch.device("cpu"), False

    def act(self, obs, avail, deterministic=True, generator=None):
        if not self._started:
            self.policy.reset(obs.shape[0])
            self._started = True
        return torch.as_tensor(self.policy.act(obs.numpy(), None, None))


def test_evaluate_normalized_score():
    env = make_env("bridge")
    out = evaluate(_Scripted(YieldPolicy("far", 0)), env, episodes=4)
    assert out["return"] == pytest.approx(ROUTE_RETURNS["far"], abs=1e-4)
    expected = 100 * (ROUTE_RETURNS["far"] - RANDOM_RETURN) / (OPTIMAL_DATA_RETURN - RANDOM_RETURN)
    assert out["normalized_score"] == pytest.approx(expected, abs=1e-2) and expected > 100
    assert max(out["lengths"]) == 8


def test_cli_data_build_prints_the_card(tmp_path, monkeypatch, capsys):
    import json

    from marlkit.cli import main

    monkeypatch.setenv("MARLKIT_DATA", str(tmp_path))
    assert main(["data", "build", "bridge", "--quality", "optimal", "--episodes", "10", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["episodes"] == 10 and -1.2905 < card["return_mean"] < -1.2354
    assert list(tmp_path.rglob("optimal-10ep-seed0.h5"))
    assert main(["data", "build", "bridge", "--quality", "optimal"]) == 0      # human-readable card
    assert "return_mean" in capsys.readouterr().out
    assert main(["data", "build", "bridge", "--quality", "expert"]) == 2
    assert "valid: mixed, optimal" in capsys.readouterr().err
    assert main(["data", "build", "bridge", "--quality", "optimal", "--episodes", "1", "--transitions", "5"]) == 2
    assert "at most one" in capsys.readouterr().err
