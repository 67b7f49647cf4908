"""f-divergences for DICE: the generator f, its convex conjugate f*, and the inverse derivative (f')⁻¹.

A DICE objective penalises the distribution shift ``α D_f(ρ^π ‖ ρ^μ) = α E_{ρ^μ}[f(w)]`` with the occupancy ratio
``w = ρ^π / ρ^μ ≥ 0`` (comadice.md Eq. 1–4). Its Lagrange dual (comadice.md Prop. 4.1) only needs

- the convex conjugate restricted to non-negative ratios, ``f*(y) = sup_{x ≥ 0} x·y − f(x)``;
- the maximiser of that sup, ``w*(y) = max(0, (f')⁻¹(y))``, which is also ``d f*(y) / dy``.

Closed forms (x is the ratio, y the argument of the conjugate; all three have f(1) = 0 and f'(1) = 0 except KL):

============ ================================== ================== ==========================================
name         f(x), x ≥ 0                         (f')⁻¹(y)          f*(y) = sup_{x≥0} x·y − f(x)
============ ================================== ================== ==========================================
``chi2``     ½ (x − 1)²                          y + 1              ½ max(0, y + 1)² − ½
``kl``       x log x                             exp(y − 1)         exp(y − 1)
``soft-chi2``x log x − x + 1   (x < 1)           exp(y)   (y < 0)   exp(y) − 1      (y < 0)
             ½ (x − 1)²        (x ≥ 1)           y + 1    (y ≥ 0)   ½ y² + y        (y ≥ 0)
============ ================================== ================== ==========================================

Sources: χ² and soft-χ² as in OptiDICE (Lee et al. 2021, App. and its ``soft_chi`` option); ``kl`` uses
``f(x) = x log x`` as the official ComaDICE code does (its ratio is ``exp(y − 1)``); ``soft-chi2`` is the official
ComaDICE code's default divergence. soft-χ² is KL-like below x = 1 and χ²-like above it: its ratio never
reaches zero (unlike χ², which truncates low-advantage actions) and grows only linearly for large advantages
(unlike KL, whose exponential ratio can overflow).

Every method accepts a ``torch.Tensor`` (differentiable, used in training) or anything NumPy converts to an
array (returns ``np.ndarray``, float64; used by the exact oracles in :mod:`marlkit.exact.dice`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["FDivergence", "ChiSquare", "KL", "SoftChiSquare", "F_DIVERGENCES", "get_fdiv", "dual_loss",
           "occupancy_ratio"]


def _dual(fn: Callable[[torch.Tensor], torch.Tensor]):
    """Run a torch implementation on NumPy input too (float64 in, ``np.ndarray`` out)."""

    def wrapper(self, x):
        if isinstance(x, torch.Tensor):
            return fn(self, x)
        return fn(self, torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


class FDivergence:
    """An f-divergence generator. Subclasses implement :meth:`f`, :meth:`f_star` and :meth:`f_prime_inv`."""

    name: str = "base"

    @_dual
    def f(self, x):
        """Generator f(x) of the ratio x ≥ 0 (elementwise)."""
        raise NotImplementedError

    @_dual
    def f_star(self, y):
        """Convex conjugate on non-negative ratios, ``f*(y) = sup_{x≥0} x·y − f(x)`` (elementwise)."""
        raise NotImplementedError

    @_dual
    def f_prime_inv(self, y):
        """Inverse of the derivative f' (elementwise)."""
        raise NotImplementedError

    @_dual
    def ratio(self, y):
        """Optimal occupancy ratio ``w*(y) = max(0, (f')⁻¹(y)) = f*'(y)`` (comadice.md Prop. 4.1), ≥ 0."""
        return self.f_prime_inv(y).clamp_min(0.0)

    @_dual
    def log_ratio(self, y):
        """``log w*(y)``, elementwise, finite: ``log max(w*(y), 1e-10)`` (subclasses give exact closed forms where
        w* may underflow; OptiDICE's I-projection needs it, Lee et al. 2021 Sec. 4.2)."""
        return torch.log(self.ratio(y).clamp_min(1e-10))

    def divergence(self, rho, d) -> float:
        """``D_f(ρ‖d) = Σ_a d(a) f(ρ(a)/d(a))`` of two tables (NumPy; entries with d = 0 must have ρ = 0).

        Raises:
            ValueError: if ρ puts mass where d is zero (the divergence is infinite there).
        """
        rho, d = np.asarray(rho, float), np.asarray(d, float)
        if (rho[d <= 0] > 1e-12).any():
            raise ValueError("rho has mass outside the support of d: D_f is infinite")
        supp = d > 0
        return float((d[supp] * self.f(rho[supp] / d[supp])).sum())

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ChiSquare(FDivergence):
    """Pearson χ²: ``f(x) = ½(x−1)²``; ratios ``max(0, y+1)`` truncate low-advantage actions to zero."""

    name = "chi2"

    @_dual
    def f(self, x):
        return 0.5 * (x - 1.0) ** 2

    @_dual
    def f_star(self, y):
        return 0.5 * (y + 1.0).clamp_min(0.0) ** 2 - 0.5

    @_dual
    def f_prime_inv(self, y):
        return y + 1.0


class KL(FDivergence):
    """Kullback–Leibler: ``f(x) = x log x``; ratios ``exp(y−1)`` (a Boltzmann reweighting, never zero)."""

    name = "kl"

    @_dual
    def f(self, x):
        return torch.xlogy(x, x)

    @_dual
    def f_star(self, y):
        return torch.exp(y - 1.0)

    @_dual
    def f_prime_inv(self, y):
        return torch.exp(y - 1.0)

    @_dual
    def log_ratio(self, y):
        return y - 1.0


class SoftChiSquare(FDivergence):
    """soft-χ²: KL-shaped ``x log x − x + 1`` for x < 1, χ² ``½(x−1)²`` for x ≥ 1 (official ComaDICE default).

    The exponential branches are evaluated on ``min(y, 0)`` so that neither values nor gradients overflow.
    """

    name = "soft-chi2"

    @_dual
    def f(self, x):
        below = torch.xlogy(x, x) - x + 1.0
        return torch.where(x < 1.0, below, 0.5 * (x - 1.0) ** 2)

    @_dual
    def f_star(self, y):
        neg = y.clamp_max(0.0)
        return torch.where(y < 0.0, torch.exp(neg) - 1.0, 0.5 * y ** 2 + y)

    @_dual
    def f_prime_inv(self, y):
        neg = y.clamp_max(0.0)
        return torch.where(y < 0.0, torch.exp(neg), y + 1.0)

    @_dual
    def log_ratio(self, y):
        return torch.where(y < 0.0, y, torch.log1p(y.clamp_min(0.0)))


F_DIVERGENCES: dict[str, type[FDivergence]] = {"chi2": ChiSquare, "kl": KL, "soft-chi2": SoftChiSquare}
"""Divergences by the name the ``f`` config field takes (``--f soft-chi2`` on the CLI)."""


def get_fdiv(name: str | FDivergence) -> FDivergence:
    """The divergence called ``name`` (or ``name`` itself if it already is one).

    Raises:
        ValueError: naming the valid divergences.
    """
    if isinstance(name, FDivergence):
        return name
    if name not in F_DIVERGENCES:
        raise ValueError(f"unknown f-divergence {name!r}; valid: {', '.join(F_DIVERGENCES)}")
    return F_DIVERGENCES[name]()


def dual_loss(nu0: torch.Tensor, e: torch.Tensor, alpha, f: FDivergence, gamma: float) -> torch.Tensor:
    """The DICE dual in the multiplier ν (OptiDICE, Lee et al. 2021, Eq. 8; comadice.md Prop. 4.1 and Eq. 11):

    ``(1 − γ) E_{s₀}[ν(s₀)] + E_D[α f*(e / α)]``, with ``e = r + γ ν(s') − ν(s)`` (the advantage ``e_ν``;
    ComaDICE's mixed ``A_tot``; OptiDICE's ``e_ν − λ`` when normalised).

    Args:
        nu0: ν at initial states, ``[B0]`` (any shape; averaged).
        e: advantages on dataset transitions, ``[B]`` (any shape; averaged).
        alpha: α > 0 (float or scalar tensor).
        f: the divergence (uses its conjugate f*).
        gamma: discount γ.

    Returns:
        scalar loss.
    """
    return (1.0 - gamma) * nu0.mean() + (alpha * f.f_star(e / alpha)).mean()


def occupancy_ratio(e: torch.Tensor, alpha, f: FDivergence) -> torch.Tensor:
    """``w*(s, a) = max(0, (f')⁻¹(e / α))`` (OptiDICE Eq. 9; comadice.md Prop. 4.1), same shape as ``e``, ≥ 0."""
    return f.ratio(e / alpha)
