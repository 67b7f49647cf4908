"""Evaluation of learned decentralised policies.

- Matrix games are evaluated *exactly*: the per-agent distributions π_i are read off the algorithm, the
  product policy's expected payoff is computed by enumeration (``return``), along with the greedy joint action
  and its payoff. No sampling noise.
- Sequential environments are evaluated by parallel rollouts of ``episodes`` episodes: raw return mean ± std,
  the D4RL-style normalised score when the env has reference returns, and win rate where the env reports one.
"""

from __future__ import annotations

import numpy as np
import torch

from marlkit.envs.matrix import MatrixGame, expected_return, joint_from_product

__all__ = ["evaluate", "evaluate_matrix", "rollout", "normalized_score"]


def normalized_score(raw: float, random_return: float, expert_return: float) -> float:
    """D4RL-style score: 0 = random behavior's return, 100 = expert behavior's return.

    Raises:
        ValueError: if the two reference returns coincide.
    """
    if expert_return == random_return:
        raise ValueError("normalized_score needs distinct random and expert reference returns")
    return 100.0 * (raw - random_return) / (expert_return - random_return)


@torch.no_grad()
def evaluate_matrix(algo, game: MatrixGame) -> dict:
    """Exact evaluation on a matrix game.

    Returns:
        ``return`` (expected payoff of the stochastic product policy), ``greedy_return``, ``greedy_action``
        (joint argmax of the per-agent policies), ``per_agent_policy`` ``[N][A]`` and ``joint_policy`` (nested
        list of shape ``[A]*N``).
    """
    n = game.spec.n_agents
    obs = torch.ones(1, n, 1, device=algo.device)
    avail = torch.ones(1, n, game.spec.n_actions, dtype=torch.bool, device=algo.device)
    probs = algo.action_probs(obs, avail)[0].double().cpu().numpy()  # [N, A]
    probs = probs / probs.sum(-1, keepdims=True)
    greedy = tuple(int(k) for k in probs.argmax(-1))
    joint = joint_from_product(list(probs))
    return {
        "return": expected_return(game.payoff, list(probs)),
        "greedy_return": float(game.payoff[greedy]),
        "greedy_action": [game.action_names[k] for k in greedy],
        "per_agent_policy": np.round(probs, 6).tolist(),
        "joint_policy": np.round(joint, 6).tolist(),
    }


@torch.no_grad()
def rollout(algo, env, episodes: int = 32, deterministic: bool = True, seed: int = 0) -> dict:
    """Run ``episodes`` parallel episodes of the decentralised policies.

    Returns:
        ``returns`` (per-episode team return, list), ``return`` (mean), ``return_std``, ``lengths`` and, if the
        env reports ``info['won']``, ``win_rate``.

    Raises:
        ValueError: if ``episodes`` is not positive.
    """
    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    gen = torch.Generator(device=algo.device)
    gen.manual_seed(seed)
    obs, state, avail = env.reset(n_envs=episodes, seed=seed)
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=int)
    alive = np.ones(episodes, bool)
    won = np.zeros(episodes, bool)
    saw_won = False
    for _ in range(env.spec.episode_limit):
        o = torch.as_tensor(obs, dtype=torch.float32, device=algo.device)
        av = None if avail is None else torch.as_tensor(avail, dtype=torch.bool, device=algo.device)
        actions = algo.act(o, av, deterministic=deterministic, generator=gen).cpu().numpy()
        res = env.step(actions)
        returns += np.where(alive, res.reward, 0.0)
        lengths += alive
        if "won" in res.info:
            saw_won = True
            won |= alive & np.asarray(res.info["won"], bool)
        alive &= ~(res.terminal | res.timeout)
        if not alive.any():
            break
        obs, state, avail = res.obs, res.state, res.avail
    out = {"return": float(returns.mean()), "return_std": float(returns.std()), "returns": returns.tolist(),
           "lengths": lengths.tolist()}
    if saw_won:
        out["win_rate"] = float(won.mean())
    return out


def evaluate(algo, env, episodes: int = 32, deterministic: bool = True, seed: int = 0) -> dict:
    """Evaluate ``algo`` on ``env``: exact for matrix games, rollouts otherwise (with normalised score when the
    env defines ``reference_returns = {"random": R0, "expert": R1}``)."""
    algo.eval()
    try:
        if isinstance(env, MatrixGame):
            return evaluate_matrix(algo, env)
        out = rollout(algo, env, episodes, deterministic, seed)
        ref = getattr(env, "reference_returns", None)
        if ref:
            out["normalized_score"] = normalized_score(out["return"], ref["random"], ref["expert"])
        return out
    finally:
        algo.train()
