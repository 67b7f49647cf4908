"""Exercises and quiz of notebook 03 (DICE occupancy ratios and ComaDICE), checked against
:mod:`marlkit.exact.dice`.

Reference: Bui, Nguyen, Mai 2025, "ComaDICE: Offline Cooperative Multi-Agent Reinforcement Learning with
Stationary Distribution Shift Regularization" (ICLR 2025, arXiv:2410.01954): the closed-form ratio
w* = max(0, (f')⁻¹((r − ν)/α)) of the Lagrangian dual (Prop. 4.1) and the local weighted behavior cloning whose
optimum is the marginal of ρ on each agent (Eq. 12, Prop. 4.3).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from marlkit.algos.fdiv import get_fdiv
from marlkit.course.feedback import Feedback, Question, Quiz, check_number
from marlkit.course.matrix_games import CASES, alpha_case_widget, case_game, print_quiz
from marlkit.envs import make_env
from marlkit.exact.dice import comadice_solution, dice_optimum, local_wbc_policies

__all__ = ["CASES", "alpha_case_widget", "case_game", "check_chi2_drop_alpha", "check_chi2_ratio",
           "check_local_wbc", "chi2_drop_alpha", "print_quiz", "quiz"]


def _raised(exc: Exception, case: str) -> Feedback:
    return Feedback(False, f"your function raised {type(exc).__name__}: {exc} on {case}")


def check_chi2_ratio(fn: Callable | None) -> Feedback:
    """Exercise 1: ``fn(advantage, alpha)`` must return the χ² occupancy ratio w* = max(0, (f')⁻¹(A/α)) for an
    array of advantages A = r − ν (elementwise, same shape).

    Checked on XOR (b) and M-NE (imbalanced) at α ∈ {0.5, 1, 5}: the advantages are r − ν* on the data's support
    with ν* the multiplier of :func:`marlkit.exact.dice_optimum` (χ²), and the answer must match the oracle's ratios
    (max abs error ≤ 1e-6).
    """
    if fn is None:
        return Feedback(False, "no answer yet for w*(advantage, alpha)", "replace the None in the answer cell")
    if not callable(fn):
        return Feedback(False, f"expected a function (advantage, alpha) -> ratios, got {type(fn).__name__}")
    kl = get_fdiv("kl")
    for env, dataset in [("xor", "b"), ("mne", "imbalanced")]:
        game = make_env(env)
        d = game.datasets[dataset].joint
        supp = d > 0
        for alpha in (0.5, 1.0, 5.0):
            case = f"{env} ({dataset}), α = {alpha:g}"
            sol = dice_optimum(game.payoff, d, alpha, "chi2")
            adv = game.payoff[supp] - sol["nu"]
            want = sol["w"][supp]
            try:
                got = np.asarray(fn(adv.copy(), alpha), dtype=float)
            except Exception as exc:  # noqa: BLE001 (the learner's code: report, never raise)
                return _raised(exc, case)
            if got.shape != want.shape:
                return Feedback(False, f"{case}: got shape {got.shape} for {want.shape} advantages",
                                "apply the formula elementwise (numpy operations, np.maximum).")
            if np.abs(got - want).max() <= 1e-6:
                continue
            if (got < -1e-12).any():
                why = ("some of your ratios are negative: an occupancy ratio ρ/d cannot be, so χ² truncates — "
                       "w* = max(0, (f')⁻¹(A/α)); actions with low advantage get exactly zero weight.")
            elif np.allclose(got, kl.ratio(adv / alpha)):
                why = "exp(A/α − 1) is KL's ratio ((f')⁻¹ of f = x log x); for χ², f(x) = ½(x − 1)², f'(x) = x − 1."
            elif np.allclose(got, adv / alpha):
                why = "f'(x) = x − 1 for f = ½(x − 1)², so (f')⁻¹(y) = y + 1: you dropped the + 1."
            else:
                k = int(np.abs(got - want).argmax())
                why = (f"at advantage A = {adv[k]:.4g} the oracle's ratio is {want[k]:.4g}, yours {got[k]:.4g}: invert "
                       "f'(x) = x − 1 at y = A/α and clip at zero.")
            return Feedback(False, f"{case}: your χ² ratios differ from the DICE oracle", why)
    return Feedback(True, "w* = max(0, A/α + 1) matches the χ² DICE oracle on XOR (b) and M-NE (imbalanced) at "
                          "α = 0.5, 1, 5")


def _w_aa(alpha: float) -> float:
    xor = make_env("xor")
    return float(dice_optimum(xor.payoff, xor.datasets["b"].joint, alpha, "chi2")["w"][0, 0])


def chi2_drop_alpha(iterations: int = 60) -> float:
    """The α at or below which the χ² DICE optimum on XOR (b) gives (A,A) zero weight (w*(A,A) = 0), by bisection on
    log α over [10⁻², 10²] with :func:`marlkit.exact.dice_optimum` (w*(A,A) grows with α, so the set where it is
    zero is an interval)."""
    lo, hi = -2.0, 2.0
    if _w_aa(10.0 ** lo) > 1e-12 or _w_aa(10.0 ** hi) <= 1e-12:
        raise ValueError("w*(A,A) does not switch from zero to positive on α in [1e-2, 1e2]")
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if _w_aa(10.0 ** mid) > 1e-12 else (mid, hi)
    return float(10.0 ** (0.5 * (lo + hi)))


def check_chi2_drop_alpha(answer) -> Feedback:
    """Exercise 2: the largest α at which the χ² DICE optimum on XOR (b) drops (A,A) (w*(A,A) = 0)."""
    expected = chi2_drop_alpha()
    name = "the α below which χ² drops (A,A) on XOR (b)"
    fb = check_number(answer, expected, name=name, rtol=0.02)
    if fb.correct or answer is None or "expected a number" in fb.message or "finite" in fb.message:
        return fb
    value = float(answer)
    if value <= 0:
        return Feedback(False, f"{name}: α must be positive, got {value:g}", "α weights the divergence: α > 0.")
    xor = make_env("xor")
    sol = dice_optimum(xor.payoff, xor.datasets["b"].joint, value, "chi2")
    if value > expected:
        why = (f"at α = {value:.4g} w*(A,A) is still {sol['w'][0, 0]:.3f} > 0 (ν* = {sol['nu']:.3f}): large α keeps "
               "every ratio near 1. While all three ratios are positive, Σ d·w* = 1 fixes ν*; (A,A) drops when "
               "its ratio −ν*/α + 1 reaches 0.")
    else:
        why = (f"at α = {value:.4g} w*(A,A) is 0, but it is also 0 for somewhat larger α: find where −ν*/α + 1 = 0 "
               "with ν* from Σ d·w* = 1 while all three ratios are positive.")
    return Feedback(False, fb.message, why)


def check_local_wbc(fn: Callable | None) -> Feedback:
    """Exercise 3: ``fn(rho)`` must return the optimal local weighted-BC policies ``[π_1, π_2]`` for an occupancy
    table ``rho [A_1, A_2]`` (Eq. 12: π_i(a_i) ∝ Σ_{a_-i} ρ(a)).

    Checked against :func:`marlkit.exact.local_wbc_policies` on ComaDICE's exact occupancies of XOR (b) (χ², α = 0.5)
    and M-NE (imbalanced) (soft-χ², α = 5), at γ = 0 (Σρ = 1) and γ = 0.99 (Σρ = 1 − γ).
    """
    if fn is None:
        return Feedback(False, "no answer yet for the local weighted-BC policies", "replace the None in the answer cell")
    if not callable(fn):
        return Feedback(False, f"expected a function rho -> [pi_1, pi_2], got {type(fn).__name__}")
    for env, dataset, alpha, f in [("xor", "b", 0.5, "chi2"), ("mne", "imbalanced", 5.0, "soft-chi2")]:
        game = make_env(env)
        d = game.datasets[dataset].joint
        for gamma in (0.0, 0.99):
            case = f"{env} ({dataset}), {f}, α = {alpha:g}, γ = {gamma:g}"
            rho = comadice_solution(game.payoff, d, alpha, f, gamma=gamma)["rho"]
            want = local_wbc_policies(rho)
            try:
                got = [np.asarray(p, dtype=float) for p in fn(rho.copy())]
            except Exception as exc:  # noqa: BLE001 (the learner's code: report, never raise)
                return _raised(exc, case)
            if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want)):
                return Feedback(False, f"{case}: expected {len(want)} policies of {want[0].shape[0]} actions",
                                "return one probability vector per agent, [π_1, π_2].")
            if max(np.abs(g - w).max() for g, w in zip(got, want)) <= 1e-6:
                continue
            sums = [float(g.sum()) for g in got]
            if not np.allclose(sums, 1.0):
                why = (f"your policies sum to {[round(s, 4) for s in sums]}: ρ sums to {rho.sum():.3g} here "
                       "(1 − γ with one-step episodes), so normalise each marginal.")
            elif np.allclose(got[0], want[1]) and np.allclose(got[1], want[0]):
                why = "agents swapped: agent 1 (rows) sums ρ over agent 2's actions (columns), i.e. rho.sum(axis=1)."
            else:
                why = ("maximising Σ_a ρ(a) log π_i(a_i) over a distribution π_i gives π_i(a_i) ∝ Σ_{a_-i} ρ(a): the "
                       "marginal of ρ on agent i.")
            return Feedback(False, f"{case}: your local policies differ from the weighted-BC optimum", why)
    return Feedback(True, "your local weighted-BC policies match the marginals of ρ on XOR (b) and M-NE (imbalanced), "
                          "for Σρ = 1 and Σρ = 1 − γ")


def quiz() -> Quiz:
    """The self-check quiz of notebook 03."""
    return Quiz([
        Question("Where the dataset has d(a) = 0, the DICE occupancy ρ(a) = d(a)·w*(a) is …",
                 ["positive if r(a) is large", "0 for every f and α: the optimum is in-sample",
                  "1/|A|", "equal to μ(a)"], 1,
                 "ρ = d·w*, so ρ vanishes wherever d does, whatever the ratio."),
        Question("Which f-divergence gives low-advantage joint actions exactly zero weight?",
                 ["χ²: w* = max(0, A/α + 1)", "KL: w* = exp(A/α − 1)", "soft-χ²", "all three"], 0,
                 "χ²'s (f')⁻¹ is linear and crosses zero, so the max(0, ·) truncates; KL and soft-χ² stay positive."),
        Question("As α → ∞, the ratios w* tend to …",
                 ["0", "1 on the data's support: ρ → d, behavior cloning", "the greedy joint action", "∞"], 1,
                 "a heavy divergence penalty keeps ρ on d, and ρ/d → 1."),
        Question("When does the product of the local weighted-BC policies equal ρ?",
                 ["always (Prop. 4.3)", "when ρ is itself a product of its marginals", "only for χ²",
                  "when α is small"], 1,
                 "Prop. 4.3 gives the best *product* policy; it equals ρ only if ρ factorises (not on XOR (b) with χ², "
                 "where ρ keeps (A,B) and (B,A) only)."),
    ])
