"""The one training loop: seeding, on-device sampling, updates, periodic evaluation, tqdm, logging.

The loop (:func:`_train`) advances K runs in lockstep: one algorithm with its sampler (K = 1, a single run,
stepped by :meth:`~marlkit.algos.base.Algorithm.train_step`) or a :class:`~marlkit.population.Population` of K
(stepped by one vmapped update). Either way it averages and checks the metrics every ``log_every`` updates,
evaluates every run every ``eval_every`` updates and at the end, writes each run's ``metrics.csv`` and
``evals.jsonl`` and, for a single run, its checkpoints.

:func:`iterate` is a generator yielding one record per evaluation of a single run (handy in notebooks);
:func:`fit` drains it and returns the result dict; :func:`run` builds env, dataset and algorithm from names
(the CLI's entry point); :func:`run_many` trains one run per (α, seed), one after another or as one population.
Every run's result record comes from one builder, so single, sequential and vectorized records carry the same
keys (vectorized ones add ``population`` and ``population_updates_per_s``).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from marlkit import __version__
from marlkit.algos import get_algo
from marlkit.algos.base import Algorithm, ConfigError
from marlkit.checkpoint import dataset_fingerprint, load_checkpoint, make_header, save_checkpoint
from marlkit.data.dataset import MultiAgentDataset
from marlkit.data.sampler import DeviceSampler
from marlkit.envs.registry import load_dataset, make_env
from marlkit.errors import OutputError, ResourceError, RunExistsError, describe_os_error
from marlkit.eval.evaluate import evaluate
from marlkit.nets.mlp import onednn_linear
from marlkit.population import Population, supports_population
from marlkit.utils import (
    MAX_SEED,
    choose_num_threads,
    resolve_device,
    rng_state,
    seed_everything,
    set_num_threads,
    tune_allocator,
    set_rng_state,
)

__all__ = ["RunConfig", "NonFiniteLossError", "iterate", "fit", "run", "run_many", "build_algo"]


class NonFiniteLossError(FloatingPointError):
    """A loss or metric became NaN/inf: names the metric, the step and the last finite values."""


@dataclass
class RunConfig:
    """Run-level settings (everything that is not an algorithm hyperparameter).

    Attributes:
        steps: gradient updates (> 0); None takes the env's ``default_steps``.
        eval_every: evaluate every this many updates (0: only at the end).
        eval_episodes: episodes per evaluation for rollout envs (omiga.md uses 32).
        deterministic_eval: greedy (True) or sampled (False) actions in rollouts; None takes the env's default
            (``EnvSpec.deterministic_eval``: the mode of the paper that used the env, e.g. sampled on Bridge).
            Matrix games always report the exact expected return of the learned stochastic policy: the mode does
            not apply there and records carry ``"deterministic_eval": null``.
        log_every: metrics are synced, checked for NaN/inf and logged every this many updates.
        seed: one seed for torch, NumPy, Python, dataset sampling and evaluation.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:k]"``.
        threads: CPU threads; None measures the fastest count on this update (see :mod:`marlkit.utils`).
        progress: show a tqdm bar.
        out: directory for ``metrics.csv``, ``evals.jsonl``, ``result.json`` and ``checkpoint.pt`` (None: no files).
        checkpoint_every: write ``out/checkpoint.pt`` every this many updates (0: never; needs ``out``).
        resume: a checkpoint file (or a run directory holding ``checkpoint.pt``) to continue from; it must match
            the algorithm, its config, the env and the dataset, else :class:`~marlkit.checkpoint.CheckpointError`.
        compile: run the update's loss (forward and backward) through ``torch.compile``
            (:meth:`Algorithm.enable_compile`: CUDA graphs via ``mode="reduce-overhead"`` on CUDA, fused C++
            kernels on CPU, where compiling takes a while and rarely pays off for these small networks).
        compile_backend: ``torch.compile`` backend (``"inductor"``; ``"eager"`` only traces, for checks).
        overwrite: train into an ``out`` that already holds a run, replacing it (without it, and without
            ``resume``, such an ``out`` is refused with :class:`~marlkit.errors.RunExistsError`).
    """

    steps: int | None = None
    eval_every: int = 0
    eval_episodes: int = 32
    deterministic_eval: bool | None = None
    log_every: int = 100
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    progress: bool = True
    out: str | None = None
    checkpoint_every: int = 0
    resume: str | None = None
    compile: bool = False
    compile_backend: str = "inductor"
    overwrite: bool = False

    def validate(self) -> None:
        """Check every setting.

        Raises:
            ConfigError: on out-of-range settings (naming the setting).
            DeviceError: if ``device`` names no usable device.
        """
        for name in ("steps", "eval_episodes", "log_every"):
            v = getattr(self, name)
            if name == "steps" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(self.eval_every, bool) or not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ConfigError(f"eval_every must be a non-negative integer, got {self.eval_every!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.seed > MAX_SEED:
            raise ConfigError(f"seed must be at most 2**32 - 1 = {MAX_SEED}, got {self.seed}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {self.threads!r}")
        if isinstance(self.checkpoint_every, bool) or not isinstance(self.checkpoint_every, int) \
                or self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must be a non-negative integer, got {self.checkpoint_every!r}")
        if self.checkpoint_every and not self.out:
            raise ConfigError("checkpoint_every needs an output directory (out)")
        if self.deterministic_eval is not None and not isinstance(self.deterministic_eval, bool):
            raise ConfigError(f"deterministic_eval must be true/false or None, got {self.deterministic_eval!r}")
        if not isinstance(self.compile, bool):
            raise ConfigError(f"compile must be true/false, got {self.compile!r}")
        if not isinstance(self.compile_backend, str) or not self.compile_backend:
            raise ConfigError(f"compile_backend must be a torch.compile backend name, got {self.compile_backend!r}")
        if not isinstance(self.overwrite, bool):
            raise ConfigError(f"overwrite must be true/false, got {self.overwrite!r}")
        resolve_device(self.device)


def eval_mode(run_cfg: RunConfig, env) -> bool | None:
    """The evaluation mode a run uses on ``env``: ``run_cfg.deterministic_eval``, or the env's default
    (``env.spec.deterministic_eval``) when that is None; None on envs evaluated exactly (matrix games), where
    neither applies."""
    if env.spec.deterministic_eval is None:
        return None
    return env.spec.deterministic_eval if run_cfg.deterministic_eval is None else run_cfg.deterministic_eval


RUN_FILES = ("checkpoint.pt", "result.json", "metrics.csv", "evals.jsonl")
"""The files that make a directory hold a run (any one of them)."""


def prepare_out(out: str | Path | None, resume: str | None = None, overwrite: bool = False) -> Path | None:
    """Check that a run may write into ``out`` and create it.

    A directory that already holds a run (:data:`RUN_FILES`) is refused unless the run resumes
    (``resume``) or ``overwrite`` is set; with ``overwrite`` (and no ``resume``) the old run's files are removed
    first, so a stale checkpoint can never be resumed into the new run.

    Raises:
        RunExistsError: if ``out`` holds a run and neither ``resume`` nor ``overwrite`` is given.
        OutputError: if ``out`` is a file, or cannot be created or written (permission, read-only filesystem).
    """
    if not out:
        return None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a directory")
    held = [name for name in RUN_FILES if (out / name).exists()] if out.is_dir() else []
    if held and not resume:
        if not overwrite:
            raise RunExistsError(f"--out {out} already holds a run ({', '.join(held)}); continue it with --resume "
                                 f"{out}, choose a new --out, or replace it with --overwrite")
        for name in held:
            (out / name).unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"--out {out} cannot be written: {describe_os_error(exc)}") from None
    return out


def _check_finite(metrics: dict[str, float], step: int, last: dict[str, float]) -> None:
    for k, v in metrics.items():
        if not math.isfinite(v):
            raise NonFiniteLossError(f"non-finite {k} = {v} at update {step}; last finite values: "
                                     f"{ {kk: round(vv, 6) for kk, vv in last.items()} or 'none yet'}; likely "
                                     f"cause: a learning rate too large, or a regularization weight (alpha) too "
                                     f"small for the scale of the data's rewards")


def _setup_threads(threads: int | None, device: torch.device) -> None:
    """CPU threads for :meth:`Algorithm.setup <marlkit.algos.base.Algorithm.setup>` (pre-training such as InSPO's
    behavior cloning or BCQ's VAE): the run's ``threads``, or 1 where the count is to be measured afterwards
    (the measurement needs the set-up algorithm). Setup used to run at torch's default count: on a 2-core machine
    busy with another run, InSPO's behavior-cloning steps there took 5× the wall time and 20× the CPU time of
    one thread (two threads spinning in OpenMP barriers)."""
    if device.type == "cpu":
        set_num_threads(threads or 1)


class _Lockstep:
    """K runs that advance together: one algorithm and its sampler (K = 1) or a population of K algorithms.

    Args:
        algos: the K runs' algorithms, set up on their samplers.
        samplers: one sampler per run.
        vectorize: train the K runs as one :class:`~marlkit.population.Population` (one vmapped update); without
            it K must be 1 and the algorithm's own :meth:`~marlkit.algos.base.Algorithm.train_step` is used.
    """

    def __init__(self, algos: Sequence[Algorithm], samplers: Sequence[DeviceSampler], vectorize: bool = False):
        if len(algos) != len(samplers) or not (vectorize or len(algos) == 1):
            raise ValueError(f"{len(algos)} runs and {len(samplers)} samplers (vectorize={vectorize})")
        self.size = len(algos)
        self.samplers = list(samplers)
        self.engine: Algorithm | Population = Population(algos) if vectorize else algos[0]

    def train_step(self, engine=None) -> dict[str, torch.Tensor]:
        """One update of every run; metrics of shape ``[K]``."""
        engine = self.engine if engine is None else engine
        if isinstance(engine, Population):
            return engine.train_step(self.samplers)
        return {k: v.reshape(1) for k, v in engine.train_step(self.samplers[0]).items()}

    def models(self) -> list[Algorithm]:
        """The K runs' algorithms with their current weights (a population writes its stacked weights back)."""
        return self.engine.write_back() if isinstance(self.engine, Population) else [self.engine]

    def set_threads(self, threads: int | None, device: torch.device) -> None:
        """Use ``threads`` CPU threads; None on CPU times a throw-away copy's update at 1 and at all threads and
        keeps the faster (every RNG and sampler state is restored afterwards)."""
        if device.type == "cpu":
            tune_allocator()
        if threads is not None:
            set_num_threads(threads)
            return
        if device.type != "cpu":
            return
        saved, saved_samplers = rng_state(), [s.state_dict() for s in self.samplers]
        probe = copy.deepcopy(self.engine)
        try:
            choose_num_threads(lambda: self.train_step(probe), repeats=3)
        finally:
            set_rng_state(saved)
            for s, state in zip(self.samplers, saved_samplers):
                s.load_state_dict(state)


class _RunFiles:
    """A run's ``metrics.csv`` (averaged metrics every ``log_every`` updates) and ``evals.jsonl`` (evaluations);
    appended to when the run resumes at update ``start`` > 0."""

    def __init__(self, out: Path, start: int):
        out.mkdir(parents=True, exist_ok=True)
        if start:
            _drop_rows_after(out, start)
        self.appending = bool(start) and (out / "metrics.csv").exists()
        self.metrics_file = open(out / "metrics.csv", "a" if self.appending else "w", newline="")
        self.evals_file = open(out / "evals.jsonl", "a" if start else "w")
        self.writer: csv.DictWriter | None = None

    def log(self, step: int, avg: dict[str, float]) -> None:
        if self.writer is None:
            self.writer = csv.DictWriter(self.metrics_file, fieldnames=["step", *avg])
            if not self.appending:
                self.writer.writeheader()
        self.writer.writerow({"step": step, **avg})
        self.metrics_file.flush()  # a long run's progress is readable while it trains

    def evaluation(self, record: dict[str, Any]) -> None:
        self.evals_file.write(json.dumps(record) + "\n")
        self.evals_file.flush()

    def close(self) -> None:
        self.metrics_file.close()
        self.evals_file.close()


def _drop_rows_after(out: Path, start: int) -> None:
    """Remove the rows of ``metrics.csv`` and ``evals.jsonl`` past update ``start`` (written after the
    checkpoint a run resumes from, by a process that was then killed), so a resumed run logs each update once.
    Files are rewritten atomically."""
    from marlkit.utils import atomic_path

    metrics = out / "metrics.csv"
    if metrics.exists():
        lines = metrics.read_text().splitlines(keepends=True)
        kept = lines[:1] + [ln for ln in lines[1:] if ln.strip() and _leading_int(ln.split(",", 1)[0]) <= start]
        if kept != lines:
            with atomic_path(metrics) as tmp:
                Path(tmp).write_text("".join(kept))
    evals = out / "evals.jsonl"
    if evals.exists():
        lines = evals.read_text().splitlines(keepends=True)
        kept = []
        for ln in lines:
            try:
                step = json.loads(ln).get("step", 0)
            except ValueError:  # a line cut short by the kill
                continue
            if isinstance(step, int) and step <= start:
                kept.append(ln if ln.endswith("\n") else ln + "\n")
        if kept != lines:
            with atomic_path(evals) as tmp:
                Path(tmp).write_text("".join(kept))


def _leading_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # a row cut short by the kill
        return 1 << 62


def _train(runs: _Lockstep, env, run_cfg: RunConfig, seeds: Sequence[int], outs: Sequence[Path | None],
           desc: str, start: int = 0, checkpoint=None) -> Iterator[list[dict[str, Any]]]:
    """The training loop of K runs from update ``start + 1`` to ``run_cfg.steps``.

    Args:
        runs: what to train (K runs).
        env: the environment every run is evaluated on.
        run_cfg: validated settings with ``steps`` set.
        seeds: run k's evaluation seed.
        outs: run k's directory for ``metrics.csv`` and ``evals.jsonl`` (None: no files).
        desc: progress-bar label.
        start: the update the runs resume from (0: fresh).
        checkpoint: ``checkpoint(step)`` writes the training state every ``checkpoint_every`` updates (a
            single run only; None: never).

    Yields:
        At every evaluation, K records: ``step``, the evaluation (``return``, ...), ``deterministic_eval`` (the
        mode used, :func:`eval_mode`), the latest averaged training
        ``metrics``, ``updates_per_s`` (of each run) and ``wall_time_s`` since the loop started.

    Raises:
        NonFiniteLossError: if a run's metric becomes NaN/inf.
    """
    K = runs.size
    files: list[_RunFiles | None] = []
    bar = None
    sums: dict[str, torch.Tensor] = {}
    last: list[dict[str, float]] = [{} for _ in range(K)]
    count, train_time, t_start = 0, 0.0, time.perf_counter()

    mode = eval_mode(run_cfg, env)

    def evaluations(step: int, rate: float) -> list[dict[str, Any]]:
        records = []
        for m, model in enumerate(runs.models()):
            ev = evaluate(model, env, run_cfg.eval_episodes, mode is not False, seed=seeds[m])
            records.append({"step": step, **ev, "deterministic_eval": mode, "metrics": dict(last[m]),
                            "updates_per_s": rate, "wall_time_s": time.perf_counter() - t_start})
        return records

    try:
        files = [_RunFiles(out, start) if out else None for out in outs]
        bar = tqdm(total=run_cfg.steps, initial=start, disable=not run_cfg.progress, desc=desc, dynamic_ncols=True)
        if start == run_cfg.steps:  # resumed a finished run: just report its evaluation
            yield [{**r, "updates_per_s": float("nan"), "wall_time_s": 0.0} for r in evaluations(start, 0.0)]
        for step in range(start + 1, run_cfg.steps + 1):
            t0 = time.perf_counter()
            metrics = runs.train_step()
            for k, v in metrics.items():
                sums[k] = sums[k] + v if k in sums else v.detach().clone()
            count += 1
            is_eval = (run_cfg.eval_every and step % run_cfg.eval_every == 0) or step == run_cfg.steps
            is_ckpt = checkpoint is not None and run_cfg.checkpoint_every and step % run_cfg.checkpoint_every == 0
            if step % run_cfg.log_every == 0 or is_eval or is_ckpt:
                avg = {k: (v.double() / count).tolist() for k, v in sums.items()}  # one host sync for K runs
                train_time += time.perf_counter() - t0
                for m in range(K):
                    mine = {k: v[m] for k, v in avg.items()}
                    _check_finite(mine, step, last[m])
                    last[m] = mine
                    if files[m]:
                        files[m].log(step, mine)
                sums, count = {}, 0
                bar.set_postfix({k: f"{sum(v) / K:.3g}" for k, v in list(avg.items())[:4]}, refresh=False)
            else:
                train_time += time.perf_counter() - t0
            bar.update(1)
            if is_eval:
                records = evaluations(step, (step - start) / max(train_time, 1e-9))
                for f, record in zip(files, records):
                    if f:
                        f.evaluation(record)
            if is_ckpt:
                for f in files:
                    if f:
                        f.metrics_file.flush()
                checkpoint(step)
            if is_eval:
                yield records
    finally:
        if bar is not None:
            bar.close()
        for f in files:
            if f:
                f.close()


def iterate(algo: Algorithm, dataset: MultiAgentDataset, env, run_cfg: RunConfig) -> Iterator[dict[str, Any]]:
    """Train ``algo`` on ``dataset``; yield an evaluation record every ``eval_every`` updates and at the end.

    Each record: ``step``, the evaluation (``return``, ...), the latest averaged training metrics,
    ``updates_per_s`` and ``wall_time_s`` so far.

    Raises:
        NonFiniteLossError: if a metric becomes NaN/inf.
        DatasetError: if the dataset does not match the env.
        CheckpointError: if ``run_cfg.resume`` names a checkpoint of another run.
        ConfigError: if ``algo`` was built for another environment than ``env``.
        RunExistsError / OutputError: if ``run_cfg.out`` holds a run (without resume/overwrite) or cannot be
            written.
    """
    run_cfg.validate()
    if run_cfg.steps is None:
        run_cfg = replace(run_cfg, steps=env.spec.steps_for(algo.name))
    _check_algo_env(algo, env)
    dataset.check_compatible(env.spec)
    prepare_out(run_cfg.out, run_cfg.resume, run_cfg.overwrite)
    sampler = DeviceSampler(dataset, algo.device, seed=run_cfg.seed)
    _setup_threads(run_cfg.threads, algo.device)
    algo.setup(sampler)
    runs = _Lockstep([algo], [sampler])
    runs.set_threads(run_cfg.threads, algo.device)
    if run_cfg.compile:
        algo.enable_compile(run_cfg.compile_backend)
    header = None
    if run_cfg.checkpoint_every or run_cfg.resume:
        header = make_header(algo, env.spec.name, dataset_fingerprint(dataset))
    start = 0
    if run_cfg.resume:
        ckpt = Path(run_cfg.resume)
        start = load_checkpoint(ckpt / "checkpoint.pt" if ckpt.is_dir() else ckpt, algo, sampler, header)
        if start > run_cfg.steps:
            raise ConfigError(f"checkpoint is at update {start}, beyond steps={run_cfg.steps}")
    out = Path(run_cfg.out) if run_cfg.out else None

    def checkpoint(step: int) -> None:
        save_checkpoint(out / "checkpoint.pt", algo, sampler, step, header)

    for records in _train(runs, env, run_cfg, [run_cfg.seed], [out], algo.name, start,
                          checkpoint if run_cfg.checkpoint_every else None):
        yield records[0]


def _check_algo_env(algo: Algorithm, env) -> None:
    spec = getattr(algo, "spec", None)
    if spec is not None and spec != env.spec:
        raise ConfigError(f"the algorithm was built for env {spec.name!r} but is trained on env {env.spec.name!r}; "
                          f"build it with that env's spec")


def _final(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The last evaluation record plus ``evals`` (every evaluation's step and return)."""
    final = dict(records[-1])
    final["evals"] = [{"step": r["step"], "return": r["return"]} for r in records]
    return final


def fit(algo: Algorithm, dataset: MultiAgentDataset, env, run_cfg: RunConfig) -> dict[str, Any]:
    """Train to the end; return the final record plus ``evals`` (every evaluation's step and return)."""
    return _final(list(iterate(algo, dataset, env, run_cfg)))


def _result_record(names: tuple[str, str, str], run_cfg: RunConfig, result: dict[str, Any], model: Algorithm,
                   device: torch.device, wall_time_s: float, **extra: Any) -> dict[str, Any]:
    """The JSON-able record of one finished run (see :func:`run`); written to ``run_cfg.out/result.json``."""
    algo, env, dataset = names
    result = dict(result)
    final_metrics = result.pop("metrics", {})
    record = {
        "algo": algo, "env": env, "dataset": dataset, "seed": run_cfg.seed, "steps": run_cfg.steps,
        **result,
        "final_metrics": dict(final_metrics),
        "wall_time_s": wall_time_s,
        **extra,
        "device": str(device), "threads": torch.get_num_threads(), "onednn_linear": onednn_linear(),
        "config": model.config.to_dict(), "run": asdict(run_cfg), "marlkit_version": __version__,
    }
    if run_cfg.out:
        from marlkit.utils import atomic_path

        with atomic_path(Path(run_cfg.out) / "result.json") as tmp:
            Path(tmp).write_text(json.dumps(record, indent=2))
    return record


def _member(environment, dataset: str, algo: str, overrides: dict[str, Any] | None, seed: int,
            dataset_size: int | None, device: torch.device) -> tuple[Algorithm, MultiAgentDataset]:
    """One run's dataset (drawn with its seed) and freshly initialised algorithm: seed, data, seed again, networks
    (so the initialisation does not depend on how much randomness building the data consumed)."""
    seed_everything(seed)
    data = load_dataset(environment, dataset, size=dataset_size, seed=seed)
    seed_everything(seed)
    return build_algo(algo, environment.spec, overrides, device), data


def build_algo(algo: str, spec, overrides: dict[str, Any] | None = None, device="cpu") -> Algorithm:
    """Instantiate a registered algorithm with config overrides.

    The spec's defaults for the algorithm (``spec.defaults_for(algo).hyperparameters``: what reproduces the
    env's paper, see the env's docstring) come first and ``overrides`` on top, so the user's values win.

    Raises:
        UnknownNameError: for an unknown algorithm.
        ConfigError: for unknown keys or invalid values (``hidden=64`` where a tuple such as ``(64, 64)`` is
            expected included).
        ResourceError: if the networks do not fit in memory.
    """
    cls = get_algo(algo)
    env_defaults = getattr(spec, "defaults_for", None)
    env_hp = dict(env_defaults(algo).hyperparameters) if env_defaults else {}
    overrides = {**env_hp, **dict(overrides or {})}
    defaults = {f.name: f.default for f in dataclasses.fields(cls.Config)}
    for key, value in overrides.items():
        if isinstance(defaults.get(key), tuple) and not isinstance(value, (tuple, list)):
            raise ConfigError(f"{key} must be a tuple of positive integers such as (64, 64), got {value!r}")
    cfg = cls.Config.from_dict(overrides)
    try:
        return cls(spec, cfg, device=device)
    except RuntimeError as exc:
        if "alloc" not in str(exc).lower() and "out of memory" not in str(exc).lower():
            raise
        raise ResourceError(f"the networks of {algo} (hidden={cfg.to_dict().get('hidden')}) do not fit in "
                            f"memory on {device}: {str(exc).splitlines()[0][:200]}") from None


def run(env: str, dataset: str, algo: str, overrides: dict[str, Any] | None = None,
        run_cfg: RunConfig | None = None, dataset_size: int | None = None) -> dict[str, Any]:
    """Train ``algo`` on ``env``'s ``dataset`` from names; return a JSON-able result record.

    The record holds ``return`` (final evaluation), ``algo``, ``env``, ``dataset``, ``seed``, ``steps``,
    ``updates_per_s``, ``wall_time_s``, ``config``, ``marlkit_version``, the evaluation history and, for matrix
    games, ``joint_policy`` and ``per_agent_policy``.

    Raises:
        UnknownNameError: for unknown env/dataset/algo names.
        ConfigError: for invalid hyperparameters or run settings (``dataset_size`` included).
        DeviceError: for a device that is not usable here.
        RunExistsError / OutputError: if ``run_cfg.out`` holds a run (without resume/overwrite) or cannot be
            written.
    """
    run_cfg = run_cfg or RunConfig()
    run_cfg.validate()
    _check_dataset_size(dataset_size)
    seed_everything(run_cfg.seed)
    environment = make_env(env)
    if run_cfg.steps is None:
        run_cfg = replace(run_cfg, steps=environment.spec.steps_for(get_algo(algo).name))
    device = resolve_device(run_cfg.device)
    model, data = _member(environment, dataset, algo, overrides, run_cfg.seed, dataset_size, device)
    t0 = time.perf_counter()
    result = fit(model, data, environment, run_cfg)
    return _result_record((algo, env, dataset), run_cfg, result, model, device, time.perf_counter() - t0)


def _check_dataset_size(size) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise ConfigError(f"dataset_size (--dataset-size) must be a positive integer, got {size!r}")


def _member_overrides(overrides: dict[str, Any] | None, alpha: float | None) -> dict[str, Any]:
    out = dict(overrides or {})
    if alpha is not None:
        out["alpha"] = alpha
    return out


def run_many(env: str, dataset: str, algo: str, overrides: dict[str, Any] | None = None,
             run_cfg: RunConfig | None = None, seeds: list[int] | None = None, alphas: list[float] | None = None,
             dataset_size: int | None = None, vectorize: bool = False) -> list[dict[str, Any]]:
    """Train one run per (α, seed) pair — ``alphas × seeds``, α-major — and return one record per run.

    Without ``vectorize`` the runs are :func:`run` calls one after another. With ``vectorize`` all runs train in
    lockstep as one :class:`~marlkit.population.Population` (stacked weights, one vmapped update) in the same
    loop; run k then uses exactly the data, initialisation and minibatches of the sequential run with its seed,
    so its numbers equal that run's up to floating-point reduction order. Either way ``run_cfg.out``, if set,
    gets one subdirectory per run, ``seed{s}`` or ``alpha{a}_seed{s}``, with that run's files. Vectorized
    records carry the same keys as :func:`run`'s, plus ``population`` (K) and ``population_updates_per_s``
    (updates of all K runs per second); ``updates_per_s`` there is each run's own rate (K runs advance together).

    Raises:
        ConfigError: for invalid settings, an algorithm without the population contract (vectorized), α given to
            an algorithm without ``alpha``, duplicate runs, or checkpointing/resume with ``vectorize``.
        UnknownNameError: for unknown env/dataset/algo names.
    """
    run_cfg = run_cfg or RunConfig()
    run_cfg.validate()
    _check_dataset_size(dataset_size)
    seeds = [run_cfg.seed] if not seeds else list(seeds)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0 or s > MAX_SEED:
            raise ConfigError(f"seeds must be integers in [0, {MAX_SEED}], got {s!r}")
    alpha_list: list[float | None] = list(alphas) if alphas else [None]
    if alphas and "alpha" not in {f.name for f in dataclasses.fields(get_algo(algo).Config)}:
        raise ConfigError(f"algo {algo!r} has no regularization weight alpha")
    pairs = [(a, s) for a in alpha_list for s in seeds]
    if len(set(pairs)) != len(pairs):
        raise ConfigError(f"duplicate runs in seeds {seeds} x alphas {alphas}")
    member_cfgs = [replace(run_cfg, seed=s, out=str(Path(run_cfg.out) / (f"seed{s}" if a is None else
                                                                          f"alpha{a:g}_seed{s}"))
                           if run_cfg.out else None) for a, s in pairs]
    if not vectorize:
        for cfg in member_cfgs:  # refuse before any run trains, not after the first ones
            if cfg.out and not cfg.resume and not cfg.overwrite and Path(cfg.out).is_dir():
                prepare_out(cfg.out)
        return [run(env, dataset, algo, _member_overrides(overrides, a), cfg, dataset_size)
                for (a, _), cfg in zip(pairs, member_cfgs)]
    if run_cfg.compile:
        raise ConfigError("compile is not supported for vectorized populations (vmap); drop one of the two")
    if run_cfg.checkpoint_every or run_cfg.resume:
        raise ConfigError("checkpoint_every/resume are not supported for vectorized populations; "
                          "run the seeds sequentially to checkpoint them")
    if not supports_population(get_algo(algo)):
        raise ConfigError(f"algorithm {algo!r} does not support vectorized populations; drop --vectorize")
    environment = make_env(env)
    if run_cfg.steps is None:
        run_cfg = replace(run_cfg, steps=environment.spec.steps_for(get_algo(algo).name))
        member_cfgs = [replace(cfg, steps=run_cfg.steps) for cfg in member_cfgs]
    device = resolve_device(run_cfg.device)
    for cfg in member_cfgs:
        prepare_out(cfg.out, overwrite=cfg.overwrite)
    models, samplers = [], []
    _setup_threads(run_cfg.threads, device)
    for a, s in pairs:  # exactly the order of run(): dataset from the seed, then re-seed, then the networks
        model, data = _member(environment, dataset, algo, _member_overrides(overrides, a), s, dataset_size, device)
        data.check_compatible(environment.spec)
        sampler = DeviceSampler(data, model.device, seed=s)
        model.setup(sampler)
        models.append(model)
        samplers.append(sampler)
    runs = _Lockstep(models, samplers, vectorize=True)
    runs.set_threads(run_cfg.threads, device)
    K = runs.size
    t_start = time.perf_counter()
    history: list[list[dict[str, Any]]] = [[] for _ in pairs]
    for records in _train(runs, environment, run_cfg, seeds=[s for _, s in pairs],
                          outs=[Path(cfg.out) if cfg.out else None for cfg in member_cfgs], desc=f"{algo} x{K}"):
        for h, record in zip(history, records):
            h.append(record)
    wall = time.perf_counter() - t_start
    return [_result_record((algo, env, dataset), cfg, _final(h), model, device, wall, population=K,
                           population_updates_per_s=K * h[-1]["updates_per_s"])
            for cfg, h, model in zip(member_cfgs, history, runs.models())]
