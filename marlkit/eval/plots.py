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

__all__ = ["figures_dir", "savefig", "plot_table", "plot_game", "regularized_policy_view", "plot_policy_trajectories",
           "inspo_view"]


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


def plot_policy_trajectories(policies, action_names, steps=None, title: str = "", axes=None, xlabel: str = "iteration"):
    """Line plots of each agent's policy over training: one panel per agent, one line per action.

    Args:
        policies: ``[K, N, A]`` per-agent action probabilities at K points (e.g.
            :attr:`marlkit.exact.inspo.InSPOTrajectory.policies` or stacked ``per_agent_policy`` records).
        action_names: A labels.
        steps: x values ``[K]`` (default ``0..K-1``).
        axes: N matplotlib axes to draw into (default: a new figure).

    Returns:
        The figure.

    Raises:
        ValueError: if ``policies`` is not 3-dimensional.
    """
    policies = np.asarray(policies, dtype=float)
    if policies.ndim != 3:
        raise ValueError(f"policies must be [K, N, A], got shape {policies.shape}")
    K, N, A = policies.shape
    steps = np.arange(K) if steps is None else np.asarray(steps)
    if axes is None:
        fig, axes = plt.subplots(1, N, figsize=(3.4 * N, 2.6), sharey=True)
    axes = np.atleast_1d(axes)
    for i, ax in enumerate(axes):
        for a in range(A):
            ax.plot(steps, policies[:, i, a], label=f"π^{i + 1}({action_names[a]})", lw=1.6)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(xlabel)
        ax.set_title(f"{title} agent {i + 1}".strip())
        ax.legend(fontsize=7, loc="center right")
    axes[0].set_ylabel("probability")
    fig = axes[0].figure
    fig.tight_layout()
    return fig


def inspo_view(game: MatrixGame, dataset: str, alpha: float = 0.01, beta: float = 10.0,
               beta_final: float | None = 0.01, sequential: bool = True, iterations: int = 40, seed: int = 0):
    """Exact tabular InSPO (:func:`marlkit.exact.inspo.exact_inspo`) on a matrix game: each agent's policy over
    the iterations and the final joint policy (the notebook's α/β slider callback).

    Returns:
        ``(fig, final_return)``.
    """
    from marlkit.envs.matrix import joint_from_product
    from marlkit.exact.inspo import exact_inspo

    traj = exact_inspo(game.payoff, game.datasets[dataset].joint, alpha, beta, iterations, sequential, seed,
                       beta_final=beta_final)
    N = game.spec.n_agents
    fig, axes = plt.subplots(1, N + 1, figsize=(3.2 * (N + 1), 2.7))
    mode = "sequential" if sequential else "simultaneous"
    plot_policy_trajectories(traj.policies, game.action_names, title=mode, axes=axes[:N])
    if N == 2:
        plot_table(joint_from_product(list(traj.final_policy)), game.action_names,
                   f"final joint, return {traj.final_return:.2f}", axes[N], vmin=0, vmax=1)
    else:
        axes[N].plot(traj.returns)
        axes[N].set_title(f"return (final {traj.final_return:.2f})")
    fig.tight_layout()
    return fig, traj.final_return
