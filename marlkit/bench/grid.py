"""Benchmark grids: tasks (env × dataset) × algorithms × swept hyperparameters × seeds, and their cells.

A :class:`Grid` comes from command-line lists, a small YAML file (:meth:`Grid.from_yaml`) or a preset
(:mod:`marlkit.bench.presets`); :meth:`Grid.cells` expands it into :class:`Cell` s, one papermill execution
each, in a stable order.

Errors: :class:`GridError` for a grid description that cannot be expanded into runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from marlkit.algos import ALGOS, get_algo
from marlkit.envs.registry import make_env

__all__ = ["Cell", "Grid", "GridError", "pair_tasks", "parse_list", "parse_seeds"]


class GridError(ValueError):
    """A grid description (command line, YAML file or preset) that cannot be expanded into runs."""


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
        deterministic_eval: greedy (True) or sampled (False) evaluation actions; None: the env's default mode.
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
    deterministic_eval: bool | None = None

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
                "threads": threads, "out_dir": str(Path(out_dir).resolve()), "figures_dir": "",
                "deterministic_eval": self.deterministic_eval}


def _config_fields(algo: str) -> set[str]:
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
        algo_sweep: per-algorithm sweeps (``{"omiga": {"alpha": [0.1, 1, 10]}}``): the algorithm runs every
            combination of these values; a name here replaces that name of ``sweep`` for this algorithm (so α can
            be swept on OMIGA's scale without running InSPO, whose α lives on another scale, at those values).
        task_settings: per-task settings keyed ``"env/dataset"``, each a mapping with any of ``algos`` (columns
            run on this task only, besides ``algos``), ``steps``, ``eval_every`` and ``hyperparameters``
            (fixed overrides on this task, over the grid's), e.g.
            ``{"smax:2s3z/good": {"steps": 50000, "eval_every": 5000, "hyperparameters": {"lr": 5e-4}}}``.
        steps, eval_every, eval_episodes, dataset_size, device: run settings shared by all cells.
        algo_steps: per-algorithm gradient updates (``{"inspo": 1500}``), replacing ``steps`` (and a task's
            ``steps``) for that algorithm (algorithms converge at different speeds); the cell's ``steps``
            parameter, and so its record, carries the value used.
        deterministic_eval: evaluation mode of every cell: greedy (True), sampled (False) or None, the env's
            default (the mode of the paper that used it).
    """

    tasks: list[tuple[str, str]]
    algos: list[str]
    seeds: list[int]
    sweep: dict[str, list] = dataclasses.field(default_factory=dict)
    hyperparameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    algo_hyperparameters: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    task_settings: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    steps: int | None = None
    eval_every: int = 0
    eval_episodes: int = 32
    dataset_size: int | None = None
    device: str = "cpu"
    deterministic_eval: bool | None = None
    algo_sweep: dict[str, dict[str, list]] = dataclasses.field(default_factory=dict)
    algo_steps: dict[str, int] = dataclasses.field(default_factory=dict)

    def steps_of(self, algo: str, task: dict[str, Any] | None = None) -> int | None:
        """Gradient updates of ``algo``'s runs: ``algo_steps[algo]`` when given, else the task's ``steps``
        (``task_settings``), else ``steps``."""
        return self.algo_steps.get(algo, (task or {}).get("steps", self.steps))

    def sweep_of(self, algo: str) -> dict[str, list]:
        """The swept hyperparameters of ``algo``'s runs: ``sweep`` restricted to its config's fields, updated
        with ``algo_sweep[algo]``."""
        fields = _config_fields(algo)
        return {**{k: v for k, v in self.sweep.items() if k in fields}, **self.algo_sweep.get(algo, {})}

    def validate(self) -> None:
        """Check names and types before anything runs.

        Raises:
            GridError: empty dimensions, unknown algorithms, hyperparameters no algorithm of the grid has,
                per-algorithm settings (``algo_hyperparameters``, ``algo_sweep``, ``algo_steps``) for an algorithm
                not in the grid or naming a field its config lacks, or run settings of the wrong type.
        """
        if not self.tasks:
            raise GridError("the grid has no task: give --env and --datasets (or tasks: in the YAML file)")
        if not self.algos:
            raise GridError("the grid has no algorithm: give --algos")
        self._validate_task_settings()
        every = self.all_algos()
        unknown = [a for a in every if a not in ALGOS]
        if unknown:
            raise GridError(f"unknown algo(s) {unknown}; valid: {', '.join(sorted(ALGOS))}")
        self.seeds = parse_seeds(self.seeds)
        fields = set().union(*(_config_fields(a) for a in every))
        task_hp = [k for t in self.task_settings.values() for k in t.get("hyperparameters", {})]
        for name in [*self.sweep, *self.hyperparameters, *task_hp]:
            if name not in fields:
                raise GridError(f"hyperparameter {name!r} belongs to none of the algorithms {self.algos}; "
                                f"valid: {', '.join(sorted(fields))}")
        for name, values in self.sweep.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise GridError(f"sweep {name!r} needs a non-empty list of values, got {values!r}")
        for algo, hp in self.algo_hyperparameters.items():
            if algo not in every:
                raise GridError(f"algo_hyperparameters given for {algo!r}, which is not in the grid {every}")
            bad = set(hp) - _config_fields(algo)
            if bad:
                raise GridError(f"unknown hyperparameter(s) {sorted(bad)} for {algo!r}; "
                                f"valid: {', '.join(sorted(_config_fields(algo)))}")
        if not isinstance(self.algo_sweep, dict):
            raise GridError(f"algo_sweep must be a mapping algo -> {{name: [values]}}, got {self.algo_sweep!r}")
        for algo, sw in self.algo_sweep.items():
            if algo not in every:
                raise GridError(f"algo_sweep given for {algo!r}, which is not in the grid {every}")
            if not isinstance(sw, dict):
                raise GridError(f"algo_sweep[{algo!r}] must be a mapping name -> list of values, got {sw!r}")
            bad = set(sw) - _config_fields(algo)
            if bad:
                raise GridError(f"unknown hyperparameter(s) {sorted(bad)} in algo_sweep for {algo!r}; "
                                f"valid: {', '.join(sorted(_config_fields(algo)))}")
            for name, values in sw.items():
                if not isinstance(values, (list, tuple)) or not values:
                    raise GridError(f"algo_sweep[{algo!r}][{name!r}] needs a non-empty list of values, "
                                    f"got {values!r}")
        if not isinstance(self.algo_steps, dict):
            raise GridError(f"algo_steps must be a mapping algo -> updates, got {self.algo_steps!r}")
        for algo, v in self.algo_steps.items():
            if algo not in every:
                raise GridError(f"algo_steps given for {algo!r}, which is not in the grid {every}")
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise GridError(f"algo_steps[{algo!r}] must be an integer >= 1, got {v!r}")
        for name, lowest, optional in (("steps", 1, True), ("eval_every", 0, False), ("eval_episodes", 1, False),
                                       ("dataset_size", 1, True)):
            v = getattr(self, name)
            if v is None and optional:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < lowest:
                raise GridError(f"{name} must be an integer >= {lowest}, got {v!r}")
        if self.deterministic_eval is not None and not isinstance(self.deterministic_eval, bool):
            raise GridError(f"deterministic_eval must be true, false or null (the env's mode), "
                            f"got {self.deterministic_eval!r}")

    def _validate_task_settings(self) -> None:
        keys = {f"{env}/{dataset}" for env, dataset in self.tasks}
        for key, settings in self.task_settings.items():
            if key not in keys:
                raise GridError(f"task_settings names {key!r}, which is not a task of the grid (env/dataset: "
                                f"{', '.join(sorted(keys))})")
            if not isinstance(settings, dict) or set(settings) - {"algos", "steps", "eval_every", "hyperparameters"}:
                raise GridError(f"task_settings[{key!r}] must be a mapping of algos, steps, eval_every, "
                                f"hyperparameters; got {settings!r}")
            for name, lowest in (("steps", 1), ("eval_every", 0)):
                v = settings.get(name, lowest)
                if isinstance(v, bool) or not isinstance(v, int) or v < lowest:
                    raise GridError(f"task_settings[{key!r}].{name} must be an integer >= {lowest}, got {v!r}")
            if not isinstance(settings.get("algos", []), list) or not isinstance(settings.get("hyperparameters", {}),
                                                                                 dict):
                raise GridError(f"task_settings[{key!r}]: algos must be a list and hyperparameters a mapping")

    def all_algos(self) -> list[str]:
        """``algos`` followed by the per-task columns of ``task_settings`` (each name once)."""
        extra = [a for t in self.task_settings.values() for a in t.get("algos", [])]
        return list(dict.fromkeys([*self.algos, *extra]))

    def cells(self) -> list[Cell]:
        """Expand the grid (validated first) in a stable order: task, algorithm, swept values, seed."""
        self.validate()
        out: list[Cell] = []
        for env, dataset in self.tasks:
            task = self.task_settings.get(f"{env}/{dataset}", {})
            for algo in dict.fromkeys([*self.algos, *task.get("algos", [])]):
                out += self._cells(env, dataset, algo, task)
        return out

    def _cells(self, env: str, dataset: str, algo: str, task: dict[str, Any]) -> list[Cell]:
        out: list[Cell] = []
        steps, eval_every = self.steps_of(algo, task), task.get("eval_every", self.eval_every)
        fields = _config_fields(algo)
        sweep = self.sweep_of(algo)
        names = sorted(sweep)
        fixed = {k: v for k, v in {**self.hyperparameters, **task.get("hyperparameters", {})}.items()
                 if k in fields}
        fixed.update(self.algo_hyperparameters.get(algo, {}))
        fixed_t = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in fixed.items()))
        for values in itertools.product(*(sweep[k] for k in names)):
            swept = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in zip(names, values))
            for seed in self.seeds:
                out.append(Cell(env, dataset, algo, seed, swept, fixed_t, steps, eval_every,
                                self.eval_episodes, self.dataset_size, self.device, self.deterministic_eval))
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
            algo_sweep: {omiga: {alpha: [0.1, 1, 10]}}
            steps: 1000
            algo_steps: {inspo: 1500}   # per-algorithm updates, replacing steps
            eval_every: 100
            deterministic_eval: false   # sampled evaluation actions (omit: the env's mode)

        With several ``envs`` and named ``datasets``, each env is paired only with the datasets it has.

        Raises:
            GridError: unknown keys or malformed values.
        """
        if not isinstance(spec, dict):
            raise GridError(f"a grid must be a mapping, got {type(spec).__name__}")
        known = {"env", "envs", "dataset", "datasets", "tasks", "algo", "algos", "seeds", "alphas", "sweep",
                 "hyperparameters", "algo_hyperparameters", "algo_sweep", "task_settings", "steps", "algo_steps",
                 "eval_every", "eval_episodes", "dataset_size", "device", "deterministic_eval"}
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
                   algo_sweep=_mapping(spec, "algo_sweep"), algo_steps=_mapping(spec, "algo_steps"),
                   task_settings=_mapping(spec, "task_settings"),
                   steps=spec.get("steps"), eval_every=spec.get("eval_every", 0),
                   eval_episodes=spec.get("eval_episodes", 32), dataset_size=spec.get("dataset_size"),
                   device=str(spec.get("device", "cpu")), deterministic_eval=spec.get("deterministic_eval"))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> Grid:
        """Read a grid file (see :meth:`from_dict`).

        Raises:
            FileNotFoundError: if the file does not exist.
            GridError: if it is not a readable text file, not valid YAML or not a valid grid.
        """
        if not Path(path).exists():
            raise FileNotFoundError(f"--grid {path} does not exist")
        try:
            text = Path(path).read_text()
        except (UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
            raise GridError(f"--grid {path} is not a readable YAML text file ({type(exc).__name__})") from None
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise GridError(f"{path} is not valid YAML: {exc}") from None
        return cls.from_dict(spec or {})


def _mapping(spec: dict[str, Any], key: str) -> dict:
    value = spec.get(key) or {}
    if not isinstance(value, dict):
        raise GridError(f"{key} must be a mapping keyed by algorithm, got {value!r}")
    return dict(value)


def pair_tasks(envs: list[str], datasets: list[str]) -> list[tuple[str, str]]:
    """env × dataset pairs; with several envs, a dataset *name* is paired only with the envs that have it.

    Raises:
        GridError: if a dataset name belongs to none of the envs.
    """
    if len(envs) == 1:
        return [(envs[0], d) for d in datasets]
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

