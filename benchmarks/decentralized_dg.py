"""MATD3+BC vs decentralized TD3+BC on the Differential Game, full and partial observation, several seeds
(offline-decentralized-marl.md Table 9 direction). Writes one JSON record per run (appending, so an interrupted
sweep can resume) and prints a mean ± std summary.

    PYTHONPATH=$PWD python benchmarks/decentralized_dg.py --steps 3000 --seeds 0 1 2 --size 30000 \\
        --overrides '{"gamma":0.9,"tau":0.02,"lr":0.001,"actor_lr":0.001,"vae_lr":0.001,"vae_pretrain_steps":300}' \\
        --out benchmarks/results/decentralized_dg.jsonl

is the small-scale setting of ``benchmarks/results/decentralized_dg.jsonl`` (hidden (64, 64), 64 evaluation
episodes; runs of one env/seed/algorithm can go to separate ``--out`` files in parallel and be concatenated).
The paper's scale is ``--size 1000000``, hidden (256, 256), γ = 0.99 and far more updates.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from marlkit.train import RunConfig, run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", nargs="+", default=["differential", "differential-partial"])
    ap.add_argument("--algos", nargs="+", default=["matd3bc", "td3bc-dec"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--size", type=int, default=30000, help="dataset transitions (paper: 1e6)")
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    ap.add_argument("--overrides", default="{}", help="extra JSON hyperparameters for every algorithm")
    ap.add_argument("--episodes", type=int, default=64)
    ap.add_argument("--out", default="benchmarks/results/decentralized_dg.jsonl")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["env"], r["algo"], r["seed"], r["steps"], r["size"]))
    for env in args.envs:
        for seed in args.seeds:
            for algo in args.algos:
                if (env, algo, seed, args.steps, args.size) in done:
                    continue
                overrides = {"hidden": tuple(args.hidden), **json.loads(args.overrides)}
                rec = run(env, "random", algo, overrides,
                          RunConfig(steps=args.steps, seed=seed, threads=1, progress=False,
                                    eval_episodes=args.episodes), dataset_size=args.size)
                row = {"env": env, "algo": algo, "seed": seed, "steps": args.steps, "size": args.size,
                       "return": rec["return"], "return_std": rec["return_std"], "wall_time_s": rec["wall_time_s"],
                       "config": rec["config"]}
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(env, algo, seed, round(rec["return"], 3), flush=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for env in args.envs:
        for algo in args.algos:
            r = [x["return"] for x in rows if x["env"] == env and x["algo"] == algo and x["steps"] == args.steps
                 and x["size"] == args.size]
            if r:
                print(f"{env:22s} {algo:10s} {np.mean(r):6.2f} ± {np.std(r):.2f}  (n={len(r)})")


if __name__ == "__main__":
    main()
