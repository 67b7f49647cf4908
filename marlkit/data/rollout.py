"""Roll a behavior policy out in a vectorised environment and record the transitions.

A *behavior policy* here is any object with

- ``reset(n_envs, rng)``: called at the start of every batch of ``n_envs`` episodes;
- ``act(obs [E, N, obs_dim], state [E, state_dim], avail [E, N, n_actions] | None, rng) -> actions``
  of shape ``[E, N]`` (int) or ``[E, N, act_dim]`` (float in [-1, 1]);
- a ``description`` string (stored in the dataset card).

:func:`collect` runs batches of parallel episodes until the requested number of episodes (or transitions) is
reached and returns a :class:`~marlkit.data.dataset.MultiAgentDataset`. All randomness comes from one
``numpy.random.Generator`` seeded by ``seed`` (and the env's own reset seed), so the result is deterministic.
"""

from __future__ import annotations

import numpy as np
import torch

from marlkit.data.dataset import MultiAgentDataset

__all__ = ["collect"]


def _batch(env, policy, n_envs: int, rng: np.random.Generator, seed: int) -> list[dict]:
    """Run ``n_envs`` episodes to their end; return one dict of stacked arrays per episode (time-major)."""
    obs, state, avail = env.reset(n_envs=n_envs, seed=seed)
    policy.reset(n_envs, rng)
    alive = np.ones(n_envs, bool)
    steps: list[dict] = []
    for _ in range(env.spec.episode_limit):
        actions = policy.act(obs, state, avail, rng)
        res = env.step(actions)
        steps.append({"obs": obs, "state": state, "avail": avail, "actions": np.asarray(actions),
                      "reward": res.reward, "next_obs": res.obs, "next_state": res.state, "next_avail": res.avail,
                      "terminal": res.terminal, "timeout": res.timeout, "alive": alive.copy()})
        alive = alive & ~(res.terminal | res.timeout)
        obs, state, avail = res.obs, res.state, res.avail
        if not alive.any():
            break
    episodes = []
    for e in range(n_envs):
        rows = [s for s in steps if s["alive"][e]]
        ep = {k: np.stack([s[k][e] for s in rows]) for k in
              ("obs", "state", "actions", "reward", "next_obs", "next_state", "terminal", "timeout")}
        if rows[0]["avail"] is not None:
            ep["avail"] = np.stack([s["avail"][e] for s in rows])
            ep["next_avail"] = np.stack([s["next_avail"][e] for s in rows])
        if not (ep["terminal"][-1] or ep["timeout"][-1]):  # env ran past its own limit: cut as a timeout
            ep["timeout"][-1] = True
        episodes.append(ep)
    return episodes


def collect(env, policy, episodes: int | None = None, transitions: int | None = None, seed: int = 0,
            n_envs: int = 64, meta: dict | None = None) -> MultiAgentDataset:
    """Roll ``policy`` out in ``env`` into a dataset of ``episodes`` whole episodes or ``transitions`` steps.

    With ``transitions``, whole episodes are collected until the count is reached and the last one is cut
    (its final kept step is marked as a timeout, as D4RL does).

    Args:
        env: a :class:`~marlkit.envs.base.MultiAgentEnv`.
        policy: a behavior policy (see the module docstring).
        episodes / transitions: exactly one of them, positive.
        seed: seeds the policy's generator and the env resets (batch ``b`` resets with ``seed + b``).
        n_envs: parallel episodes per batch.
        meta: extra provenance merged into the dataset's ``meta``.

    Raises:
        ValueError: unless exactly one of ``episodes``/``transitions`` is a positive integer.
    """
    if (episodes is None) == (transitions is None):
        raise ValueError("give exactly one of episodes= or transitions=")
    target = episodes if episodes is not None else transitions
    if not isinstance(target, (int, np.integer)) or target <= 0:
        raise ValueError(f"episodes/transitions must be a positive integer, got {target!r}")
    rng = np.random.default_rng(seed)
    eps: list[dict] = []
    count, b = 0, 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # behavior actors are small MLPs on [n_envs, ...]: extra threads only add sync waits
    try:
        while count < target:
            n = min(n_envs, target - count) if episodes is not None else n_envs
            for ep in _batch(env, policy, n, rng, seed=seed * 100_003 + b):
                if count >= target:
                    break
                if transitions is not None and count + len(ep["reward"]) > target:
                    keep = target - count
                    ep = {k: v[:keep] for k, v in ep.items()}
                    if not ep["terminal"][-1]:
                        ep["timeout"][-1] = True
                eps.append(ep)
                count += 1 if episodes is not None else len(ep["reward"])
            b += 1
    finally:
        torch.set_num_threads(threads)
    cat = {k: np.concatenate([ep[k] for ep in eps]) for k in eps[0]}
    starts = np.concatenate([np.eye(1, len(ep["reward"]), 0, dtype=bool)[0] for ep in eps])
    spec = env.spec
    info = {"env": spec.name, "seed": int(seed), "behavior": getattr(policy, "description", type(policy).__name__)}
    if spec.discrete:
        info["n_actions"] = spec.n_actions
    info.update(meta or {})
    return MultiAgentDataset(
        observations=cat["obs"], states=cat["state"], actions=cat["actions"], rewards=cat["reward"],
        next_observations=cat["next_obs"], next_states=cat["next_state"], terminals=cat["terminal"],
        timeouts=cat["timeout"], episode_starts=starts, avail_actions=cat.get("avail"),
        next_avail_actions=cat.get("next_avail"), obs_mask=spec.obs_mask, meta=info)
