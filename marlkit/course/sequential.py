"""Notebook 04 (sequential updates, InSPO): exercises checked against the exact tabular InSPO oracle, the
self-check quiz, the "case" explorer widget and the per-row comparison heatmap.

Source: Z. Liu, Q. Lin, C. Yu, X. Wu, Y. Liang, D. Li, X. Ding, "Offline Multi-Agent Reinforcement Learning via
In-Sample Sequential Policy Optimization", AAAI 2025, arXiv:2412.07639 (Eqs. 12–15, Algorithm 1). The oracle is
:mod:`marlkit.exact.inspo`.

Exercises (each ``check_*`` returns a :class:`~marlkit.course.feedback.Feedback`):

1. :func:`check_resampled_table` — write agent 2's importance-resampled dataset d_ρ (Eq. 15);
2. :func:`check_policy_update` — write the closed-form policy update on a product dataset (Eqs. 12–13);
3. :func:`check_beta_threshold` — locate the entropy temperature β* above which exact sequential InSPO on
   M-NE's imbalanced data no longer stays at the local optimum (A, A).
"""

from __future__ import annotations

from typing import Callable

import matplotlib.pyplot as plt
import numpy as np

from marlkit.course import matrix_games
from marlkit.course.feedback import Feedback, Question, Quiz
from marlkit.envs.matrix import MatrixGame, make_game
from marlkit.exact.inspo import exact_inspo, inspo_agent_update, resampled_table
from marlkit.exact.matrix import marginals

__all__ = [
    "CASES",
    "QUIZ",
    "case_game",
    "check_beta_threshold",
    "check_policy_update",
    "check_resampled_table",
    "grade_quiz",
    "inspo_case_view",
    "inspo_explorer",
    "plot_row_scaled_returns",
    "quiz_sheet",
    "stays_at_local_optimum",
]

#: The explorer's cases: the matrix-game cases with both agents' actions in {A, B, C} or {A, B} (every one but
#: the Jiang-Lu game), each a label → (game, dataset) pair, so no combination can fail.
CASES: dict[str, tuple[str, str]] = {k: v for k, v in matrix_games.CASES.items() if v[0] != "jiang-lu"}


def case_game(case: str) -> tuple[MatrixGame, str]:
    """The game and dataset name of an explorer ``case`` (a key of :data:`CASES`).

    Raises:
        ValueError: naming the valid cases.
    """
    return matrix_games.case_game(case, CASES)


# ---------------------------------------------------------------------------------------------- exercise 1


def _resampling_cases(seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(label, data [A, A], π¹ [A], μ¹ [A]) test cases: XOR (b) and M-NE imbalanced with several π¹."""
    rng = np.random.default_rng(seed)
    out = []
    for case in ("XOR (b)", "M-NE imbalanced"):
        game, ds = case_game(case)
        data = game.datasets[ds].joint
        mu1 = marginals(data)[0]
        A = data.shape[0]
        pis = [np.eye(A)[-1] * 0.98 + 0.02 / A, np.full(A, 1.0 / A), rng.dirichlet(np.ones(A))]
        out += [(case, data, p / p.sum(), mu1) for p in pis]
    return out


def _oracle_resampled(data, pi1, mu1) -> np.ndarray:
    mu = marginals(data)
    return resampled_table(data, [pi1, mu[1]], [mu1, mu[1]], agent=1)


def _call(fn, *args):
    """Call the learner's function; (result as an array, None) or (None, Feedback describing the failure)."""
    try:
        out = fn(*args)
    except Exception as exc:  # the learner's code: report, never raise
        return None, Feedback(False, f"your function raised {type(exc).__name__}: {exc}",
                              "run it on the example in the exercise cell and fix the error first")
    try:
        return np.asarray(out, dtype=float), None
    except (TypeError, ValueError):
        return None, Feedback(False, f"your function returned {type(out).__name__}, not an array of numbers")


def check_resampled_table(fn: Callable | None) -> Feedback:
    """Exercise 1: ``fn(data, pi1, mu1) -> d_rho`` must return agent 2's importance-resampled dataset.

    InSPO fits agent 2's local Q on the dataset resampled with ρ² = π¹(a¹)/μ¹(a¹) (Eq. 15, two agents), done
    exactly as a reweighting: ``d_ρ(a¹, a²) ∝ d(a¹, a²) · π¹(a¹)/μ¹(a¹)``, normalised to sum to 1.

    Args:
        fn: the learner's function of ``data [A, A]`` (axis 0 = agent 1), ``pi1 [A]`` (agent 1's new policy) and
            ``mu1 [A]`` (agent 1's behavior policy), returning ``[A, A]``; ``None`` = not answered yet.

    Compared with :func:`marlkit.exact.inspo.resampled_table` on XOR (b) and M-NE imbalanced, three π¹ each
    (``atol`` 1e-6); a wrong answer is diagnosed (wrong axis, missing 1/μ¹, missing normalisation).
    """
    if fn is None:
        return Feedback(False, "no answer yet for the resampled table", "replace the None in the answer cell")
    if not callable(fn):
        return Feedback(False, f"expected a function (data, pi1, mu1) -> table, got {type(fn).__name__}")
    cases = _resampling_cases()
    for label, data, pi1, mu1 in cases:
        got, fail = _call(fn, data.copy(), pi1.copy(), mu1.copy())
        if fail is not None:
            return fail
        want = _oracle_resampled(data, pi1, mu1)
        if got.shape != want.shape:
            return Feedback(False, f"{label}: your table has shape {got.shape}, expected {want.shape}",
                            "d_ρ has the dataset's shape: one entry per joint action (a¹, a²)")
        if np.allclose(got, want, atol=1e-6):
            continue
        where = f"{label} with π¹ = {np.round(pi1, 3).tolist()}"
        if not np.isfinite(got).all():
            return Feedback(False, f"{where}: your table has NaN/inf entries",
                            "μ¹ is positive on every action the data holds; divide where μ¹ > 0 only")
        if not np.isclose(got.sum(), 1.0) and np.allclose(got / got.sum(), want, atol=1e-6):
            return Feedback(False, f"{where}: the entries sum to {got.sum():.4g}, not 1",
                            "d_ρ is a distribution: divide the reweighted table by its sum")
        ratio = np.divide(pi1, mu1, out=np.zeros_like(pi1), where=mu1 > 0)
        wrong_axis = data * ratio[None, :]
        if np.allclose(got, wrong_axis / wrong_axis.sum(), atol=1e-6):
            return Feedback(False, f"{where}: you reweighted along agent 2's own action axis",
                            "ρ² depends on the teammate's action a¹, which is axis 0 of the table")
        no_mu = data * pi1[:, None]
        if np.allclose(got, no_mu / no_mu.sum(), atol=1e-6):
            return Feedback(False, f"{where}: you weighted by π¹ but did not divide by μ¹",
                            "the data already holds a¹ with frequency μ¹(a¹); ρ² = π¹/μ¹ replaces that frequency "
                            "by π¹(a¹)")
        err = float(np.abs(got - want).max())
        return Feedback(False, f"{where}: your table differs from the oracle by up to {err:.3g}",
                        f"expected {np.round(want, 4).tolist()}, got {np.round(got, 4).tolist()}")
    return Feedback(True, f"your d_ρ matches the exact oracle on all {len(cases)} cases (XOR (b), M-NE imbalanced)")


# ---------------------------------------------------------------------------------------------- exercise 2


def _update_cases(seed: int = 1) -> list[tuple[np.ndarray, np.ndarray, float, float, np.ndarray]]:
    """(q [A], mu [A], α, β, oracle policy [A]) for agent 2 on M-NE imbalanced (a product dataset)."""
    game, ds = case_game("M-NE imbalanced")
    data = game.datasets[ds].joint
    mu = marginals(data)
    rng = np.random.default_rng(seed)
    temps = [(0.01, 10.0), (1.0, 0.0), (0.5, 2.0), (0.005, 0.005)]
    out = []
    teammates = [rng.dirichlet(np.ones(data.shape[0])) for _ in temps[:-1]] + [np.array([0.05, 0.05, 0.9])]
    for (alpha, beta), pi1 in zip(temps, teammates):
        res = inspo_agent_update(game.payoff, data, [pi1, mu[1]], mu, agent=1, alpha=alpha, beta=beta)
        out.append((res["q"], mu[1], alpha, beta, res["policy"]))
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max())
    return z / z.sum()


def check_policy_update(fn: Callable | None) -> Feedback:
    """Exercise 2: ``fn(q, mu, alpha, beta) -> policy`` must be InSPO's closed-form policy update on a product
    dataset.

    On a product dataset the resampled marginal is μ itself and Eq. 13's minimiser is the QRE map of Eq. 12:
    ``π(a) ∝ μ(a)^{α/(α+β)} · exp(Q(a)/(α+β))`` (the advantage's baseline cancels in the normalisation).

    Args:
        fn: the learner's function of the local Q ``[A]``, the behavior policy μ ``[A]`` and the temperatures
            α, β (floats), returning ``[A]``; ``None`` = not answered yet.

    Compared with :func:`marlkit.exact.inspo.inspo_agent_update` for agent 2 on M-NE imbalanced at four (α, β)
    pairs, including α + β = 0.01 with a teammate on C, where a naive ``exp(Q/(α+β))`` overflows (``atol`` 1e-6).
    """
    if fn is None:
        return Feedback(False, "no answer yet for the policy update", "replace the None in the answer cell")
    if not callable(fn):
        return Feedback(False, f"expected a function (q, mu, alpha, beta) -> policy, got {type(fn).__name__}")
    for q, mu, alpha, beta, want in _update_cases():
        with np.errstate(all="ignore"):
            got, fail = _call(fn, q.copy(), mu.copy(), alpha, beta)
        if fail is not None:
            return fail
        where = f"at α = {alpha:g}, β = {beta:g} with Q = {np.round(q, 2).tolist()}"
        if got.shape != want.shape:
            return Feedback(False, f"{where}: your policy has shape {got.shape}, expected {want.shape}")
        if np.allclose(got, want, atol=1e-6):
            continue
        if not np.isfinite(got).all():
            return Feedback(False, f"{where}: your policy has NaN/inf entries",
                            "exp(Q/(α+β)) overflows for small temperatures: subtract max(logits) before exp")
        t = alpha + beta
        alternatives = {
            "you dropped the entropy term (β)": _softmax(np.log(mu) + q / alpha) if alpha > 0 else None,
            "you dropped the behavior prior μ": _softmax(q / t),
            "you kept the full prior μ instead of μ^{α/(α+β)}": _softmax(np.log(mu) + q / t),
        }
        for reason, alt in alternatives.items():
            if alt is not None and np.allclose(got, alt, atol=1e-6):
                return Feedback(False, f"{where}: {reason}",
                                "Eq. 12: π ∝ μ^{α/(α+β)} exp(Q/(α+β)); the entropy β flattens the pull towards μ")
        if not np.isclose(got.sum(), 1.0):
            return Feedback(False, f"{where}: your policy sums to {got.sum():.4g}", "normalise it to sum to 1")
        return Feedback(False, f"{where}: expected {np.round(want, 4).tolist()}, got {np.round(got, 4).tolist()}",
                        "write the logits α/(α+β)·log μ + Q/(α+β) and take their softmax")
    return Feedback(True, "your update matches exact InSPO's agent update at all four (α, β)")


# ---------------------------------------------------------------------------------------------- exercise 3

#: iterations of fixed-β exact InSPO that decide whether (A, A) is still where the dynamics stay
THRESHOLD_ITERATIONS = 500


def stays_at_local_optimum(beta: float, alpha: float = 0.01, iterations: int = THRESHOLD_ITERATIONS
                           ) -> tuple[bool, np.ndarray]:
    """Does exact sequential InSPO at fixed β, started at π₀ = μ on M-NE imbalanced, stay at (A, A)?

    "Stay" means every agent's π^i(A) > 1/2 after ``iterations`` iterations: below the threshold β* the
    iteration converges to the QRE of the A branch, above it that QRE no longer exists and the agents leave.

    Returns:
        ``(stays, π^i(A) per agent [N])``.
    """
    game, ds = case_game("M-NE imbalanced")
    traj = exact_inspo(game.payoff, game.datasets[ds].joint, alpha=alpha, beta=float(beta), iterations=iterations)
    p_a = traj.final_policy[:, 0]
    return bool((p_a > 0.5).all()), p_a


def check_beta_threshold(answer, alpha: float = 0.01, atol: float = 0.03) -> Feedback:
    """Exercise 3: ``answer`` ≈ β*, the entropy temperature where (A, A) stops being the fixed point that exact
    sequential InSPO (fixed β, α = ``alpha``, from π₀ = μ, :data:`THRESHOLD_ITERATIONS` iterations) reaches on
    M-NE imbalanced.

    Right when the oracle still stays at (A, A) at ``answer − atol`` and has left it at ``answer + atol``
    (:func:`stays_at_local_optimum`); when wrong, ``why`` reports what the oracle does at the answer.
    """
    if answer is None:
        return Feedback(False, "no answer yet for β*", "replace the None in the answer cell")
    try:
        beta = float(answer)
    except (TypeError, ValueError):
        return Feedback(False, f"β*: expected a number, got {type(answer).__name__}")
    if not np.isfinite(beta) or beta - atol < 0:
        return Feedback(False, f"β* = {beta} is not a positive temperature")
    below, p_below = stays_at_local_optimum(beta - atol, alpha)
    above, p_above = stays_at_local_optimum(beta + atol, alpha)
    if below and not above:
        return Feedback(True, f"β* = {beta:.3g}: at β = {beta - atol:.3g} the agents stay at A "
                              f"(π(A) = {p_below[0]:.2f}), at β = {beta + atol:.3g} they leave (π(A) = {p_above[0]:.2f})")
    if above:
        return Feedback(False, f"β* = {beta:.3g} is too small",
                        f"at β = {beta + atol:.3g} exact InSPO still ends at (A, A) with π(A) = {p_above[0]:.2f}: "
                        "the A-branch QRE still exists there; try larger β")
    return Feedback(False, f"β* = {beta:.3g} is too large",
                    f"already at β = {beta - atol:.3g} exact InSPO leaves (A, A) (π(A) = {p_below[0]:.3f} after "
                    f"{THRESHOLD_ITERATIONS} iterations); bisect between a β that stays and one that leaves")


# ---------------------------------------------------------------------------------------------- quiz

QUIZ = Quiz([
    Question("In the simultaneous variant on XOR (b), which teammate policy enters agent i's ratio ρ^i?",
             ["the teammate's new policy of this iteration", "the teammate's old policy of the previous iteration",
              "the teammate's behavior policy μ, always"], 1,
             "every agent reacts to the old teammate, so both jump to B together and land on the OOD (B, B)"),
    Question("Sequentially, agent 1 has just moved to B. Why does agent 2 keep A?",
             ["its local Q is fitted on data resampled towards a¹ = B, which is almost only (B, A)",
              "the behavior KL α forbids agent 2 to move", "agent 2 is updated with a larger β"], 0,
             "ρ² = π¹/μ¹ reweights the rows by agent 1's new policy; in XOR (b) the data with a¹ = B is (B, A)"),
    Question("On M-NE imbalanced, what does a fixed β above β* ≈ 8 do?",
             ["it makes (A, A) optimal", "the QRE of the A branch no longer exists, so the agents leave (A, A)",
              "nothing: β only scales the return"], 1,
             "the entropy term turns the fixed point into a QRE; past β* the A-branch QRE vanishes and the dynamics "
             "reach the C branch, which annealing β down follows to (C, C)"),
    Question("With exactly uniform XOR (a) data, exact InSPO started at μ ...",
             ["moves at once to (A, B)", "does not move: both local Qs are equal and μ is a fixed point",
              "moves to the OOD (B, B)"], 1,
             "both actions have local Q 1, so the update keeps π = μ; only an asymmetry in the data tips it"),
])




def quiz_sheet(quiz: Quiz, choices) -> str:
    """Printable sheet of a quiz: every question with its numbered options and the verdict on ``choices``
    (one option index or ``None`` per question), then the score; readable where the quiz widget is not.

    Raises:
        ValueError: if the number of choices differs from the number of questions.
    """
    lines = []
    for i, (q, c, f) in enumerate(zip(quiz.questions, choices, quiz.check(choices)), 1):
        lines.append(f"{i}. {q.text}")
        lines += [f"     {k}: {o}" for k, o in enumerate(q.options)]
        lines.append("   → not answered yet" if c is None else f"   → {f}".replace("\n", "\n   "))
    lines.append(f"score: {quiz.score(choices)} / {len(quiz.questions)}")
    return "\n".join(lines)


def grade_quiz(choices) -> str:
    """:func:`quiz_sheet` of this notebook's :data:`QUIZ`."""
    return quiz_sheet(QUIZ, choices)


# ---------------------------------------------------------------------------------------------- widget and figures


def inspo_case_view(case: str = "M-NE imbalanced", alpha: float = 0.01, beta: float = 10.0,
                    sequential: bool = True, beta_final: float | None = 0.01, iterations: int = 40):
    """Exact InSPO trajectories of one explorer ``case`` (:func:`marlkit.eval.plots.inspo_view`).

    Returns:
        ``(fig, final_return, optimum)``: the figure, the exact expected return of the final product policy and
        the game's best payoff.

    Raises:
        KeyError: for an unknown case.
    """
    from marlkit.eval.plots import inspo_view

    game, ds = case_game(case)
    fig, ret = inspo_view(game, ds, alpha=alpha, beta=beta, beta_final=beta_final, sequential=sequential,
                          iterations=iterations)
    return fig, ret, float(game.payoff.max())


def inspo_explorer():
    """The notebook's widget: one "case" dropdown (game + dataset), log sliders for α and β (redrawn on release)
    and the update scheme; each view prints the final return next to the game's optimum."""
    from ipywidgets import Checkbox, Dropdown, FloatLogSlider, interactive

    def view(case, alpha, beta, sequential):
        fig, ret, best = inspo_case_view(case, alpha, beta, sequential)
        print(f"{case}, α = {alpha:.3g}, β = {beta:.3g} annealed to 0.01, "
              f"{'sequential' if sequential else 'simultaneous'}: return {ret:.2f} (optimum {best:g})")
        plt.show()

    return interactive(
        view,
        case=Dropdown(options=list(CASES), value="M-NE imbalanced", description="case"),
        alpha=FloatLogSlider(value=0.01, base=10, min=-3, max=1, step=0.25, continuous_update=False,
                             description="α"),
        beta=FloatLogSlider(value=10.0, base=10, min=-2, max=1.5, step=0.25, continuous_update=False,
                            description="β (start)"),
        sequential=Checkbox(value=True, description="sequential"),
    )


def plot_row_scaled_returns(wide, ax=None, cmap: str = "viridis"):
    """Heatmap of a (env, dataset) × algorithm return table with one colour scale per row.

    Each row's colours run from the row's worst return (dark) to its game's optimal payoff (bright), so a row
    of XOR returns in [0, 1] is as readable as one of M-NE returns in [−20, 20]; the cells show the raw returns.

    Args:
        wide: DataFrame indexed by (env, dataset) with one column per algorithm
            (:func:`marlkit.eval.tables.pivot_returns`).

    Returns:
        the figure.
    """
    values = wide.astype(float).to_numpy()
    rows = list(wide.index)
    scaled = np.zeros_like(values)
    for r, key in enumerate(rows):
        env = key[0] if isinstance(key, tuple) else key
        best = float(make_game(env).payoff.max())
        lo = float(np.nanmin(values[r]))
        lo = min(lo, best - 1e-9)
        scaled[r] = (values[r] - lo) / (best - lo)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.8 + 1.3 * values.shape[1], 0.6 + 0.55 * len(rows)))
    im = ax.imshow(np.clip(scaled, 0, 1), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            ax.text(c, r, f"{values[r, c]:.2f}", ha="center", va="center", fontsize=9,
                    color="black" if scaled[r, c] > 0.6 else "white")
    ax.set_xticks(range(values.shape[1]), [str(c) for c in wide.columns])
    ax.set_yticks(range(len(rows)), [" ".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in rows])
    cbar = ax.figure.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    cbar.set_ticks([0, 1], labels=["row's worst", "game optimum"])
    ax.set_title("return (exact expected payoff), colour scaled per row")
    ax.figure.tight_layout()
    return ax.figure
