"""OptiDICE (centralised on the joint action, comadice.md's multi-agent baseline): the exact one-step oracle, its
KKT conditions, neural runs against it on the matrix games, and the continuous I-projection path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marlkit.algos import get_algo
from marlkit.algos.base import ConfigError
from marlkit.algos.fdiv import F_DIVERGENCES, get_fdiv
from marlkit.algos.optidice import OptiDICE, OptiDICEConfig
from marlkit.data.sampler import DeviceSampler
from marlkit.envs import load_dataset, make_env
from marlkit.envs.matrix import make_game
from marlkit.exact import dice_optimum, optidice_solution
from marlkit.train import RunConfig, build_algo, fit
from marlkit.utils import seed_everything
from tests.helpers import toy_continuous_dataset


@pytest.mark.parametrize("f", list(F_DIVERGENCES))
@pytest.mark.parametrize("gamma", [0.0, 0.99])
def test_oracle_kkt_and_marginals(f, gamma):
    """ρ* = d w*, ``w* = max(0, (f')⁻¹((r − ν*)/α))`` with ``E_d[w*] = 1 − γ``; the policies are ρ*'s marginals."""
    g = make_game("mne")
    d, alpha = g.datasets["imbalanced"].joint, 2.0
    sol = optidice_solution(g.payoff, d, alpha, f, gamma=gamma)
    np.testing.assert_allclose((d * sol["w"]).sum(), 1.0 - gamma, rtol=1e-9)
    np.testing.assert_allclose(sol["w"], get_fdiv(f).ratio((g.payoff - sol["nu"]) / alpha), rtol=1e-6, atol=1e-12)
    rho = sol["rho"] / sol["rho"].sum()
    np.testing.assert_allclose(sol["policies"][0], rho.sum(1), atol=1e-12)
    np.testing.assert_allclose(sol["policies"][1], rho.sum(0), atol=1e-12)
    np.testing.assert_allclose(sol["rho"], dice_optimum(g.payoff, d, alpha, f, mass=1 - gamma)["rho"])


def test_oracle_on_the_seed_games():
    """The centralised ratio is right, but weighted BC of a product policy marginalises it: on XOR (b) both agents
    lean to A (return well below the optimum 1), while M-NE balanced reaches (C, C) for small α."""
    xor, mne = make_game("xor"), make_game("mne")
    sol = optidice_solution(xor.payoff, xor.datasets["b"].joint, 1.0)
    assert sol["policies"][0][0] > 0.55 and sol["return"] < 0.2
    assert optidice_solution(mne.payoff, mne.datasets["balanced"].joint, 0.1)["return"] > 19.9
    with pytest.raises(ValueError, match="gamma"):
        optidice_solution(xor.payoff, xor.datasets["b"].joint, 1.0, gamma=1.0)


FAST = {"hidden": (16, 16), "batch_size": 128, "lr": 3e-3}


@pytest.mark.parametrize("game,dataset,alpha", [("xor", "b", 1.0), ("mne", "balanced", 1.0)])
def test_neural_matches_the_oracle(game, dataset, alpha):
    """Neural ν and weighted BC reproduce the oracle's per-agent policies on the empirical data table."""
    env = make_env(game)
    data = load_dataset(env, dataset, size=4000, seed=0)
    actions = np.asarray(data.actions)
    table = np.zeros(env.payoff.shape)
    np.add.at(table, tuple(actions.T), 1.0)
    sol = optidice_solution(env.payoff, table / table.sum(), alpha, "soft-chi2", gamma=0.99)
    seed_everything(1)  # the networks' initialisation, drawn when the algorithm is built
    rec = fit(build_algo("optidice", env.spec, {**FAST, "alpha": alpha}), data, env,
              RunConfig(steps=600, seed=0, progress=False, threads=1))
    np.testing.assert_allclose(np.array(rec["per_agent_policy"]), np.array(sol["policies"]), atol=0.04)
    assert rec["return"] == pytest.approx(sol["return"], abs=0.05 * max(1.0, abs(sol["return"])))


def test_continuous_iprojection_runs_and_extraction_errors():
    """Continuous tasks use the I-projection (e-network, data policies, reparameterised draws in the batch)."""
    data, env = toy_continuous_dataset(seed=0)
    seed_everything(0)
    algo = build_algo("optidice", env.spec, {"hidden": (16, 16), "batch_size": 32})
    assert algo.extraction == "iproj" and [s.name for s in algo.stages()] == ["value", "critic", "actor"]
    sampler = DeviceSampler(data, "cpu", seed=0)
    algo.setup(sampler)
    batch = algo.sample(sampler, 0)
    assert batch["noise/policy"].shape == batch["actions"].shape
    for _ in range(20):
        metrics = algo.train_step(sampler)
    assert all(torch.isfinite(v).all() for v in metrics.values())
    assert algo.act(batch["observations"]).shape == batch["actions"].shape
    with pytest.raises(ConfigError, match="extraction='iproj' needs continuous"):
        OptiDICE(make_env("xor").spec, OptiDICEConfig(extraction="iproj"))
    with pytest.raises(ConfigError, match="extraction must be"):
        OptiDICEConfig(extraction="awr").validate()
    assert get_algo("optidice") is OptiDICE
