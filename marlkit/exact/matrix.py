"""Exact tabular analysis of matrix games — the oracles notebooks plot and tests check neural runs against.

Single-step games make the behavior-regularized problem closed-form: with Q_tot(a) = r(a),

    π*_tot(a) ∝ μ_tot(a) · exp(Q_tot(a) / α)                      (omiga.md Eq. 7)

interpolates between behavior cloning (α → ∞) and the in-sample greedy joint action (α → 0). The helpers
below also list pure Nash equilibria, best responses, BC's fixed point (the marginals of the data) and the
out-of-distribution (OOD) mass of a joint policy (its mass on joint actions the dataset never contains).
"""

from __future__ import annotations

import itertools

import numpy as np

from marlkit.envs.matrix import joint_from_product

__all__ = ["check_game", "regularized_optimum", "regularized_return", "marginals", "pure_nash", "best_response",
           "action_values", "ood_mass", "ood_actions", "is_product"]


def _check_table(table: np.ndarray, payoff: np.ndarray, name: str) -> np.ndarray:
    table = np.asarray(table, dtype=float)
    if table.shape != payoff.shape:
        raise ValueError(f"{name} must have the payoff's shape {payoff.shape}, got {table.shape}")
    if (table < 0).any() or not np.isclose(table.sum(), 1.0):
        raise ValueError(f"{name} must be a probability table (non-negative, sums to 1)")
    return table


def check_game(payoff, table, name: str = "dataset table") -> tuple[np.ndarray, np.ndarray]:
    """``(payoff, table)`` as float arrays, after checking that the payoff is finite and ``table`` is a probability
    table over the payoff's joint actions (same shape ``[A_1, ..., A_N]``).

    Raises:
        ValueError: naming ``name`` (the table's role, e.g. ``"dataset table"`` or ``"d"``) or the payoff.
    """
    payoff = np.asarray(payoff, dtype=float)
    table = _check_table(table, payoff, name)
    if not np.isfinite(payoff).all():
        raise ValueError("payoff must be finite")
    return payoff, table


def regularized_optimum(payoff: np.ndarray, mu: np.ndarray, alpha: float) -> np.ndarray:
    """π*_tot ∝ μ_tot exp(r/α), the optimum of max_π E_π[r] − α KL(π‖μ) (omiga.md Eq. 7, one step).

    Args:
        payoff: ``[A_1, ..., A_N]`` team payoffs.
        mu: ``[A_1, ..., A_N]`` behavior (dataset) joint distribution.
        alpha: regularization weight α > 0.

    Returns:
        Joint table of the same shape (zero outside μ's support: the solution is in-sample).

    Raises:
        ValueError: if α ≤ 0 or the tables are inconsistent.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    payoff = np.asarray(payoff, dtype=float)
    mu = _check_table(mu, payoff, "mu")
    logits = np.where(mu > 0, np.log(np.where(mu > 0, mu, 1.0)) + payoff / alpha, -np.inf)
    logits -= logits[np.isfinite(logits)].max()
    p = np.exp(logits)
    return p / p.sum()


def regularized_return(payoff: np.ndarray, mu: np.ndarray, alphas) -> np.ndarray:
    """Expected payoff of :func:`regularized_optimum` for each α in ``alphas`` (shape ``[len(alphas)]``)."""
    return np.array([(regularized_optimum(payoff, mu, a) * payoff).sum() for a in np.atleast_1d(alphas)])


def marginals(joint: np.ndarray) -> list[np.ndarray]:
    """Per-agent marginals of a joint table (BC's fixed point on that data)."""
    joint = np.asarray(joint, dtype=float)
    n = joint.ndim
    return [joint.sum(axis=tuple(j for j in range(n) if j != i)) for i in range(n)]


def is_product(joint: np.ndarray, atol: float = 1e-9) -> bool:
    """True if ``joint`` factorises as the product of its marginals."""
    return bool(np.allclose(joint_from_product(marginals(joint)), joint, atol=atol))


def action_values(payoff: np.ndarray, policies: list[np.ndarray], agent: int) -> np.ndarray:
    """E_{a_{-i} ~ π_{-i}}[r(a_i, a_{-i})] for each action a_i of ``agent`` (shape ``[A_i]``)."""
    payoff = np.asarray(payoff, dtype=float)
    x = np.moveaxis(payoff, agent, 0)
    others = [p for j, p in enumerate(policies) if j != agent]
    for p in reversed(others):
        x = x @ np.asarray(p, dtype=float)
    return x


def best_response(payoff: np.ndarray, policies: list[np.ndarray], agent: int) -> np.ndarray:
    """Indices of ``agent``'s best responses to the other agents' product policy."""
    q = action_values(payoff, policies, agent)
    return np.flatnonzero(np.isclose(q, q.max()))


def pure_nash(payoff: np.ndarray) -> list[tuple[int, ...]]:
    """All pure Nash equilibria: joint actions where no agent gains by deviating alone."""
    payoff = np.asarray(payoff, dtype=float)
    out = []
    for a in itertools.product(*(range(k) for k in payoff.shape)):
        stable = True
        for i in range(payoff.ndim):
            idx = list(a)
            idx[i] = slice(None)
            if payoff[tuple(idx)].max() > payoff[a] + 1e-12:
                stable = False
                break
        if stable:
            out.append(a)
    return out


def ood_mass(joint_policy: np.ndarray, dataset_joint: np.ndarray) -> float:
    """Probability the joint policy puts on joint actions outside the dataset's support."""
    joint_policy, dataset_joint = np.asarray(joint_policy, float), np.asarray(dataset_joint, float)
    if joint_policy.shape != dataset_joint.shape:
        raise ValueError(f"policy table {joint_policy.shape} and dataset table {dataset_joint.shape} differ in shape")
    return float(joint_policy[dataset_joint <= 0].sum())


def ood_actions(joint_policy: np.ndarray, dataset_joint: np.ndarray, threshold: float = 0.05) -> list[tuple[int, ...]]:
    """Joint actions outside the dataset's support that the policy plays with probability > ``threshold``."""
    joint_policy, dataset_joint = np.asarray(joint_policy, float), np.asarray(dataset_joint, float)
    mask = (dataset_joint <= 0) & (joint_policy > threshold)
    return [tuple(int(i) for i in idx) for idx in np.argwhere(mask)]
