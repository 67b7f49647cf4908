"""Exercises and quiz of notebook 02 (OMIGA's linear value decomposition), checked against
:mod:`marlkit.exact.omiga`.

Reference: Wang, Xu, Zheng, Zhan 2023, "Offline Multi-Agent Reinforcement Learning with Implicit Global-to-Local
Value Regularization" (OMIGA, arXiv:2307.11620): the decomposition Q_tot = Σ_i w_i Q_i + b (Eq. 8), the local
policies π_i ∝ μ_i exp(w_i(Q_i − V_i)/α) (Eq. 9) and the local value V_i* = (α/w_i) log E_{μ_i}[exp(w_i Q_i/α)]
(Eq. 10, the minimizer of Eq. 12).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq

from marlkit.course.feedback import Feedback, Question, Quiz, check_number
from marlkit.course.matrix_games import CASES, alpha_case_widget, case_game, print_quiz
from marlkit.envs import make_env
from marlkit.envs.matrix import MatrixGame
from marlkit.exact.matrix import ood_mass
from marlkit.exact.omiga import local_value, omiga_solution

__all__ = ["CASES", "alpha_case_widget", "case_game", "check_fitted_value", "check_local_value",
           "check_ood_alpha", "omiga_ood_mass", "ood_threshold_alpha", "print_quiz", "quiz"]


def omiga_ood_mass(game: MatrixGame, dataset: str, alpha: float) -> float:
    """OOD mass of exact OMIGA's product policy ⊗ π_i at ``alpha`` (its probability on joint actions d never shows)."""
    d = game.datasets[dataset].joint
    return ood_mass(omiga_solution(game.payoff, d, alpha).joint, d)


def ood_threshold_alpha(game: MatrixGame | None = None, dataset: str = "b", level: float = 0.5) -> float:
    """The largest α at which exact OMIGA's product policy puts more than ``level`` on OOD joint actions
    (default: XOR (b), where the OOD joint action is (B,B)). Root-finding on log α over [10⁻², 10²].

    Raises:
        ValueError: if the OOD mass does not cross ``level`` on that range.
    """
    game = game or make_env("xor")
    g = lambda log_a: omiga_ood_mass(game, dataset, 10.0 ** log_a) - level
    lo, hi = -2.0, 2.0
    if np.sign(g(lo)) == np.sign(g(hi)):
        raise ValueError(f"OMIGA's OOD mass does not cross {level} for α in [1e-2, 1e2]")
    return float(10.0 ** brentq(g, lo, hi, xtol=1e-12))


def _number_failed(fb: Feedback, answer) -> bool:
    return not fb.correct and (answer is None or "expected a number" in fb.message or "finite" in fb.message)


def check_fitted_value(answer) -> Feedback:
    """Exercise 1: the fitted Q_tot(A, A) = Σ_i w_i Q_i(A) + b of OMIGA's decomposition on XOR (c), where the data
    holds all four joint actions uniformly and the payoff is not additive."""
    xor = make_env("xor")
    sol = omiga_solution(xor.payoff, xor.datasets["c"].joint, 1.0)
    expected = float(sol.q_tot[0, 0])
    fb = check_number(answer, expected, name="the fitted Q_tot(A,A) on XOR (c)", atol=1e-3, rtol=0)
    if fb.correct or _number_failed(fb, answer):
        return fb
    value = float(answer)
    true = float(xor.payoff[0, 0])
    if abs(value - true) < 1e-3:
        why = (f"{true:g} is the true payoff r(A,A). XOR is not additive, so the least-squares fit cannot match all "
               "four cells: Q_tot(A,A) = b + w_1Q_1(A) + w_2Q_2(A), read off the fitted terms printed above.")
    else:
        why = ("add the fitted terms: b + w_1Q_1(A) + w_2Q_2(A) (the table above prints w_1Q_1 and b per dataset; "
               "agent 2's terms equal agent 1's by symmetry).")
    return Feedback(False, fb.message, why)


def check_ood_alpha(answer) -> Feedback:
    """Exercise 2: the largest α at which exact OMIGA on XOR (b) plays the OOD joint action (B,B) with probability
    above 1/2."""
    xor = make_env("xor")
    expected = ood_threshold_alpha(xor, "b", 0.5)
    name = "the largest α at which OMIGA on XOR (b) plays (B,B) with probability > 1/2"
    fb = check_number(answer, expected, name=name, rtol=0.02)
    if fb.correct or _number_failed(fb, answer):
        return fb
    value = float(answer)
    if value <= 0:
        return Feedback(False, f"{name}: α must be positive, got {value:g}", "α weights a KL penalty: α > 0.")
    mass = omiga_ood_mass(xor, "b", value)
    if value > expected:
        why = (f"at α = {value:.4g} OMIGA plays (B,B) with probability {mass:.3f} ≤ 1/2: larger α keeps each π_i "
               "near μ_i (μ_i(B) = 1/3); the crossing is at a smaller α.")
    else:
        why = (f"at α = {value:.4g} the OOD mass is already {mass:.3f}; it stays above 1/2 for somewhat larger α too: "
               "solve π_1(B)·π_2(B) = 1/2 with π_i(B) ∝ μ_i(B)·exp(w_iQ_i(B)/α).")
    return Feedback(False, fb.message, why)


def check_local_value(fn: Callable | None) -> Feedback:
    """Exercise 3: ``fn(q, mu, w, alpha)`` must return V_i* = (α/w) log E_{a∼μ}[exp(w Q(a)/α)] (Eq. 10), the
    minimizer of Eq. 12. Checked against :func:`marlkit.exact.local_value` on the local tables of XOR (b) and
    M-NE (imbalanced) at α ∈ {0.1, 1, 10} and w ∈ {0.5, 2} (relative error ≤ 1e-6)."""
    if fn is None:
        return Feedback(False, "no answer yet for V*(q, mu, w, alpha)", "replace the None in the answer cell")
    if not callable(fn):
        return Feedback(False, f"expected a function (q, mu, w, alpha) -> float, got {type(fn).__name__}")
    for env, dataset in [("xor", "b"), ("mne", "imbalanced")]:
        game = make_env(env)
        sol = omiga_solution(game.payoff, game.datasets[dataset].joint, 1.0)
        q, mu = sol.q_local[0], sol.mus[0]
        for w in (0.5, 2.0):
            qw = q / w  # same product w·Q as the fit, other weight
            for alpha in (0.1, 1.0, 10.0):
                case = f"{env} ({dataset}) agent 1, w = {w:g}, α = {alpha:g}"
                want = local_value(qw, mu, w, alpha)
                try:
                    got = float(fn(qw.copy(), mu.copy(), w, alpha))
                except Exception as exc:  # noqa: BLE001 (the learner's code: report, never raise)
                    return Feedback(False, f"your function raised {type(exc).__name__}: {exc} on {case}")
                if abs(got - want) <= 1e-6 * max(1.0, abs(want)):
                    continue
                mean_q, max_q = float(mu @ qw), float(qw[mu > 0].max())
                if not np.isfinite(got):
                    why = "exp(wQ/α) overflows for small α: factor out the largest exponent (log-sum-exp)."
                elif abs(got - mean_q) < 1e-6 * max(1.0, abs(mean_q)):
                    why = "E_μ[Q] is the α → ∞ limit of V*; for finite α take the log of the mean of exp(wQ/α)."
                elif abs(got - max_q) < 1e-6 * max(1.0, abs(max_q)):
                    why = "max Q is the α → 0 limit of V*; for finite α the soft maximum (α/w)·log E_μ[exp(wQ/α)]."
                else:
                    why = (f"you return {got:.6g}, the oracle {want:.6g}: setting dEq.12/dV = 0 gives "
                           "E_μ[exp(w(Q − V)/α)] = 1; solve for V.")
                return Feedback(False, f"{case}: V* differs from the exact minimizer of Eq. 12", why)
    return Feedback(True, "V* = (α/w) log E_μ[exp(wQ/α)] matches the exact minimizer on XOR (b) and M-NE "
                          "(imbalanced) for w = 0.5, 2 and α = 0.1, 1, 10")


def quiz() -> Quiz:
    """The self-check quiz of notebook 02; the numbers in its options come from the oracle."""
    xor = make_env("xor")
    sol = omiga_solution(xor.payoff, xor.datasets["b"].joint, 1.0)
    q_bb = float(sol.q_tot[1, 1])
    return Quiz([
        Question("OMIGA's additive fit on XOR (b) assigns the unseen joint action (B,B) the value …",
                 [f"{float(xor.payoff[1, 1]):g}, the true payoff", "0: unseen actions get no value",
                  f"{q_bb:g}: g_1(B) + g_2(B) + b, extrapolated from the three seen joint actions",
                  "it is undefined"], 2,
                 "the additive model is pinned by (A,A), (A,B), (B,A) and then predicts (B,B) as the sum of its "
                 "B-terms, far above the true −2."),
        Question("Which parts of the decomposition do OMIGA's local policies depend on?",
                 ["w_i and Q_i separately", "only the products w_i·Q_i", "only the offset b", "only μ"], 1,
                 "π_i ∝ μ_i exp(w_i(Q_i − V_i)/α) and V_i is also a function of w_iQ_i: rescaling w_i and Q_i "
                 "inversely changes nothing."),
        Question("Why does the reverse-KL regularized joint optimum factorise into local policies (Prop. 4.3)?",
                 ["μ is uniform", "exp of a sum of per-agent terms is a product of per-agent terms",
                  "α is large", "the agents share one network"], 1,
                 "with μ_tot = ⊗μ_i and Q_tot = Σ w_iQ_i + b, μ_tot·exp(Q_tot/α) = Π_i μ_i exp(w_iQ_i/α) up to a "
                 "constant."),
        Question("As α → 0 on XOR (b), exact OMIGA's product policy plays …",
                 ["(A,B) or (B,A), the in-sample optimum", "(B,B), the greedy joint action of the additive fit",
                  "the data's distribution", "(A,A)"], 1,
                 "each agent's w_iQ_i(B) exceeds w_iQ_i(A) by 1, so both play B: the joint action the data never "
                 "shows, worth −2."),
    ])
