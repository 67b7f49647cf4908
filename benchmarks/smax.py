"""SMAX benchmark presets: dataset cards and behavior cloning vs the heuristic behavior.

    python benchmarks/smax.py cards [--maps 5m_vs_6m,2s3z,3s_vs_5z,6h_vs_8z] [--size 50000] [--seed 0]
    python benchmarks/smax.py bc [--map 5m_vs_6m] [--dataset good] [--steps 20000] [--seeds 0,1,2]

``cards`` builds (or loads from the cache) every map × quality dataset and prints one JSON line per dataset with
its behavior's mean episode return, win rate and episode count (the numbers recorded in docs/smax.md).
``bc`` trains behavior cloning on one dataset per seed and evaluates the greedy policy over ``--episodes``
parallel battles; it prints one JSON line per seed and a summary line with the behavior's win rate next to BC's.
Needs ``pip install marlkit[smax]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def cards(maps: list[str], size: int, seed: int, qualities: list[str]) -> list[dict]:
    from marlkit.envs.registry import make_env

    out = []
    for m in maps:
        env = make_env(f"smax:{m}")
        for q in qualities:
            t0 = time.perf_counter()
            ds = env.make_dataset(q, size=size, seed=seed)
            rec = {"map": m, "dataset": q, "epsilon": ds.meta.get("epsilon"), "transitions": ds.size,
                   "episodes": ds.meta.get("episodes"), "return_mean": round(ds.meta["behavior_return_mean"], 4),
                   "return_std": round(ds.meta["behavior_return_std"], 4),
                   "win_rate": round(ds.meta["behavior_win_rate"], 4), "seconds": round(time.perf_counter() - t0, 1)}
            print(json.dumps(rec), flush=True)
            out.append(rec)
    return out


def bc(map_name: str, dataset: str, size: int, steps: int, seeds: list[int], episodes: int, hidden: tuple[int, ...],
       threads: int) -> dict:
    from marlkit.envs.registry import make_env
    from marlkit.train import RunConfig, build_algo, fit
    from marlkit.utils import seed_everything

    env = make_env(f"smax:{map_name}")
    ds = env.make_dataset(dataset, size=size, seed=0)
    behavior = env.behavior_stats(dataset, episodes=episodes, seed=12345)
    rows = []
    for s in seeds:
        seed_everything(s)
        algo = build_algo("bc", env.spec, {"hidden": hidden})
        t0 = time.perf_counter()
        rec = fit(algo, ds, env, RunConfig(steps=steps, seed=s, progress=False, threads=threads,
                                          eval_episodes=episodes))
        row = {"seed": s, "return": round(rec["return"], 4), "win_rate": rec["win_rate"],
               "seconds": round(time.perf_counter() - t0, 1)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    summary = {"map": map_name, "dataset": dataset, "transitions": ds.size, "steps": steps, "hidden": list(hidden),
               "eval_episodes": episodes, "behavior_return": round(behavior["return_mean"], 4),
               "behavior_return_std": round(behavior["return_std"], 4), "behavior_win_rate": behavior["win_rate"],
               "bc_return_mean": round(float(np.mean([r["return"] for r in rows])), 4),
               "bc_return_std": round(float(np.std([r["return"] for r in rows])), 4),
               "bc_win_rate_mean": round(float(np.mean([r["win_rate"] for r in rows])), 4),
               "bc_win_rate_std": round(float(np.std([r["win_rate"] for r in rows])), 4)}
    print(json.dumps(summary), flush=True)
    return summary


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cards")
    c.add_argument("--maps", default="5m_vs_6m,2s3z,3s_vs_5z,6h_vs_8z")
    c.add_argument("--qualities", default="good,medium,poor")
    c.add_argument("--size", type=int, default=50_000)
    c.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("bc")
    b.add_argument("--map", default="5m_vs_6m")
    b.add_argument("--dataset", default="good")
    b.add_argument("--size", type=int, default=50_000)
    b.add_argument("--steps", type=int, default=20_000)
    b.add_argument("--seeds", default="0,1,2")
    b.add_argument("--episodes", type=int, default=32)
    b.add_argument("--hidden", default="256,256")
    b.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    if a.cmd == "cards":
        cards(a.maps.split(","), a.size, a.seed, a.qualities.split(","))
    else:
        bc(a.map, a.dataset, a.size, a.steps, [int(s) for s in a.seeds.split(",")], a.episodes,
           tuple(int(h) for h in a.hidden.split(",")), a.threads)


if __name__ == "__main__":
    main()
