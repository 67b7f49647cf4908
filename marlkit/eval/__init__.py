"""Evaluation: exact (matrix games) and rollouts, normalised scores.

Beside :mod:`marlkit.eval.evaluate` (what the training loop calls): :mod:`marlkit.eval.aggregate` (mean ± std,
Welch t-tests, rliable aggregates over records), :mod:`marlkit.eval.plots` (the notebooks' figures) and
:mod:`marlkit.eval.tables` (comparison tables of ``marlkit train`` records, trained through
:func:`marlkit.train.run`).
"""

from marlkit.eval.evaluate import evaluate, evaluate_matrix, normalized_score, rollout

__all__ = ["evaluate", "evaluate_matrix", "rollout", "normalized_score"]
