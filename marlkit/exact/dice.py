"""Exact DICE solutions of single-step games — the oracles ComaDICE is checked against.

In a one-step game the occupancy measure ρ is a distribution over joint actions and the dataset distribution d
plays ρ^μ. The DICE problem (comadice.md Eq. 2 with the flow constraint reduced to normalisation)

    max_{ρ ≥ 0, Σ ρ = m}  E_ρ[r] − α D_f(ρ ‖ d),        D_f(ρ ‖ d) = E_d[f(ρ / d)]

is solved by its Lagrangian: with ν the multiplier of the normalisation,

    ρ(a) = d(a) · w(a),   w(a) = max(0, (f')⁻¹((r(a) − ν) / α)),

and ν is the unique root of Σ_a d(a) w(a) = m (found here by bisection; the sum is non-increasing in ν).
``m = 1`` is the normalised one-step occupancy (ComaDICE with γ = 0). With γ > 0 and one-step episodes the
flow constraint gives ``Σ_a ρ(a) = 1 − γ``: pass ``mass=1 − γ`` to get what ComaDICE's Eq. 11 converges to then.

ComaDICE does not see r itself: its 1-layer mixer writes ``A_tot = Σ_i w_i (q_i(a_i) − ν_i) + b``, a function
*additive* in the agents' actions, fitted to ``r − ν_tot`` by least squares under d (the q-fitting loss).
:func:`additive_projection` computes that fit exactly, and :func:`comadice_solution` the ratios and policies a
fully converged ComaDICE produces: the oracle above applied to the projected reward. Where the additive fit is
exact on d's support (e.g. XOR dataset ``b``: three joint actions, three free parameters), both coincide.

Local policies come from the local weighted BC (comadice.md Eq. 9/12): the maximiser of
``E_d[w · log π_i(a_i)]`` is the marginal of ρ on agent i's action (:func:`local_wbc_policies`), and by
Prop. 4.3 their product is the best product policy for the global weighted BC (Eq. 8).
"""

from __future__ import annotations

import numpy as np

from marlkit.algos.fdiv import FDivergence, get_fdiv
from marlkit.envs.matrix import expected_return, joint_from_product
from marlkit.exact.matrix import check_game, marginals

__all__ = ["dice_optimum", "dice_objective", "dice_dual", "additive_projection", "local_wbc_policies", "comadice_solution"]


def _check(payoff, d, alpha, mass):
    payoff, d = check_game(payoff, d, "d")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if not mass > 0:
        raise ValueError(f"mass must be positive, got {mass}")
    return payoff, d


def dice_optimum(payoff, d, alpha: float, f: str | FDivergence = "soft-chi2", mass: float = 1.0,
                 tol: float = 1e-12) -> dict:
    """Closed-form solution of ``max_ρ E_ρ[r] − α D_f(ρ‖d)`` s.t. ``Σρ = mass``, ``ρ ≥ 0``.

    Args:
        payoff: ``[A_1, ..., A_N]`` team rewards r (any shape).
        d: dataset distribution, same shape, sums to 1.
        alpha: regularisation weight α > 0.
        f: divergence name (``"chi2"``, ``"kl"``, ``"soft-chi2"``) or object.
        mass: total occupancy Σρ (1; or 1 − γ for one-step episodes under discount γ).
        tol: bisection tolerance on ν.

    Returns:
        dict with ``rho`` (occupancy, shape of payoff, zero off d's support), ``w`` (ratio ρ/d on the support,
        0 elsewhere), ``nu`` (the multiplier ν) and ``objective`` (E_ρ[r] − α D_f(ρ‖d)).

    Raises:
        ValueError: for inconsistent tables, α ≤ 0 or mass ≤ 0.
    """
    payoff, d = _check(payoff, d, alpha, mass)
    fd = get_fdiv(f)
    supp = d > 0
    r, p = payoff[supp], d[supp]

    def total(nu: float) -> float:
        return float((p * fd.ratio((r - nu) / alpha)).sum())

    lo, hi = r.min() - alpha, r.max() + alpha
    step = alpha
    while total(lo) < mass:
        lo -= step
        step *= 2
    step = alpha
    while total(hi) > mass:
        hi += step
        step *= 2
    for _ in range(400):
        mid = 0.5 * (lo + hi)
        if total(mid) > mass:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    nu = 0.5 * (lo + hi)
    w = np.zeros_like(payoff)
    w[supp] = fd.ratio((r - nu) / alpha)
    w[supp] *= mass / (p * w[supp]).sum()  # remove the bisection's last ~tol of normalisation error
    rho = d * w
    return {"rho": rho, "w": w, "nu": nu, "objective": dice_objective(payoff, d, rho, alpha, fd)}


def dice_objective(payoff, d, rho, alpha: float, f: str | FDivergence = "soft-chi2") -> float:
    """``E_ρ[r] − α D_f(ρ‖d)`` for an occupancy table ρ (the primal objective of comadice.md Eq. 2)."""
    payoff, d, rho = (np.asarray(x, dtype=float) for x in (payoff, d, rho))
    return float((rho * payoff).sum() - alpha * get_fdiv(f).divergence(rho, d))


def dice_dual(payoff, d, alpha: float, f: str | FDivergence = "soft-chi2", nu=0.0, mass: float = 1.0):
    """The dual ``L̃(ν) = m·ν + E_d[α f*((r − ν)/α)]`` of the one-step DICE problem (comadice.md Prop. 4.1 with
    one state: ``(1−γ) E_{p0}[ν] + E_d[α f*(A_ν/α)]``, ``A_ν = r − ν``, ``m = 1 − γ``).

    Convex in ν; its minimum equals the primal optimum :func:`dice_optimum`'s ``objective`` (strong duality)
    and is attained at its ``nu``.

    Args:
        nu: a scalar or an array of multipliers.

    Returns:
        ``L̃(ν)``, same shape as ``nu`` (float for a scalar).
    """
    payoff, d = _check(payoff, d, alpha, mass)
    fd = get_fdiv(f)
    supp = d > 0
    r, p = payoff[supp], d[supp]
    nu = np.asarray(nu, dtype=float)
    vals = mass * nu + (p * alpha * fd.f_star((r[None, :] - nu.reshape(-1, 1)) / alpha)).sum(-1)
    return float(vals[0]) if nu.ndim == 0 else vals.reshape(nu.shape)


def additive_projection(payoff, d) -> np.ndarray:
    """d-weighted least-squares fit of r by an additive function ``c + Σ_i g_i(a_i)``.

    This is what ComaDICE's q-fitting loss (1-layer mixer, local q_i(a_i)) converges to in a one-step game:
    ``A_tot + ν_tot = Σ_i w_i q_i(a_i) + 2b`` is additive in the actions. Values on d's support are unique; off
    it they are the minimum-norm extension (irrelevant: ρ = 0 there).

    Returns:
        ``r̂`` with the payoff's shape.
    """
    payoff = np.asarray(payoff, dtype=float)
    d = np.asarray(d, dtype=float)
    shape = payoff.shape
    idx = np.indices(shape).reshape(len(shape), -1).T  # [K, N] joint actions
    cols = [np.ones(len(idx))]
    for i, n_i in enumerate(shape):
        cols += [(idx[:, i] == k).astype(float) for k in range(n_i)]
    X = np.stack(cols, 1)
    sw = np.sqrt(d.ravel())
    coef, *_ = np.linalg.lstsq(X * sw[:, None], payoff.ravel() * sw, rcond=None)
    return (X @ coef).reshape(shape)


def local_wbc_policies(rho) -> list[np.ndarray]:
    """Optimal local weighted-BC policies (comadice.md Eq. 9): ``π_i(a_i) ∝ Σ_{a_-i} ρ(a)`` (marginals of ρ)."""
    rho = np.asarray(rho, dtype=float)
    return [m / m.sum() for m in marginals(rho / rho.sum())]


def comadice_solution(payoff, d, alpha: float, f: str | FDivergence = "soft-chi2", gamma: float = 0.0,
                      factored: bool = True) -> dict:
    """What a fully converged ComaDICE (1-layer mixer) learns on a one-step game.

    Args:
        payoff, d, alpha, f: as :func:`dice_optimum`.
        gamma: ComaDICE's discount; one-step episodes give total occupancy ``1 − γ``.
        factored: fit r by :func:`additive_projection` first (the value factorisation); False gives the
            unrestricted DICE optimum.

    Returns:
        dict with ``w`` and ``rho`` (as :func:`dice_optimum`), ``nu``, ``reward_fit`` (r̂), ``policies`` (local
        weighted-BC policies, list of ``[A_i]``), ``joint_policy`` (their product) and ``return`` (its exact
        expected payoff).

    Raises:
        ValueError: as :func:`dice_optimum`, or if γ is outside [0, 1).
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    payoff = np.asarray(payoff, dtype=float)
    fit = additive_projection(payoff, d) if factored else payoff
    sol = dice_optimum(fit, d, alpha, f, mass=1.0 - gamma)
    pols = local_wbc_policies(sol["rho"])
    return {**sol, "reward_fit": fit, "policies": pols, "joint_policy": joint_from_product(pols),
            "return": expected_return(payoff, pols)}
