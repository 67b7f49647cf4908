"""Plotting helpers shared by the notebooks (matplotlib/seaborn). Each returns its figure so notebooks save it
and tests can call the same function the widgets call.
"""

from __future__ import annotations

import numpy as np

__all__ = ["transition_bias_rows", "plot_transition_bias", "plot_differential_reward", "plot_trajectories",
           "plot_seed_comparison"]

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
    import matplotlib.pyplot as plt
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
    import matplotlib.pyplot as plt

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
    import matplotlib.pyplot as plt

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
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    sns.barplot(data=df, x=x, y=y, hue=hue, errorbar="sd", ax=ax)
    sns.stripplot(data=df, x=x, y=y, hue=hue, dodge=True, color="black", size=3, legend=False, ax=ax)
    return ax.figure
