"""Plotting helpers the notebooks share (matplotlib/seaborn). Widget callbacks are plain functions here so
tests can call them without a browser.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from marlkit.envs.matrix import MatrixGame
from marlkit.exact.matrix import ood_mass, regularized_optimum, regularized_return

__all__ = [
    "figures_dir",
    "omiga_policy_view",
    "plot_alpha_curves",
    "plot_decomposition",
    "plot_game",
    "plot_policy_bars",
    "plot_table",
    "plot_v_objective",
    "regularized_policy_view",
    "savefig",
]


def figures_dir() -> Path:
    """``$MARLKIT_FIGURES``, else the ``figures/`` folder of the repository the process runs in (found from the
    working directory upwards), else ``./figures``."""
    env = os.environ.get("MARLKIT_FIGURES")
    if env:
        path = Path(env)
    else:
        cwd = Path.cwd()
        path = next((p / "figures" for p in (cwd, *cwd.parents) if (p / "figures").is_dir() and (p / "marlkit").is_dir()),
                    cwd / "figures")
    path.mkdir(parents=True, exist_ok=True)
    return path


def savefig(fig, name: str) -> Path:
    """Save ``fig`` as ``figures/<name>`` (PNG, 120 dpi) and return the path."""
    path = figures_dir() / name
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_table(table, action_names, title: str = "", ax=None, fmt: str = ".2f", cmap: str = "rocket_r",
               vmin=None, vmax=None):
    """Heatmap of a 2-agent table ``[A_1, A_2]`` (rows agent 1, columns agent 2)."""
    table = np.asarray(table, dtype=float)
    if table.ndim != 2:
        raise ValueError(f"plot_table draws 2-agent tables, got shape {table.shape}")
    ax = ax or plt.gca()
    sns.heatmap(table, annot=True, fmt=fmt, cmap=cmap, cbar=False, square=True, ax=ax, vmin=vmin, vmax=vmax,
                xticklabels=action_names, yticklabels=action_names, linewidths=0.5, linecolor="white")
    ax.set_xlabel("agent 2")
    ax.set_ylabel("agent 1")
    ax.set_title(title)
    return ax


def plot_game(game: MatrixGame, datasets: list[str] | None = None):
    """Payoff heatmap followed by the joint distribution of each named dataset."""
    datasets = list(game.datasets) if datasets is None else datasets
    fig, axes = plt.subplots(1, 1 + len(datasets), figsize=(2.8 * (1 + len(datasets)), 2.8))
    axes = np.atleast_1d(axes)
    plot_table(game.payoff, game.action_names, f"{game.spec.name}: payoff r", axes[0], fmt=".0f", cmap="vlag")
    for ax, name in zip(axes[1:], datasets):
        plot_table(game.datasets[name].joint, game.action_names, f"dataset {name}", ax, vmin=0, vmax=1)
    fig.tight_layout()
    return fig


def regularized_policy_view(game: MatrixGame, dataset: str, alpha: float, alphas=None):
    """The behavior-regularized optimum π* ∝ μ exp(r/α) (omiga.md Eq. 7) at one α, and its return over α.

    Returns:
        ``(fig, return_at_alpha, ood_mass)``; the in-sample optimum never has OOD mass.
    """
    mu = game.datasets[dataset].joint
    pi = regularized_optimum(game.payoff, mu, alpha)
    alphas = np.logspace(-2, 2, 60) if alphas is None else np.asarray(alphas)
    curve = regularized_return(game.payoff, mu, alphas)
    ret = float((pi * game.payoff).sum())
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.5, 3))
    plot_table(pi, game.action_names, f"π* at α = {alpha:.3g}", ax1, vmin=0, vmax=1)
    ax2.semilogx(alphas, curve, label="E_π*[r]")
    ax2.axhline(float((mu * game.payoff).sum()), color="grey", ls=":", label="E_μ[r] (data)")
    ax2.scatter([alpha], [ret], color="C3", zorder=3)
    ax2.set_xlabel("α")
    ax2.set_ylabel("expected return")
    ax2.legend(fontsize=8)
    ax2.set_title(f"{game.spec.name} ({dataset}): return vs α")
    fig.tight_layout()
    return fig, ret, ood_mass(pi, mu)


def plot_policy_bars(policies, action_names, title: str = "", ax=None, reference=None, reference_label: str = "μ_i"):
    """Grouped bars of per-agent distributions ``policies [N][A]``; optional ``reference [N][A]`` drawn as ticks."""
    policies = np.asarray(policies, dtype=float)
    ax = ax or plt.gca()
    n, A = policies.shape
    width = 0.8 / n
    x = np.arange(A)
    for i in range(n):
        ax.bar(x + (i - (n - 1) / 2) * width, policies[i], width, label=f"π_{i + 1}", color=f"C{i}", alpha=0.8)
        if reference is not None:
            ax.scatter(x + (i - (n - 1) / 2) * width, np.asarray(reference[i], float), marker="_", s=300,
                       color="k", zorder=3, label=reference_label if i == 0 else None)
    ax.set_xticks(x, action_names)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("probability")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_decomposition(game: MatrixGame, dataset: str, sol=None):
    """The linear decomposition Q_tot = Σ_i w_i Q_i + b fitted in-sample (omiga.md Eq. 8/13, exact least squares)
    next to the payoff r and the data d; the fitted table extrapolates to joint actions outside the data.

    Returns:
        ``(fig, sol)`` with ``sol`` the :class:`~marlkit.exact.omiga.OmigaSolution` (α = 1 if not given; the fit
        does not depend on α).
    """
    from marlkit.exact.omiga import omiga_solution

    d = game.datasets[dataset].joint
    sol = sol or omiga_solution(game.payoff, d, 1.0)
    lim = float(np.abs(game.payoff).max())
    fig, axes = plt.subplots(1, 3, figsize=(8.4, 2.8))
    plot_table(game.payoff, game.action_names, "payoff r", axes[0], fmt=".1f", cmap="vlag", vmin=-lim, vmax=lim)
    plot_table(d, game.action_names, f"dataset {dataset}", axes[1], vmin=0, vmax=1)
    plot_table(sol.q_tot, game.action_names, "fitted Σ w_i Q_i + b", axes[2], fmt=".2f", cmap="vlag", vmin=-lim,
               vmax=lim)
    for a in np.argwhere(d <= 0):  # hatch joint actions the data never shows
        axes[2].add_patch(plt.Rectangle((a[1], a[0]), 1, 1, fill=False, hatch="//", edgecolor="k", lw=0))
    fig.suptitle(f"{game.spec.name} ({dataset}): hatched = outside the data (extrapolated)", fontsize=9)
    fig.tight_layout()
    return fig, sol


def plot_v_objective(q, mu, w: float, alphas, ax=None):
    """Eq. 11/12 ``f(V) = E_μ[exp(w(Q − V)/α)] + wV/α`` minus its minimum, as a function of V for each α, with the
    closed-form minimizer V* (Eq. 10) dotted. (With ``u = w(V − V*)/α``, ``f − f* = e^{−u} + u − 1 ≥ 0``.)"""
    from marlkit.exact.omiga import local_value, local_value_objective

    ax = ax or plt.gca()
    q = np.asarray(q, float)
    stars = [local_value(q, mu, w, a) for a in alphas]
    lo = min(v - 3 * a / w for v, a in zip(stars, alphas))
    hi = max(v + 3 * a / w for v, a in zip(stars, alphas))
    grid = np.linspace(lo, hi, 500)
    for k, (alpha, v_star) in enumerate(zip(alphas, stars)):
        f = local_value_objective(grid, q, mu, w, alpha) - float(local_value_objective(v_star, q, mu, w, alpha))
        ax.plot(grid, f, color=f"C{k}", label=f"α = {alpha:g}: V* = {v_star:.3f}")
        ax.axvline(v_star, color=f"C{k}", ls=":", lw=1)
    ax.set_ylim(-0.05, 1.5)
    ax.set_xlabel("V_i")
    ax.set_ylabel("objective − minimum")
    ax.set_title("Eq. 12 is convex in V_i; dotted: Eq. 10 minimizer")
    ax.legend(fontsize=8)
    return ax


def omiga_policy_view(game: MatrixGame, dataset: str, alpha: float):
    """Exact OMIGA at one α: local policies π_i ∝ μ_i exp(w_i(Q_i − V_i)/α) (Eq. 9) against μ_i (BC), and the
    joint product policy. Large α gives BC, small α the greedy action of the fitted decomposition.

    Returns:
        ``(fig, return, ood_mass)`` of the product policy.
    """
    from marlkit.exact.omiga import omiga_solution

    d = game.datasets[dataset].joint
    sol = omiga_solution(game.payoff, d, alpha)
    ret, ood = sol.expected_return(game.payoff), ood_mass(sol.joint, d)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.5, 3))
    plot_policy_bars(sol.policies, game.action_names, f"local policies at α = {alpha:.3g}", ax1,
                     reference=sol.mus, reference_label="μ_i (BC)")
    plot_table(sol.joint, game.action_names, f"⊗ π_i: return {ret:.2f}, OOD {ood:.2f}", ax2, vmin=0, vmax=1)
    fig.tight_layout()
    return fig, ret, ood


def plot_alpha_curves(curves: dict, alphas, points: dict | None = None, ax=None, title: str = ""):
    """Return-vs-α curves ``{label: returns [len(alphas)]}`` on a log axis, with optional scatter points
    ``{label: (alphas, returns)}`` (e.g. neural runs) in the matching colors."""
    ax = ax or plt.gca()
    colors = {}
    for k, (label, ys) in enumerate(curves.items()):
        (line,) = ax.semilogx(alphas, ys, label=label, color=f"C{k}")
        colors[label] = line.get_color()
    for k, (label, (xs, ys)) in enumerate((points or {}).items()):
        ax.scatter(xs, ys, label=label, color=colors.get(label.split(" (")[0], f"C{k + len(curves)}"), zorder=3,
                   edgecolor="k")
    ax.set_xlabel("α")
    ax.set_ylabel("expected return")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return ax
