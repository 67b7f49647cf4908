"""The exercise checkers of notebooks 01-03: right for the reference solution, wrong (with a why) for a plausible
wrong answer and for None; the quizzes grade their own answer keys as right."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from marlkit.course import dice, matrix_games, value_decomposition
from marlkit.envs import make_env
from marlkit.exact import regularized_optimum
from tests.helpers import assert_checker


def _pi_star(payoff, mu, alpha):  # reference solution of notebook 01, exercise 3
    logits = np.where(mu > 0, np.log(np.where(mu > 0, mu, 1.0)) + payoff / alpha, -np.inf)
    p = np.exp(logits - logits.max())
    return p / p.sum()


def _v_star(q, mu, w, alpha):  # reference solution of notebook 02, exercise 3
    x = w * np.asarray(q) / alpha
    m = x[mu > 0].max()
    return alpha / w * (m + np.log((mu * np.exp(x - m)).sum()))


CASES = [
    # checker, reference solution, plausible wrong answer, a word the why must contain
    (matrix_games.check_bc_ood_mass, 0.5, 0.0, "independently"),
    (matrix_games.check_aa_threshold, 1 / np.log(9.5), 1.0, "toward μ"),
    (matrix_games.check_regularized_optimum, _pi_star,
     lambda r, mu, a: np.exp(r / a) / np.exp(r / a).sum(), "in-sample"),
    (value_decomposition.check_fitted_value, 1.0, 0.0, "true payoff"),
    (value_decomposition.check_ood_alpha, 1 / np.log(2 ** 0.5 / (1 - 2 ** -0.5)), 1.0, "smaller α"),
    (value_decomposition.check_local_value, _v_star, lambda q, mu, w, a: float(mu @ q), "α → ∞"),
    (dice.check_chi2_ratio, lambda adv, a: np.maximum(0.0, adv / a + 1.0), lambda adv, a: adv / a + 1.0,
     "negative"),
    (dice.check_chi2_drop_alpha, 2 / 3, 1.0, "still"),
    (dice.check_local_wbc, lambda rho: [rho.sum(1) / rho.sum(), rho.sum(0) / rho.sum()],
     lambda rho: [rho.sum(1), rho.sum(0)], "normalise"),
]


@pytest.mark.parametrize("checker, solution, wrong, hint", CASES, ids=[c[0].__name__ for c in CASES])
def test_checker_right_wrong_and_missing(checker, solution, wrong, hint):
    assert_checker(checker, solution, wrong, hint)


@pytest.mark.parametrize("checker", [matrix_games.check_regularized_optimum, value_decomposition.check_local_value,
                                     dice.check_chi2_ratio, dice.check_local_wbc])
def test_function_checkers_report_errors_and_non_functions(checker):
    def broken(*args):
        raise RuntimeError("boom")

    fb = checker(broken)
    assert not fb.correct and "RuntimeError" in fb.message
    assert not checker(3.0).correct


@pytest.mark.parametrize("checker", [matrix_games.check_bc_ood_mass, matrix_games.check_aa_threshold,
                                     value_decomposition.check_fitted_value,
                                     value_decomposition.check_ood_alpha, dice.check_chi2_drop_alpha])
def test_number_checkers_reject_non_numbers(checker):
    assert not checker("half").correct
    assert not checker(float("nan")).correct


def test_threshold_alphas_are_where_the_oracles_cross():
    xor = make_env("xor")
    mu = xor.datasets["b"].joint
    a = matrix_games.aa_threshold_alpha()
    assert regularized_optimum(xor.payoff, mu, 0.99 * a)[0, 0] < 0.05 < regularized_optimum(xor.payoff, mu, 1.01 * a)[0, 0]
    a = value_decomposition.ood_threshold_alpha()
    assert value_decomposition.omiga_ood_mass(xor, "b", 0.99 * a) > 0.5 > value_decomposition.omiga_ood_mass(
        xor, "b", 1.01 * a)
    assert dice.chi2_drop_alpha() == pytest.approx(2 / 3, rel=1e-6)


@pytest.mark.parametrize("module, key", [(matrix_games, [1, 2, 1, 0]), (value_decomposition, [2, 1, 1, 1]),
                                         (dice, [1, 0, 1, 1])])
def test_quiz_keys(module, key):
    quiz = module.quiz()
    assert quiz.score(key) == len(quiz.questions) == len(key)
    assert all(q.answer == k for q, k in zip(quiz.questions, key))
    wrong = [(k + 1) % len(q.options) for q, k in zip(quiz.questions, key)]
    feedback = quiz.check(wrong)
    assert not any(feedback) and all(f.why for f in feedback)
    quiz.show()  # the widget builds without a browser
    matrix_games.print_quiz(quiz)


def test_cases_and_widget():
    for label in matrix_games.CASES:
        game, dataset = matrix_games.case_game(label)
        assert dataset in game.datasets
    with pytest.raises(ValueError, match="XOR \\(b\\)"):
        matrix_games.case_game("xor/b")
    seen = []
    w = matrix_games.alpha_case_widget(lambda alpha, case: seen.append((alpha, case)), 1.0, "M-NE imbalanced")
    slider, dropdown = w.children[:2]
    assert slider.continuous_update is False and dropdown.value == "M-NE imbalanced"
    dropdown.value = "XOR (c)"
    assert seen[-1] == (1.0, "XOR (c)")


def test_plots_of_notebooks_01_03():
    from marlkit.eval.plots import plot_return_comparison, regularized_policy_view

    xor = make_env("xor")
    fig, _, ood = regularized_policy_view(xor, "b", 1.0)
    labels = [line.get_label() for line in fig.axes[1].get_lines()]
    assert any(lab.startswith("BC") for lab in labels) and ood == 0.0
    rows = [{"game": g, "dataset": d, "method": m, "return": r} for g, d, m, r in
            [("xor", "b", "bc", 0.2), ("xor", "b", "omiga", 0.3), ("mne", "balanced", "bc", -9.0),
             ("mne", "balanced", "omiga", 13.0)]]
    fig = plot_return_comparison(rows, x="dataset", panel="game")
    assert len(fig.axes) == 2 and fig.axes[0].get_ylim() != fig.axes[1].get_ylim()
