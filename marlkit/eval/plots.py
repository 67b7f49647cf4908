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

__all__ = ["figures_dir", "savefig", "plot_table", "plot_game", "regularized_policy_view", "transition_bias_rows",
           "plot_transition_bias", "plot_differential_reward", "plot_trajectories", "plot_seed_comparison"]


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


# ---------------------------------------------------------------------------- offline decentralized MARL (notebook 05)
JIANG_LU_PAYOFF = np.array([[1.0, 5.0], [6.0, 1.0]])
_WEIGHTINGS = {"dataset (Table 2)": (False, False), "λ_vd (Table 3)": (True, False),
               "λ_tn (no table)": (False, True), "λ_vd·λ_tn (Table 4)": (True, True)}


def transition_bias_rows(mu1: float = 0.8, mu2: float = 0.4, epsilon: float | None = None,
                         payoff: np.ndarray = JIANG_LU_PAYOFF, action_names=("a1", "a2")) -> list[dict]:
    """Tables 2–4 of offline-decentralized-marl.md for a two-agent, two-action game, as rows.

    Args:
        mu1, mu2: behavior probability of action a1 for agent 1 and agent 2 (paper: 0.8 and 0.4).
        epsilon: optimism level ε clipping λ_vd (None: unclipped, as in the paper's tables).
        payoff: ``[2, 2]`` payoff matrix.

    Returns:
        One dict per (weighting, agent, action, outcome): ``weighting``, ``agent``, ``action``, ``outcome`` (the
        payoff reached), ``p`` (modified transition probability), ``Q`` (expected return of the action),
        ``greedy`` (the agents' joint greedy action) and ``joint_return`` (its payoff).

    Raises:
        ValueError: if a probability is outside [0, 1].
    """
    from marlkit.exact.decentralized import decentralized_tables, greedy_joint

    for name, m in (("mu1", mu1), ("mu2", mu2)):
        if not 0.0 <= m <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {m}")
    behaviors = [np.array([mu1, 1 - mu1]), np.array([mu2, 1 - mu2])]
    rows = []
    for label, (vd, tn) in _WEIGHTINGS.items():
        tables = decentralized_tables(payoff, behaviors, vd=vd, tn=tn, epsilon=epsilon)
        joint, ret = greedy_joint(payoff, tables)
        greedy = "(" + ", ".join(action_names[a] for a in joint) + ")"
        for t in tables:
            for a, (rs, ps) in enumerate(zip(t.outcomes, t.modified)):
                for r, p in zip(rs, ps):
                    rows.append({"weighting": label, "agent": t.agent + 1, "action": action_names[a],
                                 "outcome": float(r), "p": float(p), "Q": float(t.values[a]), "greedy": greedy,
                                 "joint_return": ret})
    return rows


def plot_transition_bias(mu1: float = 0.8, mu2: float = 0.4, epsilon: float = 0.9,
                         payoff: np.ndarray = JIANG_LU_PAYOFF):
    """Bar chart of every agent's action values Q_i(a_i) under each weighting, titled with the greedy joint
    action and its payoff (the ε / behavior-policy slider callback of notebook 05).

    Returns:
        ``(figure, rows)`` with ``rows`` from :func:`transition_bias_rows`.
    """
    import pandas as pd

    rows = transition_bias_rows(mu1, mu2, epsilon, payoff)
    df = pd.DataFrame(rows).drop_duplicates(["weighting", "agent", "action"])
    fig, axes = plt.subplots(1, len(_WEIGHTINGS), figsize=(3.2 * len(_WEIGHTINGS), 3), sharey=True)
    for ax, (label, sub) in zip(axes, df.groupby("weighting", sort=False)):
        width = 0.38
        for k, agent in enumerate((1, 2)):
            q = sub[sub.agent == agent].Q.to_numpy()
            ax.bar(np.arange(len(q)) + (k - 0.5) * width, q, width, label=f"agent {agent}")
        ax.set_xticks(range(2), ["a1", "a2"])
        ax.set_title(f"{label}\n→ {sub.greedy.iloc[0]}, return {sub.joint_return.iloc[0]:g}", fontsize=9)
    axes[0].set_ylabel("Q_i(a_i)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"μ¹(a1) = {mu1:.2f}, μ²(a1) = {mu2:.2f}, ε = {epsilon}", fontsize=10)
    fig.tight_layout()
    return fig, rows


def plot_differential_reward(ax=None, resolution: int = 201):
    """The Differential Game's reward landscape r(x_1, x_2) (offline-decentralized-marl.md Fig. 2)."""
    from marlkit.envs.differential import reward_grid

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    x1, x2, r = reward_grid(resolution)
    im = ax.pcolormesh(x1, x2, r, shading="auto", cmap="viridis")
    ax.figure.colorbar(im, ax=ax, label="reward")
    ax.set_xlabel("x₁ (agent 1)")
    ax.set_ylabel("x₂ (agent 2)")
    ax.set_aspect("equal")
    return ax.figure


def plot_trajectories(paths: np.ndarray, ax=None, title: str = ""):
    """Rollout paths ``[E, T + 1, 2]`` over the reward landscape (start: circle, end: cross)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    plot_differential_reward(ax, resolution=101)
    for p in paths:
        ax.plot(p[:, 0], p[:, 1], color="white", lw=1)
        ax.plot(p[0, 0], p[0, 1], "o", color="white", ms=3)
        ax.plot(p[-1, 0], p[-1, 1], "x", color="red", ms=5)
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_title(title, fontsize=9)
    return ax.figure


def plot_seed_comparison(df, x: str = "env", y: str = "return", hue: str = "algo", ax=None):
    """Mean ± std bars of ``y`` over seeds for each ``x`` and ``hue`` (a long DataFrame, one row per run)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    sns.barplot(data=df, x=x, y=y, hue=hue, errorbar="sd", ax=ax)
    sns.stripplot(data=df, x=x, y=y, hue=hue, dodge=True, palette="dark:black", size=3, legend=False, ax=ax)
    return ax.figure
