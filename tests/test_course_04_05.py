"""Course checkers of notebooks 04 (InSPO) and 05 (offline decentralized MARL): each says right for the reference
solution, and wrong with a reason for a plausible wrong answer and for a missing one; the widgets and figures
those notebooks use build for every setting they offer."""

import ast
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from marlkit.course import decentralized as dec
from marlkit.course import sequential as seq


def _wrong(feedback):
    assert not feedback and feedback.message
    return feedback


def _wrong_with_why(feedback):
    assert _wrong(feedback).why, feedback
    return feedback


# ---------------------------------------------------------------------------------------------- notebook 04


def _resample(data, pi1, mu1):
    weighted = data * (pi1 / mu1)[:, None]
    return weighted / weighted.sum()


def _qre_update(q, mu, alpha, beta):
    logits = alpha / (alpha + beta) * np.log(mu) + q / (alpha + beta)
    p = np.exp(logits - logits.max())
    return p / p.sum()


def _bisect_threshold(lo=5.0, hi=10.0, tol=0.01):
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if seq.stays_at_local_optimum(mid)[0]:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def test_resampled_table_checker():
    assert seq.check_resampled_table(_resample)
    f = _wrong_with_why(seq.check_resampled_table(lambda d, p, m: _resample(d.T, p, m).T))
    assert "axis" in f.message
    f = _wrong_with_why(seq.check_resampled_table(lambda d, p, m: d * p[:, None] / (d * p[:, None]).sum()))
    assert "μ¹" in f.message
    _wrong_with_why(seq.check_resampled_table(None))
    _wrong(seq.check_resampled_table(lambda d, p, m: 1 / 0))
    _wrong(seq.check_resampled_table(3.0))


def test_policy_update_checker():
    assert seq.check_policy_update(_qre_update)
    f = _wrong_with_why(seq.check_policy_update(lambda q, mu, a, b: _qre_update(q, np.ones_like(mu), a, b)))
    assert "prior" in f.message
    naive = _wrong_with_why(seq.check_policy_update(
        lambda q, mu, a, b: mu ** (a / (a + b)) * np.exp(q / (a + b)) / (mu ** (a / (a + b)) * np.exp(q / (a + b))).sum()))
    assert "NaN" in naive.message  # the overflow at α + β = 0.01
    _wrong_with_why(seq.check_policy_update(None))


def test_beta_threshold_checker():
    reference = _bisect_threshold()
    assert seq.check_beta_threshold(reference)
    assert "too large" in _wrong_with_why(seq.check_beta_threshold(reference + 0.5)).message
    assert "too small" in _wrong_with_why(seq.check_beta_threshold(reference - 0.5)).message
    _wrong_with_why(seq.check_beta_threshold(None))
    _wrong(seq.check_beta_threshold("eight"))


def test_quiz_04_answers():
    right = [q.answer for q in seq.QUIZ.questions]
    assert 3 <= len(right) <= 4 and seq.QUIZ.score(right) == len(right)
    wrong = [(a + 1) % len(q.options) for a, q in zip(right, seq.QUIZ.questions)]
    assert seq.QUIZ.score(wrong) == 0 and all(f.why for f in seq.QUIZ.check(wrong))


@pytest.mark.parametrize("case", list(seq.CASES))
def test_every_case_of_the_explorer_draws(case):
    fig, ret, best = seq.inspo_case_view(case, alpha=0.1, beta=1.0, iterations=5)
    plt.close(fig)
    assert np.isfinite(ret) and ret <= best + 1e-9


def test_explorer_controls():
    pytest.importorskip("ipywidgets")
    w = seq.inspo_explorer()
    controls = {c.description: c for c in w.children[:-1]}
    assert list(controls["case"].options) == list(seq.CASES)
    assert not controls["α"].continuous_update and not controls["β (start)"].continuous_update
    plt.close("all")
    with pytest.raises(ValueError, match="choose one of"):
        seq.case_game("XOR imbalanced")


def test_row_scaled_heatmap():
    wide = pd.DataFrame({"bc": [0.0, 0.2, -9.5], "inspo": [1.0, 0.96, 19.7]},
                        index=pd.MultiIndex.from_tuples([("xor", "a"), ("xor", "b"), ("mne", "balanced")]))
    fig = seq.plot_row_scaled_returns(wide)
    im = fig.axes[0].images[0].get_array()
    assert im.shape == (3, 2) and np.isclose(im[0, 1], 1.0) and np.isclose(im[2, 0], 0.0)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- notebook 05


def _vd_recovers(mu1, mu2):
    def q(p, r):
        return (p * r ** 2).sum() / (p * r).sum()

    p1, p2 = np.array([mu1, 1 - mu1]), np.array([mu2, 1 - mu2])
    q1 = [q(p2, np.array([1.0, 5.0])), q(p2, np.array([6.0, 1.0]))]
    q2 = [q(p1, np.array([1.0, 6.0])), q(p1, np.array([5.0, 1.0]))]
    return q1[1] > q1[0] and q2[0] > q2[1]


def test_vd_region_checker():
    assert dec.check_vd_region(_vd_recovers)
    f = _wrong_with_why(dec.check_vd_region(lambda m1, m2: m1 < 0.5))
    assert "grid points" in f.message
    f = _wrong_with_why(dec.check_vd_region(lambda m1, m2: dec.recovers_optimum(m1, m2, vd=False, tn=False)))
    assert "Table 2" in f.message
    _wrong_with_why(dec.check_vd_region(None))
    _wrong(dec.check_vd_region(lambda m1: True))


def test_epsilon_switch_checker():
    plays = [int(np.argmax(dec.agent_values(0.8, 0.4, epsilon=e)[0])) for e in np.linspace(0, 2, 41)]
    assert plays == sorted(plays) and plays[0] == 0 and plays[-1] == 1  # one switch from a1 to a2
    eps = dec.epsilon_switch()
    q = dec.agent_values(0.8, 0.4, epsilon=eps)[0]
    assert np.isclose(q[0], q[1], atol=1e-4)
    assert dec.check_epsilon_switch(eps)
    assert "too large" in _wrong_with_why(dec.check_epsilon_switch(round(eps, 1) + 0.1)).message
    _wrong_with_why(dec.check_epsilon_switch(None))


def test_quiz_05_answers():
    right = [q.answer for q in dec.QUIZ.questions]
    assert 3 <= len(right) <= 4 and dec.QUIZ.score(right) == len(right)
    # the question on interior behaviors with both weights matches the oracle
    assert all(dec.recovers_optimum(m1, m2, vd=True, tn=True) for m1 in dec.GRID for m2 in dec.GRID)
    assert not dec.recovers_optimum(0.8, 0.4, vd=True, tn=False)


def test_transition_bias_explorer_and_region_plot(capsys):
    pytest.importorskip("ipywidgets")
    w = dec.transition_bias_explorer()
    assert all(not c.continuous_update for c in w.children[:-1])
    w.children[0].value = 0.3  # re-runs the view
    plt.close("all")
    fig = dec.plot_vd_region(_vd_recovers)
    plt.close(fig)


def test_seed_summary():
    df = pd.DataFrame({"env": ["e"] * 3, "algo": ["a"] * 3, "return": [1.0, 2.0, 3.0]})
    s = dec.seed_summary(df)
    assert s.loc[("e", "a"), "mean"] == 2.0 and s.loc[("e", "a"), "std"] == 1.0 and s.loc[("e", "a"), "count"] == 3


@pytest.mark.parametrize("module", [seq, dec], ids=["04", "05"])
def test_quiz_sheet_lists_options_and_score(module):
    n = len(module.QUIZ.questions)
    blank = module.grade_quiz([None] * n)
    assert blank.count("not answered yet") == n and blank.endswith(f"score: 0 / {n}")
    assert all(f"     0: {q.options[0]}" in blank for q in module.QUIZ.questions)
    right = module.grade_quiz([q.answer for q in module.QUIZ.questions])
    assert right.endswith(f"score: {n} / {n}")
    with pytest.raises(ValueError):
        module.grade_quiz([None])


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name,module", [("04_sequential_updates.ipynb", seq), ("05_decentralized.ipynb", dec)],
                         ids=["04", "05"])
def test_notebook_solutions_pass_their_checkers(name, module, monkeypatch):
    """The reference solutions written in the notebooks' answer cells are right by their own checkers, and the
    filled-in quiz choices score fully (nbval only runs these cells; it does not look at the verdicts)."""
    monkeypatch.setenv("MARLKIT_COURSE_SOLUTIONS", "1")
    cells = ["".join(c["source"]) for c in json.loads((NOTEBOOKS / name).read_text())["cells"]
             if c["cell_type"] == "code"]
    scope: dict = {}
    for src in cells[:2]:  # the parameters and the imports
        exec(compile(src, name, "exec"), scope)
    verdicts = []
    for src in cells:
        if "course.check_" in src:
            *body, last = ast.parse(src).body
            exec(compile(ast.Module(body, []), name, "exec"), scope)
            verdicts.append(eval(compile(ast.Expression(last.value), name, "eval"), scope))
        elif "grade_quiz" in src:
            exec(compile(src, name, "exec"), scope)
            assert module.QUIZ.score(scope["my_choices"]) == len(module.QUIZ.questions)
    plt.close("all")
    assert 2 <= len(verdicts) <= 4 and all(verdicts), verdicts
