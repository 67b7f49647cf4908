"""Notebook 05 (offline decentralized MARL): exercises checked against the exact λ_vd/λ_tn tables, the
self-check quiz, the transition-bias explorer widget and the Differential Game summary helpers.

Source: J. Jiang, Z. Lu, "Offline Decentralized Multi-Agent Reinforcement Learning", arXiv:2108.01832
(Sec. 3.3, Sec. 5.1 Tables 2–4, Sec. 5.4). The oracle is :mod:`marlkit.exact.decentralized`.

Exercises (each ``check_*`` returns a :class:`~marlkit.course.feedback.Feedback`):

1. :func:`check_vd_region` — the region of behavior policies (μ¹(a1), μ²(a1)) where value deviation alone
   (unclipped λ_vd, no λ_tn) makes the independent greedy agents choose the optimum (a2, a1);
2. :func:`check_epsilon_switch` — the optimism level ε (λ_vd clipped to [1 − ε, 1 + ε], no λ_tn) at which
   agent 1's greedy action switches from a1 to a2 with the paper's behavior policies.
"""

from __future__ import annotations

import functools
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np

from marlkit.course.feedback import Feedback, Question, Quiz, check_number
from marlkit.course.sequential import quiz_sheet
from marlkit.exact.decentralized import decentralized_tables, greedy_joint

__all__ = [
    "GRID",
    "OPTIMUM",
    "PAYOFF",
    "QUIZ",
    "agent_values",
    "check_epsilon_switch",
    "check_vd_region",
    "epsilon_switch",
    "grade_quiz",
    "plot_vd_region",
    "recovers_optimum",
    "seed_summary",
    "transition_bias_explorer",
]

#: the two-agent game of Sec. 5.1: rows agent 1's action, columns agent 2's (a1, a2)
PAYOFF = np.array([[1.0, 5.0], [6.0, 1.0]])
#: its optimal joint action (a2, a1), as indices
OPTIMUM = (1, 0)
#: the (μ¹(a1), μ²(a1)) grid the region checker compares on: 0.05, 0.10, ..., 0.95 for each agent
GRID = np.round(np.linspace(0.05, 0.95, 19), 10)


def _behaviors(mu1: float, mu2: float) -> list[np.ndarray]:
    return [np.array([mu1, 1.0 - mu1]), np.array([mu2, 1.0 - mu2])]


def agent_values(mu1: float, mu2: float, vd: bool = True, tn: bool = False, epsilon: float | None = None
                 ) -> list[np.ndarray]:
    """Every agent's Q_i(a_i) ``[2]`` on the Sec. 5.1 game under a weighting (exact, Sec. 3.3 fixed point).

    Args:
        mu1, mu2: behavior probability of a1 for agent 1 and agent 2.
        vd, tn: apply λ_vd / λ_tn; epsilon: clip λ_vd to [1 − ε, 1 + ε] (None: unclipped).
    """
    return [t.values for t in decentralized_tables(PAYOFF, _behaviors(mu1, mu2), vd=vd, tn=tn, epsilon=epsilon)]


def recovers_optimum(mu1: float, mu2: float, vd: bool = True, tn: bool = False, epsilon: float | None = None
                     ) -> bool:
    """Oracle: do the agents' independent greedy choices under the weighting form the optimum (a2, a1)?"""
    tables = decentralized_tables(PAYOFF, _behaviors(mu1, mu2), vd=vd, tn=tn, epsilon=epsilon)
    return greedy_joint(PAYOFF, tables)[0] == OPTIMUM


def _name(joint) -> str:
    return "(" + ", ".join(f"a{a + 1}" for a in joint) + ")"


@functools.lru_cache(maxsize=None)
def _oracle_grid(vd: bool, tn: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(region [G, G] bool, decided [G, G] bool)`` over :data:`GRID` (index [i, j] = (GRID[i], GRID[j])).

    ``decided`` is False where an agent's two action values tie within 1e-9 (the greedy choice is arbitrary).
    """
    region = np.zeros((len(GRID), len(GRID)), dtype=bool)
    decided = np.ones_like(region)
    for i, m1 in enumerate(GRID):
        for j, m2 in enumerate(GRID):
            vals = agent_values(m1, m2, vd=vd, tn=tn)
            decided[i, j] = all(abs(v[0] - v[1]) > 1e-9 for v in vals)
            region[i, j] = recovers_optimum(m1, m2, vd=vd, tn=tn)
    region.flags.writeable = decided.flags.writeable = False
    return region, decided


def _learner_grid(fn) -> tuple[np.ndarray | None, Feedback | None]:
    out = np.zeros((len(GRID), len(GRID)), dtype=bool)
    for i, m1 in enumerate(GRID):
        for j, m2 in enumerate(GRID):
            try:
                value = fn(float(m1), float(m2))
            except Exception as exc:  # the learner's code: report, never raise
                return None, Feedback(False, f"your function raised {type(exc).__name__}: {exc} at "
                                             f"(μ¹, μ²) = ({m1:.2f}, {m2:.2f})",
                                      "it must accept two floats in (0, 1) and return True/False")
            try:
                out[i, j] = bool(value)
            except (TypeError, ValueError):
                return None, Feedback(False, f"your function returned {type(value).__name__}, not a bool")
    return out, None


def check_vd_region(fn: Callable | None) -> Feedback:
    """Exercise 1: ``fn(mu1, mu2) -> bool`` must be True exactly where λ_vd alone (unclipped, no λ_tn) recovers
    the optimum (a2, a1) on the Sec. 5.1 game; ``mu1``, ``mu2`` are the behavior probabilities of a1.

    Compared with the exact oracle (:func:`recovers_optimum`, vd=True, tn=False) on the 19 × 19 :data:`GRID`
    (points where an agent's two values tie are skipped). When wrong, ``why`` names the misclassified points with
    the oracle's values there, and recognises the regions of the other weightings.
    """
    if fn is None:
        return Feedback(False, "no answer yet for the λ_vd region", "replace the None in the answer cell")
    if not callable(fn):
        return Feedback(False, f"expected a function (mu1, mu2) -> bool, got {type(fn).__name__}")
    got, fail = _learner_grid(fn)
    if fail is not None:
        return fail
    want, decided = _oracle_grid(vd=True, tn=False)
    wrong = (got != want) & decided
    n = int(decided.sum())
    if not wrong.any():
        return Feedback(True, f"your region matches the exact λ_vd oracle on all {n} grid points "
                              f"({int((want & decided).sum())} of them recover (a2, a1))")
    for label, (vd, tn) in {"the unweighted dataset (Table 2)": (False, False),
                            "both weights, λ_vd·λ_tn (Table 4)": (True, True)}.items():
        other, other_decided = _oracle_grid(vd, tn)
        mask = decided & other_decided
        if (got[mask] == other[mask]).all():
            return Feedback(False, f"your region is the one of {label}, not of λ_vd alone",
                            "λ_vd alone multiplies each outcome's dataset probability by λ_vd = r/Q (unclipped, "
                            "positive payoffs), so Q_i(a_i) = E_P[r²] / E_P[r] under the teammate's μ")
    idx = np.argwhere(wrong)
    lines = []
    for i, j in idx[:3]:
        m1, m2 = GRID[i], GRID[j]
        v1, v2 = agent_values(m1, m2)
        joint = tuple(int(np.argmax(v)) for v in (v1, v2))
        lines.append(f"(μ¹, μ²) = ({m1:.2f}, {m2:.2f}): Q¹ = {np.round(v1, 2).tolist()}, "
                     f"Q² = {np.round(v2, 2).tolist()} → {_name(joint)}, you said {bool(got[i, j])}")
    return Feedback(False, f"your region differs from the oracle on {len(idx)} of {n} grid points",
                    "; ".join(lines))


def epsilon_switch(mu1: float = 0.8, mu2: float = 0.4, lo: float = 0.0, hi: float = 2.0, tol: float = 1e-6
                   ) -> float:
    """Oracle: the smallest optimism level ε at which agent 1's greedy action under clipped λ_vd (no λ_tn)
    becomes a2, by bisection on [lo, hi].

    Raises:
        ValueError: if agent 1 does not play a1 at ``lo`` and a2 at ``hi`` (no switch in the interval).
    """
    def plays_a2(eps: float) -> bool:
        return int(np.argmax(agent_values(mu1, mu2, vd=True, tn=False, epsilon=eps)[0])) == 1

    if plays_a2(lo) or not plays_a2(hi):
        raise ValueError(f"agent 1 does not switch from a1 to a2 for ε in [{lo}, {hi}] at μ = ({mu1}, {mu2})")
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if plays_a2(mid):
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def check_epsilon_switch(answer, mu1: float = 0.8, mu2: float = 0.4, rtol: float = 0.02) -> Feedback:
    """Exercise 2: ``answer`` ≈ the ε at which agent 1 (λ_vd clipped to [1 − ε, 1 + ε], no λ_tn, behavior
    policies (μ¹, μ²)) switches from a1 to a2 (:func:`epsilon_switch`); within ``rtol``. When wrong, ``why``
    gives agent 1's exact values at the answer."""
    expected = epsilon_switch(mu1, mu2)
    why = ""
    try:
        eps = float(answer)
        if np.isfinite(eps) and eps >= 0:
            q1 = agent_values(mu1, mu2, vd=True, tn=False, epsilon=eps)[0]
            plays = "a2" if np.argmax(q1) == 1 else "a1"
            why = (f"at ε = {eps:.3g} agent 1's values are Q¹ = {np.round(q1, 3).tolist()}, so it plays {plays}; "
                   "find where Q¹(a1) = Q¹(a2)")
    except (TypeError, ValueError):
        pass
    return check_number(answer, expected, name="the ε where agent 1 switches to a2", rtol=rtol, why=why)


QUIZ = Quiz([
    Question("Why are agent i's transition probabilities P_Bi(s'|s, a_i) biased?",
             ["its own actions were random", "the next states were produced by the teammates' behavior policies, "
              "not by the policies they will learn", "the reward is noisy"], 1,
             "agent i's data mixes over what its teammates did in the data, which changes once they learn"),
    Question("What does value deviation λ_vd do?",
             ["makes next states better than Q_i more likely (optimism about the teammates)",
              "makes every observed next state equally likely", "clips the TD error"], 0,
             "λ_vd = clip(1 + (V(s') − Q_i)/|Q_i|, 1 − ε, 1 + ε) up-weights better-than-expected outcomes"),
    Question("With both weights (unclipped) on the Sec. 5.1 game, how does the greedy joint action depend on "
             "interior behavior policies (0 < μ¹, μ² < 1)?",
             ["it is (a2, a1) for every such pair", "it is (a2, a1) only near (0.8, 0.4)", "it follows μ's mode"], 0,
             "λ_tn makes every observed outcome equally likely, so μ no longer enters the values"),
    Question("With the paper's μ = (0.8, 0.4), λ_vd alone (Table 3) gives ...",
             ["(a2, a1), payoff 6", "(a1, a2), payoff 5", "(a2, a2), payoff 1"], 2,
             "agent 1 switches to a2, but agent 2's data, skewed by agent 1's behavior, still favours a2"),
])


def grade_quiz(choices) -> str:
    """:func:`marlkit.course.sequential.quiz_sheet` of this notebook's :data:`QUIZ`."""
    return quiz_sheet(QUIZ, choices)


def plot_vd_region(fn: Callable | None = None, ax=None):
    """The exact regions of (μ¹(a1), μ²(a1)) where λ_vd alone recovers (a2, a1) (shaded), with the learner's
    ``fn`` drawn on top (crosses where it says True), and the paper's behavior policies (star).

    Returns:
        the figure.
    """
    want, _ = _oracle_grid(vd=True, tn=False)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.8))
    step = GRID[1] - GRID[0]
    extent = (GRID[0] - step / 2, GRID[-1] + step / 2, GRID[0] - step / 2, GRID[-1] + step / 2)
    ax.imshow(want.T, origin="lower", extent=extent, cmap="Greens", vmin=0, vmax=1.5, aspect="auto")
    if fn is not None:
        got, fail = _learner_grid(fn)
        if got is not None:
            ii, jj = np.nonzero(got)
            ax.plot(GRID[ii], GRID[jj], "x", color="k", ms=4, label="your region")
            ax.legend(fontsize=8, loc="upper right")
    ax.plot([0.8], [0.4], "*", color="C3", ms=12)
    ax.set_xlabel("μ¹(a1)")
    ax.set_ylabel("μ²(a1)")
    ax.set_title("λ_vd alone recovers (a2, a1): green", fontsize=9)
    return ax.figure


def transition_bias_explorer():
    """The notebook's widget: sliders for μ¹(a1), μ²(a1) and ε (redrawn on release); each view prints every
    weighting's greedy joint action and its payoff, then draws :func:`marlkit.eval.plots.plot_transition_bias`."""
    from ipywidgets import FloatSlider, interactive

    from marlkit.eval.plots import plot_transition_bias

    def view(mu1, mu2, epsilon):
        _, rows = plot_transition_bias(mu1, mu2, epsilon)
        seen = {}
        for r in rows:
            seen.setdefault(r["weighting"], (r["greedy"], r["joint_return"]))
        print(f"μ¹(a1) = {mu1:.2f}, μ²(a1) = {mu2:.2f}, ε = {epsilon:.1f}:  " +
              "; ".join(f"{w}: {g} → {ret:g}" for w, (g, ret) in seen.items()))
        plt.show()

    def slider(value, lo, hi, step, name):
        return FloatSlider(value=value, min=lo, max=hi, step=step, continuous_update=False, description=name)

    return interactive(view, mu1=slider(0.8, 0.05, 0.95, 0.05, "μ¹(a1)"), mu2=slider(0.4, 0.05, 0.95, 0.05, "μ²(a1)"),
                       epsilon=slider(0.9, 0.1, 2.0, 0.1, "ε"))


def seed_summary(df, by=("env", "algo"), value: str = "return"):
    """Mean, sample std and count of ``value`` over seeds for each ``by`` group (a long DataFrame, one row per
    run), rounded to 2 decimals."""
    return df.groupby(list(by))[value].agg(["mean", "std", "count"]).round(2)
