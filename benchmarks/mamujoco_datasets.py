"""Dataset cards of the multi-agent MuJoCo tasks: every shipped task × quality, built with ``marlkit data build``.

    python benchmarks/mamujoco_datasets.py [--tasks Hopper-3x1,Ant-2x4,HalfCheetah-6x1] [--episodes 20]
                                           [--transitions N] [--seed 0] [--json out.jsonl]

For each task with shipped behavior weights (``marlkit/behavior_weights/``) it builds (or loads from the data
cache) the ``random``, ``medium``, ``expert``, ``medium-expert`` and ``medium-replay`` datasets and prints the
behavior training summary and a markdown table of mean ± std episode return (the table in docs/datasets.md),
then checks the ordering random < medium < expert. Datasets are sized in whole episodes by default: a
transition-sized file cuts the last episode of each of its parallel rollouts short, which biases the mean return
of tasks with 1000-step episodes (Ant, HalfCheetah). Needs ``pip install marlkit[mujoco]``.
"""

from __future__ import annotations

import argparse
import json
import time

QUALITIES = ("random", "medium", "expert", "medium-expert", "medium-replay")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="Hopper-3x1,Ant-2x4,HalfCheetah-6x1")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--episodes", type=int, default=20, help="episodes per dataset (default 20)")
    size.add_argument("--transitions", type=int, default=None, help="transitions per dataset instead of episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write one JSON line per dataset here")
    args = p.parse_args(argv)

    from marlkit.behavior.weights import load_card
    from marlkit.data.build import build_dataset, dataset_card

    size_kw = {"transitions": args.transitions} if args.transitions else {"episodes": args.episodes}
    size_name = f"{args.transitions:,} transitions" if args.transitions else f"{args.episodes} episodes"
    records, training, returns, ordered = [], [], [], True
    for task in args.tasks.split(","):
        card = load_card(task)
        cfg, lv = card["config"], card["levels"]
        steps = [card["evals"][lv[k]]["step"] for k in ("random", "medium", "expert")]
        training.append(f"| {task} | {cfg['steps_done']:,} ({card['train_seconds']:.0f} s) | "
                        f"step {steps[0]:,} / {steps[1]:,} / {steps[2]:,} |")
        row = {}
        for q in QUALITIES:
            t0 = time.perf_counter()
            ds = build_dataset(f"mamujoco:{task}", q, seed=args.seed, **size_kw)
            rec = {**dataset_card(ds), "seconds": round(time.perf_counter() - t0, 1)}
            print(json.dumps(rec), flush=True)
            records.append(rec)
            row[q] = rec
        means = [row[q]["return_mean"] for q in ("random", "medium", "expert")]
        ordered &= means[0] < means[1] < means[2]
        cells = " | ".join(f"{row[q]['return_mean']:.2f} ± {row[q]['return_std']:.2f}" for q in QUALITIES)
        returns.append(f"| {task} | {size_name} | {cells} |")
    print("\n| task | TD3 env steps (wall time) | checkpoints: random / medium / expert |\n|---|---|---|")
    print("\n".join(training))
    print(f"\n| task | size | {' | '.join(QUALITIES)} |\n|---|---|{'---|' * len(QUALITIES)}")
    print("\n".join(returns))
    print(f"\nordering random < medium < expert on every task: {ordered}")
    if args.json:
        with open(args.json, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
    return 0 if ordered else 1


if __name__ == "__main__":
    raise SystemExit(main())
