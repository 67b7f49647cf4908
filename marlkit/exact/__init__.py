"""Exact tabular oracles for small games (closed forms, fixed points, exact sequential updates)."""

from marlkit.exact.alberdice import AlberDICETrajectory, alberdice_agent_update, exact_alberdice
from marlkit.exact.decentralized import (AgentTable, decentralized_tables, greedy_joint, modified_transitions,
                                         offline_transitions)
from marlkit.exact.dice import (additive_projection, comadice_solution, dice_dual, dice_objective, dice_optimum,
                                local_wbc_policies)
from marlkit.exact.inspo import InSPOTrajectory, empirical_table, exact_inspo, first_move_game, inspo_agent_update
from marlkit.exact.matrix import (action_values, best_response, is_product, marginals, ood_actions, ood_mass,
                                  pure_nash, regularized_optimum, regularized_return)
from marlkit.exact.optidice import optidice_solution
from marlkit.exact.omiga import (OmigaSolution, linear_decomposition, local_value, local_value_objective,
                                 omiga_policies, omiga_solution)

__all__ = ["regularized_optimum", "regularized_return", "marginals", "is_product", "pure_nash", "best_response",
           "action_values", "ood_mass", "ood_actions",
           "AgentTable", "offline_transitions", "modified_transitions", "decentralized_tables", "greedy_joint",
           "dice_optimum", "dice_objective", "dice_dual", "additive_projection", "local_wbc_policies", "comadice_solution",
           "OmigaSolution", "linear_decomposition", "local_value", "local_value_objective", "omiga_policies",
           "omiga_solution",
           "exact_inspo", "inspo_agent_update", "InSPOTrajectory", "empirical_table", "first_move_game",
           "exact_alberdice", "alberdice_agent_update", "AlberDICETrajectory", "optidice_solution"]
