"""``marlkit bench``: its argparse options, the grid they describe, and the command itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from marlkit.bench.grid import Grid, GridError, pair_tasks, parse_list, parse_seeds
from marlkit.bench.presets import PRESETS, preset
from marlkit.bench.records import FAILED, NOTEBOOK, RECORD, REPORT
from marlkit.bench.report import run_report, summarize
from marlkit.bench.runner import BACKENDS, run_sweep

__all__ = ["add_bench_parser", "add_eval_mode_options", "bench_main", "grid_from_args"]


def add_eval_mode_options(parser) -> None:
    """``--stochastic-eval`` / ``--deterministic-eval`` (mutually exclusive) → ``args.deterministic_eval``:
    False / True, None when neither is given (the env's default mode, ``EnvSpec.deterministic_eval``)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--stochastic-eval", dest="deterministic_eval", action="store_const", const=False,
                       default=None, help="evaluate rollouts with sampled actions (default: the env's mode, "
                                          "the one its paper used; matrix games are evaluated exactly)")
    group.add_argument("--deterministic-eval", dest="deterministic_eval", action="store_const", const=True,
                       help="evaluate rollouts with greedy actions (default: the env's mode)")


def add_bench_parser(sub) -> None:
    """Register ``marlkit bench`` on an argparse sub-parser collection."""
    b = sub.add_parser(
        "bench", help="run the benchmark notebook over a grid (papermill), then tabulate",
        description="Run notebooks/10_benchmark.ipynb with papermill for every cell of a grid "
                    "(tasks × algos × α values × seeds), resumably, then write the papers' table and figures.")
    b.add_argument("--preset", choices=sorted(PRESETS), help="a named grid: " + "; ".join(
        f"{k}: {v}" for k, v in PRESETS.items()))
    b.add_argument("--grid", help="YAML grid file (keys: envs/datasets or tasks, algos, seeds, alphas, sweep, ...)")
    b.add_argument("--env", "--envs", dest="envs", help="environment name(s), comma-separated")
    b.add_argument("--dataset", "--datasets", dest="datasets", help="dataset name(s), comma-separated")
    b.add_argument("--algo", "--algos", dest="algos", help="algorithm name(s), comma-separated")
    b.add_argument("--seeds", help="seeds, e.g. 0-4 or 0,1,2 (default 0)")
    b.add_argument("--alphas", help="α values to sweep, e.g. 1,10 (algorithms without α run once; replaces a "
                                    "preset's per-algorithm α values)")
    b.add_argument("--hp", default=None, help='fixed hyperparameters as JSON, e.g. \'{"hidden": [64, 64]}\'')
    b.add_argument("--steps", type=int, default=None,
                   help="gradient updates of every run (default: the preset's, per algorithm, else the env's)")
    b.add_argument("--eval-every", type=int, default=None, help="evaluate every N updates (0: only at the end)")
    b.add_argument("--eval-episodes", type=int, default=None, help="evaluation episodes (sequential envs)")
    b.add_argument("--dataset-size", type=int, default=None, help="transitions for sampled datasets")
    add_eval_mode_options(b)
    b.add_argument("--device", default=None, help="auto, cpu or cuda[:k] (default cpu)")
    b.add_argument("--out", default=None, help="sweep directory (default results/<preset or 'bench'>)")
    b.add_argument("--backend", choices=list(BACKENDS), default="local", help="process pool or Ray")
    b.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local Ray)")
    b.add_argument("--workers", type=int, default=None, help="parallel runs (default: CPU count)")
    b.add_argument("--threads", type=int, default=1, help="torch threads per run (MARLKIT_NUM_THREADS)")
    b.add_argument("--timeout", type=float, default=None, help="per-notebook-cell timeout in seconds")
    b.add_argument("--notebook", default=None, help="benchmark notebook (default notebooks/10_benchmark.ipynb)")
    b.add_argument("--no-report", action="store_true",
                   help=f"skip executing notebooks/{REPORT} on the results (tables and figures in OUT/figures)")
    b.add_argument("--no-retry-failed", action="store_true", help="skip cells that failed before")
    b.add_argument("--overwrite", action="store_true",
                   help="run into an --out whose cells ran with other settings (grid.json): this grid's cells "
                        "are rerun and their old records replaced")
    b.add_argument("--list", action="store_true", help="print the grid's runs and exit")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=bench_main)


def grid_from_args(args) -> Grid:
    """Build the grid of ``marlkit bench`` arguments: a preset or a YAML file, then command-line overrides.

    Raises:
        GridError: for conflicting or malformed arguments.
    """
    if args.preset and args.grid:
        raise GridError("give either --preset or --grid, not both")
    if args.preset:
        grid = preset(args.preset)
    elif args.grid:
        grid = Grid.from_yaml(args.grid)
    else:
        grid = Grid(tasks=[], algos=[], seeds=[0])
    if args.envs or args.datasets:
        if not (args.envs and args.datasets):
            raise GridError("give both --env and --datasets")
        grid.tasks = pair_tasks(parse_list(args.envs), parse_list(args.datasets))
        keys = {f"{e}/{d}" for e, d in grid.tasks}  # a preset's per-task settings follow the tasks kept
        grid.task_settings = {k: v for k, v in grid.task_settings.items() if k in keys}
    if args.algos:
        chosen = parse_list(args.algos)
        # a preset's per-task columns stay on their tasks when chosen; the other algorithms run on every task
        extra = set(grid.all_algos()) - set(grid.algos)
        grid.task_settings = {k: {**v, "algos": [a for a in v.get("algos", []) if a in chosen]}
                              for k, v in grid.task_settings.items()}
        grid.algos = [a for a in chosen if a not in extra]
        # a preset's per-algorithm settings apply to the algorithms kept; those dropped take theirs along
        grid.algo_hyperparameters = {a: hp for a, hp in grid.algo_hyperparameters.items() if a in chosen}
        grid.algo_sweep = {a: sw for a, sw in grid.algo_sweep.items() if a in chosen}
        grid.algo_steps = {a: n for a, n in grid.algo_steps.items() if a in chosen}
    if args.seeds is not None:
        grid.seeds = parse_seeds(args.seeds)
    if args.alphas is not None:  # the α values of every algorithm with α, a preset's per-algorithm ones included
        grid.sweep["alpha"] = parse_list(args.alphas, float)
        grid.algo_sweep = {a: {k: v for k, v in sw.items() if k != "alpha"} for a, sw in grid.algo_sweep.items()}
        grid.algo_sweep = {a: sw for a, sw in grid.algo_sweep.items() if sw}
    if args.hp:
        try:
            hp = json.loads(args.hp)
        except json.JSONDecodeError as exc:
            raise GridError(f"--hp is not valid JSON: {exc}") from None
        if not isinstance(hp, dict):
            raise GridError(f"--hp must be a JSON object, got {args.hp!r}")
        grid.hyperparameters.update(hp)
    for name in ("steps", "eval_every", "eval_episodes", "dataset_size", "device", "deterministic_eval"):
        if getattr(args, name, None) is not None:
            setattr(grid, name, getattr(args, name))
            # the command line sets every cell's value, a preset's per-task values included
            grid.task_settings = {k: {n: v for n, v in t.items() if n != name} for k, t in grid.task_settings.items()}
    if args.steps is not None:  # --steps is every run's count, a preset's per-algorithm counts included
        grid.algo_steps = {}
    return grid


CELL_KEYS = ("tasks", "algos", "seeds", "sweep", "algo_sweep")
"""Grid settings that a cell's directory names: a grid that differs only in them adds or skips cells."""


def check_recorded_grid(grid: Grid, out: Path, overwrite: bool = False) -> list[str]:
    """Refuse to run ``grid`` into a sweep directory whose recorded grid (``out/grid.json``) ran its cells with
    other settings (fixed hyperparameters, steps, evaluation, dataset size, device: what a cell's directory does
    not name), so that finished cells of the old settings would be skipped and mixed into this sweep's table,
    unless ``overwrite``. Grids that differ only in tasks, algorithms, seeds or swept values share a directory
    safely (their cells are distinct directories).

    Returns:
        The settings that differ (only possible with ``overwrite``; then this grid's cells must be rerun).

    Raises:
        GridError: naming the directory, the settings that differ and the ways forward.
    """
    import dataclasses

    path = out / "grid.json"
    if not path.is_file():
        return []
    try:
        recorded = json.loads(path.read_text())["grid"]
    except (OSError, ValueError, KeyError, TypeError):
        if overwrite:
            return ["grid.json"]
        raise GridError(f"--out {out}: {path} is unreadable; choose a new --out or pass --overwrite") from None
    current = json.loads(json.dumps(dataclasses.asdict(grid), default=str))
    if not isinstance(recorded, dict):
        if overwrite:
            return ["grid.json"]
        raise GridError(f"--out {out}: {path} holds no grid; choose a new --out or pass --overwrite")
    # a setting a grid.json predates (written before the Grid had the field) was the field's default
    defaults = json.loads(json.dumps(dataclasses.asdict(Grid(tasks=[], algos=[], seeds=[0])), default=str))
    differ = sorted(k for k in set(current) | set(recorded)
                    if k not in CELL_KEYS and current.get(k) != recorded.get(k, defaults.get(k)))
    if differ and not overwrite:
        raise GridError(f"--out {out} holds a sweep run with other settings (differs in {', '.join(differ)}); "
                        f"rerun with those settings, choose a new --out, or pass --overwrite")
    return differ


def print_list(cells, out: Path, preset_name: str | None = None) -> None:
    """``--list``: every run with its updates, its estimated CPU time (:func:`~marlkit.bench.presets.estimated_cpu_s`,
    '-' where the cost model has no figure) and directory, then the total; for paper-lite also its budget and the
    columns dropped to fit it."""
    from marlkit.bench.presets import PAPER_LITE_BUDGET_CPU_H, describe_dropped, estimated_cpu_s, paper_lite_plan

    total, unknown = 0.0, 0
    for c in cells:
        cost = estimated_cpu_s(c)
        total += cost or 0.0
        unknown += cost is None
        est = "-" if cost is None else f"{cost / 3600:.2f} CPU-h"
        print(f"{c.label:<60} {str(c.steps or 'env default'):>11} updates  {est:>11}  {c.directory(out)}")
    if unknown == len(cells):  # no cost figures for these tasks (e.g. matrix games: seconds each)
        print(f"{len(cells)} runs")
    else:
        known = f"≈ {total / 3600:.1f} CPU-hours estimated"
        if unknown:
            known += f" for the {len(cells) - unknown} runs the cost model covers ({unknown} not estimated)"
        print(f"{len(cells)} runs, {known} (one thread per run; wall time ≈ that / --workers)")
    if preset_name == "paper-lite":
        print(f"budget: {PAPER_LITE_BUDGET_CPU_H:g} CPU-hours; dropped to fit it (from the end of the priority "
              f"list): {describe_dropped(*paper_lite_plan())}")


def bench_main(args, extra: list[str] | None = None) -> int:
    """``marlkit bench``: run the sweep, summarise, print where everything is. Exit code 1 if a run failed."""
    try:
        grid = grid_from_args(args)
        cells = grid.cells()
    except GridError as exc:
        print(f"marlkit: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out or Path("results") / (args.preset or "bench"))
    if args.list:
        print_list(cells, out, args.preset)
        return 0
    if isinstance(args.threads, bool) or args.threads < 1:
        print(f"marlkit: error: --threads must be a positive integer, got {args.threads}", file=sys.stderr)
        return 2
    if args.timeout is not None and not args.timeout > 0:
        print(f"marlkit: error: --timeout must be a positive number of seconds, got {args.timeout}", file=sys.stderr)
        return 2
    if out.exists() and not out.is_dir():
        print(f"marlkit: error: --out {out} is a file, not a sweep directory", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print(f"marlkit: error: --workers must be a positive integer, got {args.workers}", file=sys.stderr)
        return 2
    try:
        differ = check_recorded_grid(grid, out, getattr(args, "overwrite", False))
    except GridError as exc:
        print(f"marlkit: error: {exc}", file=sys.stderr)
        return 2
    if differ:  # --overwrite: this grid's cells rerun with its settings, their old records replaced
        for c in cells:
            for name in (RECORD, "record.csv"):
                (c.directory(out) / name).unlink(missing_ok=True)
    swept = sorted(set(grid.sweep).union(*grid.algo_sweep.values()))
    print(f"marlkit bench: {len(cells)} runs ({len(grid.tasks)} tasks × {len(grid.algos)} algos × "
          f"{len(grid.seeds)} seeds{' × swept ' + ', '.join(swept) if swept else ''}) -> {out}", flush=True)
    summary = run_sweep(grid, out, backend=args.backend, workers=args.workers, threads=args.threads,
                        notebook=args.notebook, ray_address=args.ray_address, timeout=args.timeout,
                        progress=not args.quiet, retry_failed=not args.no_retry_failed)
    root = Path(summary["out"])
    paths = summarize(root, cells=cells)
    report = None
    if paths and not args.no_report:
        try:
            report = run_report(root, timeout=args.timeout)
        except Exception as exc:  # noqa: BLE001 - the records and the table are already written
            print(f"marlkit: warning: {REPORT} failed on {root}: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"\nran {summary['ran']} (ok {summary['ok']}, failed {len(summary['failed'])}), skipped {summary['skipped']} "
          f"finished before, in {summary['seconds']:.1f} s")
    if "table_md" in paths:
        print("\n" + paths["table_md"].read_text())
    print(f"executed notebooks: {root}/<env>/<dataset>/<algo>/<hyperparameters>/seed=<s>/{NOTEBOOK}")
    print(f"records:            {root}/.../{RECORD} (+ record.csv); all runs: {paths.get('results', '-')}")
    print(f"table:              {paths.get('table_md', '-')} (LaTeX: {paths.get('table_tex', '-')})")
    for key in ("learning_curves", "alpha_sweep"):
        if key in paths:
            print(f"figure:             {paths[key]}")
    if report is not None:
        print(f"report notebook:    {report} (figures: {root / 'figures'})")
    for r in summary["results"]:
        if r["status"] == "failed":
            print(f"FAILED {r['label']}: {r['error']} (traceback: {Path(r['dir']) / FAILED})", file=sys.stderr)
    return 1 if summary["failed"] else 0
