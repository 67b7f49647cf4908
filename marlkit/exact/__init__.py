"""Exact tabular oracles for small games (closed forms, fixed points, exact sequential updates)."""

from marlkit.exact.matrix import (action_values, best_response, is_product, marginals, ood_actions, ood_mass,
                                  pure_nash, regularized_optimum, regularized_return)
from marlkit.exact.inspo import InSPOTrajectory, empirical_table, exact_inspo, inspo_agent_update

__all__ = ["regularized_optimum", "regularized_return", "marginals", "is_product", "pure_nash", "best_response",
           "action_values", "ood_mass", "ood_actions",
           "exact_inspo", "inspo_agent_update", "InSPOTrajectory", "empirical_table"]
