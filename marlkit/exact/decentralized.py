"""Exact tabular form of the offline decentralized framework on matrix games (offline-decentralized-marl.md
Sec. 3.3, Tables 2–4).

In a one-step game each agent i sees, for its own action a_i, the *outcomes* r = R[a_i, a_-i] produced by its
teammates' behavior policies: the offline transition probability P_Bi(r | a_i) = Σ_{a_-i: R=r} μ_-i(a_-i) (Sec. 2;
equal payoffs are one outcome, because agent i's data cannot tell them apart). The framework replaces it with

    P̂_Bi(r | a_i) = P_Bi(r | a_i) · λ_tn · λ_vd / z_i,      λ_tn = 1 / P_Bi(r | a_i),
    λ_vd = clip(1 + (r − Q_i(a_i)) / |Q_i(a_i)|, 1 − ε, 1 + ε),   Q_i(a_i) = Σ_r P̂_Bi(r | a_i) r,

where the outcome's value is its payoff and Q_i(a_i) is its expectation (the convention of Sec. 5.1). Because
λ_vd depends on Q_i, Q_i is the fixed point of ``Q ← E_{P̂(Q)}[r]`` (Theorem 1), found here by iteration. Without
clipping and with positive payoffs λ_vd = r/Q, so P̂ ∝ P·r (λ_vd only) or P̂ ∝ r (both): Tables 3 and 4.
Each agent then takes argmax_{a_i} Q_i(a_i); the joint greedy action and its payoff follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AgentTable", "decentralized_tables", "greedy_joint", "modified_transitions", "offline_transitions"]


@dataclass
class AgentTable:
    """Agent i's view of the game under one weighting.

    Attributes:
        agent: i.
        outcomes: per own action a_i, the distinct payoffs r it can lead to (list of arrays).
        behavior: per a_i, P_Bi(r | a_i) (the dataset's transition probabilities).
        modified: per a_i, P̂_Bi(r | a_i).
        values: Q_i(a_i) = E_P̂[r], shape ``[A_i]``.
    """

    agent: int
    outcomes: list[np.ndarray]
    behavior: list[np.ndarray]
    modified: list[np.ndarray]
    values: np.ndarray

    @property
    def greedy(self) -> int:
        """argmax_{a_i} Q_i(a_i)."""
        return int(np.argmax(self.values))

    def rows(self, action_names: list[str] | None = None, decimals: int = 2) -> list[dict]:
        """Printable rows ``{action, outcome, p, expected_return}`` in the layout of the paper's Tables 2–4."""
        out = []
        for a, (rs, ps) in enumerate(zip(self.outcomes, self.modified)):
            name = action_names[a] if action_names else str(a)
            for r, p in zip(rs, ps):
                out.append({"agent": self.agent + 1, "action": name, "outcome": float(r),
                            "p": round(float(p), decimals), "expected_return": round(float(self.values[a]), decimals)})
        return out


def offline_transitions(payoff: np.ndarray, behaviors: list[np.ndarray], agent: int
                        ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Agent ``agent``'s outcomes and P_Bi(r | a_i) under the teammates' behavior policies μ_-i.

    Args:
        payoff: ``R [A_1, ..., A_N]``.
        behaviors: per-agent behavior policies μ^j (probability vectors).
        agent: i.

    Returns:
        ``(outcomes, probs)``: per a_i the sorted-by-first-appearance distinct payoffs and their probabilities.

    Raises:
        ValueError: if the behaviors do not match the payoff's shape or are not distributions.
    """
    payoff = np.asarray(payoff, dtype=float)
    if len(behaviors) != payoff.ndim:
        raise ValueError(f"need {payoff.ndim} behavior policies, got {len(behaviors)}")
    for j, mu in enumerate(behaviors):
        mu = np.asarray(mu, dtype=float)
        if mu.shape != (payoff.shape[j],) or (mu < 0).any() or not np.isclose(mu.sum(), 1.0):
            raise ValueError(f"behavior policy of agent {j} must be a distribution over {payoff.shape[j]} actions, "
                             f"got {mu}")
    R = np.moveaxis(payoff, agent, 0)  # [A_i, A_-i...]
    others = [np.asarray(behaviors[j], dtype=float) for j in range(payoff.ndim) if j != agent]
    w = np.ones(())
    for mu in others:
        w = np.multiply.outer(w, mu)
    outcomes, probs = [], []
    for a in range(R.shape[0]):
        r_flat, w_flat = R[a].reshape(-1), np.broadcast_to(w, R[a].shape).reshape(-1)
        keep = w_flat > 0
        uniq, first = np.unique(r_flat[keep], return_index=True)
        order = np.argsort(first)
        uniq = uniq[order]
        outcomes.append(uniq)
        probs.append(np.array([w_flat[keep][r_flat[keep] == u].sum() for u in uniq]))
    return outcomes, probs


def modified_transitions(outcomes: np.ndarray, probs: np.ndarray, vd: bool = True, tn: bool = True,
                         epsilon: float | None = None, iters: int = 1000, tol: float = 1e-12
                         ) -> tuple[np.ndarray, float]:
    """P̂(r | a_i) and Q_i(a_i) for one action: the fixed point of Sec. 3.3's modified transition probabilities.

    Args:
        outcomes: distinct payoffs r, ``[K]``.
        probs: P_Bi(r | a_i), ``[K]`` (positive, summing to 1).
        vd, tn: apply λ_vd / λ_tn.
        epsilon: clip λ_vd to [1 − ε, 1 + ε]; None: no clipping (the paper's Tables 3–4).
        iters, tol: fixed-point iteration limits, starting from the unweighted expectation (Table 2).

    Returns:
        ``(P̂ [K], Q)``.

    Raises:
        ValueError: if the weights vanish (e.g. all-zero payoffs with λ_vd unclipped).
    """
    r, p = np.asarray(outcomes, dtype=float), np.asarray(probs, dtype=float)
    base = np.ones_like(p) / len(p) if tn else p  # P · λ_tn / z_tn is uniform over observed outcomes
    q = float(base @ r)
    phat = base
    for _ in range(iters):
        if vd:
            lam = 1.0 + (r - q) / max(abs(q), 1e-12)
            if epsilon is not None:
                lam = np.clip(lam, 1.0 - epsilon, 1.0 + epsilon)
            w = base * lam
            if w.sum() <= 0:
                raise ValueError(f"value deviation weights vanish for outcomes {r} (Q = {q}); use epsilon < 1")
            phat = w / w.sum()
        q_new = float(phat @ r)
        if abs(q_new - q) < tol:
            q = q_new
            break
        q = q_new
    return phat, q


def decentralized_tables(payoff: np.ndarray, behaviors: list[np.ndarray], vd: bool = True, tn: bool = True,
                         epsilon: float | None = None) -> list[AgentTable]:
    """Every agent's outcomes, P_Bi, P̂_Bi and Q_i under the chosen weighting (Tables 2, 3, 4 for
    (vd, tn) = (False, False), (True, False), (True, True))."""
    tables = []
    for i in range(np.ndim(payoff)):
        outs, probs = offline_transitions(payoff, behaviors, i)
        mods, vals = [], []
        for r, p in zip(outs, probs):
            phat, q = modified_transitions(r, p, vd, tn, epsilon)
            mods.append(phat)
            vals.append(q)
        tables.append(AgentTable(i, outs, probs, mods, np.array(vals)))
    return tables


def greedy_joint(payoff: np.ndarray, tables: list[AgentTable]) -> tuple[tuple[int, ...], float]:
    """The joint action of the agents' independent greedy choices and its true payoff."""
    joint = tuple(t.greedy for t in tables)
    return joint, float(np.asarray(payoff)[joint])
