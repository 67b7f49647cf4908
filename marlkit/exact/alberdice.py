"""Exact tabular AlberDICE on a one-step matrix game (Matsunaga et al., NeurIPS 2023, Sec. 3–4).

AlberDICE alternates best responses: agent i, with its teammates' policies π_{-i} held fixed, solves its own
stationary-distribution problem (paper Eq. 3–4)

    max_{d_i ≥ 0}  E_{d_i(s, a_i) π_{-i}(a_{-i}|s)}[r(s, a)] − α D_KL(d_i(s, a_i) π_{-i}(a_{-i}|s) ‖ d^D(s, a_i, a_{-i}))

subject to the Bellman flow constraint of ``d_i π_{-i}``. The KL splits into
``D_KL(d_i ‖ d^D(s, a_i)) + E_{d_i}[KL(π_{-i}(·|s) ‖ d^D(a_{-i}|s, a_i))]`` (paper Eq. 5), so the teammates
enter agent i's problem through their policy ratio against the *conditional* data distribution. On one state
(a matrix game) the dual has the closed form

    e_i(a_i) = E_{a_{-i} ~ π_{-i}}[r(a_i, a_{-i})] − α KL(π_{-i} ‖ d(·|a_i)),
    d_i*(a_i) ∝ d(a_i) exp(e_i(a_i) / α)                      (the normalised KL optimum, paper Eq. 8–10),

and the I-projection policy extraction (paper Sec. 4.2, ``min_π KL(d^D(s) π_i(a_i|s) ‖ d_i*(s, a_i))``) is exact
on one state: ``π_i = d_i*``. An action a_i whose in-data partners ``d(·|a_i)`` miss the teammates' current
support gets an infinite KL, so ``d_i*(a_i) = 0``: this is how AlberDICE avoids OOD joint actions (XOR dataset
``b``: once agent 2 plays B, agent 1's B is never chosen, since (B, B) is not in the data).

:func:`exact_alberdice` runs the alternating updates (agents in the fixed order 0, ..., N−1 as the official code
does, one exact best response per turn) with α annealed geometrically from ``alpha`` to ``alpha_final`` over the
rounds (the official schedule ``alpha_start = 5 → alpha_end = 0.001``), to its fixed point. A finite ``eps``
floors the conditional data distribution (a learned softmax density never reaches zero either), which
breaks the tie of XOR dataset ``a``, where every action has an infinite KL against a uniform teammate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from marlkit.envs.matrix import expected_return, joint_from_product
from marlkit.exact.matrix import check_game

__all__ = ["AlberDICETrajectory", "alberdice_agent_update", "exact_alberdice"]


def _others_product(policies: list[np.ndarray], agent: int) -> np.ndarray:
    """``π_{-i}(a_{-i})`` broadcast to the joint shape (size 1 along ``agent``)."""
    n = len(policies)
    out = np.ones([1] * n)
    for j, p in enumerate(policies):
        if j != agent:
            shape = [1] * n
            shape[j] = -1
            out = out * np.asarray(p, float).reshape(shape)
    return out


def alberdice_agent_update(payoff, d, policies: list[np.ndarray], agent: int, alpha: float,
                           eps: float = 1e-6) -> dict:
    """Agent ``agent``'s exact AlberDICE best response to its teammates' ``policies`` (one-step game).

    Args:
        payoff: ``[A_1, ..., A_N]`` team rewards.
        d: dataset joint distribution ``[A_1, ..., A_N]`` (sums to 1).
        policies: current per-agent policies ``[A_j]`` (the entry of ``agent`` is ignored).
        agent: i.
        alpha: α > 0.
        eps: floor of the conditional data distribution: ``d_ε(a_{-i}|a_i) = (1 − ε) d(a_{-i}|a_i) + ε / |A_{-i}|``
            (0: the exact in-sample limit).

    Returns:
        dict with ``policy`` (π_i = d_i*, ``[A_i]``, zero off the data marginal), ``e`` (``e_i(a_i)``, ``[A_i]``,
        −inf where the KL is infinite or the action is not in the data), ``kl`` (``KL(π_{-i} ‖ d(·|a_i))``,
        ``[A_i]``) and ``q`` (``E_{π_{-i}}[r(a_i, ·)]``, ``[A_i]``).

    Raises:
        ValueError: for inconsistent tables, α ≤ 0, ε outside [0, 1), or (ε = 0) if every action of the agent has
            an infinite KL.
    """
    payoff, d = check_game(payoff, d, "d")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps must be in [0, 1), got {eps}")
    n = payoff.ndim
    others = tuple(j for j in range(n) if j != agent)
    mu_i = d.sum(axis=others)  # d(a_i)
    pi_others = _others_product(policies, agent)  # [.., 1 at agent, ..]
    q = (pi_others * payoff).sum(axis=others)
    cond = np.divide(d, np.expand_dims(mu_i, others), out=np.zeros_like(d),
                     where=np.expand_dims(mu_i, others) > 0)  # d(a_{-i} | a_i)
    cond = (1.0 - eps) * cond + eps / (d.size // d.shape[agent])
    pi_full = np.broadcast_to(pi_others, d.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pi_full > 0, pi_full * (np.log(pi_full) - np.log(cond)), 0.0)
    kl = terms.sum(axis=others)  # +inf where π_{-i} leaves the conditional support
    e = np.where(mu_i > 0, q - alpha * kl, -np.inf)
    logit = np.where(mu_i > 0, np.log(np.where(mu_i > 0, mu_i, 1.0)) + e / alpha, -np.inf)
    if not np.isfinite(logit).any():
        raise ValueError(f"agent {agent}: every action has an infinite KL against the teammates' policies "
                         "(use eps > 0)")
    w = np.exp(logit - logit[np.isfinite(logit)].max())
    return {"policy": w / w.sum(), "e": e, "kl": kl, "q": q}


@dataclass
class AlberDICETrajectory:
    """Result of :func:`exact_alberdice`.

    Attributes:
        policies: final per-agent policies, list of ``[A_i]``.
        joint_policy: their product ``[A_1, ..., A_N]``.
        ret: its exact expected payoff.
        history: the policies after every round (list of lists).
        alphas: α of every round.
        converged: whether the last round changed no policy by more than ``tol`` (max-abs).
    """

    policies: list[np.ndarray]
    joint_policy: np.ndarray
    ret: float
    history: list[list[np.ndarray]] = field(default_factory=list)
    alphas: list[float] = field(default_factory=list)
    converged: bool = False


def exact_alberdice(payoff, d, alpha: float = 5.0, alpha_final: float | None = 1e-3, rounds: int = 40,
                    policies: list[np.ndarray] | None = None, eps: float = 1e-6, tol: float = 1e-9,
                    extra_rounds: int = 20) -> AlberDICETrajectory:
    """Alternating exact AlberDICE best responses on a one-step game, to a fixed point.

    Args:
        payoff, d: ``[A_1, ..., A_N]`` payoff and dataset tables.
        alpha: α of the first round (official default 5).
        alpha_final: α of round ``rounds`` (official default 0.001), reached geometrically; None keeps α constant.
        rounds: rounds of the schedule; a round updates agents 0, ..., N−1 in turn.
        policies: initial per-agent policies (default uniform: the near-uniform random initialisation of the
            neural policies).
        eps: conditional-data floor (:func:`alberdice_agent_update`).
        tol: a round that moves no policy by more than ``tol`` ends the iteration after the schedule.
        extra_rounds: rounds at ``alpha_final`` after the schedule, at most, until the fixed point.

    Returns:
        :class:`AlberDICETrajectory`.

    Raises:
        ValueError: for inconsistent tables, α ≤ 0, ``alpha_final`` ≤ 0 or ``rounds`` < 1.
    """
    payoff, d = check_game(payoff, d, "d")
    if rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds}")
    if alpha_final is not None and not alpha_final > 0:
        raise ValueError(f"alpha_final must be positive, got {alpha_final}")
    n = payoff.ndim
    pols = [np.full(k, 1.0 / k) for k in payoff.shape] if policies is None else \
        [np.asarray(p, float) / np.sum(p) for p in policies]
    end = alpha if alpha_final is None else alpha_final
    alphas = [alpha * (end / alpha) ** (k / max(rounds - 1, 1)) for k in range(rounds)] + [end] * extra_rounds
    history, used, converged = [], [], False
    for k, a in enumerate(alphas):
        before = [p.copy() for p in pols]
        for i in range(n):
            pols[i] = alberdice_agent_update(payoff, d, pols, i, a, eps)["policy"]
        history.append([p.copy() for p in pols])
        used.append(a)
        moved = max(np.abs(p - b).max() for p, b in zip(pols, before))
        if k >= rounds - 1 and moved <= tol:
            converged = True
            break
    return AlberDICETrajectory(pols, joint_from_product(pols), float(expected_return(payoff, pols)), history, used,
                               converged)

