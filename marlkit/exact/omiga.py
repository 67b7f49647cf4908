"""Exact OMIGA on a matrix game: the fixed point the neural algorithm converges to on single-step data.

On a one-step game every transition is terminal, so the TD target of Eq. 13 is the reward itself and the
observation is constant. Then (omiga.md Sec. 4):

- **Eq. 13** fits ``Q_tot(a) = Σ_i w_i Q_i(a_i) + b`` to ``r(a)`` by least squares under the dataset distribution
  ``d(a)``. Only the products ``g_i(a_i) = w_i Q_i(a_i)`` are identified (a weight rescales its Q_i, constants
  move into b), so the fit is the weighted projection of ``r`` onto *additive* functions ``b + Σ_i g_i(a_i)``.
  When the data's support leaves a direction unidentified (XOR ``a``), we take the minimum-norm solution — the
  one gradient descent from a near-zero initialization reaches.
- **Eq. 12** has the closed-form minimizer (Prop. 4.4, Eq. 10)
  ``V_i = (α / w_i) log E_{a_i∼μ_i}[exp(w_i Q_i(a_i) / α)]``, where μ_i is agent i's marginal in the data.
- **Eq. 14** with a free policy per agent gives ``π_i(a_i) ∝ μ_i(a_i) exp(z_i(a_i))``,
  ``z_i = w_i(Q_i − V_i)/α`` (Eq. 9), with z clamped to ``[−c, c]`` as the neural implementation does
  (c = 10; ``exp_clamp=None`` gives the unclamped Eq. 9).

Because only ``w_i Q_i`` matters, the policies do not depend on the weights chosen (default ``w_i = 1``).
On a product dataset the decomposition is exact iff ``r`` is additive; otherwise (XOR) the additive fit
extrapolates to joint actions the data never shows — the failure notebook 02 illustrates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from marlkit.envs.matrix import joint_from_product
from marlkit.exact.matrix import check_game, marginals

__all__ = ["OmigaSolution", "linear_decomposition", "local_value", "local_value_objective", "omiga_policies",
           "omiga_solution"]


def linear_decomposition(payoff, data, weights=None) -> tuple[np.ndarray, list[np.ndarray], float, np.ndarray]:
    """Least-squares fit of Eq. 13 on a one-step game: ``min E_{a∼d}[(Σ_i w_i Q_i(a_i) + b − r(a))²]``.

    Args:
        payoff: ``[A_1, ..., A_N]`` rewards r(a).
        data: ``[A_1, ..., A_N]`` dataset distribution d(a).
        weights: mixing weights ``w_i > 0`` (``[N]``; default all 1). They only rescale Q_i.

    Returns:
        ``(w [N], [Q_i [A_i] for each agent], b, Q_tot [A_1, ..., A_N])``; ``Q_tot`` is defined on every joint
        action, including those outside the data (its additive extrapolation).

    Raises:
        ValueError: for inconsistent tables or non-positive weights.
    """
    payoff, data = check_game(payoff, data)
    n, sizes = payoff.ndim, payoff.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or (w <= 0).any():
        raise ValueError(f"weights must be {n} positive numbers, got {weights!r}")
    joint = np.array(np.unravel_index(np.arange(payoff.size), sizes)).T  # [K, N] joint actions
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    X = np.zeros((payoff.size, 1 + offsets[-1]))
    X[:, 0] = 1.0  # b
    for i in range(n):
        X[np.arange(payoff.size), 1 + offsets[i] + joint[:, i]] = 1.0  # g_i(a_i) = w_i Q_i(a_i)
    sw = np.sqrt(data.ravel())
    theta = np.linalg.lstsq(X * sw[:, None], payoff.ravel() * sw, rcond=None)[0]  # minimum-norm solution
    b = float(theta[0])
    g = [theta[1 + offsets[i]: 1 + offsets[i + 1]] for i in range(n)]
    q_tot = (X @ theta).reshape(sizes)
    return w, [g[i] / w[i] for i in range(n)], b, q_tot


def local_value_objective(v, q, mu, w: float, alpha: float) -> np.ndarray:
    """Eq. 11/12 for one agent: ``E_{a∼μ}[exp(w (Q(a) − V)/α)] + w V/α`` at each ``V`` in ``v`` (convex in V).

    Args:
        v: scalar or array of candidate values V.
        q: ``[A]`` local action values Q_i.
        mu: ``[A]`` local behavior policy μ_i.
        w: weight w_i ≥ 0.
        alpha: α > 0.
    """
    v = np.asarray(v, dtype=float)
    q, mu = np.asarray(q, float), np.asarray(mu, float)
    return (mu * np.exp(w * (q[None, :] - v.reshape(-1, 1)) / alpha)).sum(-1).reshape(v.shape) + w * v / alpha


def local_value(q, mu, w: float, alpha: float) -> float:
    """Minimizer of Eq. 11: ``V = (α/w) log E_{a∼μ}[exp(w Q(a)/α)]`` (solves Eq. 10; log-sum-exp stabilized).

    Raises:
        ValueError: if α ≤ 0 or w ≤ 0 (with w = 0 the objective is constant in V).
    """
    if not alpha > 0 or not w > 0:
        raise ValueError(f"alpha and w must be positive, got alpha={alpha}, w={w}")
    q, mu = np.asarray(q, float), np.asarray(mu, float)
    x = w * q[mu > 0] / alpha
    m = x.max()
    return float(alpha / w * (m + np.log((mu[mu > 0] * np.exp(x - m)).sum())))


def omiga_policies(q_local: list[np.ndarray], v_local, mus: list[np.ndarray], weights, alpha: float,
                   exp_clamp: float | None = 10.0) -> list[np.ndarray]:
    """Local policies of Eqs. 9/14: ``π_i ∝ μ_i exp(clamp(w_i (Q_i − V_i)/α, −c, c))``, each ``[A_i]``."""
    out = []
    for q, v, mu, w in zip(q_local, v_local, mus, weights):
        z = w * (np.asarray(q) - v) / alpha
        if exp_clamp is not None:
            z = np.clip(z, -exp_clamp, exp_clamp)
        p = np.asarray(mu, float) * np.exp(z - z.max())
        out.append(p / p.sum())
    return out


@dataclass
class OmigaSolution:
    """Exact OMIGA on a matrix game (see module docstring).

    Attributes:
        w: ``[N]`` mixing weights; q_local: ``Q_i [A_i]`` per agent; b: offset; q_tot: fitted ``Q_tot`` table
        (additive extrapolation outside the data); v_local: ``[N]`` V_i (Eq. 10); mus: local behavior μ_i;
        policies: local policies π_i (Eq. 9); joint: ``⊗_i π_i``; alpha: α.
    """

    w: np.ndarray
    q_local: list[np.ndarray]
    b: float
    q_tot: np.ndarray
    v_local: np.ndarray
    mus: list[np.ndarray]
    policies: list[np.ndarray]
    joint: np.ndarray
    alpha: float
    extra: dict = field(default_factory=dict)

    def expected_return(self, payoff) -> float:
        """Exact expected payoff of the product policy ⊗ π_i."""
        return float((self.joint * np.asarray(payoff, float)).sum())


def omiga_solution(payoff, data, alpha: float, weights=None, exp_clamp: float | None = 10.0) -> OmigaSolution:
    """The exact OMIGA fixed point on a one-step game with dataset distribution ``data`` at regularization ``α``.

    Raises:
        ValueError: if α ≤ 0 or the tables are inconsistent.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    payoff, data = check_game(payoff, data)
    w, q_local, b, q_tot = linear_decomposition(payoff, data, weights)
    mus = marginals(data)
    v_local = np.array([local_value(q, mu, wi, alpha) for q, mu, wi in zip(q_local, mus, w)])
    policies = omiga_policies(q_local, v_local, mus, w, alpha, exp_clamp)
    return OmigaSolution(w, q_local, b, q_tot, v_local, mus, policies, joint_from_product(policies), alpha)
