"""Benchmarks: one notebook per run, executed headlessly with papermill, over a grid of runs.

The unit of work is ``notebooks/10_benchmark.ipynb``: given its parameters (env, dataset, algo, α and other
hyperparameters, seed, steps, evaluation schedule, device) it trains through :func:`marlkit.train.iterate`,
evaluates, and writes a tidy *record* (``record.json`` + ``record.csv``) next to the executed notebook.
This module holds what that notebook calls (parameter validation, the record, the learning-curve plot) and the
sweep runner behind ``marlkit bench``:

- a :class:`Grid` = tasks (env × dataset) × algorithms × swept hyperparameters (α values, ...) × seeds, from
  command-line lists, a small YAML file or a named preset (:data:`PRESETS`);
- every grid cell is one papermill execution in its own directory
  ``OUT/<env>/<dataset>/<algo>/<swept values>/seed=<s>/``; a cell whose ``record.json`` exists is skipped, so an
  interrupted sweep resumes where it stopped; a failing cell leaves ``failed.json`` (with its traceback) and the
  executed notebook showing the error, and the sweep goes on;
- cells run on a local process pool (one torch thread per run through ``MARLKIT_NUM_THREADS``) or, with
  ``backend="ray"``, as Ray tasks (a local ``ray.init()`` or a cluster address; the output directory must then
  be on a filesystem every node sees);
- at the end :func:`summarize` writes the papers' table (Markdown and LaTeX), ``results.csv`` and figures.

Errors: :class:`ParameterError` for a notebook parameter of the wrong type or range, :class:`GridError` for
a bad grid description.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

__all__ = [
    "NOTEBOOK_PARAMETERS",
    "PRESETS",
    "Cell",
    "Grid",
    "GridError",
    "ParameterError",
    "bench_main",
    "find_notebook",
    "git_commit",
    "init_ray",
    "make_record",
    "parse_list",
    "parse_seeds",
    "plot_learning_curve",
    "preset",
    "reference_returns",
    "run_cell",
    "run_sweep",
    "summarize",
    "validate_parameters",
    "write_record",
]

NOTEBOOK = "10_benchmark.ipynb"
REPORT = "11_results.ipynb"
RECORD = "record.json"
FAILED = "failed.json"
SCHEMA_VERSION = 1


class ParameterError(TypeError):
    """A benchmark-notebook parameter of the wrong type or out of range; the message names it."""


class GridError(ValueError):
    """A grid description (command line, YAML file or preset) that cannot be expanded into runs."""


# ----------------------------------------------------------------------------------------------- parameters
#: name -> (accepted types, may be None, description); the benchmark notebook's ``parameters`` cell.
NOTEBOOK_PARAMETERS: dict[str, tuple[tuple[type, ...], bool, str]] = {
    "env": ((str,), False, "environment name (`marlkit envs`)"),
    "dataset": ((str,), False, "dataset name of the env or a path to an .h5 file"),
    "algo": ((str,), False, "algorithm name (`marlkit algos`)"),
    "hyperparameters": ((dict, str), True, "algorithm hyperparameters: a dict or a JSON object string"),
    "alpha": ((int, float), True, "regularization weight α (None: the algorithm's default)"),
    "seed": ((int,), False, "seed of data sampling, initialisation and evaluation"),
    "steps": ((int,), True, "gradient updates (None: the env's default)"),
    "eval_every": ((int,), False, "evaluate every this many updates (0: only at the end)"),
    "eval_episodes": ((int,), False, "evaluation episodes for sequential envs"),
    "dataset_size": ((int,), True, "transitions for sampled datasets (None: the env's default)"),
    "device": ((str,), False, "auto, cpu or cuda[:k]"),
    "threads": ((int,), True, "CPU threads (None: MARLKIT_NUM_THREADS, else measured)"),
    "out_dir": ((str,), False, "directory of the record (record.json, record.csv, learning_curve.png)"),
    "figures_dir": ((str,), True, "also save the learning curve there as 10_learning_curve.png ('' or None: no)"),
}


def _type_name(types: tuple[type, ...], optional: bool) -> str:
    if dict in types:
        out = "a dict or a JSON object string"
    elif float in types:
        out = "a number"
    else:
        out = {int: "an integer", str: "a string"}[types[0]]
    return out + (" or None" if optional else "")


def validate_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Check the benchmark notebook's parameters; return them normalised (``hyperparameters`` parsed to a dict).

    Args:
        params: every name of :data:`NOTEBOOK_PARAMETERS` (missing ones raise).

    Returns:
        A new dict with the same keys; ``hyperparameters`` is a dict (``{}`` for None) and ``alpha`` a float or None.

    Raises:
        ParameterError: naming the parameter, the expected type and the value received (e.g. papermill's
            ``-p steps ten`` or ``-p alpha high``), a JSON string that is not an object, or a value out of range.
    """
    out: dict[str, Any] = {}
    missing = [k for k in NOTEBOOK_PARAMETERS if k not in params]
    if missing:
        raise ParameterError(f"missing benchmark parameter(s): {', '.join(missing)}")
    unknown = sorted(set(params) - set(NOTEBOOK_PARAMETERS))
    if unknown:
        raise ParameterError(f"unknown benchmark parameter(s) {unknown}; valid: {', '.join(NOTEBOOK_PARAMETERS)}")
    for name, (types, optional, _doc) in NOTEBOOK_PARAMETERS.items():
        value = params[name]
        if value is None and optional:
            out[name] = None
            continue
        wrong = isinstance(value, bool) or not isinstance(value, types)
        if wrong:
            raise ParameterError(
                f"benchmark parameter {name!r} must be {_type_name(types, optional)}, got {type(value).__name__} "
                f"{value!r} (papermill: -p {name} <value>, e.g. in the parameters cell)")
        out[name] = value
    for name in ("env", "dataset", "algo", "device", "out_dir"):
        if not out[name].strip():
            raise ParameterError(f"benchmark parameter {name!r} must be a non-empty string")
    hp = out["hyperparameters"]
    if hp is None:
        hp = {}
    elif isinstance(hp, str):
        try:
            hp = json.loads(hp) if hp.strip() else {}
        except json.JSONDecodeError as exc:
            raise ParameterError(f"benchmark parameter 'hyperparameters' is not valid JSON ({exc}): {hp!r}") from None
        if not isinstance(hp, dict):
            raise ParameterError(f"benchmark parameter 'hyperparameters' must be a JSON object, got {hp!r}")
    if not all(isinstance(k, str) for k in hp):
        raise ParameterError(f"hyperparameter names must be strings, got {list(hp)!r}")
    out["hyperparameters"] = dict(hp)
    if out["alpha"] is not None:
        a = float(out["alpha"])
        if not math.isfinite(a) or a <= 0:
            raise ParameterError(f"benchmark parameter 'alpha' must be a positive finite number, got {out['alpha']!r}")
        if "alpha" in hp and float(hp["alpha"]) != a:
            raise ParameterError(f"alpha given twice: alpha={a} and hyperparameters['alpha']={hp['alpha']}")
        out["alpha"] = a
    checks = {"seed": 0, "eval_every": 0, "steps": 1, "eval_episodes": 1, "dataset_size": 1, "threads": 1}
    for name, lowest in checks.items():
        if out[name] is not None and out[name] < lowest:
            raise ParameterError(f"benchmark parameter {name!r} must be >= {lowest}, got {out[name]!r}")
    return out


def reference_returns(env) -> dict[str, float] | None:
    """Reference returns of the D4RL-style normalised score (0 = random, 100 = expert) for ``env``.

    Sequential envs provide ``env.reference_returns``. For a matrix game the references are exact: *random* is
    the expected payoff of the uniform product policy and *expert* the largest payoff (the cooperative optimum).

    Returns:
        ``{"random": R0, "expert": R1}`` or None when the env defines none (or the two coincide).
    """
    from marlkit.envs.matrix import MatrixGame, expected_return

    ref = getattr(env, "reference_returns", None)
    if ref:
        return {"random": float(ref["random"]), "expert": float(ref["expert"])}
    if isinstance(env, MatrixGame):
        import numpy as np

        payoff = np.asarray(env.payoff, dtype=float)
        uniform = [np.full(n, 1.0 / n) for n in payoff.shape]
        ref = {"random": float(expected_return(payoff, uniform)), "expert": float(payoff.max())}
        return ref if ref["random"] != ref["expert"] else None
    return None


def git_commit(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The git commit of the checkout holding ``path`` (default: the marlkit package), if any.

    Returns:
        ``{"commit": sha or None, "dirty": bool or None}`` (None values outside a git checkout or without git).
    """
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=False)
        if sha.returncode != 0:
            return {"commit": None, "dirty": None}
        st = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True, timeout=10, check=False)
        return {"commit": sha.stdout.strip(), "dirty": bool(st.stdout.strip()) if st.returncode == 0 else None}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _normalized(value: float, ref: dict[str, float] | None) -> float | None:
    if ref is None:
        return None
    return 100.0 * (value - ref["random"]) / (ref["expert"] - ref["random"])


def make_record(params: dict[str, Any], evals: list[dict[str, Any]], algo, env, wall_time_s: float) -> dict:
    """The tidy result record of one benchmark run.

    Args:
        params: validated notebook parameters (:func:`validate_parameters`).
        evals: the records yielded by :func:`marlkit.train.iterate` (at least one: the final evaluation).
        algo: the trained :class:`~marlkit.algos.base.Algorithm` (for its full config).
        env: the environment (for reference returns).
        wall_time_s: wall time of the whole run (data building, training, evaluation), seconds.

    Returns:
        A JSON-able dict: every parameter (also under ``parameters``), the full algorithm ``config``, ``alpha``
        (the config's α or None), ``return`` and ``normalized_score`` of the final evaluation (None without
        reference returns), ``evals`` (step, return, normalized score, wall time of each evaluation), ``wall_time_s``,
        ``updates_per_s`` (training updates per second of training time), ``marlkit_version``, ``git_commit``,
        ``git_dirty``, library versions and a UTC timestamp.

    Raises:
        ValueError: if ``evals`` is empty.
    """
    import platform

    import torch

    from marlkit import __version__

    if not evals:
        raise ValueError("make_record needs at least one evaluation record")
    ref = reference_returns(env)
    final = evals[-1]
    config = algo.config.to_dict()
    git = git_commit()
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "status": "ok",
        **{k: params[k] for k in ("env", "dataset", "algo", "seed")},
        "alpha": config.get("alpha"),
        "steps": int(final["step"]),
        **{k: params[k] for k in ("eval_every", "eval_episodes", "dataset_size", "device")},
        "hyperparameters": dict(params["hyperparameters"]),
        "config": config,
        "return": float(final["return"]),
        "normalized_score": (float(final["normalized_score"]) if final.get("normalized_score") is not None
                             else _normalized(float(final["return"]), ref)),
        "reference_returns": ref,
        "evals": [{"step": int(r["step"]), "return": float(r["return"]),
                   "normalized_score": (float(r["normalized_score"]) if r.get("normalized_score") is not None
                                        else _normalized(float(r["return"]), ref)),
                   "wall_time_s": float(r["wall_time_s"])} for r in evals],
        "wall_time_s": float(wall_time_s),
        "updates_per_s": float(final["updates_per_s"]),
        "final_metrics": dict(final.get("metrics", {})),
        "threads": torch.get_num_threads(),
        "marlkit_version": __version__, "git_commit": git["commit"], "git_dirty": git["dirty"],
        "python_version": platform.python_version(), "torch_version": torch.__version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": dict(params),
    }
    for key in ("return_std", "win_rate", "greedy_return", "greedy_action", "per_agent_policy", "joint_policy"):
        if key in final:
            record[key] = final[key]
    return record


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_record(record: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``record.json`` (the whole record) and ``record.csv`` (one row per evaluation: every scalar
    parameter and result repeated, plus ``step``, ``eval_return``, ``eval_normalized_score``, ``final``).

    Both writes are atomic (temp file + rename); ``record.json`` is written last, so its presence marks a
    finished run for :func:`run_sweep`'s resume.

    Returns:
        ``{"json": path, "csv": path}``.
    """
    import csv
    import io

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scalars = {k: v for k, v in record.items() if v is None or isinstance(v, (str, int, float, bool))}
    scalars.update({f"hp_{k}": json.dumps(v) if isinstance(v, (list, dict)) else v
                    for k, v in record["config"].items()})
    buf = io.StringIO()
    fields = [*scalars, "step", "eval_return", "eval_normalized_score", "eval_wall_time_s", "final"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for i, ev in enumerate(record["evals"]):
        writer.writerow({**scalars, "step": ev["step"], "eval_return": ev["return"],
                         "eval_normalized_score": ev["normalized_score"], "eval_wall_time_s": ev["wall_time_s"],
                         "final": i == len(record["evals"]) - 1})
    paths = {"json": out / RECORD, "csv": out / "record.csv"}
    _atomic_write(paths["csv"], buf.getvalue())
    _atomic_write(paths["json"], json.dumps(record, indent=2))
    return paths


def plot_learning_curve(evals: list[dict[str, Any]], title: str = "", ax=None, normalized: bool = False):
    """Plot evaluation return (or normalised score) against gradient updates; returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    else:
        fig = ax.figure
        ax.clear()
    key = "normalized_score" if normalized else "return"
    steps = [r["step"] for r in evals]
    values = [r.get(key) for r in evals]
    ax.plot(steps, values, marker="o", ms=3)
    ax.set_xlabel("gradient updates")
    ax.set_ylabel("normalized score" if normalized else "evaluation return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------------ grid
def parse_seeds(text: str | int | Iterable[int]) -> list[int]:
    """``"0-4"`` → [0, 1, 2, 3, 4]; ``"0,2,5-6"`` → [0, 2, 5, 6]; an int or a list passes through.

    Raises:
        GridError: for a malformed or negative seed list.
    """
    if isinstance(text, bool):
        raise GridError(f"seeds must be integers, got {text!r}")
    if isinstance(text, int):
        seeds = [text]
    elif isinstance(text, str):
        seeds = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                if hi < lo:
                    raise GridError(f"seed range {part!r} is empty (write low-high)")
                seeds += list(range(lo, hi + 1))
            elif re.fullmatch(r"\d+", part):
                seeds.append(int(part))
            else:
                raise GridError(f"cannot read seeds {text!r}: use e.g. 0-4 or 0,1,2")
    else:
        seeds = list(text)
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
            raise GridError(f"seeds must be non-negative integers, got {seeds!r}")
    if not seeds:
        raise GridError("no seeds given")
    return list(dict.fromkeys(seeds))


def parse_list(text: str | Iterable | None, kind=str) -> list:
    """``"a,b"`` → ['a', 'b'] (``kind=float``: numbers); a list passes through (converted); None → []."""
    if text is None:
        return []
    items = [t.strip() for t in text.split(",") if t.strip()] if isinstance(text, str) else list(text)
    try:
        return [kind(v) for v in items]
    except (TypeError, ValueError):
        raise GridError(f"cannot read {text!r} as a list of {kind.__name__}") from None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", str(text)).strip("_") or "_"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "x".join(_fmt(v) for v in value)
    return str(value)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of the grid (one papermill execution of the benchmark notebook).

    Attributes:
        env, dataset, algo, seed: what to train and evaluate.
        swept: the swept hyperparameters of this cell as sorted ``(name, value)`` pairs (``alpha`` among them).
        hyperparameters: fixed hyperparameter overrides (sorted pairs) applied to this algorithm.
        steps, eval_every, eval_episodes, dataset_size, device: run settings.
    """

    env: str
    dataset: str
    algo: str
    seed: int
    swept: tuple[tuple[str, Any], ...] = ()
    hyperparameters: tuple[tuple[str, Any], ...] = ()
    steps: int | None = None
    eval_every: int = 0
    eval_episodes: int = 32
    dataset_size: int | None = None
    device: str = "cpu"

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``xor/b/bc alpha=1 seed=0``."""
        sw = " ".join(f"{k}={_fmt(v)}" for k, v in self.swept)
        return f"{self.env}/{self.dataset}/{self.algo}{' ' + sw if sw else ''} seed={self.seed}"

    def directory(self, root: str | os.PathLike) -> Path:
        """``root/<env>/<dataset>/<algo>/<k=v,...|default>/seed=<s>`` (path-safe names)."""
        sw = ",".join(f"{k}={_fmt(v)}" for k, v in self.swept) or "default"
        dataset = Path(self.dataset).stem if (os.sep in self.dataset or self.dataset.endswith((".h5", ".hdf5"))) \
            else self.dataset
        return Path(root) / _safe(self.env) / _safe(dataset) / _safe(self.algo) / _safe(sw) / f"seed={self.seed}"

    def parameters(self, out_dir: str | os.PathLike, threads: int | None = None) -> dict[str, Any]:
        """The notebook parameters of this cell (papermill injects them)."""
        hp = dict(self.hyperparameters)
        swept = dict(self.swept)
        alpha = swept.pop("alpha", None)
        hp.update({k: list(v) if isinstance(v, tuple) else v for k, v in swept.items()})
        hp = {k: list(v) if isinstance(v, tuple) else v for k, v in hp.items()}
        return {"env": self.env, "dataset": self.dataset, "algo": self.algo, "hyperparameters": hp,
                "alpha": alpha, "seed": self.seed, "steps": self.steps, "eval_every": self.eval_every,
                "eval_episodes": self.eval_episodes, "dataset_size": self.dataset_size, "device": self.device,
                "threads": threads, "out_dir": str(Path(out_dir).resolve()), "figures_dir": None}


def _config_fields(algo: str) -> set[str]:
    from marlkit.algos import get_algo

    return {f.name for f in dataclasses.fields(get_algo(algo).Config)}


@dataclasses.dataclass
class Grid:
    """A benchmark grid: tasks × algorithms × swept hyperparameters × seeds.

    Attributes:
        tasks: ``(env, dataset)`` pairs.
        algos: algorithm names (see ``marlkit algos``).
        seeds: seeds, e.g. ``[0, 1, 2, 3, 4]``.
        sweep: hyperparameter name → values; every combination is run for each algorithm whose config has
            that hyperparameter, and collapses to the algorithm's default for the others (so ``alpha: [1, 10]``
            does not run BC twice). ``alpha`` is omiga.md's α (Fig. 1(b)).
        hyperparameters: fixed overrides for every algorithm that has the field.
        algo_hyperparameters: per-algorithm fixed overrides (``{"omiga": {"tau": 0.01}}``).
        steps, eval_every, eval_episodes, dataset_size, device: run settings shared by all cells.
    """

    tasks: list[tuple[str, str]]
    algos: list[str]
    seeds: list[int]
    sweep: dict[str, list] = dataclasses.field(default_factory=dict)
    hyperparameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    algo_hyperparameters: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    steps: int | None = None
    eval_every: int = 0
    eval_episodes: int = 32
    dataset_size: int | None = None
    device: str = "cpu"

    def validate(self) -> None:
        """Check names and types before anything runs.

        Raises:
            GridError: empty dimensions, unknown algorithms, hyperparameters no algorithm of the grid has, or
                run settings of the wrong type.
        """
        from marlkit.algos import ALGOS

        if not self.tasks:
            raise GridError("the grid has no task: give --env and --datasets (or tasks: in the YAML file)")
        if not self.algos:
            raise GridError("the grid has no algorithm: give --algos")
        unknown = [a for a in self.algos if a not in ALGOS]
        if unknown:
            raise GridError(f"unknown algo(s) {unknown}; valid: {', '.join(sorted(ALGOS))}")
        self.seeds = parse_seeds(self.seeds)
        fields = set().union(*(_config_fields(a) for a in self.algos))
        for name in [*self.sweep, *self.hyperparameters]:
            if name not in fields:
                raise GridError(f"hyperparameter {name!r} belongs to none of the algorithms {self.algos}; "
                                f"valid: {', '.join(sorted(fields))}")
        for name, values in self.sweep.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise GridError(f"sweep {name!r} needs a non-empty list of values, got {values!r}")
        for algo, hp in self.algo_hyperparameters.items():
            if algo not in self.algos:
                raise GridError(f"algo_hyperparameters given for {algo!r}, which is not in the grid {self.algos}")
            bad = set(hp) - _config_fields(algo)
            if bad:
                raise GridError(f"unknown hyperparameter(s) {sorted(bad)} for {algo!r}; "
                                f"valid: {', '.join(sorted(_config_fields(algo)))}")
        for name, lowest, optional in (("steps", 1, True), ("eval_every", 0, False), ("eval_episodes", 1, False),
                                       ("dataset_size", 1, True)):
            v = getattr(self, name)
            if v is None and optional:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < lowest:
                raise GridError(f"{name} must be an integer >= {lowest}, got {v!r}")

    def cells(self) -> list[Cell]:
        """Expand the grid (validated first) in a stable order: task, algorithm, swept values, seed."""
        self.validate()
        out: list[Cell] = []
        for (env, dataset), algo in itertools.product(self.tasks, self.algos):
            fields = _config_fields(algo)
            names = [k for k in sorted(self.sweep) if k in fields]
            fixed = {k: v for k, v in self.hyperparameters.items() if k in fields}
            fixed.update(self.algo_hyperparameters.get(algo, {}))
            fixed_t = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in fixed.items()))
            for values in itertools.product(*(self.sweep[k] for k in names)):
                swept = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in zip(names, values))
                for seed in self.seeds:
                    out.append(Cell(env, dataset, algo, seed, swept, fixed_t, self.steps, self.eval_every,
                                    self.eval_episodes, self.dataset_size, self.device))
        return out

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Grid:
        """Build from a dict (a parsed YAML file), e.g.::

            envs: [xor]                 # or tasks: [{env: xor, dataset: b}, {env: mne, dataset: imbalanced}]
            datasets: [a, b]
            algos: [bc, omiga]
            seeds: 0-4                  # or [0, 1, 2]
            alphas: [1, 10]             # shorthand for sweep: {alpha: [1, 10]}
            sweep: {lr: [0.001, 0.0005]}
            hyperparameters: {hidden: [64, 64]}
            algo_hyperparameters: {omiga: {tau: 0.01}}
            steps: 1000
            eval_every: 100

        With several ``envs`` and named ``datasets``, each env is paired only with the datasets it has.

        Raises:
            GridError: unknown keys or malformed values.
        """
        if not isinstance(spec, dict):
            raise GridError(f"a grid must be a mapping, got {type(spec).__name__}")
        known = {"env", "envs", "dataset", "datasets", "tasks", "algo", "algos", "seeds", "alphas", "sweep",
                 "hyperparameters", "algo_hyperparameters", "steps", "eval_every", "eval_episodes", "dataset_size",
                 "device"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise GridError(f"unknown grid key(s) {unknown}; valid: {', '.join(sorted(known))}")
        tasks: list[tuple[str, str]] = []
        for t in spec.get("tasks") or []:
            if not isinstance(t, dict) or set(t) != {"env", "dataset"}:
                raise GridError(f"each task needs exactly env and dataset, got {t!r}")
            tasks.append((str(t["env"]), str(t["dataset"])))
        envs = parse_list(spec.get("envs", spec.get("env")))
        datasets = parse_list(spec.get("datasets", spec.get("dataset")))
        if envs or datasets:
            if not (envs and datasets):
                raise GridError("give both envs and datasets (or a tasks list)")
            tasks += pair_tasks(envs, datasets)
        sweep = dict(spec.get("sweep") or {})
        if not isinstance(sweep, dict):
            raise GridError(f"sweep must be a mapping name -> list of values, got {sweep!r}")
        if spec.get("alphas") is not None:
            if "alpha" in sweep:
                raise GridError("give alpha values either as alphas or in sweep, not both")
            sweep["alpha"] = parse_list(spec["alphas"], float)
        algos = parse_list(spec.get("algos", spec.get("algo")))
        return cls(tasks=tasks, algos=algos, seeds=parse_seeds(spec.get("seeds", 0)), sweep=sweep,
                   hyperparameters=dict(spec.get("hyperparameters") or {}),
                   algo_hyperparameters=dict(spec.get("algo_hyperparameters") or {}),
                   steps=spec.get("steps"), eval_every=spec.get("eval_every", 0),
                   eval_episodes=spec.get("eval_episodes", 32), dataset_size=spec.get("dataset_size"),
                   device=str(spec.get("device", "cpu")))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> Grid:
        """Read a grid file (see :meth:`from_dict`).

        Raises:
            FileNotFoundError: if the file does not exist.
            GridError: if it is not valid YAML or not a valid grid.
        """
        import yaml

        text = Path(path).read_text()
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise GridError(f"{path} is not valid YAML: {exc}") from None
        return cls.from_dict(spec or {})


def pair_tasks(envs: list[str], datasets: list[str]) -> list[tuple[str, str]]:
    """env × dataset pairs; with several envs, a dataset *name* is paired only with the envs that have it.

    Raises:
        GridError: if a dataset name belongs to none of the envs.
    """
    if len(envs) == 1:
        return [(envs[0], d) for d in datasets]
    from marlkit.envs.registry import make_env

    known = {e: set(getattr(make_env(e), "datasets", {}) or {}) for e in envs}
    pairs = []
    for d in datasets:
        is_path = os.sep in d or d.endswith((".h5", ".hdf5"))
        hits = [e for e in envs if is_path or d in known[e]]
        if not hits:
            raise GridError(f"dataset {d!r} belongs to none of the envs {envs}")
        pairs += [(e, d) for e in hits]
    order = {e: i for i, e in enumerate(envs)}
    return sorted(pairs, key=lambda p: order[p[0]])


# ---------------------------------------------------------------------------------------------------- presets
#: omiga.md Table 1, multi-agent MuJoCo block: tasks and dataset qualities (names of marlkit's MaMuJoCo family).
MAMUJOCO_TABLE1_ENVS = ["mamujoco:Hopper-3x1", "mamujoco:Ant-2x4", "mamujoco:HalfCheetah-6x1"]
MAMUJOCO_TABLE1_DATASETS = ["expert", "medium", "medium-replay", "medium-expert"]


def _algos_supporting(discrete: bool) -> list[str]:
    from marlkit.algos import ALGOS, get_algo

    names = []
    for name in sorted(ALGOS):
        cls = get_algo(name)
        if getattr(cls, "supports_discrete" if discrete else "supports_continuous", True):
            names.append(name)
    return names


SEED_PAPER_ALGOS = ("bc", "omiga", "comadice", "inspo")
"""BC and the three seed papers' own methods: the quick presets' columns (other algorithms via ``--algos``)."""


def _seed_paper_algos() -> list[str]:
    from marlkit.algos import ALGOS

    return [a for a in SEED_PAPER_ALGOS if a in ALGOS]


PRESETS: dict[str, str] = {
    "tiny": "CI smoke test: BC and OMIGA × xor/b × seed 0, 100 updates (< 1 min)",
    "quick": "the main job: BC, OMIGA, ComaDICE, InSPO × xor/b and mne/imbalanced (inspo.md Tables 1-2) × seeds "
             "0-1, 1000 updates; built-in data, no download (a few minutes on a laptop CPU)",
    "mamujoco-table1": "omiga.md Table 1, MaMuJoCo block: every continuous-action algorithm × Hopper-3x1, Ant-2x4, "
                       "HalfCheetah-6x1 × expert, medium, medium-replay, medium-expert × seeds 0-4, env default "
                       "updates, 32 evaluation episodes",
    "smax-paper": "the SMAC maps of omiga.md Table 1 and inspo.md Table 4 on SMAX (needs marlkit[smax]): BC, OMIGA, "
                  "ComaDICE, InSPO × smax:5m_vs_6m, 2s3z, 6h_vs_8z, 3s_vs_5z × good, medium, poor × seeds 0-4, "
                  "50,000 updates (hidden 256, batch 128, lr 5e-4: omiga.md Table 6), 32 evaluation episodes "
                  "every 5,000 updates",
}

#: smax-paper preset: the seed papers' SMAC maps that SMAX has (omiga.md Table 1: 5m_vs_6m, 6h_vs_8z; inspo.md
#: Table 4: 2s3z, 3s_vs_5z, 5m_vs_6m, 6h_vs_8z) and omiga.md Table 4's dataset qualities.
SMAX_PAPER_MAPS = ["smax:5m_vs_6m", "smax:2s3z", "smax:6h_vs_8z", "smax:3s_vs_5z"]
SMAX_PAPER_DATASETS = ["good", "medium", "poor"]
#: Gradient updates per smax-paper run. Neither paper states an update count for SMAC; the authors' OMIGA SMAC
#: script trains 55 epochs of batch-128 minibatches over 1000 episodes (≈ 21,500 updates on a 50,000-transition
#: SMAX dataset); 50,000 (the SMAX env default) is over twice that.
SMAX_PAPER_STEPS = 50_000


def preset(name: str) -> Grid:
    """The grid of a named preset (see :data:`PRESETS`); algorithms are read from the registry at call time.

    Raises:
        GridError: for an unknown preset name.
    """
    if name == "tiny":
        return Grid(tasks=[("xor", "b")], algos=[a for a in ("bc", "omiga") if a in _seed_paper_algos()], seeds=[0],
                    steps=100,
                    eval_every=50, hyperparameters={"hidden": [64, 64]})
    if name == "quick":
        return Grid(tasks=[("xor", "b"), ("mne", "imbalanced")], algos=_seed_paper_algos(), seeds=[0, 1],
                    steps=1000, eval_every=100, hyperparameters={"hidden": [64, 64]})
    if name == "mamujoco-table1":
        return Grid(tasks=[(e, d) for e in MAMUJOCO_TABLE1_ENVS for d in MAMUJOCO_TABLE1_DATASETS],
                    algos=_algos_supporting(False), seeds=[0, 1, 2, 3, 4], steps=None, eval_every=5000,
                    eval_episodes=32, device="auto")
    if name == "smax-paper":
        # omiga.md App. C, Table 6 (SMAC): hidden 256 (3-layer MLPs), batch 128, lr 5e-4, γ = 0.99 (pinned here so
        # the preset does not drift with marlkit's defaults); τ = 0.005 and OMIGA's α = 10 are the configs'
        # defaults (left unpinned so that --alphas can sweep α). InSPO keeps its own batch size (512, see
        # InSPOConfig; inspo.md's hyperparameter appendix is not in the text). omiga.md evaluates 32 episodes and
        # runs 5 seeds (Sec. 5.3); the datasets are 50,000 transitions.
        algos = _seed_paper_algos()
        per_algo: dict[str, dict[str, Any]] = {a: {"batch_size": 128} for a in algos if a != "inspo"}
        return Grid(tasks=[(e, d) for e in SMAX_PAPER_MAPS for d in SMAX_PAPER_DATASETS], algos=algos,
                    seeds=[0, 1, 2, 3, 4], steps=SMAX_PAPER_STEPS, eval_every=5000, eval_episodes=32,
                    dataset_size=50_000, device="auto",
                    hyperparameters={"hidden": [256, 256], "lr": 5e-4, "gamma": 0.99},
                    algo_hyperparameters=per_algo)
    raise GridError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")


# ---------------------------------------------------------------------------------------------------- running
def find_notebook(path: str | os.PathLike | None = None, name: str = NOTEBOOK) -> Path:
    """A notebook of the course: ``path`` if given, else ``notebooks/<name>`` (default the benchmark notebook) of
    the checkout that holds this marlkit package, else of the current directory.

    Raises:
        FileNotFoundError: naming the places looked at.
    """
    candidates = [Path(path)] if path else [Path(__file__).resolve().parents[1] / "notebooks" / name,
                                            Path.cwd() / "notebooks" / name]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise FileNotFoundError(f"notebook {name} not found (looked at {', '.join(map(str, candidates))}); "
                            f"run from a marlkit checkout or pass --notebook PATH")


@contextlib.contextmanager
def _stderr_to(path: Path | None):
    """Redirect this process's fd 2 (inherited by kernels it starts) to ``path`` inside the block."""
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def run_cell(cell: Cell, root: str, notebook: str, threads: int = 1, timeout: float | None = None,
             kernel: str = "python3", capture_kernel_stderr: bool = True) -> dict[str, Any]:
    """Execute the benchmark notebook for one cell with papermill (in this process; the kernel is a child).

    The kernel gets ``MARLKIT_NUM_THREADS=threads`` (and ``OMP_NUM_THREADS``) and this marlkit's checkout on
    ``PYTHONPATH``. The executed notebook is kept next to the record even when the run fails; the kernel's own
    stderr goes to ``kernel.log`` there when ``capture_kernel_stderr`` (this process's fd 2 is redirected while
    the notebook runs, so call it in a worker process).

    Returns:
        ``{"label", "dir", "status": "ok" | "failed", "seconds", "error"?}``. Never raises for a failing run:
        the failure (exception name, message, traceback) goes to ``failed.json`` in the cell directory.
    """
    import papermill as pm

    out = cell.directory(root)
    out.mkdir(parents=True, exist_ok=True)
    (out / FAILED).unlink(missing_ok=True)
    os.environ["MARLKIT_NUM_THREADS"] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    pkg_root = str(Path(__file__).resolve().parents[1])
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if pkg_root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([pkg_root, *filter(None, paths)])
    t0 = time.perf_counter()
    try:
        with _stderr_to(out / "kernel.log" if capture_kernel_stderr else None):
            pm.execute_notebook(notebook, str(out / NOTEBOOK), parameters=cell.parameters(out, threads),
                                kernel_name=kernel, progress_bar=False, log_output=False,
                                cwd=str(Path(notebook).parent), execution_timeout=timeout)
        if not (out / RECORD).is_file():
            raise RuntimeError(f"the notebook finished without writing {out / RECORD}")
        return {"label": cell.label, "dir": str(out), "status": "ok", "seconds": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, none stops the sweep
        ename = getattr(exc, "ename", type(exc).__name__)
        evalue = getattr(exc, "evalue", str(exc))
        tb = getattr(exc, "traceback", None)
        tb_text = _strip_ansi("\n".join(tb)) if isinstance(tb, list) else traceback.format_exc()
        failure = {"status": "failed", "label": cell.label, "error": f"{ename}: {evalue}", "exception": ename,
                   "message": _strip_ansi(str(evalue)), "traceback": tb_text,
                   "parameters": cell.parameters(out, threads), "notebook": str(out / NOTEBOOK),
                   "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        _atomic_write(out / FAILED, json.dumps(failure, indent=2))
        return {"label": cell.label, "dir": str(out), "status": "failed", "seconds": time.perf_counter() - t0,
                "error": failure["error"]}


def _worker_failure(cell: Cell, root: Path, exc: BaseException) -> dict[str, Any]:
    """Record a run whose worker process died (no traceback from the notebook) in its ``failed.json``."""
    out = cell.directory(root)
    out.mkdir(parents=True, exist_ok=True)
    error = f"{type(exc).__name__}: {exc}"
    _atomic_write(out / FAILED, json.dumps({
        "status": "failed", "label": cell.label, "error": error, "exception": type(exc).__name__,
        "message": str(exc), "traceback": "".join(traceback.format_exception(exc)), "notebook": str(out / NOTEBOOK),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}, indent=2))
    return {"label": cell.label, "dir": str(out), "status": "failed", "seconds": 0.0, "error": error}


def is_finished(cell: Cell, root: str | os.PathLike) -> bool:
    """A cell is finished when its directory holds a readable ``record.json`` with status ``ok``."""
    path = cell.directory(root) / RECORD
    try:
        return json.loads(path.read_text()).get("status") == "ok"
    except (OSError, ValueError):
        return False


def init_ray(address: str | None = None, workers: int | None = None):
    """Connect to Ray (once per process) and return the ``ray`` module.

    Without ``address`` a local Ray is started with ``workers`` CPUs (default: the CPU count) and this marlkit
    checkout on the workers' ``PYTHONPATH``; with an address (``"ray://host:10001"`` or ``"host:6379"``) the
    cluster's nodes must have marlkit installed.

    Raises:
        ImportError: if ray is not installed (``pip install 'marlkit[ray]'``).
    """
    try:
        import ray
    except ImportError as exc:
        raise ImportError("--backend ray needs Ray: pip install 'marlkit[ray]'") from exc
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = workers or os.cpu_count() or 1
            pkg_root = str(Path(__file__).resolve().parents[1])
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(
                filter(None, [pkg_root, os.environ.get("PYTHONPATH", "")]))}}
        ray.init(**kwargs)
    return ray


def run_sweep(grid: Grid, out: str | os.PathLike, backend: str = "local", workers: int | None = None,
              threads: int = 1, notebook: str | os.PathLike | None = None, ray_address: str | None = None,
              timeout: float | None = None, progress: bool = True, retry_failed: bool = True) -> dict[str, Any]:
    """Run every unfinished cell of ``grid`` under ``out``; return a summary.

    Args:
        grid: what to run.
        out: sweep directory (created); cells live in :meth:`Cell.directory`.
        backend: ``"local"`` (process pool of ``workers``) or ``"ray"``.
        workers: parallel runs (default: the CPU count; local Ray gets this many CPUs).
        threads: torch threads per run (``MARLKIT_NUM_THREADS`` of each kernel).
        notebook: benchmark notebook (default: :func:`find_notebook`).
        ray_address: Ray cluster address (None: start a local Ray).
        timeout: per-notebook-cell execution timeout in seconds (None: none).
        progress: tqdm bar over the grid.
        retry_failed: run again cells that failed before (otherwise only cells never tried).

    Returns:
        ``{"out", "cells", "skipped", "ran", "ok", "failed" (labels), "results" (per cell), "seconds"}``.

    Raises:
        GridError: for an invalid grid or backend.
        FileNotFoundError: if the notebook cannot be found.
        ImportError: if papermill (or ray for ``backend="ray"``) is not installed.
    """
    from tqdm.auto import tqdm

    if backend not in ("local", "ray"):
        raise GridError(f"unknown backend {backend!r}; valid: local, ray")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise GridError(f"threads must be a positive integer, got {threads!r}")
    import papermill  # noqa: F401 - fail early with ImportError when the bench extra is missing

    nb = str(find_notebook(notebook))
    root = Path(out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cells = grid.cells()
    (root / "grid.json").write_text(json.dumps(
        {"grid": dataclasses.asdict(grid), "cells": [c.label for c in cells], "notebook": nb}, indent=2, default=str))
    todo = [c for c in cells if not is_finished(c, root)
            and (retry_failed or not (c.directory(root) / FAILED).is_file())]
    skipped = len(cells) - len(todo)
    workers = max(1, min(workers or os.cpu_count() or 1, max(len(todo), 1)))
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    bar = tqdm(total=len(cells), initial=skipped, desc="grid", unit="run", disable=not progress,
               dynamic_ncols=True)

    def done(res: dict[str, Any]) -> None:
        results.append(res)
        bar.update(1)
        n_fail = sum(r["status"] == "failed" for r in results)
        bar.set_postfix_str(f"failed={n_fail} last={res['label']}", refresh=True)

    try:
        if not todo:
            pass
        elif backend == "ray":
            ray = init_ray(ray_address, workers)
            remote = ray.remote(num_cpus=1)(run_cell)
            pending = {remote.remote(c, str(root), nb, threads, timeout): c for c in todo}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    cell = pending.pop(ref)
                    try:
                        done(ray.get(ref))
                    except Exception as exc:  # noqa: BLE001 - a lost worker is a failure of that cell only
                        done(_worker_failure(cell, root, exc))
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
                pending = {pool.submit(run_cell, c, str(root), nb, threads, timeout): c for c in todo}
                while pending:
                    finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        cell = pending.pop(fut)
                        try:
                            done(fut.result())
                        except Exception as exc:  # noqa: BLE001 - a crashed worker fails its cell only
                            done(_worker_failure(cell, root, exc))
    finally:
        bar.close()
    failed = [r["label"] for r in results if r["status"] == "failed"]
    summary = {"out": str(root), "cells": len(cells), "skipped": skipped, "ran": len(results),
               "ok": len(results) - len(failed), "failed": failed, "results": results,
               "seconds": time.perf_counter() - t0}
    (root / "sweep.json").write_text(json.dumps(summary, indent=2))
    return summary


def run_report(out: str | os.PathLike, notebook: str | os.PathLike | None = None,
               timeout: float | None = None) -> Path:
    """Execute ``notebooks/11_results.ipynb`` with papermill on the records under ``out``.

    Writes ``out/11_results.ipynb`` (tables, rliable aggregates, learning curves, α sweep) with its figures in
    ``out/figures/``; the kernel's stderr goes to ``out/report_kernel.log``.

    Returns:
        The executed notebook's path.

    Raises:
        FileNotFoundError: if the notebook cannot be found.
        papermill.PapermillExecutionError: if the notebook fails.
    """
    import papermill as pm

    nb = find_notebook(notebook, REPORT)
    root = Path(out).resolve()
    target = root / REPORT
    with _stderr_to(root / "report_kernel.log"):
        pm.execute_notebook(str(nb), str(target), parameters={"results_dir": str(root), "make_if_missing": None,
                                                              "figures_dir": str(root / "figures")},
                            kernel_name="python3", progress_bar=False, log_output=False, cwd=str(nb.parent),
                            execution_timeout=timeout)
    return target


def summarize(out: str | os.PathLike, figures: bool = True) -> dict[str, Path]:
    """Aggregate every record under ``out`` into ``results.csv``, ``table.md``, ``table.tex`` and figures
    (``learning_curves.png``; ``alpha_sweep.png`` when α was swept); see :mod:`marlkit.eval.aggregate`.

    Returns:
        Name → path of everything written (empty when there is no record yet).
    """
    from marlkit.eval import aggregate as agg

    root = Path(out)
    df = agg.load_records(root)
    if df.empty:
        return {}
    paths: dict[str, Path] = {"results": root / "results.csv"}
    agg.tidy(df).to_csv(paths["results"], index=False)
    score = agg.default_score(df)
    table = agg.results_table(df, score=score)
    paths["table_md"] = root / "table.md"
    paths["table_md"].write_text(agg.to_markdown(table) + "\n")
    paths["table_tex"] = root / "table.tex"
    paths["table_tex"].write_text(agg.to_latex(table) + "\n")
    if figures:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig = agg.plot_learning_curves(df, score=score)
        paths["learning_curves"] = root / "learning_curves.png"
        fig.savefig(paths["learning_curves"], dpi=120, bbox_inches="tight")
        plt.close(fig)
        if agg.alpha_varied(df):
            fig = agg.plot_alpha_sweep(df, score=score)
            paths["alpha_sweep"] = root / "alpha_sweep.png"
            fig.savefig(paths["alpha_sweep"], dpi=120, bbox_inches="tight")
            plt.close(fig)
    return paths


# -------------------------------------------------------------------------------------------------------- CLI
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
    b.add_argument("--alphas", help="α values to sweep, e.g. 1,10 (algorithms without α run once)")
    b.add_argument("--hp", default=None, help='fixed hyperparameters as JSON, e.g. \'{"hidden": [64, 64]}\'')
    b.add_argument("--steps", type=int, default=None, help="gradient updates per run (default: preset/env)")
    b.add_argument("--eval-every", type=int, default=None, help="evaluate every N updates (0: only at the end)")
    b.add_argument("--eval-episodes", type=int, default=None, help="evaluation episodes (sequential envs)")
    b.add_argument("--dataset-size", type=int, default=None, help="transitions for sampled datasets")
    b.add_argument("--device", default=None, help="auto, cpu or cuda[:k] (default cpu)")
    b.add_argument("--out", default=None, help="sweep directory (default results/<preset or 'bench'>)")
    b.add_argument("--backend", choices=["local", "ray"], default="local", help="process pool or Ray")
    b.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local Ray)")
    b.add_argument("--workers", type=int, default=None, help="parallel runs (default: CPU count)")
    b.add_argument("--threads", type=int, default=1, help="torch threads per run (MARLKIT_NUM_THREADS)")
    b.add_argument("--timeout", type=float, default=None, help="per-notebook-cell timeout in seconds")
    b.add_argument("--notebook", default=None, help="benchmark notebook (default notebooks/10_benchmark.ipynb)")
    b.add_argument("--no-report", action="store_true",
                   help=f"skip executing notebooks/{REPORT} on the results (tables and figures in OUT/figures)")
    b.add_argument("--no-retry-failed", action="store_true", help="skip cells that failed before")
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
    if args.algos:
        grid.algos = parse_list(args.algos)
        # a preset's per-algorithm settings apply to the algorithms kept; those dropped take theirs along
        grid.algo_hyperparameters = {a: hp for a, hp in grid.algo_hyperparameters.items() if a in grid.algos}
    if args.seeds is not None:
        grid.seeds = parse_seeds(args.seeds)
    if args.alphas is not None:
        grid.sweep["alpha"] = parse_list(args.alphas, float)
    if args.hp:
        try:
            hp = json.loads(args.hp)
        except json.JSONDecodeError as exc:
            raise GridError(f"--hp is not valid JSON: {exc}") from None
        if not isinstance(hp, dict):
            raise GridError(f"--hp must be a JSON object, got {args.hp!r}")
        grid.hyperparameters.update(hp)
    for name in ("steps", "eval_every", "eval_episodes", "dataset_size", "device"):
        if getattr(args, name) is not None:
            setattr(grid, name, getattr(args, name))
    return grid


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
        for c in cells:
            print(f"{c.label:<60} {c.directory(out)}")
        print(f"{len(cells)} runs")
        return 0
    print(f"marlkit bench: {len(cells)} runs ({len(grid.tasks)} tasks × {len(grid.algos)} algos × "
          f"{len(grid.seeds)} seeds{' × swept ' + ', '.join(grid.sweep) if grid.sweep else ''}) -> {out}",
          flush=True)
    summary = run_sweep(grid, out, backend=args.backend, workers=args.workers, threads=args.threads,
                        notebook=args.notebook, ray_address=args.ray_address, timeout=args.timeout,
                        progress=not args.quiet, retry_failed=not args.no_retry_failed)
    root = Path(summary["out"])
    paths = summarize(root)
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
