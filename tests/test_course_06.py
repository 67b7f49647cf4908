"""The exercise checkers of notebook 06: right for the reference solution, wrong (with a why) for a plausible wrong
answer and for None; the quiz grades its own answer key as right."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from marlkit.course import baselines, matrix_games
from marlkit.envs import make_env
from marlkit.exact import exact_alberdice, marginals, ood_mass, optidice_solution
from tests.helpers import assert_checker


def _best_response(payoff, d, pi1, alpha):  # reference solution of notebook 06, exercise 2
    mu2 = d.sum(axis=0)
    cond = np.divide(d, mu2, out=np.zeros_like(d), where=mu2 > 0)  # d(a¹ | a²), one column per a²
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(pi1[:, None] > 0, pi1[:, None] * (np.log(pi1[:, None]) - np.log(cond)), 0.0).sum(axis=0)
    logit = np.where((mu2 > 0) & np.isfinite(kl), np.log(np.where(mu2 > 0, mu2, 1.0)) + pi1 @ payoff / alpha - kl,
                     -np.inf)
    p = np.exp(logit - logit.max())
    return p / p.sum()


def _no_kl(payoff, d, pi1, alpha):  # a plausible wrong answer: forgets the teammate's KL term
    logit = np.log(d.sum(axis=0)) + pi1 @ payoff / alpha
    p = np.exp(logit - logit.max())
    return p / p.sum()


def _optidice_ood():
    xor = make_env("xor")
    mu = xor.datasets["b"].joint
    return ood_mass(optidice_solution(xor.payoff, mu, 1.0)["joint_policy"], mu)


CASES = [
    # checker, reference solution, plausible wrong answer, a word the why must contain
    (baselines.check_alberdice_joint, ("A", "A"), ("C", "C"), "Nash equilibrium"),
    (baselines.check_alberdice_best_response, _best_response, _no_kl, "KL"),
    (baselines.check_optidice_ood_mass, _optidice_ood(), 0.0, "independently"),
]


@pytest.mark.parametrize("checker, solution, wrong, hint", CASES, ids=[c[0].__name__ for c in CASES])
def test_checker_right_wrong_and_missing(checker, solution, wrong, hint):
    assert_checker(checker, solution, wrong, hint)


def test_joint_action_answers_in_any_spelling():
    for answer in ["A,A", "AA", (0, 0), "(a, a)"]:
        assert baselines.check_alberdice_joint(answer), answer
    assert not baselines.check_alberdice_joint("A,D").correct
    assert not baselines.check_alberdice_joint(("A",)).correct
    assert "miscoordinated" in baselines.check_alberdice_joint("A,B").why


def test_best_response_checker_explains_ood_support_and_errors():
    def plays_everything(payoff, d, pi1, alpha):  # ignores the infinite KL: keeps B against π¹ = (½, ½) on XOR (b)
        p = _best_response(payoff, d, pi1, alpha)
        return (p + 0.1) / (p + 0.1).sum() if (p == 0).any() else p

    fb = baselines.check_alberdice_best_response(plays_everything)
    assert not fb.correct and "infinite" in fb.why, str(fb)

    def broken(*args):
        raise RuntimeError("boom")

    assert "RuntimeError" in baselines.check_alberdice_best_response(broken).message
    assert not baselines.check_alberdice_best_response(3.0).correct


def test_optidice_checker_rejects_bc_and_non_numbers():
    mu = make_env("xor").datasets["b"].joint
    bc = ood_mass(np.outer(*marginals(mu)), mu)
    assert "BC" in baselines.check_optidice_ood_mass(bc).why
    assert not baselines.check_optidice_ood_mass("half").correct
    assert not baselines.check_optidice_ood_mass(float("nan")).correct


def test_oracle_answers_are_the_papers_equilibria():
    xor, mne = make_env("xor"), make_env("mne")
    assert baselines.alberdice_joint_action(mne, "balanced") == ("C", "C")
    assert baselines.alberdice_joint_action(xor, "b") in {("A", "B"), ("B", "A")}
    assert exact_alberdice(mne.payoff, mne.datasets["imbalanced"].joint).ret == pytest.approx(5.0, abs=1e-6)
    assert 0 < _optidice_ood() < 1


def test_quiz_key():
    key = [1, 1, 1, 1]
    quiz = baselines.quiz()
    assert quiz.score(key) == len(quiz.questions) == len(key)
    wrong = [(k + 1) % len(q.options) for q, k in zip(quiz.questions, key)]
    feedback = quiz.check(wrong)
    assert not any(feedback) and all(f.why for f in feedback)
    quiz.show()  # the widget builds without a browser
    matrix_games.print_quiz(quiz)
