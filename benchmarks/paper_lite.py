"""paper-lite's committed inputs to notebooks/12_real_benchmarks.ipynb: learning curves and dataset cards.

``curves DIR``: the learning curves that choose paper-lite's update count, collected from a `marlkit bench`
sweep directory.

The curves come from long runs of OMIGA and BC on the medium-replay MaMuJoCo tasks (docs/benchmarks.md,
"paper-lite"), e.g.::

    marlkit bench --algo omiga,bc --env mamujoco:HalfCheetah-6x1,mamujoco:Hopper-3x1 --dataset medium-replay \
        --seeds 0 --steps 200000 --eval-every 20000 --eval-episodes 32 --workers 2 --threads 1 --out DIR

This script reads every run under DIR: a finished run's ``record.json``, else (a run still training or stopped)
the evaluations it has written so far (``evals.jsonl``, marked ``finished = False``), and writes one tidy CSV
(``env, dataset, algo, seed, step, return, return_std, episodes, finished``) plus the dataset-card returns of
the tasks, for notebooks/12_real_benchmarks.ipynb.

``cards``: the cards of the built datasets of paper-lite's tasks (ID, seed, transitions, episodes, return mean
± std, the random/expert references of the normalized score) as ``datasets.csv``.

``table``: the grid's results from the records under the results directory, in the papers' format, every
planned cell listed (``not run`` / ``failed`` / ``2 of 3 seeds`` where runs are missing): ``results.csv``,
``table.md`` / ``table.tex`` (final return), ``table_normalized.md`` (normalized score), ``learning_curves.png``
and ``aggregates.csv`` (rliable IQM, median, mean, optimality gap with 95 % stratified-bootstrap intervals over
the tasks every algorithm finished).

Usage:
    python benchmarks/paper_lite.py curves DIR [--csv benchmarks/results/paper-lite/curves.csv]
    python benchmarks/paper_lite.py cards [--csv benchmarks/results/paper-lite/datasets.csv]
    python benchmarks/paper_lite.py table [--root benchmarks/results/paper-lite]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


def collect(root: Path) -> pd.DataFrame:
    """One row per evaluation of every run under ``root`` (layout ``env/dataset/algo/variant/seed=s``)."""
    rows = []
    for run in sorted(p for p in root.glob("*/*/*/*/seed=*") if p.is_dir()):
        env_dir, dataset, algo = run.parts[-5], run.parts[-4], run.parts[-3]
        seed = int(run.name.split("=", 1)[1])
        record = run / "record.json"
        if record.is_file():
            rec = json.loads(record.read_text())
            env, evals, finished = rec["env"], rec["evals"], True
            stds = {}
        elif (run / "evals.jsonl").is_file():
            lines = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines() if line.strip()]
            env, evals, finished = env_dir.replace("_", ":", 1), lines, False
            stds = {int(e["step"]): e.get("return_std") for e in lines}
        else:
            continue
        for e in evals:
            rows.append({"env": env, "dataset": dataset, "algo": algo, "seed": seed, "step": int(e["step"]),
                         "return": float(e["return"]), "return_std": e.get("return_std", stds.get(int(e["step"]))),
                         "episodes": len(e["returns"]) if "returns" in e else None, "finished": finished})
    return pd.DataFrame(rows)


def cards() -> pd.DataFrame:
    """One row per built dataset file of a paper-lite task (all seeds found in the dataset cache), with the
    dataset's content fingerprint (``marlkit.data.hdf5.dataset_fingerprint``: equal fingerprints, equal data,
    whichever machine built them). Files built from other behavior weights or rollout arithmetic than the
    installed ones (an older ``behavior_fingerprint``) are skipped."""
    from marlkit.bench.presets import PAPER_LITE_TASKS
    from marlkit.data.browse import built_files, read_card
    from marlkit.data.hdf5 import dataset_fingerprint, load_hdf5
    from marlkit.envs.registry import make_env

    rows = []
    for env, dataset, _ in PAPER_LITE_TASKS:
        current = getattr(make_env(env), "behavior_fingerprint", None)
        for path in built_files(env, dataset):
            card = read_card(path)
            if current and card.get("behavior_fingerprint") != current:
                continue
            ref = card.get("reference_returns")
            ref = json.loads(ref) if isinstance(ref, str) else (ref or {})
            rows.append({"env": env, "dataset": dataset, "dataset_id": card.get("dataset_id"),
                         "seed": card.get("seed"), "transitions": card.get("transitions"),
                         "episodes": card.get("episodes"), "return_mean": card.get("return_mean"),
                         "return_std": card.get("return_std"), "random_return": ref.get("random"),
                         "expert_return": ref.get("expert"), "behavior": card.get("behavior"),
                         "fingerprint": dataset_fingerprint(load_hdf5(path))})
    return pd.DataFrame(rows).sort_values(["env", "dataset", "seed"]) if rows else pd.DataFrame(rows)


def tables(root: Path, reps: int = 2000) -> dict[str, Path]:
    """Write the grid's tables, figure and rliable aggregates under ``root`` (see the module docstring); returns
    name → path of what was written (empty without a finished run)."""
    from marlkit.bench import presets
    from marlkit.bench.report import summarize
    from marlkit.eval import aggregate as agg
    from marlkit.eval.checks import coverage

    grid, _ = presets.paper_lite_plan()
    cells = grid.cells()
    paths = summarize(root, cells=cells)
    if not paths:
        return paths
    records, cov = agg.load_records(root), coverage(cells, root)
    for name, score in (("table_md", "return"), ("table_normalized_md", "normalized_score")):
        paths[name] = root / ("table.md" if score == "return" else "table_normalized.md")
        paths[name].write_text(agg.to_markdown(agg.results_table(records, score=score), coverage=cov) + "\n")
    paths["table_tex"].write_text(agg.to_latex(agg.results_table(records, score="return"), coverage=cov) + "\n")
    try:
        est = agg.aggregate_estimates(records, score="normalized_score", reps=reps)
    except ValueError as exc:  # fewer than two algorithms share a task
        print(f"paper_lite: no aggregates: {exc}", file=sys.stderr)
    else:
        paths["aggregates"] = root / "aggregates.csv"
        est.assign(tasks=" ".join(f"{e}/{d}" for e, d in est.attrs["tasks"])).round(3).to_csv(
            paths["aggregates"], index=False)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("curves", help="collect learning curves from a sweep directory")
    c.add_argument("root", type=Path, help="a `marlkit bench` sweep directory")
    c.add_argument("--csv", type=Path, default=Path("benchmarks/results/paper-lite/curves.csv"))
    d = sub.add_parser("cards", help="the built datasets' cards of paper-lite's tasks")
    d.add_argument("--csv", type=Path, default=Path("benchmarks/results/paper-lite/datasets.csv"))
    t = sub.add_parser("table", help="the grid's tables and aggregates from the committed records")
    t.add_argument("--root", type=Path, default=Path("benchmarks/results/paper-lite"))
    t.add_argument("--reps", type=int, default=2000, help="bootstrap resamples of the aggregates' intervals")
    args = parser.parse_args(argv)
    if args.command == "table":
        if not args.root.is_dir():
            print(f"paper_lite: error: {args.root} is not a directory", file=sys.stderr)
            return 2
        paths = tables(args.root, args.reps)
        if not paths:
            print(f"paper_lite: error: no finished run under {args.root}", file=sys.stderr)
            return 2
        print(paths["table_md"].read_text())
        for name, path in paths.items():
            print(f"wrote {path}")
        return 0
    if args.command == "curves":
        if not args.root.is_dir():
            print(f"paper_lite: error: {args.root} is not a directory", file=sys.stderr)
            return 2
        df = collect(args.root)
        if df.empty:
            print(f"paper_lite: error: no run with evaluations under {args.root}", file=sys.stderr)
            return 2
        print(df.groupby(["env", "dataset", "algo", "step"])["return"].agg(["mean", "std", "count"]).round(1))
    else:
        df = cards()
        if df.empty:
            print("paper_lite: error: no dataset of a paper-lite task is built (marlkit data build ...)",
                  file=sys.stderr)
            return 2
        print(df.drop(columns=["behavior"]).to_string(index=False))
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.csv, index=False)
    print(f"wrote {args.csv} ({len(df)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
