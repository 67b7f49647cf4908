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

__all__ = ["figures_dir", "savefig", "plot_table", "plot_game", "regularized_policy_view"]


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
