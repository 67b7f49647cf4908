"""Plotting helpers the notebooks share (matplotlib/seaborn). Widget callbacks are plain functions here so
tests can call them without a browser.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from marlkit.algos.fdiv import F_DIVERGENCES
from marlkit.envs.differential import reward_grid
from marlkit.envs.matrix import MatrixGame, joint_from_product
from marlkit.exact.decentralized import decentralized_tables, greedy_joint
from marlkit.exact.dice import comadice_solution, dice_dual, dice_optimum
from marlkit.exact.inspo import exact_inspo
from marlkit.exact.matrix import marginals, ood_mass, regularized_optimum, regularized_return
from marlkit.exact.omiga import local_value, local_value_objective, omiga_solution

__all__ = [
    "dice_dual_view",
    "dice_ratio_view",
    "figures_dir",
    "inspo_view",
    "local_wbc_view",
    "omiga_policy_view",
    "plot_alpha_curves",
    "plot_decomposition",
    "plot_differential_reward",
    "plot_game",
    "plot_policy_bars",
    "plot_policy_trajectories",
    "plot_return_comparison",
    "plot_seed_comparison",
    "plot_table",
    "plot_trajectories",
    "plot_transition_bias",
    "plot_v_objective",
    "regularized_policy_view",
    "savefig",
    "transition_bias_rows",
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
    """The behavior-regularized optimum π* ∝ μ exp(r/α) (OMIGA, Wang et al. 2023, Eq. 7) at one α, and its return
    over α next to two references: the data's return E_μ[r] and the return of behavior cloning's product policy
    ⊗_i μ^i (the marginals of μ), which can play joint actions μ never shows.

    Returns:
        ``(fig, return_at_alpha, ood_mass)``; the in-sample optimum never has OOD mass.
    """
    mu = game.datasets[dataset].joint
    pi = regularized_optimum(game.payoff, mu, alpha)
    alphas = np.logspace(-2, 2, 60) if alphas is None else np.asarray(alphas)
    curve = regularized_return(game.payoff, mu, alphas)
    ret = float((pi * game.payoff).sum())
    bc = float((joint_from_product(marginals(mu)) * game.payoff).sum())
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.5, 3))
    plot_table(pi, game.action_names, f"π* at α = {alpha:.3g}", ax1, vmin=0, vmax=1)
    ax2.semilogx(alphas, curve, label="E_π*[r]")
    ax2.axhline(float((mu * game.payoff).sum()), color="grey", ls=":", label="E_μ[r] (data)")
    ax2.axhline(bc, color="C1", ls="--", lw=1, label=f"BC: ⊗ μ^i ({bc:.2f})")
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
    """The linear decomposition Q_tot = Σ_i w_i Q_i + b fitted in-sample (OMIGA, Wang et al. 2023, Eq. 8/13; exact least squares)
    next to the payoff r and the data d; the fitted table extrapolates to joint actions outside the data.

    Returns:
        ``(fig, sol)`` with ``sol`` the :class:`~marlkit.exact.omiga.OmigaSolution` (α = 1 if not given; the fit
        does not depend on α).
    """
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
    closed-form minimizer V* (Eq. 10) dotted. (With ``u = w(V − V*)/α``, ``f − f* = e^{−u} + u − 1 ≥ 0``.)

    The x-range is centred on the minimizers (their spread, at least 0.25 on each side) so that the different V*
    are told apart; the y-range fits the steepest curve in that window."""
    ax = ax or plt.gca()
    q = np.asarray(q, float)
    stars = [local_value(q, mu, w, a) for a in alphas]
    span = max(3 * (max(stars) - min(stars)), 0.25)
    lo, hi = min(stars) - span, max(stars) + span
    grid = np.linspace(lo, hi, 500)
    top = 0.0
    for k, (alpha, v_star) in enumerate(zip(alphas, stars)):
        f = local_value_objective(grid, q, mu, w, alpha) - float(local_value_objective(v_star, q, mu, w, alpha))
        top = max(top, float(f.max()))
        ax.plot(grid, f, color=f"C{k}", label=f"α = {alpha:g}: V* = {v_star:.3f}")
        ax.axvline(v_star, color=f"C{k}", ls=":", lw=1)
        ax.scatter([v_star], [0.0], color=f"C{k}", zorder=3, s=18)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.03 * top, 1.05 * top)
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


# ---------------------------------------------------------------------------------------------- DICE (notebook 03)
def _support_labels(game: MatrixGame, d: np.ndarray) -> tuple[np.ndarray, list[str]]:
    idx = np.argwhere(d > 0)
    return idx, ["(" + ",".join(game.action_names[k] for k in a) + ")" for a in idx]


def dice_dual_view(game: MatrixGame, dataset: str, alpha: float, fs=None, mass: float = 1.0, ax=None):
    """The one-step DICE dual ``L̃(ν) = m·ν + E_d[α f*((r − ν)/α)]`` for each f, with its minimiser ν* marked.

    Returns:
        ``(fig, nu_star)`` with ``nu_star[f]`` the multiplier of :func:`marlkit.exact.dice.dice_optimum`.
    """
    fs = list(F_DIVERGENCES) if fs is None else list(fs)
    d = game.datasets[dataset].joint
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(4.5, 3.2))
    r = game.payoff[d > 0]
    grid = np.linspace(r.min() - 2 * alpha, r.max() + 2 * alpha, 400)
    nu_star = {}
    for k, f in enumerate(fs):
        sol = dice_optimum(game.payoff, d, alpha, f, mass=mass)
        nu_star[f] = sol["nu"]
        ax.plot(grid, dice_dual(game.payoff, d, alpha, f, grid, mass=mass), color=f"C{k}", label=f)
        ax.scatter([sol["nu"]], [dice_dual(game.payoff, d, alpha, f, sol["nu"], mass=mass)], color=f"C{k}", zorder=3)
    ax.set_xlabel("Lagrange multiplier ν")
    ax.set_ylabel("dual L̃(ν)")
    ax.set_title(f"{game.spec.name} ({dataset}), α = {alpha:.3g}: dual and ν*")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, nu_star


def dice_ratio_view(game: MatrixGame, dataset: str, alpha: float, fs=None, factored: bool = True, alphas=None):
    """How w* reweights the dataset at one α (bars per in-support joint action, one colour per f) and the return
    of ComaDICE's exact local weighted-BC policies over α (right; the point marks α).

    Returns:
        ``(fig, table)`` where ``table[f]`` holds ``w`` (ratios on the support, in ``labels`` order), ``labels``
        and ``return`` at ``alpha``.
    """
    fs = list(F_DIVERGENCES) if fs is None else list(fs)
    d = game.datasets[dataset].joint
    idx, labels = _support_labels(game, d)
    alphas = np.logspace(-1.5, 2, 50) if alphas is None else np.asarray(alphas)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.3), gridspec_kw={"width_ratios": [1.4, 1]})
    width = 0.8 / len(fs)
    x = np.arange(len(labels))
    table = {}
    for k, f in enumerate(fs):
        sol = comadice_solution(game.payoff, d, alpha, f, factored=factored)
        w = sol["w"][tuple(idx.T)]
        table[f] = {"labels": labels, "w": w, "return": sol["return"]}
        ax1.bar(x + (k - (len(fs) - 1) / 2) * width, w, width, color=f"C{k}", label=f)
        curve = [comadice_solution(game.payoff, d, a, f, factored=factored)["return"] for a in alphas]
        ax2.semilogx(alphas, curve, color=f"C{k}", label=f)
        ax2.scatter([alpha], [sol["return"]], color=f"C{k}", zorder=3)
    ax1.axhline(1.0, color="grey", ls=":", lw=1)
    ax1.set_xticks(x, labels, rotation=45 if len(labels) > 4 else 0)
    ax1.set_ylabel("w*(a) = ρ(a)/d(a)")
    ax1.set_title(f"{game.spec.name} ({dataset}): occupancy ratios at α = {alpha:.3g}")
    ax1.legend(fontsize=8)
    ax2.axhline(float((d * game.payoff).sum()), color="grey", ls=":", label="E_d[r] (data)")
    ax2.set_xlabel("α")
    ax2.set_ylabel("return of local WBC policies")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig, table


def local_wbc_view(game: MatrixGame, dataset: str, alpha: float, f: str = "soft-chi2", factored: bool = True):
    """Prop. 4.3 on a 2-agent game: the dataset d, the DICE occupancy ρ = d·w* (the global weighted-BC optimum
    over all joint policies) and the product of the local weighted-BC policies (the best product policy).

    Returns:
        ``(fig, info)`` with ``occupancy_return`` (E_ρ[r]), ``product_return`` (return of ⊗ π_i) and
        ``policies`` (the local π_i).
    """
    d = game.datasets[dataset].joint
    sol = comadice_solution(game.payoff, d, alpha, f, factored=factored)
    rho = sol["rho"] / sol["rho"].sum()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    plot_table(d, game.action_names, "dataset d", axes[0], vmin=0, vmax=1)
    plot_table(rho, game.action_names, f"occupancy ρ = d·w* ({f})", axes[1], vmin=0, vmax=1)
    plot_table(sol["joint_policy"], game.action_names, "⊗ local WBC π_i", axes[2], vmin=0, vmax=1)
    fig.suptitle(f"{game.spec.name} ({dataset}), α = {alpha:.3g}", y=1.02)
    fig.tight_layout()
    return fig, {"occupancy_return": float((rho * game.payoff).sum()), "product_return": sol["return"],
                 "policies": sol["policies"]}


def plot_return_comparison(rows, x: str = "task", hue: str = "method", y: str = "return", ax=None, title: str = "",
                           panel: str | None = None):
    """Grouped bar chart of returns: ``rows`` is a list of dicts (or a DataFrame) with columns x, hue, y.

    With ``panel`` (a column name, e.g. the game), one panel per value of that column, each with its own y-axis —
    games whose payoffs differ in scale (XOR's 0…1 against M-NE's −20…20) stay readable — and one shared legend.
    """
    import pandas as pd

    df = pd.DataFrame(rows)
    if panel is not None:
        groups = list(dict.fromkeys(df[panel]))
        widths = [max(2.2, 1.2 * df[df[panel] == g][x].nunique()) for g in groups]
        fig, axes = plt.subplots(1, len(groups), figsize=(sum(widths) + 1.5, 3.4),
                                 gridspec_kw={"width_ratios": widths})
        axes = np.atleast_1d(axes)
        order = list(dict.fromkeys(df[hue]))
        palette = dict(zip(order, sns.color_palette("tab20" if len(order) > 10 else "tab10", len(order))))
        for a, g in zip(axes, groups):
            sns.barplot(df[df[panel] == g], x=x, y=y, hue=hue, hue_order=order, palette=palette, ax=a)
            a.axhline(0, color="black", lw=0.5)
            a.set_title(str(g))
            a.set_xlabel("")
            a.get_legend().remove()
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        return fig
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(max(6, 1.3 * df[x].nunique()), 3.3))
    sns.barplot(df, x=x, y=y, hue=hue, ax=ax)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig
