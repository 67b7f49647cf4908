"""Every registered algorithm on every seed matrix game, through the CLI's JSON records.

    python benchmarks/baselines_matrix.py                       # -> benchmarks/results/baselines_matrix.csv
    python benchmarks/baselines_matrix.py --steps 300 --seeds 0 --out /tmp/t.csv   # quick look

Settings (recorded in the CSV's sibling ``.json``): small networks and a larger step size than the papers'
(the matrix games are tabular: one constant observation), 1000 updates, seeds 0-2, 1 CPU thread.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from marlkit.algos import ALGOS
from marlkit.eval.tables import SEED_GAMES, comparison_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", default=",".join(ALGOS), help="comma-separated names (default: all registered)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--extra", default="--hidden 32,32 --lr 0.003", help="CLI tokens for every algorithm")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "baselines_matrix.csv"))
    args = p.parse_args()
    t0 = time.time()
    df = comparison_table(args.algos.split(","), SEED_GAMES, steps=args.steps,
                          seeds=[int(s) for s in args.seeds.split(",")], extra={"*": args.extra.split()},
                          progress=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    out.with_suffix(".json").write_text(json.dumps({"steps": args.steps, "seeds": args.seeds, "extra": args.extra,
                                                    "algos": args.algos, "wall_time_s": time.time() - t0}, indent=2))
    print(f"wrote {out} ({len(df)} runs, {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
