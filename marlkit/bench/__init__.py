"""Benchmarks: one notebook per run, executed headlessly with papermill, over a grid of runs.

The unit of work is ``notebooks/10_benchmark.ipynb``: given its parameters (env, dataset, algo, α and other
hyperparameters, seed, steps, evaluation schedule, device) it trains through :func:`marlkit.train.iterate`,
evaluates, and writes a tidy *record* (``record.json`` + ``record.csv``) next to the executed notebook.
One module per job:

- :mod:`~marlkit.bench.params`: the notebook's parameter schema and its validation;
- :mod:`~marlkit.bench.records`: the record of one run (reference returns, provenance, files), the learning-curve
  plot;
- :mod:`~marlkit.bench.grid`: a :class:`Grid` = tasks (env × dataset) × algorithms × swept hyperparameters (α
  values, ...) × seeds, from command-line lists or a small YAML file, expanded into :class:`Cell` s;
- :mod:`~marlkit.bench.presets`: the named grids (:data:`PRESETS`);
- :mod:`~marlkit.bench.runner`: :func:`run_sweep`, one papermill execution per cell on a backend (a local
  process pool or Ray), resumable (finished cells are skipped; failed ones leave ``failed.json``);
- :mod:`~marlkit.bench.paths`: where the notebooks read and write (relative to their own folder;
  ``$MARLKIT_RESULTS`` and ``$MARLKIT_FIGURES``);
- :mod:`~marlkit.bench.report`: :func:`summarize` (the papers' table in Markdown and LaTeX, ``results.csv``,
  figures) and the results notebook;
- :mod:`~marlkit.bench.cli`: ``marlkit bench``.

Errors: :class:`ParameterError` for a notebook parameter of the wrong type or range, :class:`GridError` for
a bad grid description.
"""

from marlkit.bench.cells import find_notebook, is_finished, run_cell
from marlkit.bench.cli import add_bench_parser, bench_main, grid_from_args
from marlkit.bench.grid import Cell, Grid, GridError, pair_tasks, parse_list, parse_seeds
from marlkit.bench.params import NOTEBOOK_PARAMETERS, ParameterError, validate_parameters
from marlkit.bench.paths import display_path, figures_folder, notebook_folder, notebook_path, results_root
from marlkit.bench.presets import PRESETS, preset
from marlkit.bench.records import (
                                   FAILED,
                                   NOTEBOOK,
                                   RECORD,
                                   REPORT,
                                   SCHEMA_VERSION,
                                   describe_record,
                                   git_commit,
                                   make_record,
                                   plot_learning_curve,
                                   reference_returns,
                                   run_title,
                                   write_record,
)
from marlkit.bench.report import run_report, summarize
from marlkit.bench.runner import init_ray, run_sweep

__all__ = [
    "FAILED",
    "NOTEBOOK",
    "NOTEBOOK_PARAMETERS",
    "PRESETS",
    "RECORD",
    "REPORT",
    "SCHEMA_VERSION",
    "Cell",
    "Grid",
    "GridError",
    "ParameterError",
    "add_bench_parser",
    "bench_main",
    "describe_record",
    "display_path",
    "figures_folder",
    "find_notebook",
    "git_commit",
    "grid_from_args",
    "init_ray",
    "is_finished",
    "make_record",
    "notebook_folder",
    "notebook_path",
    "pair_tasks",
    "parse_list",
    "parse_seeds",
    "plot_learning_curve",
    "preset",
    "reference_returns",
    "results_root",
    "run_cell",
    "run_report",
    "run_sweep",
    "run_title",
    "summarize",
    "validate_parameters",
    "write_record",
]
