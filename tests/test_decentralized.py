"""Offline decentralized MARL (offline-decentralized-marl.md): λ_vd / λ_tn weights, the exact tabular P̂ of
Tables 2–4, MABCQ on the paper's matrix game (Sec. 5.1), the Differential Game (Sec. 5.4) and smoke runs."""

import math

import numpy as np
import pytest
import torch

from marlkit.algos.base import ConfigError
from marlkit.algos.decentralized import (
    DecentralizedConfig,
    empirical_lambda_tn,
    lambda_tn_vae,
    lambda_vd,
    value_consensus,
)
from marlkit.cli import parse_overrides
from marlkit.data.sampler import DeviceSampler
from marlkit.envs.differential import DifferentialGame, differential_reward
from marlkit.envs.matrix import make_game
from marlkit.envs.registry import make_env
from marlkit.exact.decentralized import decentralized_tables, greedy_joint
from marlkit.nets.vae import ConditionalVAE
from marlkit.train import RunConfig, build_algo, run

JL_PAYOFF = np.array([[1.0, 5.0], [6.0, 1.0]])
JL_BEHAVIOR = [np.array([0.8, 0.2]), np.array([0.4, 0.6])]


# ---------------------------------------------------------------------------- λ weights
def test_lambda_vd_state_form_by_hand():
    # E[V*(s')] = (Q̂ - r)/γ = (2.5 - 0.5)/0.5 = 4; V*(s') = 5 -> 1 + (5 - 4)/4 = 1.25
    lam = lambda_vd(torch.tensor([[5.0]]), torch.tensor([[2.5]]), torch.tensor([[0.5]]), torch.tensor([[0.0]]),
                    gamma=0.5, epsilon=0.9, form="state")
    assert lam.item() == pytest.approx(1.25)
    # V*(s') = 2 -> 1 + (2 - 4)/4 = 0.5; terminal s' has V* = 0 -> 1 - 1 = 0, clipped to 1 - ε = 0.1
    lam = lambda_vd(torch.tensor([[2.0, 7.0]]), torch.tensor([[2.5, 2.5]]), torch.tensor([[0.5, 0.5]]),
                    torch.tensor([[0.0, 1.0]]), gamma=0.5, epsilon=0.9, form="state")
    assert lam.tolist()[0] == pytest.approx([0.5, 0.1])


def test_lambda_vd_outcome_form_and_clipping():
    # one-step game: y = r, E = Q̂; λ = r/Q̂ for positive values (Sec. 5.1)
    r = torch.tensor([[1.0, 5.0, 6.0]])
    q = torch.full((1, 3), 3.4)
    lam = lambda_vd(torch.zeros(1, 3), q, r, torch.ones(1, 3), gamma=0.99, epsilon=0.9, form="outcome")
    assert lam.tolist()[0] == pytest.approx([1 / 3.4, 5 / 3.4, 6 / 3.4], rel=1e-5)
    lam = lambda_vd(torch.zeros(1, 3), q, r, torch.ones(1, 3), gamma=0.99, epsilon=0.5, form="outcome")
    assert lam.tolist()[0] == pytest.approx([0.5, 5 / 3.4, 1.5], rel=1e-5)
    with pytest.raises(ValueError, match="form"):
        lambda_vd(torch.zeros(1, 1), q[:, :1], r[:, :1], torch.ones(1, 1), 0.99, 0.9, form="nope")


def test_empirical_lambda_tn_normalizes_each_action():
    game = make_game("jiang-lu")
    ds = game.make_dataset("behavior", size=4000, seed=0)
    lam = empirical_lambda_tn(ds)
    assert lam.shape == (ds.size, 2)
    for i in range(2):
        for a in range(2):
            rows = ds.actions[:, i] == a
            # E_P̂[λ_tn] = 1 for every (s, a_i): each outcome gets total weight 1/z_tn
            assert lam[rows, i].mean() == pytest.approx(1.0, abs=1e-5)
            for r in np.unique(ds.rewards[rows]):
                sel = rows & (ds.rewards == r)
                p_hat = sel.sum() / rows.sum()
                assert np.allclose(lam[sel, i], 1.0 / (2 * p_hat), rtol=1e-5)
    with pytest.raises(ValueError, match="discrete"):
        empirical_lambda_tn(DifferentialGame().make_dataset(size=50))


def test_lambda_tn_vae_shape_clip_and_normalization():
    torch.manual_seed(0)
    vae1, vae2 = ConditionalVAE(2, 1, 1, 3, (8,)), ConditionalVAE(2, 2, 1, 3, (8,))
    obs, nobs, act = torch.randn(64, 2, 1), torch.randn(64, 2, 1), torch.rand(64, 2, 1) * 2 - 1
    lam = lambda_tn_vae(vae1, vae2, obs, act, nobs, clip=2.0)
    assert lam.shape == (64, 2) and torch.isfinite(lam).all()
    assert torch.allclose(lam.mean(0), torch.ones(2), atol=1e-5)
    assert lam.max() / lam.min() <= 4.0 + 1e-4  # clipped to [1/2, 2] before normalizing
    mu1, _ = vae1.encode(obs, act)
    mu2, _ = vae2.encode(torch.cat([obs, nobs], -1), act)
    raw = torch.exp(0.5 * (mu2.pow(2).sum(-1) - mu1.pow(2).sum(-1))).clamp(0.5, 2.0)
    assert torch.allclose(lam, raw / raw.mean(0), atol=1e-5)


def test_sampler_extra_per_agent_field_follows_each_agents_row():
    ds = make_game("jiang-lu").make_dataset("behavior", size=200, seed=1)
    s = DeviceSampler(ds, seed=0)
    s.add_field("tag", torch.from_numpy(ds.actions.astype(np.float32) * 10 + np.arange(2)), per_agent=True)
    b = s.sample_decentralized(32)
    assert b["tag"].shape == (32, 2)
    assert torch.equal(b["tag"], b["actions"].float() * 10 + torch.arange(2))
    with pytest.raises(ValueError, match="already"):
        s.add_field("tag", torch.zeros(200, 2), per_agent=True)
    with pytest.raises(ValueError, match="rows"):
        s.add_field("other", torch.zeros(7))


def test_value_consensus():
    assert value_consensus(torch.tensor([[1.0, 4.0, 2.0], [3.0, 3.0, 3.0]])).tolist() == [3.0, 0.0]


# ---------------------------------------------------------------------------- exact tables (Sec. 3.3)
def _probs(tables):
    return [[np.round(p, 2).tolist() for p in t.modified] for t in tables]


def test_exact_table2_plain():
    t = decentralized_tables(JL_PAYOFF, JL_BEHAVIOR, vd=False, tn=False)
    assert _probs(t) == [[[0.4, 0.6], [0.4, 0.6]], [[0.8, 0.2], [0.8, 0.2]]]
    assert np.allclose(t[0].values, [3.4, 3.0]) and np.allclose(t[1].values, [2.0, 4.2])
    assert greedy_joint(JL_PAYOFF, t) == ((0, 1), 5.0)  # (a1, a2)


def test_exact_table3_value_deviation_only():
    # outcomes in first-appearance order: agent 1 a1 -> (1, 5), a2 -> (6, 1); agent 2 a1 -> (1, 6), a2 -> (5, 1)
    t = decentralized_tables(JL_PAYOFF, JL_BEHAVIOR, vd=True, tn=False)
    assert _probs(t) == [[[0.12, 0.88], [0.8, 0.2]], [[0.4, 0.6], [0.95, 0.05]]]
    # the paper's returns use the rounded probabilities (0.12·1 + 0.88·5 = 4.52; 0.95·5 + 0.05·1 = 4.8)
    assert np.allclose(t[0].values, [4.52, 5.0], atol=0.011) and np.allclose(t[1].values, [4.0, 4.8], atol=0.011)
    assert greedy_joint(JL_PAYOFF, t) == ((1, 1), 1.0)  # (a2, a2)


def test_exact_table4_both():
    t = decentralized_tables(JL_PAYOFF, JL_BEHAVIOR, vd=True, tn=True)
    assert _probs(t) == [[[0.17, 0.83], [0.86, 0.14]], [[0.14, 0.86], [0.83, 0.17]]]
    assert np.round(t[0].values, 2).tolist() == [4.33, 5.29] and np.round(t[1].values, 2).tolist() == [5.29, 4.33]
    assert greedy_joint(JL_PAYOFF, t) == ((1, 0), 6.0)  # (a2, a1)
    # ε = 0.9 (App. B, MPE) does not bind on this game
    t9 = decentralized_tables(JL_PAYOFF, JL_BEHAVIOR, vd=True, tn=True, epsilon=0.9)
    assert np.allclose([x.values for x in t9], [x.values for x in t])


# ---------------------------------------------------------------------------- MABCQ on the matrix game (Sec. 5.1)
MATRIX = {"threshold": 0.2, "discrete_lr": 3e-3, "hidden": (32, 32)}


@pytest.mark.parametrize("algo,overrides,expected", [
    ("bcq-dec", {}, ["a1", "a2"]),            # Table 2: plain decentralized BCQ
    ("mabcq", {"tn": False}, ["a2", "a2"]),   # Table 3: λ_vd only
    ("mabcq", {}, ["a2", "a1"]),              # Table 4: λ_vd and λ_tn
])
def test_mabcq_matrix_game_greedy_actions(algo, overrides, expected):
    rec = run("jiang-lu", "behavior", algo, {**MATRIX, **overrides},
              RunConfig(steps=1200, seed=0, threads=1, progress=False), dataset_size=4000)
    assert rec["greedy_action"] == expected
    if expected == ["a2", "a1"]:
        assert rec["return"] == pytest.approx(6.0)


def test_cli_switches_parse_to_config():
    from marlkit.algos.mabcq import MABCQConfig
    assert parse_overrides(MABCQConfig, ["--no-vd", "--no-tn", "--epsilon", "0.5"]) == {
        "vd": False, "tn": False, "epsilon": 0.5}
    from marlkit.algos.matd3bc import TD3BCDecConfig
    assert TD3BCDecConfig().vd is False and TD3BCDecConfig().tn is False


def test_config_errors():
    with pytest.raises(ConfigError, match="epsilon"):
        DecentralizedConfig(epsilon=0.0).validate()
    with pytest.raises(ConfigError, match="vd_form"):
        DecentralizedConfig(vd_form="x").validate()
    with pytest.raises(ConfigError, match="threshold"):
        build_algo("mabcq", make_game("jiang-lu").spec, {"threshold": 1.5})
    with pytest.raises(ConfigError, match="discrete"):
        build_algo("matd3bc", make_game("jiang-lu").spec)


# ---------------------------------------------------------------------------- Differential Game (Sec. 5.4)
def test_differential_reward_as_printed():
    assert differential_reward(0.0, 0.0) == pytest.approx(1.0)
    assert differential_reward(0.1, 0.0) == pytest.approx(0.5 * (math.cos(1.5) + 1))
    assert differential_reward(0.3, 0.3) == 0.0  # l = 0.42 in [0.2, 0.6]
    assert differential_reward(0.6, 0.0) == 0.0
    assert differential_reward(1.0, 1.0) == pytest.approx(0.5 * (math.sqrt(2) - 0.6) ** 2)


def test_differential_env_dynamics_and_observations():
    full, part = make_env("differential"), make_env("differential-partial")
    assert (full.spec.obs_dim, part.spec.obs_dim, full.spec.act_dim, full.spec.n_agents) == (2, 1, 1, 2)
    obs, state, avail = full.reset(n_envs=3, seed=0)
    assert obs.shape == (3, 2, 2) and avail is None and np.allclose(obs[:, 0], state) and np.allclose(obs[:, 1], state)
    res = full.step(np.array([[[1.0], [-1.0]]] * 3))
    assert np.allclose(res.state, np.clip(state + [0.1, -0.1], -1, 1), atol=1e-6)  # velocity = 0.1 × action
    assert np.allclose(res.reward, differential_reward(res.state[:, 0], res.state[:, 1]), atol=1e-6)
    obs, state, _ = part.reset(n_envs=2, seed=0)
    assert obs.shape == (2, 2, 1) and np.allclose(obs[:, :, 0], state)
    env = DifferentialGame(episode_limit=3)
    env.reset(1, seed=0)
    env._pos[:] = [[0.98, -0.98]]
    for t in range(3):
        res = env.step(np.ones((1, 2, 1)))
        assert res.timeout[0] == (t == 2) and not res.terminal[0]
    assert np.allclose(res.state, [[1.0, -0.68]])  # clipped at the wall
    with pytest.raises(ValueError, match="shape"):
        env.step(np.ones((2, 2, 1)))


def test_differential_random_dataset():
    env = make_env("differential")
    ds = env.make_dataset("random", size=1010, seed=3)
    assert ds.size == 1010 and ds.actions.shape == (1010, 2, 1)
    assert ds.actions.min() >= -1 and ds.actions.max() <= 1 and abs(ds.actions.mean()) < 0.1
    assert ds.episode_starts.sum() == 41 and ds.timeouts.sum() == 40 and not ds.terminals.any()
    moved = ds.next_states - ds.states
    assert np.abs(moved).max() <= 0.1 + 1e-6
    assert np.allclose(ds.rewards, differential_reward(ds.next_states[:, 0], ds.next_states[:, 1]), atol=1e-6)
    assert np.allclose(ds.next_states[:-1][~ds.timeouts[:-1]], ds.states[1:][~ds.timeouts[:-1]])
    with pytest.raises(ValueError, match="size"):
        env.make_dataset("random", size=0)


# ---------------------------------------------------------------------------- smoke runs
SMOKE = {"hidden": (16, 16), "vae_pretrain_steps": 5, "batch_size": 32}


@pytest.mark.parametrize("env,algo", [("differential", "matd3bc"), ("differential-partial", "mabcq"),
                                      ("differential-partial", "macql"), ("differential", "td3bc-dec")])
def test_continuous_smoke(env, algo):
    rec = run(env, "random", algo, SMOKE, RunConfig(steps=20, seed=0, threads=1, progress=False, eval_episodes=4),
              dataset_size=500)
    assert math.isfinite(rec["return"]) and rec["steps"] == 20
    model = build_algo(algo, make_env(env).spec, SMOKE)
    v = model.state_values(torch.zeros(5, 2, model.spec.obs_dim))
    assert v.shape == (5, 2)


def test_macql_discrete_smoke():
    rec = run("jiang-lu", "behavior", "macql", {"hidden": (16, 16)},
              RunConfig(steps=20, seed=0, threads=1, progress=False), dataset_size=300)
    assert len(rec["greedy_action"]) == 2 and math.isfinite(rec["return"])


# ---------------------------------------------------------------------------- notebook 05 helpers
def test_transition_bias_widget_callback():
    import matplotlib
    matplotlib.use("Agg")
    from marlkit.eval.plots import plot_transition_bias, transition_bias_rows
    fig, rows = plot_transition_bias(0.8, 0.4, 0.9)
    assert len(fig.axes) == 4
    greedy = {r["weighting"]: (r["greedy"], r["joint_return"]) for r in rows}
    assert greedy["dataset (Table 2)"] == ("(a1, a2)", 5.0) and greedy["λ_vd·λ_tn (Table 4)"] == ("(a2, a1)", 6.0)
    # symmetric behaviors that already favour the optimum: every weighting finds (a2, a1)
    assert {r["greedy"] for r in transition_bias_rows(0.2, 0.8, 0.9)} == {"(a2, a1)"}
    with pytest.raises(ValueError, match="mu1"):
        transition_bias_rows(1.5, 0.4)


def test_trajectories_shapes():
    from marlkit.envs.differential import trajectories
    env = make_env("differential-partial")
    model = build_algo("td3bc-dec", env.spec, {"hidden": (8,)})
    paths, rew = trajectories(model, env, episodes=3, seed=0)
    assert paths.shape == (3, 26, 2) and rew.shape == (3, 25)
    assert np.abs(np.diff(paths, axis=1)).max() <= 0.1 + 1e-6
