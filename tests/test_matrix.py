"""Matrix games, their exact analysis, and BC against hand-derived numbers."""

import numpy as np
import pytest

from marlkit.envs import make_env
from marlkit.envs.matrix import MatrixDataset, MatrixGame, expected_return
from marlkit.exact import (best_response, is_product, marginals, ood_actions, ood_mass, pure_nash,
                           regularized_optimum, regularized_return)
from marlkit.train import RunConfig, run


def test_payoffs_as_printed():
    np.testing.assert_array_equal(make_env("xor").payoff, [[0, 1], [1, -2]])
    np.testing.assert_array_equal(make_env("jiang-lu").payoff, [[1, 5], [6, 1]])
    R = make_env("mne").payoff
    assert R[0, 0] == 5 and R[1, 1] == 10 and R[2, 2] == 20 and (R[~np.eye(3, dtype=bool)] == -20).all()


def test_bc_fixed_point_returns_by_hand():
    # XOR (b): each agent's marginal is A w.p. 2/3 (it plays A in (A,A) and in one of the two mixed pairs), so
    # E[r] = (4/9)·0 + (2/9)·1 + (2/9)·1 + (1/9)·(−2) = 2/9.
    xor = make_env("xor")
    assert expected_return(xor.payoff, marginals(xor.datasets["b"].joint)) == pytest.approx(2 / 9)
    # XOR (a) and (c): marginals uniform, E[r] = (0 + 1 + 1 − 2)/4 = 0.
    for d in "ac":
        assert expected_return(xor.payoff, marginals(xor.datasets[d].joint)) == pytest.approx(0.0)
    # M-NE balanced: mean of all nine payoffs = (5 + 10 + 20 − 6·20)/9 = −85/9.
    mne = make_env("mne")
    assert expected_return(mne.payoff, marginals(mne.datasets["balanced"].joint)) == pytest.approx(-85 / 9)
    # M-NE imbalanced: 0.64·5 + 0.01·10 + 0.01·20 − 0.34·20 = −3.3.
    assert expected_return(mne.payoff, marginals(mne.datasets["imbalanced"].joint)) == pytest.approx(-3.3)


def test_nash_and_best_responses():
    assert pure_nash(make_env("mne").payoff) == [(0, 0), (1, 1), (2, 2)]
    assert pure_nash(make_env("xor").payoff) == [(0, 1), (1, 0)]
    R = make_env("jiang-lu").payoff
    assert pure_nash(R) == [(0, 1), (1, 0)]
    # against a teammate playing [0.8, 0.1, 0.1] the best response in M-NE is A: 0.8·5 − 0.2·20 = 0 > −14, −12
    assert best_response(make_env("mne").payoff, [np.array([.8, .1, .1])] * 2, 0).tolist() == [0]


def test_regularized_optimum_limits():
    xor = make_env("xor")
    d = xor.datasets["b"].joint
    # α → ∞: π* → μ (return 2/3 on the data distribution); α → 0: the in-sample best joint actions (A,B),(B,A)
    assert regularized_return(xor.payoff, d, [1e9])[0] == pytest.approx(2 / 3, abs=1e-6)
    pi = regularized_optimum(xor.payoff, d, 1e-3)
    np.testing.assert_allclose(pi, [[0, 0.5], [0.5, 0]], atol=1e-6)
    assert pi[1, 1] == 0  # in-sample: never the OOD (B,B)
    # by hand at α = 1: weights (1/3)e^0, (1/3)e^1, (1/3)e^1 → π(A,A) = 1/(1 + 2e)
    assert regularized_optimum(xor.payoff, d, 1.0)[0, 0] == pytest.approx(1 / (1 + 2 * np.e))
    with pytest.raises(ValueError, match="alpha"):
        regularized_optimum(xor.payoff, d, 0.0)


def test_ood_detection():
    d = make_env("xor").datasets["b"].joint
    bb = np.array([[0.0, 0.0], [0.0, 1.0]])
    assert ood_mass(bb, d) == 1.0 and ood_actions(bb, d) == [(1, 1)]
    assert ood_mass(d, d) == 0.0
    assert not is_product(d) and is_product(make_env("mne").datasets["balanced"].joint)


def test_user_defined_game_and_dataset():
    R = np.arange(8, dtype=float).reshape(2, 2, 2)
    g = MatrixGame("three", R, {"u": MatrixDataset.product("u", [[0.5, 0.5]] * 3)})
    ds = g.make_dataset("u", size=500, seed=1)
    assert ds.n_agents == 3 and ds.actions.shape == (500, 3)
    np.testing.assert_allclose(ds.rewards, R[tuple(ds.actions.T)])
    with pytest.raises(KeyError, match="valid"):
        g.make_dataset("nope")
    with pytest.raises(ValueError, match="same number of actions"):
        MatrixGame("bad", np.zeros((2, 3)))


def test_dataset_sampling_is_seeded():
    g = make_env("mne")
    a, b = g.make_dataset("imbalanced", 300, seed=4), g.make_dataset("imbalanced", 300, seed=4)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert not np.array_equal(a.actions, g.make_dataset("imbalanced", 300, seed=5).actions)


@pytest.mark.parametrize("env,dataset,lo,hi", [
    ("xor", "b", 0.20, 0.24),          # inspo.md Table 1 BC: 0.23 ± 0.01 (exact fixed point 2/9)
    ("mne", "imbalanced", -3.6, -3.0),  # paper −3.47 ± 0.17 (fixed point −3.3)
    ("mne", "balanced", -9.9, -9.1),    # paper −9.79 ± 0.41 (fixed point −85/9 ≈ −9.44)
])
def test_bc_reproduces_paper_numbers(env, dataset, lo, hi):
    r = run(env, dataset, "bc", {"hidden": (64, 64)}, RunConfig(steps=3000, progress=False, threads=1))
    assert lo <= r["return"] <= hi
    assert np.asarray(r["joint_policy"]).shape == ((2, 2) if env == "xor" else (3, 3))
