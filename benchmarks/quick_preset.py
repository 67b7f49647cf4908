"""The main job's records as a committed table: one row per run of a finished ``marlkit bench --preset quick``.

    marlkit bench --preset quick --workers 2 --threads 1     # -> results/quick
    python benchmarks/quick_preset.py                        # -> benchmarks/results/quick_preset.csv
    python benchmarks/quick_preset.py --sweep results/quick --out /tmp/quick.csv

Columns: env, dataset, algo, variant, seed, alpha, steps, the hyperparameters the run was given (JSON),
return, normalized_score, wall_time_s, git_commit, git_dirty. ``tests/test_quick_preset.py`` reads the file: the
best column of each task must be the seed papers' (inspo.md Tables 1–2), and the rows must be the runs the preset
describes now (rerun the two commands above when the preset changes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from marlkit.eval import aggregate as agg

COLUMNS = ["env", "dataset", "algo", "variant", "seed", "alpha", "steps", "hyperparameters", "return",
           "normalized_score", "wall_time_s", "git_commit", "git_dirty"]


def export(sweep: Path) -> pd.DataFrame:
    """One row per record under ``sweep`` (see the module docstring); raises FileNotFoundError without any."""
    df = agg.load_records(sweep)
    if df.empty:
        raise FileNotFoundError(f"no record.json under {sweep}: run `marlkit bench --preset quick` first")
    rows = []
    for path, variant in zip(df["path"], df["variant"]):
        rec = json.loads(Path(path).read_text())
        rows.append({**{k: rec.get(k) for k in COLUMNS}, "variant": variant,
                     "hyperparameters": json.dumps(rec["hyperparameters"], sort_keys=True)})
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["env", "dataset", "variant", "seed"], kind="stable")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep", default="results/quick", help="the sweep directory of `marlkit bench --preset quick`")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "quick_preset.csv"))
    args = p.parse_args()
    df = export(Path(args.sweep))
    df.to_csv(args.out, index=False)
    print(f"{len(df)} runs -> {args.out}")


if __name__ == "__main__":
    main()
