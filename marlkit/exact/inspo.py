"""Exact tabular InSPO on a matrix game (inspo.md Algorithm 1, Eqs. 13–15).

On a one-step game the whole algorithm can be run on the joint tables instead of on samples:

- the dataset is its joint distribution ``d [A_1, ..., A_N]`` and the behavior policies μ^i are its marginals
  (what behavior cloning recovers);
- *importance resampling* of the dataset by ρ^{i_n} (Eq. 15) is done exactly as a reweighting of the table,
  ``d_ρ(a) ∝ d(a) · ρ^{i_n}(a^{-i_n})`` with
  ``ρ^{i_n}(a^{-i_n}) = Π_{j≠i_n} π^j(a^j) / μ^j(a^j)``, where π^j is the *new* policy for agents already
  updated in this iteration and the old one for the others;
- the local Q of Eq. 15 is the minimiser of the squared error on ``d_ρ``: the conditional mean
  ``Q^{i_n}(a) = E_{d_ρ}[r | a^{i_n} = a]`` (a one-step game has no bootstrap term, so ``y = r``);
- the policy update Eq. 13 (weighted behavior cloning on ``d_ρ``) has the closed-form minimiser
  ``π_new^{i_n}(a) ∝ d_ρ(a^{i_n} = a) · exp((A(a) − β log μ^{i_n}(a)) / (α + β))`` with
  ``A = Q^{i_n} − E_{π_old^{i_n}}[Q^{i_n}]``.

On a product dataset (``d = ⊗ μ^i``) the reweighted marginal is μ^{i_n} itself, ``Q^{i_n}`` is
``E_{π^{-i_n}}[R(a^{i_n}, ·)]`` and the update is exactly the QRE map of Eq. 12. On a correlated dataset
(XOR ``b``) the reweighted marginal also moves: actions whose in-data partners become unlikely lose support.

``sequential=False`` gives the simultaneous variant (every agent's ρ uses the old teammates: the
"InSPO w/o SPO" ablation of Fig. 5b); ``beta=0`` gives "InSPO w/o entropy" (Fig. 5a).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from marlkit.envs.matrix import expected_return
from marlkit.exact.matrix import check_game, marginals

__all__ = [
    "InSPOTrajectory",
    "beta_schedule",
    "empirical_table",
    "exact_inspo",
    "first_move_game",
    "inspo_agent_update",
    "local_q",
    "resampled_table",
]


def empirical_table(dataset, n_actions: int | None = None) -> np.ndarray:
    """Joint table ``[A]*N`` of the joint-action frequencies of a sampled one-step dataset (what the neural
    algorithm actually sees; run the oracle on it to compare with a neural run on the same data).

    Raises:
        ValueError: for continuous actions.
    """
    actions, shape = _joint_actions(dataset, n_actions, "empirical_table")
    counts = np.bincount(np.ravel_multi_index(actions.T, shape), minlength=int(np.prod(shape)))
    return (counts / counts.sum()).reshape(shape)


def _joint_actions(dataset, n_actions: int | None, caller: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """The dataset's discrete joint actions ``[T, N]`` and the joint table's shape ``(A,) * N``.

    Raises:
        ValueError: naming ``caller``, for continuous actions.
    """
    actions = np.asarray(dataset.actions)
    if actions.ndim != 2 or not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(f"{caller} needs discrete actions [T, N]")
    n_actions = int(n_actions or dataset.meta.get("n_actions") or actions.max() + 1)
    return actions, (n_actions,) * actions.shape[1]


def first_move_game(dataset, gamma: float = 0.99, n_actions: int | None = None,
                    unseen: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The one-step game of a multi-step dataset's first joint moves, for the oracle: ``(payoff, table)``.

    ``table [A]*N`` holds the frequencies of the joint actions at the episodes' first steps; ``payoff`` the mean
    discounted return ``Σ_t γ^t r_t`` of the episodes that start with each joint action (the in-sample value a
    local Q of Eq. 15 is fitted to at the start state, teammates' later moves included). Joint actions no
    episode starts with get ``unseen`` (default: the lowest observed value minus 1); an in-sample method never reads
    them. Meant for games with one start state (Bridge), where the first move decides the convention.

    Raises:
        ValueError: for continuous actions or a dataset without episode starts.
    """
    actions, shape = _joint_actions(dataset, n_actions, "first_move_game")
    starts = np.flatnonzero(dataset.episode_starts)
    if starts.size == 0:
        raise ValueError("first_move_game needs episode starts")
    ends = np.append(starts[1:], len(actions))
    rewards = np.asarray(dataset.rewards, dtype=float)
    returns = [float((rewards[s:e] * gamma ** np.arange(e - s)).sum()) for s, e in zip(starts, ends)]
    first = np.ravel_multi_index(actions[starts].T, shape)
    size = int(np.prod(shape))
    counts = np.bincount(first, minlength=size).reshape(shape).astype(float)
    total = np.bincount(first, weights=returns, minlength=size).reshape(shape)
    seen = counts > 0
    values = np.divide(total, counts, out=np.zeros(shape), where=seen)
    fill = values[seen].min() - 1.0 if unseen is None else unseen
    return np.where(seen, values, fill), counts / counts.sum()


def _outer_over_others(factors: list[np.ndarray], agent: int, n: int) -> np.ndarray:
    """Π_{j≠agent} factors[j][a^j] broadcast to the joint table shape (1 along ``agent``)."""
    out = np.ones([1] * n)
    for j in range(n):
        if j == agent:
            continue
        shape = [1] * n
        shape[j] = -1
        out = out * factors[j].reshape(shape)
    return out


def resampled_table(data: np.ndarray, policies: list[np.ndarray], mu: list[np.ndarray], agent: int) -> np.ndarray:
    """The dataset after importance resampling for ``agent`` (Eq. 15), done exactly as reweighting.

    ``d_ρ(a) ∝ d(a) · Π_{j≠agent} π^j(a^j)/μ^j(a^j)``; μ^j(a^j) = 0 only where d has no mass, so those
    entries stay 0. Returns a table of ``data``'s shape summing to 1.

    Raises:
        ValueError: if the teammates' policies put no mass on any dataset joint action.
    """
    n = data.ndim
    ratios = [np.divide(p, m, out=np.zeros_like(p, dtype=float), where=m > 0) for p, m in zip(policies, mu)]
    w = data * _outer_over_others(ratios, agent, n)
    total = w.sum()
    if total <= 0:
        raise ValueError(f"agent {agent}: teammates' policies give zero weight to every dataset joint action")
    return w / total


def local_q(payoff: np.ndarray, table: np.ndarray, agent: int) -> tuple[np.ndarray, np.ndarray]:
    """Minimiser of the resampled TD loss (Eq. 15) for a one-step game and the action marginal of the table.

    Returns:
        ``(q, marginal)``, each ``[A]``: ``q[a] = E_table[r | a^agent = a]`` (NaN where the marginal is 0,
        i.e. the action never appears in the resampled data) and ``marginal[a] = table(a^agent = a)``.
    """
    others = tuple(j for j in range(table.ndim) if j != agent)
    marginal = table.sum(axis=others)
    num = (table * payoff).sum(axis=others)
    q = np.full_like(marginal, np.nan)
    np.divide(num, marginal, out=q, where=marginal > 0)
    return q, marginal


def inspo_agent_update(payoff, data, policies, mu, agent: int, alpha: float, beta: float) -> dict:
    """One agent's InSPO step: resample (Eq. 15), evaluate its local Q, update its policy (Eq. 13) exactly.

    Args:
        payoff, data: ``[A]*N`` payoff and dataset tables.
        policies: current per-agent policies (new ones for agents already updated this iteration).
        mu: behavior policies μ^i.
        agent: i_n.
        alpha: KL temperature α ≥ 0; beta: entropy temperature β ≥ 0 (α + β > 0).

    Returns:
        dict with ``policy`` (π_new^{i_n}, ``[A]``), ``q`` (local Q, ``[A]``, NaN off the resampled support),
        ``advantage`` ``[A]`` and ``marginal`` (the resampled action marginal ``[A]``).
    """
    payoff, data = check_game(payoff, data)
    if alpha < 0 or beta < 0 or alpha + beta <= 0:
        raise ValueError(f"need alpha >= 0, beta >= 0 and alpha + beta > 0, got alpha={alpha}, beta={beta}")
    table = resampled_table(data, policies, mu, agent)
    q, marginal = local_q(payoff, table, agent)
    support = marginal > 0
    old = np.asarray(policies[agent], dtype=float)
    # A = Q - E_{π_old}[Q] over the resampled support (actions outside it get probability 0 below anyway)
    old_s = old * support
    v = (old_s * np.where(support, q, 0.0)).sum() / old_s.sum() if old_s.sum() > 0 else np.nanmax(q)
    adv = np.where(support, q - v, -np.inf)
    log_mu = np.log(np.where(support, mu[agent], 1.0))
    logits = np.where(support, np.log(np.where(support, marginal, 1.0)) + (adv - beta * log_mu) / (alpha + beta),
                      -np.inf)
    logits -= logits[support].max()
    new = np.exp(logits)
    new /= new.sum()
    return {"policy": new, "q": q, "advantage": np.where(support, q - v, np.nan), "marginal": marginal}


@dataclass
class InSPOTrajectory:
    """Per-iteration record of exact InSPO.

    Attributes:
        policies: ``[K+1, N, A]`` per-agent policies, index 0 = the initial policy π_0.
        returns: ``[K+1]`` exact expected payoff of the product policy.
        orders: the agent permutation drawn at each iteration (K tuples).
        q: ``[K, N, A]`` the local Q each agent regressed on in iteration k (NaN off-support).
    """

    policies: np.ndarray
    returns: np.ndarray
    orders: list[tuple[int, ...]] = field(default_factory=list)
    q: np.ndarray | None = None

    @property
    def final_policy(self) -> np.ndarray:
        """``[N, A]`` policies after the last iteration."""
        return self.policies[-1]

    @property
    def final_return(self) -> float:
        return float(self.returns[-1])


def beta_schedule(beta: float, beta_final: float | None, step: int, total: int) -> float:
    """Entropy temperature at iteration ``step`` of ``total`` (0-based).

    ``beta_final=None`` keeps β constant (the paper's setting). Otherwise β decays linearly from ``beta``
    at step 0 to ``beta_final`` at step ``total - 1`` and stays there: a homotopy along the QRE path (large β
    escapes the local optimum that the behavior policy sits in, small β makes the final policy
    near-deterministic). The paper states a fixed β; the annealing is marlkit's addition (see
    :class:`marlkit.algos.inspo.InSPOConfig`).

    Raises:
        ValueError: if an annealed β has a negative end point.
    """
    if beta_final is None or total <= 1 or beta == beta_final:
        return float(beta)
    if beta < 0 or beta_final < 0:
        raise ValueError(f"an annealed beta needs beta >= 0 and beta_final >= 0, got {beta}, {beta_final}")
    frac = min(max(step / (total - 1), 0.0), 1.0)
    return float(beta + (beta_final - beta) * frac)


def exact_inspo(payoff, data, alpha: float = 1.0, beta: float = 1.0, iterations: int = 50,
                sequential: bool = True, seed: int = 0, mu: list | None = None, init: list | None = None,
                beta_final: float | None = None) -> InSPOTrajectory:
    """Run exact tabular InSPO (Algorithm 1) on a matrix game.

    Each iteration draws a random permutation of the agents (``numpy`` generator seeded with ``seed``) and
    updates them one after the other with :func:`inspo_agent_update`, later agents seeing earlier agents' new
    policies through ρ. With ``sequential=False`` all agents are updated from the same old joint policy.

    Args:
        payoff: payoff tensor ``[A]*N``.
        data: dataset joint table ``[A]*N`` (e.g. ``game.dataset_distribution(name).joint``).
        alpha, beta: temperatures α (behavior KL) and β (entropy).
        iterations: K.
        beta_final: if set, β decays linearly from ``beta`` to ``beta_final`` (:func:`beta_schedule`).
        sequential: sequential (InSPO) or simultaneous (ablation) updates.
        seed: seed of the permutations.
        mu: behavior policies; default: the dataset marginals.
        init: initial policies π_0; default: μ.

    Raises:
        ValueError: for mismatched tables, invalid temperatures or a non-positive ``iterations``.
    """
    payoff, data = check_game(payoff, data)
    if not isinstance(iterations, (int, np.integer)) or iterations <= 0:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    n = data.ndim
    mu = [np.asarray(m, dtype=float) for m in (mu if mu is not None else marginals(data))]
    pols = [np.asarray(p, dtype=float).copy() for p in (init if init is not None else mu)]
    rng = np.random.default_rng(seed)
    hist, rets, orders, qs = [np.stack(pols)], [expected_return(payoff, pols)], [], []
    for k in range(iterations):
        beta_k = beta_schedule(beta, beta_final, k, iterations)
        order = tuple(int(i) for i in rng.permutation(n))
        orders.append(order)
        old = [p.copy() for p in pols]
        q_k = np.full((n, data.shape[0]), np.nan)
        for i in order:
            out = inspo_agent_update(payoff, data, pols if sequential else old, mu, i, alpha, beta_k)
            pols[i] = out["policy"]
            q_k[i] = out["q"]
        hist.append(np.stack(pols))
        rets.append(expected_return(payoff, pols))
        qs.append(q_k)
    return InSPOTrajectory(np.stack(hist), np.array(rets), orders, np.stack(qs))
