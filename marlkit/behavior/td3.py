"""TD3 behavior policies for multi-agent MuJoCo, trained online on the *joint* task.

The offline datasets of multi-agent MuJoCo (OMIGA, App. B) are rollouts of single-agent policies that control
the whole robot; the joint action is then split among the agents by the MaMuJoCo partition. marlkit trains
such a policy itself with TD3 (Fujimoto et al., 2018: clipped double-Q, target policy smoothing, delayed actor
updates) on the underlying Gymnasium v5 task and keeps checkpoints at the D4RL quality levels:

- ``random``: the randomly initialised actor (step 0);
- ``medium``: an early checkpoint whose evaluation return is roughly a third to a half of ``expert``'s;
- ``expert``: the checkpoint with the best evaluation return of the (budgeted) run;
- ``replay_k``: every checkpoint up to and including ``medium`` (the ``medium-replay`` source).

Everything of a task lives in one safetensors file (``{name}.{parameter}`` keys) plus a JSON card with the
training configuration and the measured returns, under :func:`~marlkit.behavior.weights.weights_dir`
(reading them back: :mod:`marlkit.behavior.weights`).

Run ``python -m marlkit.behavior.td3 --task Hopper-3x1 --steps 200000 --time-budget 1500``;
``--measure-only`` re-measures the card's returns (10 full episodes per level) and ``--measure-short`` its
short-horizon expert return (:data:`SHORT_HORIZON`), each with the simulator versions it was measured on.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

from marlkit.behavior.weights import JointActor, load_card, load_policies, weights_dir, weights_path
from marlkit.data.rollout import collect
from marlkit.envs.mamujoco import MaMuJoCoEnv, make_mamujoco_parallel
from marlkit.nets.mlp import mlp_layers

__all__ = ["JointActor", "SHORT_HORIZON", "TD3Config", "train_td3", "weights_dir", "weights_path", "load_policies",
           "load_card", "select_levels", "measure_returns", "short_horizon_returns"]


class TwinQ(nn.Module):
    """Two critics Q_1, Q_2(s, a) evaluated at once: ``[B, S], [B, A] -> [B, 2]`` (BatchedLinear over the twins)."""

    def __init__(self, state_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.net = mlp_layers([state_dim + act_dim, *hidden, 1], members=2)

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = torch.cat([s, a], -1).unsqueeze(1).expand(-1, 2, -1)
        return self.net(x).squeeze(-1)


@dataclass
class TD3Config:
    """TD3 hyperparameters (Fujimoto et al., 2018, Table 3, with smaller networks: small shipped weights, CPU-trainable)."""

    steps: int = 200_000            # environment steps at most
    time_budget: float = 0.0        # stop after this many seconds of training (0: no limit)
    start_steps: int = 5_000        # uniform-random exploration before learning
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005              # Polyak rate of the target networks
    lr: float = 3e-4
    expl_noise: float = 0.1         # Gaussian exploration noise σ on actions in [-1, 1]
    policy_noise: float = 0.2       # target policy smoothing σ
    noise_clip: float = 0.5
    policy_delay: int = 2
    actor_hidden: tuple = (64, 64)
    critic_hidden: tuple = (128, 128)
    eval_every: int = 5_000
    eval_episodes: int = 5
    seed: int = 0


def _make_joint_env(task: str):
    return make_mamujoco_parallel(task).single_agent_env


def _evaluate(actor: JointActor, env, episodes: int, seed: int) -> tuple[float, float]:
    rets = []
    for ep in range(episodes):
        s, _ = env.reset(seed=seed + ep)
        done, ret = False, 0.0
        while not done:
            with torch.no_grad():
                a = actor(torch.as_tensor(s, dtype=torch.float32)[None])[0].numpy()
            s, r, term, trunc, _ = env.step(a)
            ret += float(r)
            done = term or trunc
        rets.append(ret)
    return float(np.mean(rets)), float(np.std(rets))


def select_levels(evals: list[dict]) -> dict[str, int]:
    """Pick checkpoint indices for ``random`` (first), ``expert`` (best return) and ``medium`` (the earliest
    checkpoint whose return lies in [1/3, 1/2] of the expert's above random; else the one closest to 0.4)."""
    rets = np.array([e["return"] for e in evals])
    r0, expert = rets[0], int(rets.argmax())
    frac = (rets - r0) / max(rets[expert] - r0, 1e-8)
    inside = [k for k in range(1, expert) if 1 / 3 <= frac[k] <= 1 / 2]
    medium = inside[0] if inside else int(np.argmin(np.abs(frac[:expert + 1] - 0.4)))
    return {"random": 0, "medium": medium, "expert": expert}


def train_td3(task: str, cfg: TD3Config, out_dir: Path | None = None, log=print) -> dict:
    """Train TD3 on the joint task of ``task`` (e.g. ``"Hopper-3x1"``) and save the behavior levels.

    Returns:
        the card dict (config, evaluation history, chosen levels and their returns).
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    env, eval_env = _make_joint_env(task), _make_joint_env(task)
    S, A = env.observation_space.shape[0], env.action_space.shape[0]
    lo, hi = env.action_space.low, env.action_space.high
    if not (np.allclose(lo, -1) and np.allclose(hi, 1)):
        raise ValueError(f"{task}: expected actions in [-1, 1], got [{lo}, {hi}]")
    actor = JointActor(S, A, cfg.actor_hidden)
    critic = TwinQ(S, A, cfg.critic_hidden)
    actor_t, critic_t = copy.deepcopy(actor), copy.deepcopy(critic)
    opt_a = torch.optim.Adam(actor.parameters(), lr=cfg.lr)
    opt_c = torch.optim.Adam(critic.parameters(), lr=cfg.lr)

    buf_s = np.zeros((cfg.steps, S), np.float32)
    buf_a = np.zeros((cfg.steps, A), np.float32)
    buf_r = np.zeros(cfg.steps, np.float32)
    buf_s2 = np.zeros((cfg.steps, S), np.float32)
    buf_d = np.zeros(cfg.steps, np.float32)

    snapshots = [copy.deepcopy(actor.state_dict())]
    ret0 = _evaluate(actor, eval_env, cfg.eval_episodes, 10_000)
    evals = [{"step": 0, "return": ret0[0], "return_std": ret0[1]}]
    log(f"[{task}] step 0 eval {ret0[0]:.1f}")
    s, _ = env.reset(seed=cfg.seed)
    t0 = time.time()
    step = 0
    for step in range(1, cfg.steps + 1):
        if step <= cfg.start_steps:
            a = rng.uniform(-1, 1, A).astype(np.float32)
        else:
            with torch.no_grad():
                a = actor(torch.as_tensor(s, dtype=torch.float32)[None])[0].numpy()
            a = np.clip(a + cfg.expl_noise * rng.standard_normal(A), -1, 1).astype(np.float32)
        s2, r, term, trunc, _ = env.step(a)
        i = step - 1
        buf_s[i], buf_a[i], buf_r[i], buf_s2[i], buf_d[i] = s, a, r, s2, float(term)
        s = s2
        if term or trunc:
            s, _ = env.reset()
        if step > cfg.start_steps:
            idx = torch.as_tensor(rng.integers(0, step, cfg.batch_size))
            bs, ba = torch.from_numpy(buf_s)[idx], torch.from_numpy(buf_a)[idx]
            br, bs2, bd = torch.from_numpy(buf_r)[idx], torch.from_numpy(buf_s2)[idx], torch.from_numpy(buf_d)[idx]
            with torch.no_grad():
                noise = (torch.randn_like(ba) * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip)
                a2 = (actor_t(bs2) + noise).clamp(-1, 1)
                target = br + cfg.gamma * (1 - bd) * critic_t(bs2, a2).min(-1).values
            q = critic(bs, ba)
            loss_c = F.mse_loss(q, target[:, None].expand_as(q))
            opt_c.zero_grad(set_to_none=True)
            loss_c.backward()
            opt_c.step()
            if step % cfg.policy_delay == 0:
                loss_a = -critic(bs, actor(bs))[:, 0].mean()
                opt_a.zero_grad(set_to_none=True)
                loss_a.backward()
                opt_a.step()
                with torch.no_grad():
                    for tgt, src in ((actor_t, actor), (critic_t, critic)):
                        for pt, p in zip(tgt.parameters(), src.parameters()):
                            pt.lerp_(p, cfg.tau)
        over_budget = cfg.time_budget > 0 and time.time() - t0 > cfg.time_budget
        if over_budget and evals[-1]["step"] >= step - 1:  # just evaluated: stop without a duplicate
            break
        if step % cfg.eval_every == 0 or over_budget:
            m, sd = _evaluate(actor, eval_env, cfg.eval_episodes, 10_000)
            evals.append({"step": step, "return": m, "return_std": sd})
            snapshots.append(copy.deepcopy(actor.state_dict()))
            log(f"[{task}] step {step} eval {m:.1f} ± {sd:.1f}  ({time.time() - t0:.0f}s)")
        if over_budget:
            break
    levels = select_levels(evals)
    card = {"task": task, "algorithm": "TD3 (joint task, actions split by the MaMuJoCo partition)",
            "config": {**asdict(cfg), "steps_done": step}, "state_dim": S, "act_dim": A,
            "evals": evals, "levels": levels, "train_seconds": time.time() - t0,
            "level_returns_during_training": {k: evals[v]["return"] for k, v in levels.items()}}
    r = card["level_returns_during_training"]
    card["levels_ordered"] = bool(r["random"] < r["medium"] < r["expert"])  # False: do not ship these weights
    tensors = {}
    names = {**{f"replay_{k}": k for k in range(levels["medium"] + 1)}, **levels}
    for name, k in names.items():
        for p, v in snapshots[k].items():
            tensors[f"{name}.{p}"] = v.contiguous().clone()
    card["replay_checkpoints"] = [f"replay_{k}" for k in range(levels["medium"] + 1)]
    card_path = weights_path(task, ".json", out_dir)
    card_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(weights_path(task, ".safetensors", out_dir)))
    card_path.write_text(json.dumps(card, indent=1))
    return card


def measure_returns(task: str, episodes: int = 10, seed: int = 0, directory: Path | None = None) -> dict:
    """Measure the undiscounted return of the ``random``, ``medium`` and ``expert`` actors as datasets roll
    them out (multi-agent env, Gaussian action noise ``BEHAVIOR_NOISE``) and store it in the card as
    ``measured_returns`` (used as the normalised score's reference returns).
    """
    env = MaMuJoCoEnv(task)
    out = {}
    for level in ("random", "medium", "expert"):
        policy = env.behavior_policy(level, directory=directory)
        rets = collect(env, policy, episodes=episodes, seed=seed, n_envs=episodes).episode_returns()
        out[level] = {"mean": round(float(rets.mean()), 2), "std": round(float(rets.std()), 2), "episodes": episodes}
    _update_card(task, directory, measured_returns=out)
    return out


def _update_card(task: str, directory: Path | None, **entries) -> None:
    """Write ``entries`` into the card, with the simulator versions and actor precision they were measured with
    (atomic rewrite)."""
    from marlkit.data.card import simulator_versions
    from marlkit.envs.mamujoco import BEHAVIOR_DTYPE
    from marlkit.utils import atomic_path

    path = weights_path(task, ".json", directory)
    card = json.loads(path.read_text())
    card.update(entries)
    card["simulator_versions"] = simulator_versions("mamujoco:" + task)
    card["actor_dtype"] = BEHAVIOR_DTYPE       # the precision the actors were rolled out in
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(card, indent=1))


SHORT_HORIZON = {"level": "expert", "episodes": 4, "steps": 300, "seed": 0}
"""The short rollout whose return the cards record as ``short_horizon_returns`` (tests re-run it)."""


def short_horizon_returns(task: str, level: str = "expert", episodes: int = 4, steps: int = 300, seed: int = 0,
                          directory: Path | None = None) -> dict:
    """Undiscounted team return of the first ``steps`` steps of ``episodes`` episodes of actor ``level``,
    rolled out as datasets are (multi-agent env, Gaussian action noise ``BEHAVIOR_NOISE``, noise generator and
    env resets seeded by ``seed``); an episode that ends earlier contributes its whole return.

    Returns:
        ``{"level", "episodes", "steps", "seed", "mean", "std", "returns"}`` (std over the episodes).

    Raises:
        ValueError: unless ``episodes`` and ``steps`` are positive.
    """
    from marlkit.envs.mamujoco import MaMuJoCoEnv

    if episodes <= 0 or steps <= 0:
        raise ValueError(f"episodes and steps must be positive, got {episodes}, {steps}")
    env = MaMuJoCoEnv(task)
    policy = env.behavior_policy(level, directory=directory)
    rng = np.random.default_rng(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        obs, state, avail = env.reset(n_envs=episodes, seed=seed)
        total = np.zeros(episodes)
        for _ in range(steps):
            res = env.step(policy.act(obs, state, avail, rng))
            total += res.reward                 # finished episodes stay frozen with zero reward
            obs, state, avail = res.obs, res.state, res.avail
    finally:
        torch.set_num_threads(threads)
        env.close()
    return {"level": level, "episodes": episodes, "steps": steps, "seed": seed,
            "mean": round(float(total.mean()), 2), "std": round(float(total.std()), 2),
            "returns": [round(float(r), 2) for r in total]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Train TD3 behavior policies for a multi-agent MuJoCo task.")
    p.add_argument("--task", required=True, help="e.g. Hopper-3x1, Ant-2x4, HalfCheetah-6x1")
    p.add_argument("--steps", type=int, default=TD3Config.steps)
    p.add_argument("--time-budget", type=float, default=0.0, help="seconds of training at most (0: none)")
    p.add_argument("--eval-every", type=int, default=TD3Config.eval_every)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--measure-only", action="store_true",
                   help="only (re)measure the saved actors' returns into the card (--episodes of them)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--measure-short", action="store_true",
                   help="only (re)measure the short-horizon expert return (SHORT_HORIZON) into the card")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.measure_short:
        out = short_horizon_returns(args.task, directory=args.out, **SHORT_HORIZON)
        _update_card(args.task, args.out, short_horizon_returns=out)
        print(json.dumps(out))
        return
    if args.measure_only:
        print(json.dumps(measure_returns(args.task, args.episodes, args.seed, args.out)))
        return
    cfg = TD3Config(steps=args.steps, time_budget=args.time_budget, eval_every=args.eval_every, seed=args.seed)
    card = train_td3(args.task, cfg, args.out, log=lambda m: print(m, flush=True))
    print(json.dumps({k: card[k] for k in ("levels", "level_returns_during_training", "train_seconds")}))
    print(json.dumps(measure_returns(args.task, args.episodes, args.seed, args.out)))


if __name__ == "__main__":
    main()
