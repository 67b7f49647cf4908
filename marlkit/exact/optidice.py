"""Exact OptiDICE on a one-step matrix game (Lee et al., ICML 2021), multi-agent as comadice.md's baseline.

comadice.md (Sec. 6.2) evaluates OptiDICE as "a naive extension of the OptDICE algorithm to multi-agent settings
where the global value function [is] directly learned without value factorization": one DICE problem on the
*joint* action, ``max_{w ≥ 0} E_{d^D}[w r] − α E_{d^D}[f(w)]`` under the Bellman flow constraint (Lee et al.
2021, Eq. 6–8). On one state the flow constraint fixes the total occupancy, ``E_{d^D}[w] = 1 − γ`` (marlkit's
unnormalised dual, see :mod:`marlkit.algos.optidice`; ``gamma=0`` gives the paper's normalised ``E[w] = 1``), and the
optimum is the closed form of :func:`marlkit.exact.dice.dice_optimum` with ``mass = 1 − γ``:
``w*(a) = max(0, (f')⁻¹((r(a) − ν*) / α))``.

The policies are extracted by weighted behavior cloning of the product policy, ``max E_{d^D}[w* Σ_i log π_i]``
(Lee et al. 2021, Sec. 4.2 "weighted BC"; the multi-agent OptiDICE of the AlberDICE authors' code), whose
maximiser is the marginal of ``ρ* = d^D w*`` on each agent (:func:`marlkit.exact.dice.local_wbc_policies`).
"""

from __future__ import annotations

import numpy as np

from marlkit.algos.fdiv import FDivergence
from marlkit.envs.matrix import expected_return, joint_from_product
from marlkit.exact.dice import dice_optimum, local_wbc_policies

__all__ = ["optidice_solution"]


def optidice_solution(payoff, d, alpha: float, f: str | FDivergence = "soft-chi2", gamma: float = 0.99) -> dict:
    """What a fully converged multi-agent OptiDICE (centralised ν, λ; weighted-BC extraction) learns on a
    one-step game.

    Args:
        payoff: ``[A_1, ..., A_N]`` team rewards.
        d: dataset joint distribution, same shape, sums to 1.
        alpha: α > 0.
        f: divergence name or object (``"soft-chi2"``, OptiDICE's default; ``"chi2"``; ``"kl"``).
        gamma: the algorithm's discount γ in [0, 1) (0.99, marlkit's default): total occupancy ``1 − γ``.

    Returns:
        dict with ``w``, ``rho``, ``nu``, ``objective`` (as :func:`~marlkit.exact.dice.dice_optimum`, ``mass=1−γ``),
        ``policies`` (list of ``[A_i]``), ``joint_policy`` (their product) and ``return`` (its exact expected
        payoff).

    Raises:
        ValueError: for inconsistent tables, α ≤ 0 or γ outside [0, 1).
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    payoff = np.asarray(payoff, dtype=float)
    sol = dice_optimum(payoff, d, alpha, f, mass=1.0 - gamma)
    pols = local_wbc_policies(sol["rho"])
    return {**sol, "policies": pols, "joint_policy": joint_from_product(pols),
            "return": float(expected_return(payoff, pols))}
