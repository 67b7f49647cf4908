"""What an InSPO run on Bridge has learned at the start: the policies π^i, the cloned behavior policies μ^i and the
local Qs Q^i(s, a^i) of both agents at the start state and after each first move of the data's two conventions.

Trains one run as ``marlkit train`` does (same seeding, the env's defaults under the given options), then prints
the final sampled-evaluation return, the last training metrics and the three states' tables. Every return of
Bridge is negative (−1.2355 at best, :func:`marlkit.envs.bridge.optimal_value`), so a positive Q^i is a critic
that has not settled on the rewards.

    python benchmarks/bridge_probe.py --dataset mixed --seed 2 --steps 3000
    python benchmarks/bridge_probe.py --dataset mixed --seed 2 --steps 3000 --set beta=10 --set beta_final=0.01
"""

from __future__ import annotations

import argparse
import ast

import torch

from marlkit.envs.registry import make_env
from marlkit.train import RunConfig, _member, fit

ACTIONS = ("stay", "up", "down", "right", "left")
# [r_0, c_0, goal_0, r_1, c_1, goal_1] (marlkit.envs.bridge): the start, either agent stepped back, the near retreats
PROBES = {"start": [1, 2, 2, 5, 1, 3, 0, 0],
          "agent 1 stepped right": [1, 2, 2, 5, 1, 4, 0, 0],
          "agent 0 stepped left": [1, 1, 2, 5, 1, 3, 0, 0],
          # the "near" retreat (v1 data): the yielder aside in its own goal row, the crosser beside it
          "agent 1 aside up, agent 0 at (1,4)": [1, 4, 2, 5, 0, 4, 0, 0],
          "agent 0 aside down, agent 1 at (1,1)": [2, 1, 2, 5, 1, 1, 0, 0]}


def parse_set(items: list[str]) -> dict:
    """``["beta=10", "entropy=False"]`` → ``{"beta": 10, "entropy": False}`` (values as Python literals)."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise SystemExit(f"bridge_probe: --set {item!r} is not NAME=VALUE with a Python literal VALUE") from None
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mixed", choices=("optimal", "mixed"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--eval-episodes", type=int, default=32)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="InSPO hyperparameter")
    p.add_argument("--trace", type=int, default=0, help="print this many sampled episodes, position by position")
    args = p.parse_args()
    torch.set_num_threads(1)
    env = make_env("bridge")
    algo, data = _member(env, args.dataset, "inspo", parse_set(args.set), args.seed, None, torch.device("cpu"))
    result = fit(algo, data, env, RunConfig(steps=args.steps, eval_every=0, eval_episodes=args.eval_episodes,
                                            seed=args.seed, threads=1, progress=False))
    print(f"return {result['return']:.2f}; metrics " +
          ", ".join(f"{k} {v:.3g}" for k, v in result["metrics"].items()))
    print("state | agent | " + " | ".join(f"{a}: π / μ / Q" for a in ACTIONS))
    for label, cells in PROBES.items():
        state = torch.tensor(cells, dtype=torch.float32, device=algo.device)
        obs = state.expand(1, 2, -1)  # both agents observe the full state
        with torch.no_grad():
            pi, mu = algo.policy.probs(obs), algo.mu.probs(obs)
            q = algo.q(algo._q_input(obs, state.unsqueeze(0)))
        for i in range(2):
            row = " | ".join(f"{pi[0, i, a]:.2f} / {mu[0, i, a]:.2f} / {q[0, i, a]:.2f}" for a in range(len(ACTIONS)))
            print(f"{label} | {i} | {row}")
    if args.trace:
        trace(algo, env, args.trace, args.seed)


def trace(algo, env, episodes: int, seed: int) -> None:
    """Roll out ``episodes`` episodes with sampled actions and print each one's joint moves and positions."""
    generator = torch.Generator(device=algo.device).manual_seed(seed)
    obs, _, avail = env.reset(episodes)
    lines = [[f"start {env._pos[e].tolist()}"] for e in range(episodes)]
    returns, alive = [0.0] * episodes, [True] * episodes
    for _ in range(env.spec.episode_limit):
        with torch.no_grad():
            act = algo.act(torch.as_tensor(obs, device=algo.device), torch.as_tensor(avail, device=algo.device),
                           deterministic=False, generator=generator).cpu().numpy()
        res = env.step(act)
        for e in range(episodes):
            if alive[e]:
                returns[e] += float(res.reward[e])
                lines[e].append(f"{ACTIONS[act[e, 0]]}/{ACTIONS[act[e, 1]]} -> {env._pos[e].tolist()}")
                alive[e] = not (res.terminal[e] or res.timeout[e])
        obs, avail = res.obs, res.avail
        if not any(alive):
            break
    for e in range(episodes):
        print(f"episode {e} (return {returns[e]:.2f}): " + "; ".join(lines[e][:14]) + (" ..." if len(lines[e]) > 14 else ""))


if __name__ == "__main__":
    main()
