"""Exercises and quiz of notebook 06 (the offline MARL baselines: AlberDICE, CFCQL, OptiDICE, OMAR, ...).

Every checker recomputes its expected answer from the exact oracles of :mod:`marlkit.exact` (nothing is
hard-coded): :func:`marlkit.exact.exact_alberdice` and :func:`marlkit.exact.alberdice_agent_update` (AlberDICE's
alternating best responses, Matsunaga et al., NeurIPS 2023, Eq. 3–10, arXiv:2311.02194) and
:func:`marlkit.exact.optidice_solution` (OptiDICE, Lee et al., ICML 2021, Eq. 6–8, arXiv:2106.10783, on the joint
action with weighted-BC extraction).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from marlkit.course.feedback import Feedback, Question, Quiz, check_number
from marlkit.envs import make_env
from marlkit.envs.matrix import MatrixGame
from marlkit.exact.alberdice import alberdice_agent_update, exact_alberdice
from marlkit.exact.matrix import marginals, ood_mass
from marlkit.exact.optidice import optidice_solution

__all__ = ["alberdice_joint_action", "check_alberdice_best_response", "check_alberdice_joint",
           "check_optidice_ood_mass", "parse_joint_action", "quiz"]


def alberdice_joint_action(game: MatrixGame, dataset: str) -> tuple[str, ...]:
    """The most likely joint action (action names) of exact AlberDICE at its defaults (α 5 → 0.001) on a dataset."""
    traj = exact_alberdice(game.payoff, game.datasets[dataset].joint)
    idx = np.unravel_index(int(np.argmax(traj.joint_policy)), traj.joint_policy.shape)
    return tuple(game.action_names[int(k)] for k in idx)


def parse_joint_action(answer, game: MatrixGame) -> tuple[str, ...]:
    """A joint action given as ``("A", "B")``, ``"A,B"``, ``"AB"`` or indices ``(0, 1)`` → action names.

    Raises:
        ValueError: if it does not name one valid action per agent.
    """
    if isinstance(answer, str):
        parts = [p for p in answer.replace("(", "").replace(")", "").replace(" ", "").split(",") if p]
        if len(parts) == 1 and len(parts[0]) == game.n_agents:
            parts = list(parts[0])
    else:
        parts = list(answer)
    names = []
    for p in parts:
        if isinstance(p, (int, np.integer)) and 0 <= int(p) < len(game.action_names):
            names.append(game.action_names[int(p)])
        elif isinstance(p, str) and p.upper() in game.action_names:
            names.append(p.upper())
        else:
            raise ValueError(f"{p!r} is not an action of {game.action_names}")
    if len(names) != game.n_agents:
        raise ValueError(f"expected one action per agent ({game.n_agents}), got {len(names)}")
    return tuple(names)


# ------------------------------------------------------------------------------------------------ exercises
def check_alberdice_joint(answer) -> Feedback:
    """Exercise 1: the joint action exact AlberDICE (:func:`marlkit.exact.exact_alberdice` at its defaults)
    converges to on M-NE imbalanced, as action names (e.g. ``("A", "B")`` or ``"A,B"``)."""
    mne = make_env("mne")
    name = "exact AlberDICE's joint action on M-NE imbalanced"
    if answer is None:
        return Feedback(False, f"no answer yet for {name}", "replace the None in the answer cell")
    try:
        got = parse_joint_action(answer, mne)
    except (TypeError, ValueError) as exc:
        return Feedback(False, f"{name}: {exc}", "write two action names, e.g. (\"B\", \"B\")")
    expected = alberdice_joint_action(mne, "imbalanced")
    if got == expected:
        return Feedback(True, f"{name} = {got} (oracle: {expected})")
    payoff = mne.payoff[tuple(mne.action_names.index(a) for a in got)]
    best = np.unravel_index(int(np.argmax(mne.payoff)), mne.payoff.shape)
    if got == tuple(mne.action_names[int(k)] for k in best):
        why = ("that is the global optimum (payoff 20), which OptiDICE's joint ratio finds; AlberDICE's agents "
               "best-respond one at a time to a teammate who, like the data (μ^i(A) = 0.8), mostly plays A, and "
               "against A the best reply is A: the alternation stops at the Nash equilibrium the data favour.")
    elif len(set(got)) > 1:
        why = (f"{got} pays {payoff:g}: miscoordinated. AlberDICE converges to a Nash equilibrium, and no agent "
               "keeps an action that its teammate's policy punishes with −20.")
    else:
        why = (f"{got} is a Nash equilibrium (payoff {payoff:g}), but not the one the alternation reaches from the "
               "imbalanced data: start from the data's marginals and compute the first best response.")
    return Feedback(False, f"{name}: {got} is not it", why)


def _br_cases():
    xor, mne = make_env("xor"), make_env("mne")
    return [(xor, "b", np.array([1.0, 0.0]), 1.0), (xor, "b", np.array([0.5, 0.5]), 1.0),
            (xor, "c", np.array([0.3, 0.7]), 0.5), (mne, "imbalanced", np.array([0.8, 0.1, 0.1]), 5.0),
            (mne, "balanced", np.array([0.2, 0.3, 0.5]), 1.0)]


def check_alberdice_best_response(fn: Callable | None) -> Feedback:
    """Exercise 2: ``fn(payoff, d, pi1, alpha)`` must return agent 2's exact AlberDICE best response ``[A]`` to agent
    1's policy ``pi1`` ``[A]`` on a two-agent payoff table with dataset ``d`` (Matsunaga et al. 2023, Eq. 5–10:
    π² ∝ d(a²)·exp(e(a²)/α), e(a²) = E_{π¹}[r(·, a²)] − α·KL(π¹ ‖ d(·|a²))). Checked against
    :func:`marlkit.exact.alberdice_agent_update` (in-sample limit ε = 0) on XOR (b), (c) and M-NE."""
    if fn is None:
        return Feedback(False, "no answer yet for the best response (payoff, d, pi1, alpha)",
                        "replace the None in the answer cell")
    if not callable(fn):
        return Feedback(False, f"expected a function (payoff, d, pi1, alpha) -> policy, got {type(fn).__name__}")
    for game, dataset, pi1, alpha in _br_cases():
        d = game.datasets[dataset].joint
        case = f"{game.spec.name} ({dataset}), π¹ = {np.round(pi1, 2).tolist()}, α = {alpha:g}"
        want = alberdice_agent_update(game.payoff, d, [pi1, np.full(len(pi1), 1.0 / len(pi1))], 1, alpha,
                                      eps=0.0)
        try:
            got = np.asarray(fn(game.payoff.copy(), d.copy(), pi1.copy(), alpha), dtype=float)
        except Exception as exc:  # noqa: BLE001 (the learner's code: report, never raise)
            return Feedback(False, f"your function raised {type(exc).__name__}: {exc} on {case}")
        if got.shape != want["policy"].shape:
            return Feedback(False, f"{case}: got shape {got.shape}, expected {want['policy'].shape}",
                            "return agent 2's policy: one probability per action of agent 2.")
        if not np.isfinite(got).all():
            return Feedback(False, f"{case}: your policy has non-finite entries",
                            "an infinite KL must give probability exactly 0 (exp(−∞)), not NaN: mask those actions.")
        gap = np.abs(got - want["policy"]).max()
        if gap <= 1e-6:
            continue
        if not np.isclose(got.sum(), 1.0):
            why = f"your policy sums to {got.sum():.4g}: normalise it."
        elif np.isinf(want["kl"]).any() and got[np.isinf(want["kl"])].max() > 1e-6:
            why = ("your policy plays an action whose in-data partners d(·|a²) miss part of π¹'s support: its KL "
                   "is infinite, so AlberDICE gives it probability 0 — this is how it avoids OOD joint actions.")
        else:
            why = (f"largest gap {gap:.3g} to the oracle: did you include the KL term −α·KL(π¹ ‖ d(·|a²)) in e(a²) "
                   "and the data marginal d(a²) in front of exp(e/α)?")
        return Feedback(False, f"{case}: your best response differs from the exact one", why)
    return Feedback(True, "agent 2's best response matches exact AlberDICE on XOR (b), (c) and M-NE")


def check_optidice_ood_mass(answer) -> Feedback:
    """Exercise 3: the OOD mass (:func:`marlkit.exact.ood_mass`) of the product policy exact OptiDICE extracts on
    XOR (b) (:func:`marlkit.exact.optidice_solution`, α = 1, soft-χ², γ = 0.99)."""
    xor = make_env("xor")
    mu = xor.datasets["b"].joint
    sol = optidice_solution(xor.payoff, mu, 1.0)
    expected = ood_mass(sol["joint_policy"], mu)
    fb = check_number(answer, expected, name="the OOD mass of OptiDICE's extracted policy on XOR (b)", atol=5e-3,
                      rtol=0)
    if fb.correct or answer is None or "expected a number" in fb.message or "finite" in fb.message:
        return fb
    value = float(answer)
    bc = ood_mass(np.outer(*marginals(mu)), mu)
    if abs(value) < 5e-3:
        why = ("the ratio w* is zero off the data, but the agents imitate only the marginals of ρ* = μ·w* and act "
               "independently: their product also plays the OOD (B,B).")
    elif abs(value - bc) < 5e-3:
        why = (f"{value:.3g} is the OOD mass of BC's product of μ's marginals; OptiDICE's weights w* reweight the "
               "data before the marginals are taken: take the product of the marginals of ρ* = μ·w*.")
    else:
        why = "take solution['joint_policy'] (the product of ρ*'s marginals) and sum it where μ is zero."
    return Feedback(False, fb.message, why)


def quiz() -> Quiz:
    """The self-check quiz of notebook 06; the numbers in its options come from the oracles."""
    xor, mne = make_env("xor"), make_env("mne")
    opti = optidice_solution(xor.payoff, xor.datasets["b"].joint, 1.0)["return"]
    alber = alberdice_joint_action(xor, "b")
    return Quiz([
        Question("On XOR (b) OMAR lands on the OOD (B,B); what keeps AlberDICE off it?",
                 ["a larger CQL penalty", "each agent's best response pays α·KL(π_{-i} ‖ d(·|a_i)): an action whose "
                  "in-data partners miss the teammate's support gets an infinite KL, so probability 0",
                  "a linear mixer", "it imitates the data's marginals"], 1,
                 f"the teammate's policy enters through the conditional data distribution; exact AlberDICE ends at "
                 f"{alber}."),
        Question("On M-NE imbalanced, which methods end at the local optimum (A,A) = 5 (InSPO, Table 2)?",
                 ["only BC", "AlberDICE, CFCQL, OMAR and OMIGA", "OptiDICE only", "none: all reach (C,C) = 20"], 1,
                 "they all stay near the data's mode A (AlberDICE: best responses to a teammate playing A); only "
                 "InSPO's entropy reaches 20 there — and the joint-action OptiDICE, whose ratio behaves like "
                 "exp(r/α)."),
        Question(f"Exact OptiDICE's ρ* = μ·w* on XOR (b) puts most of its mass on the optimal (A,B) and (B,A), yet "
                 f"its extracted policy returns only {opti:.3f}. Why?",
                 ["α is too small", "weighted BC of a product policy keeps only the marginals of ρ* = μ·w*, and the "
                  "two optimal joint actions average out", "the soft-χ² divergence is biased",
                  "the data has no (A,B)"], 1,
                 "π_i is the marginal of ρ* on agent i; a product of marginals cannot represent the two-peaked ρ*."),
        Question("CFCQL's conservative penalty for agent i replaces …",
                 ["the joint action by every joint action", "agent i's action by each of its actions, keeping the "
                  "other agents' dataset actions", "no action: it penalises V", "the mixer by a linear one"], 1,
                 "counterfactual: log Σ_{a'_i} exp Q_tot(s, (a'_i, a_{−i})) − Q_tot(s, a), weighted by λ_i, so the "
                 "penalty does not grow with the joint action space."),
    ])
