"""Evaluation: exact (matrix games) and rollouts, normalised scores."""

from marlkit.eval.evaluate import evaluate, evaluate_matrix, normalized_score, rollout

__all__ = ["evaluate", "evaluate_matrix", "rollout", "normalized_score"]
