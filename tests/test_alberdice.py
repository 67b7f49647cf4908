"""AlberDICE: the exact alternating oracle against the seed tables (inspo.md Tables 1–2), its per-agent closed form
against a numerical maximisation of the agent's objective (Eq. 3–5), the ν dual's minimiser, and neural runs on
the matrix games against the oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from marlkit.algos import get_algo
from marlkit.algos.alberdice import AlberDICE, AlberDICEConfig, iprojection_loss, nu_loss
from marlkit.algos.base import ConfigError
from marlkit.envs import load_dataset, make_env
from marlkit.envs.base import EnvSpec
from marlkit.envs.matrix import make_game
from marlkit.exact import alberdice_agent_update, exact_alberdice
from marlkit.train import RunConfig, build_algo, fit
from marlkit.utils import seed_everything

SEED_TABLE = [("xor", "a", 1.0), ("xor", "b", 1.0), ("xor", "c", 1.0), ("mne", "balanced", 20.0),
              ("mne", "imbalanced", 5.0)]


@pytest.mark.parametrize("game,dataset,expected", SEED_TABLE)
def test_oracle_reaches_the_seed_tables(game, dataset, expected):
    """inspo.md Tables 1–2, AlberDICE column: 1.00 on XOR (a)–(c), 20.00 on M-NE balanced, 5.00 imbalanced (the
    alternating best responses stop at the (A, A) equilibrium the data favour)."""
    g = make_game(game)
    traj = exact_alberdice(g.payoff, g.datasets[dataset].joint)
    assert traj.converged
    assert traj.ret == pytest.approx(expected, abs=1e-6)
    assert all(p.max() == pytest.approx(1.0, abs=1e-6) for p in traj.policies)  # deterministic at α = 0.001


def _agent_objective(q, payoff, d, others, agent, alpha):
    """E_{q π_{-i}}[r] − α KL(q π_{-i} ‖ d) evaluated on the joint table (Eq. 3 on one state)."""
    joint = np.multiply.outer(q, others) if agent == 0 else np.multiply.outer(others, q)
    mask = joint > 0
    return float((joint * payoff).sum() - alpha * (joint[mask] * np.log(joint[mask] / d[mask])).sum())


@pytest.mark.parametrize("agent", [0, 1])
@pytest.mark.parametrize("alpha", [0.3, 2.0])
def test_agent_update_is_the_best_response(agent, alpha):
    """The closed form d_i* ∝ d(a_i) exp(e_i/α), e_i = E_{π_{-i}}[r] − α KL(π_{-i} ‖ d(·|a_i)) (Eq. 5), maximises
    agent i's objective over its simplex (checked by scipy on a correlated full-support table)."""
    payoff = np.array([[0.0, 1.0, -1.0], [1.0, -2.0, 0.5], [0.3, 0.0, 2.0]])
    d = np.array([[0.2, 0.1, 0.05], [0.15, 0.05, 0.1], [0.05, 0.2, 0.1]])
    others = np.array([0.5, 0.3, 0.2])
    pols = [others, others]
    got = alberdice_agent_update(payoff, d, pols, agent, alpha, eps=0.0)["policy"]

    def neg(z):
        q = np.exp(z - z.max())
        return -_agent_objective(q / q.sum(), payoff, d, others, agent, alpha)

    res = minimize(neg, np.zeros(3), method="BFGS", options={"gtol": 1e-10})
    best = np.exp(res.x - res.x.max())
    np.testing.assert_allclose(got, best / best.sum(), atol=1e-5)
    assert -neg(np.log(got)) >= -res.fun - 1e-9


def test_ood_partner_gets_no_mass():
    """XOR dataset (b): with agent 2 on B, agent 1's B would form the unseen (B, B): infinite KL, zero mass."""
    g = make_game("xor")
    out = alberdice_agent_update(g.payoff, g.datasets["b"].joint, [None, np.array([0.0, 1.0])], 0, 1.0, eps=0.0)
    assert out["policy"][1] == 0.0 and out["kl"][1] == math.inf
    with pytest.raises(ValueError, match="infinite KL"):  # XOR (a): every action of agent 1 is OOD for uniform π_2
        alberdice_agent_update(g.payoff, g.datasets["a"].joint, [None, np.full(2, 0.5)], 0, 1.0, eps=0.0)


def test_nu_loss_minimiser_is_the_closed_form():
    """One-step data: ``(1−γ) ν + α E[ρ exp((r' − ν)/α − 1)]`` is minimised at
    ``ν* = α log(E[ρ exp(r'/α − 1)] / (1 − γ))``, also with the overflow-safe scaling (large r'/α)."""
    gamma, alpha = 0.9, 0.05
    r = torch.tensor([[1.0], [0.2], [0.7], [0.0]], dtype=torch.float64)
    log_rho = torch.log(torch.tensor([[0.5], [2.0], [1.0], [0.5]], dtype=torch.float64))
    star = alpha * (torch.logsumexp(log_rho + r / alpha - 1, 0) - math.log(4) - math.log(1 - gamma))
    for nu0 in (star - 0.3, star, star + 0.3):
        nu = nu0.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(nu_loss(nu.expand(3, 1), r - nu, log_rho, alpha, gamma).sum(), nu)
        assert (g.item() < 0) if nu0 < star else (g.item() > 0) if nu0 > star else abs(g.item()) < 1e-9


def test_iprojection_minimiser():
    """``−Σ π e + α KL(π‖μ)`` is minimised by π ∝ μ exp(e/α) (the I-projection's closed form)."""
    e = torch.tensor([[[0.3, -0.2, 1.0]]])
    mu = torch.tensor([[[0.5, 0.3, 0.2]]])
    alpha = 0.7
    target = torch.softmax(mu.log() + e / alpha, -1)
    logits = torch.zeros(1, 1, 3, requires_grad=True)
    opt = torch.optim.LBFGS([logits], max_iter=200, tolerance_grad=1e-12)

    def closure():
        opt.zero_grad()
        lp = torch.log_softmax(logits, -1)
        loss = iprojection_loss(lp.exp(), lp, e, mu.log(), alpha).sum()
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(torch.softmax(logits, -1), target, atol=1e-5, rtol=0)


def test_config_and_action_space_errors():
    assert get_algo("alberdice") is AlberDICE
    with pytest.raises(ConfigError, match="share_params"):
        AlberDICEConfig(share_params=True).validate()
    with pytest.raises(ConfigError, match="alpha_final must be positive"):
        AlberDICEConfig(alpha_final=0.0).validate()
    spec = EnvSpec(name="toy", n_agents=2, obs_dim=3, state_dim=4, act_dim=2)
    with pytest.raises(ConfigError, match="does not support continuous"):
        AlberDICE(spec)


def test_initial_states_episode_starts_or_the_minibatch_states():
    from marlkit.data.sampler import DeviceSampler

    with pytest.raises(ConfigError, match="initial_states"):
        AlberDICEConfig(initial_states="first").validate()
    env = make_env("bridge")
    data = env.make_dataset("optimal", seed=0, episodes=4)
    for mode in ("episode", "data"):
        algo = AlberDICE(env.spec, AlberDICEConfig(hidden=(8,), batch_size=32, initial_states=mode))
        sampler = DeviceSampler(data, "cpu", seed=0)
        algo.setup(sampler)
        batch = algo.sample(sampler, 0)
        if mode == "data":  # every dataset state a start (official code): the minibatch's own states
            assert batch["init/states"] is batch["states"]
        else:  # Bridge's episodes all start in one state
            assert (batch["init/states"] == batch["init/states"][0]).all()
            assert not (batch["states"] == batch["states"][0]).all()
        loss, _, _ = algo.value_loss(batch, {})
        assert torch.isfinite(loss)


def test_alpha_schedule_and_turns():
    algo = AlberDICE(make_env("mne").spec, AlberDICEConfig(hidden=(8,), alpha=5.0, alpha_final=1e-3,
                                                           alpha_decay_steps=100, agent_steps=2))
    assert algo.alpha_at(0) == 5.0 and algo.alpha_at(100) == pytest.approx(1e-3) and algo.alpha_at(500) == 1e-3
    assert algo.alpha_at(50) == pytest.approx(math.sqrt(5.0 * 1e-3))
    assert [algo.agent_at(t) for t in range(6)] == [0, 0, 1, 1, 0, 0]


@pytest.mark.parametrize("game,dataset,expected", [("xor", "b", 1.0), ("mne", "imbalanced", 5.0),
                                                   ("mne", "balanced", 20.0)])
def test_neural_matches_the_oracle(game, dataset, expected):
    """The neural alternating updates reach the oracle's equilibrium value: an optimal joint action on XOR (b)
    (either (A, B) or (B, A)) and the data-favoured (A, A) on M-NE imbalanced; the run of docs/benchmarks.md's
    table at the games' AlberDICE defaults (marlkit.envs.matrix; seed 0: dataset and initialisation drawn as
    ``marlkit train --seed 0`` draws them)."""
    env = make_env(game)
    seed_everything(0)
    data = load_dataset(env, dataset, seed=0)
    seed_everything(0)
    rec = fit(build_algo("alberdice", env.spec), data, env, RunConfig(steps=1000, seed=0, progress=False, threads=1))
    assert rec["greedy_return"] == expected
    assert rec["return"] >= 0.9 * expected


def test_nu_gradient_penalty_is_the_double_backprop_penalty_and_vectorizes():
    """The official ν gradient penalty: value and ν-parameter gradient equal a ``torch.autograd.grad``
    (create_graph) reference at the interpolated states; it enters agent i's ν loss with its weight; and a K=2
    population with the penalty on equals the two single runs."""
    from marlkit.data.sampler import DeviceSampler
    from marlkit.population import Population

    with pytest.raises(ConfigError, match="nu_grad_penalty"):
        AlberDICEConfig(nu_grad_penalty=-0.1).validate()
    env = make_env("bridge")
    data = env.make_dataset("mixed", seed=0, episodes=8)
    cfg = AlberDICEConfig(hidden=(16, 16), batch_size=32, nu_grad_penalty=0.1)

    def build(seed):
        seed_everything(seed)
        algo = AlberDICE(env.spec, cfg)
        sampler = DeviceSampler(data, "cpu", seed=seed)
        algo.setup(sampler)
        return algo, sampler

    algo, sampler = build(0)
    batch = algo.sample(sampler, 0)
    eps = batch["noise/interpolation"]
    assert eps.shape == (16, 1)
    penalty = algo.nu_gradient_penalty(batch["states"], eps)
    (g_ours,) = torch.autograd.grad(penalty.sum(), list(algo.nu.parameters())[0])
    mixed = (eps * batch["states"][:16] + (1 - eps) * batch["states"][16:]).requires_grad_(True)
    out = algo.nu(mixed.unsqueeze(1).expand(-1, env.spec.n_agents, -1))
    ref = []
    for i in range(env.spec.n_agents):
        (g,) = torch.autograd.grad(out[:, i].sum(), mixed, create_graph=True)
        ref.append(g.pow(2).sum(-1).mean())
    ref = torch.stack(ref)
    (g_ref,) = torch.autograd.grad(ref.sum(), list(algo.nu.parameters())[0])
    assert penalty.shape == (env.spec.n_agents,) and (penalty > 0).all()
    assert torch.allclose(penalty, ref, rtol=1e-5) and torch.allclose(g_ours, g_ref, rtol=1e-4, atol=1e-7)
    loss_on, metrics, _ = algo.value_loss(batch, {})
    algo.config.nu_grad_penalty = 0.0
    loss_off, _, _ = algo.value_loss(batch, {})
    algo.config.nu_grad_penalty = 0.1
    assert torch.allclose(loss_on - loss_off, 0.1 * (penalty * batch["agent_mask"]).sum(), rtol=1e-4)
    assert metrics["nu_grad_penalty"] == pytest.approx(penalty[0].item(), rel=1e-5)

    singles = []
    for s in (0, 3):
        a, smp = build(s)
        for _ in range(6):
            a.train_step(smp)
        singles.append(a)
    members, samplers = zip(*(build(s) for s in (0, 3)))
    pop = Population(list(members))
    for _ in range(6):
        pop.train_step(list(samplers))
    pop.write_back()
    for single, member in zip(singles, members):
        for (k, v), (_, w) in zip(single.state_dict().items(), member.state_dict().items()):
            if torch.is_tensor(v) and v.is_floating_point():
                assert torch.allclose(v, w, rtol=1e-5, atol=1e-5), k
