"""Exercises, quiz and widget helpers of notebook 01 (matrix games, OOD joint actions, behavior regularization).

Every checker recomputes its expected answer from the exact oracles of :mod:`marlkit.exact` (nothing is
hard-coded), so the exercises stay right if a game or dataset changes. The notebooks' widgets pick a *case* —
a game together with one of its datasets — from :data:`CASES` (:func:`case_game`, :func:`alpha_case_widget`).

References: the behavior-regularized optimum π* ∝ μ·exp(r/α) is Eq. 7 of Wang et al. 2023, "Offline Multi-Agent
Reinforcement Learning with Implicit Global-to-Local Value Regularization" (OMIGA, arXiv:2307.11620); the XOR
game is Fig. 1 of Liu et al. 2025, "Offline Multi-Agent Reinforcement Learning via In-Sample Sequential Policy
Optimization" (InSPO, arXiv:2412.07639).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq

from marlkit.course.feedback import Feedback, Question, Quiz, check_number
from marlkit.envs import make_env
from marlkit.envs.matrix import MatrixGame, expected_return, joint_from_product
from marlkit.exact.matrix import marginals, ood_mass, regularized_optimum

__all__ = ["CASES", "aa_threshold_alpha", "alpha_case_widget", "bc_product_return", "case_game",
           "check_aa_threshold", "check_bc_ood_mass", "check_regularized_optimum", "print_quiz", "quiz"]

#: Widget cases: label → (game, dataset). One dropdown picks both, so no combination is invalid.
CASES: dict[str, tuple[str, str]] = {
    "XOR (a)": ("xor", "a"),
    "XOR (b)": ("xor", "b"),
    "XOR (c)": ("xor", "c"),
    "M-NE balanced": ("mne", "balanced"),
    "M-NE imbalanced": ("mne", "imbalanced"),
    "jiang-lu behavior": ("jiang-lu", "behavior"),
}


def case_game(case: str, cases: dict[str, tuple[str, str]] | None = None) -> tuple[MatrixGame, str]:
    """``(game, dataset name)`` of a case label (e.g. ``"XOR (b)"``) of ``cases`` (default :data:`CASES`).

    Raises:
        ValueError: for a label not in ``cases`` (the message lists them).
    """
    cases = CASES if cases is None else cases
    if case not in cases:
        raise ValueError(f"unknown case {case!r}; choose one of {list(cases)}")
    env, dataset = cases[case]
    return make_env(env), dataset


def alpha_case_widget(view: Callable[[float, str], None], alpha: float, case: str = "XOR (b)",
                      log_range: tuple[float, float] = (-2.0, 2.0), cases=None):
    """An ipywidgets view with one log-scale α slider and one case dropdown, calling ``view(alpha, case)``.

    The slider has ``continuous_update=False``: ``view`` runs when the handle is released, not on every pixel.
    ``view`` should print the number the figure is about (return, OOD mass). Returns the ``interactive`` widget.
    """
    from ipywidgets import Dropdown, FloatLogSlider, interactive

    cases = list(CASES) if cases is None else list(cases)
    slider = FloatLogSlider(value=alpha, base=10, min=log_range[0], max=log_range[1], step=0.05,
                            description="α", continuous_update=False, readout_format=".3g")
    dropdown = Dropdown(options=cases, value=case, description="case")
    return interactive(view, alpha=slider, case=dropdown)


def bc_product_return(game: MatrixGame, dataset: str) -> float:
    """Exact return of behavior cloning's fixed point: the product of the data's per-agent marginals μ^i."""
    return expected_return(game.payoff, marginals(game.datasets[dataset].joint))


def _pi(game: MatrixGame, dataset: str, alpha: float, action=(0, 0)) -> float:
    return float(regularized_optimum(game.payoff, game.datasets[dataset].joint, alpha)[action])


def aa_threshold_alpha(game: MatrixGame | None = None, dataset: str = "b", level: float = 0.05,
                       action=(0, 0)) -> float:
    """The α at which π*(``action``) of π* ∝ μ·exp(r/α) (OMIGA Eq. 7) equals ``level`` (default: (A,A) on XOR (b)).

    Found by root-finding on log α over [10⁻³, 10³] on the exact :func:`~marlkit.exact.regularized_optimum`.
    π*(a) of a sub-optimal in-sample action rises monotonically with α towards μ(a), so below the returned α it is
    under ``level``.

    Raises:
        ValueError: if π*(action) does not cross ``level`` on that range.
    """
    game = game or make_env("xor")
    g = lambda log_a: _pi(game, dataset, 10.0 ** log_a, action) - level
    lo, hi = -3.0, 3.0
    if np.sign(g(lo)) == np.sign(g(hi)):
        raise ValueError(f"π*{action} does not cross {level} for α in [1e-3, 1e3]")
    return float(10.0 ** brentq(g, lo, hi, xtol=1e-12))


# ------------------------------------------------------------------------------------------------ exercises
def check_bc_ood_mass(answer) -> Feedback:
    """Exercise 1: the OOD mass of BC's product policy ⊗ μ^i on XOR (a) — its probability on joint actions the
    dataset never contains (:func:`marlkit.exact.ood_mass` of the product of the data's marginals)."""
    xor = make_env("xor")
    mu = xor.datasets["a"].joint
    product = joint_from_product(marginals(mu))
    expected = ood_mass(product, mu)
    fb = check_number(answer, expected, name="the OOD mass of BC's product policy on XOR (a)", atol=5e-3, rtol=0)
    if fb.correct or answer is None or "expected a number" in fb.message or "finite" in fb.message:
        return fb
    value = float(answer)
    cells = [product[a] for a in map(tuple, np.argwhere(mu <= 0))]
    if abs(value) < 5e-3:
        why = ("BC's agents each imitate their own marginal μ^i = (½, ½) and act independently, so the product "
               "μ^1 ⊗ μ^2 also plays joint actions the data never shows.")
    elif any(abs(value - c) < 5e-3 for c in cells):
        why = (f"that is one OOD joint action; the data {{(A,B), (B,A)}} misses {len(cells)} of them — add the "
               "product's mass on each.")
    else:
        why = "compute μ^1 ⊗ μ^2 from the marginals of the dataset table and sum it where the dataset is zero."
    return Feedback(False, fb.message, why)


def check_aa_threshold(answer) -> Feedback:
    """Exercise 2: the α at which π*(A, A) of π* ∝ μ·exp(r/α) on XOR (b) falls below 0.05 (as α decreases)."""
    xor = make_env("xor")
    expected = aa_threshold_alpha(xor, "b", 0.05)
    name = "the α at which π*(A,A) on XOR (b) falls below 0.05"
    fb = check_number(answer, expected, name=name, rtol=0.02)
    if fb.correct or answer is None or "expected a number" in fb.message or "finite" in fb.message:
        return fb
    value = float(answer)
    if value <= 0:
        return Feedback(False, f"{name}: α must be positive, got {value:g}", "α weights a KL penalty: α > 0.")
    p = _pi(xor, "b", value)
    mu_aa = float(xor.datasets["b"].joint[0, 0])
    if value > expected:
        why = (f"at α = {value:.4g} π*(A,A) is still {p:.3f}: larger α pulls π* toward μ (μ(A,A) = {mu_aa:.3f}); "
               "look at smaller α.")
    else:
        why = (f"at α = {value:.4g} π*(A,A) is already {p:.4f}, well below 0.05: the crossing is at a larger α "
               "(π*(A,A) = 1/(1 + 2·exp(1/α)) on XOR (b)).")
    return Feedback(False, fb.message, why)


def check_regularized_optimum(fn: Callable | None) -> Feedback:
    """Exercise 3: ``fn(payoff, mu, alpha)`` must return π* ∝ μ·exp(r/α) (OMIGA Eq. 7) as a table of the payoff's
    shape. Checked on XOR (b), XOR (c) and M-NE (imbalanced) at α ∈ {0.1, 1, 10} against
    :func:`marlkit.exact.regularized_optimum` (max abs error ≤ 1e-6)."""
    if fn is None:
        return Feedback(False, "no answer yet for π*(payoff, mu, alpha)", "replace the None in the answer cell")
    if not callable(fn):
        return Feedback(False, f"expected a function (payoff, mu, alpha) -> table, got {type(fn).__name__}")
    for env, dataset in [("xor", "b"), ("xor", "c"), ("mne", "imbalanced")]:
        game = make_env(env)
        mu = game.datasets[dataset].joint
        for alpha in (0.1, 1.0, 10.0):
            case = f"{env} ({dataset}), α = {alpha:g}"
            want = regularized_optimum(game.payoff, mu, alpha)
            try:
                got = np.asarray(fn(game.payoff.copy(), mu.copy(), alpha), dtype=float)
            except Exception as exc:  # noqa: BLE001 (the learner's code: report, never raise)
                return Feedback(False, f"your function raised {type(exc).__name__}: {exc} on {case}")
            if got.shape != want.shape:
                return Feedback(False, f"{case}: got shape {got.shape}, expected {want.shape}",
                                "return one probability per joint action, shaped like the payoff table.")
            if not np.isfinite(got).all():
                return Feedback(False, f"{case}: your table has non-finite entries",
                                "exp(r/α) overflows for small α: subtract the largest logit before exponentiating.")
            if np.abs(got - want).max() <= 1e-6:
                continue
            if not np.isclose(got.sum(), 1.0):
                why = f"your table sums to {got.sum():.4g}: normalise it (divide by its sum)."
            elif ood_mass(got, mu) > 1e-6:
                why = (f"your π puts mass {ood_mass(got, mu):.3g} on joint actions μ never shows: π* is μ·exp(r/α), "
                       "a product with μ, so it is zero wherever μ is zero (in-sample).")
            else:
                why = (f"largest gap {np.abs(got - want).max():.3g} to the oracle: π*(a) = μ(a)·exp(r(a)/α) / "
                       "Σ_b μ(b)·exp(r(b)/α).")
            return Feedback(False, f"{case}: your π* differs from the exact optimum", why)
    return Feedback(True, "π* ∝ μ·exp(r/α) matches the exact optimum on XOR (b), XOR (c) and M-NE (imbalanced) "
                          "at α = 0.1, 1, 10")


def print_quiz(quiz: Quiz) -> None:
    """Print a quiz's questions with their numbered options: the static view of :meth:`Quiz.show` (which needs a
    running kernel), and the numbers to write into the grading cell."""
    for i, q in enumerate(quiz.questions, 1):
        print(f"{i}. {q.text}")
        for k, option in enumerate(q.options):
            print(f"     {k}: {option}")


def quiz() -> Quiz:
    """The self-check quiz of notebook 01; the numbers in its options come from the oracles."""
    xor = make_env("xor")
    mu = xor.datasets["b"].joint
    bb = float(np.outer(*marginals(mu))[1, 1])
    return Quiz([
        Question("How often does BC's product policy play the OOD joint action (B,B) on XOR (b)?",
                 ["never: BC imitates the data", f"{bb:.3f} = μ^1(B)·μ^2(B)", "1/3, like every joint action in the data",
                  "always: (B,B) has the largest extrapolated value"], 1,
                 "each agent imitates its own marginal μ^i(B) = 1/3, and independent agents multiply: 1/9."),
        Question("As α → ∞, the behavior-regularized optimum π* ∝ μ·exp(r/α) tends to …",
                 ["the greedy joint action", "the uniform policy", "the data's joint distribution μ",
                  "the product of μ's marginals"], 2,
                 "exp(r/α) → 1, so π* → μ: a large KL weight keeps the policy on the data."),
        Question("What is π*(B,B) on XOR (b) for small α?",
                 ["close to 1: (B,B) is OOD so nothing stops it", "0 for every α: π* = 0 wherever μ = 0",
                  "−2, the payoff", "1/9, as for BC"], 1,
                 "π* multiplies μ, and μ(B,B) = 0: the regularized optimum is in-sample at every α."),
        Question("Why can no pair of independent agents reach π* on XOR (b) at small α?",
                 ["π* puts mass on (A,B) and (B,A) but not on (A,A), (B,B): it is not a product of marginals",
                  "the agents need more data", "α is too small for gradient descent", "π* is OOD"], 0,
                 "a product policy with π^1(A), π^2(A) > 0 for (A,B) and π^1(B), π^2(B) > 0 for (B,A) must also play "
                 "(A,A) and (B,B): coordinating on a correlated optimum is what notebooks 02–05 are about."),
    ])
