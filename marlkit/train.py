"""The one training loop: seeding, on-device sampling, updates, periodic evaluation, tqdm, logging.

:func:`iterate` is a generator yielding one record per evaluation (handy in notebooks); :func:`fit` drains it
and returns the result dict; :func:`run` builds env, dataset and algorithm from names (the CLI's entry point).
"""

from __future__ import annotations

import copy
import csv
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm.auto import tqdm

from marlkit import __version__
from marlkit.algos import get_algo
from marlkit.algos.base import Algorithm, ConfigError
from marlkit.data.dataset import MultiAgentDataset
from marlkit.checkpoint import dataset_fingerprint, load_checkpoint, make_header, save_checkpoint
from marlkit.data.sampler import DeviceSampler
from marlkit.envs.registry import load_dataset, make_env
from marlkit.eval.evaluate import evaluate
from marlkit.utils import choose_num_threads, resolve_device, rng_state, seed_everything, set_num_threads, set_rng_state

__all__ = ["RunConfig", "NonFiniteLossError", "iterate", "fit", "run", "build_algo"]


class NonFiniteLossError(FloatingPointError):
    """A loss or metric became NaN/inf: names the metric, the step and the last finite values."""


@dataclass
class RunConfig:
    """Run-level settings (everything that is not an algorithm hyperparameter).

    Attributes:
        steps: gradient updates (> 0); None takes the env's ``default_steps``.
        eval_every: evaluate every this many updates (0: only at the end).
        eval_episodes: episodes per evaluation for rollout envs (omiga.md uses 32).
        deterministic_eval: greedy actions in rollouts (matrix games always report the exact stochastic return).
        log_every: metrics are synced, checked for NaN/inf and logged every this many updates.
        seed: one seed for torch, NumPy, Python, dataset sampling and evaluation.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:k]"``.
        threads: CPU threads; None measures the fastest count on this update (see :mod:`marlkit.utils`).
        progress: show a tqdm bar.
        out: directory for ``metrics.csv``, ``evals.jsonl``, ``result.json`` and ``checkpoint.pt`` (None: no files).
        checkpoint_every: write ``out/checkpoint.pt`` every this many updates (0: never; needs ``out``).
        resume: a checkpoint file (or a run directory holding ``checkpoint.pt``) to continue from; it must match
            the algorithm, its config, the env and the dataset, else :class:`~marlkit.checkpoint.CheckpointError`.
    """

    steps: int | None = None
    eval_every: int = 0
    eval_episodes: int = 32
    deterministic_eval: bool = True
    log_every: int = 100
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    progress: bool = True
    out: str | None = None
    checkpoint_every: int = 0
    resume: str | None = None

    def validate(self) -> None:
        """Raises :class:`ConfigError` on out-of-range settings."""
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
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {self.threads!r}")
        if isinstance(self.checkpoint_every, bool) or not isinstance(self.checkpoint_every, int) \
                or self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must be a non-negative integer, got {self.checkpoint_every!r}")
        if self.checkpoint_every and not self.out:
            raise ConfigError("checkpoint_every needs an output directory (out)")


def _check_finite(metrics: dict[str, float], step: int, last: dict[str, float]) -> None:
    for k, v in metrics.items():
        if not math.isfinite(v):
            raise NonFiniteLossError(f"non-finite {k} = {v} at update {step}; last finite values: "
                                     f"{ {kk: round(vv, 6) for kk, vv in last.items()} or 'none yet'}")


def _calibrate_threads(algo: Algorithm, sampler: DeviceSampler) -> int:
    """Time a throw-away copy's update at 1 and all threads; leaves all RNG state untouched."""
    if algo.device.type != "cpu":
        return choose_num_threads(None)
    saved, saved_sampler = rng_state(), sampler.state_dict()
    probe = copy.deepcopy(algo)
    try:
        return choose_num_threads(lambda: probe.train_step(sampler), repeats=3)
    finally:
        set_rng_state(saved)
        sampler.load_state_dict(saved_sampler)
        del probe


def iterate(algo: Algorithm, dataset: MultiAgentDataset, env, run_cfg: RunConfig) -> Iterator[dict[str, Any]]:
    """Train ``algo`` on ``dataset``; yield an evaluation record every ``eval_every`` updates and at the end.

    Each record: ``step``, the evaluation (``return``, ...), the latest averaged training metrics,
    ``updates_per_s`` and ``wall_time_s`` so far.

    Raises:
        NonFiniteLossError: if a metric becomes NaN/inf.
        DatasetError: if the dataset does not match the env.
    """
    run_cfg.validate()
    if run_cfg.steps is None:
        run_cfg = replace(run_cfg, steps=env.spec.default_steps)
    dataset.check_compatible(env.spec)
    sampler = DeviceSampler(dataset, algo.device, seed=run_cfg.seed)
    algo.setup(sampler)
    if run_cfg.threads is not None:
        set_num_threads(run_cfg.threads)
    elif algo.device.type == "cpu":
        _calibrate_threads(algo, sampler)
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
    writer = None
    if out:
        out.mkdir(parents=True, exist_ok=True)
        appending = bool(start) and (out / "metrics.csv").exists()
        metrics_file = open(out / "metrics.csv", "a" if appending else "w", newline="")
        evals_file = open(out / "evals.jsonl", "a" if start else "w")
    bar = tqdm(total=run_cfg.steps, initial=start, disable=not run_cfg.progress, desc=algo.name, dynamic_ncols=True)
    sums: dict[str, torch.Tensor] = {}
    last: dict[str, float] = {}
    count = 0
    t_start = time.perf_counter()
    train_time = 0.0
    try:
        if start == run_cfg.steps:  # resumed a finished run: just report its evaluation
            ev = evaluate(algo, env, run_cfg.eval_episodes, run_cfg.deterministic_eval, seed=run_cfg.seed)
            yield {"step": start, **ev, "metrics": {}, "updates_per_s": float("nan"), "wall_time_s": 0.0}
        for step in range(start + 1, run_cfg.steps + 1):
            t0 = time.perf_counter()
            metrics = algo.train_step(sampler)
            for k, v in metrics.items():
                sums[k] = sums[k] + v if k in sums else v.detach().clone()
            count += 1
            is_eval = (run_cfg.eval_every and step % run_cfg.eval_every == 0) or step == run_cfg.steps
            is_ckpt = run_cfg.checkpoint_every and step % run_cfg.checkpoint_every == 0
            if step % run_cfg.log_every == 0 or is_eval or is_ckpt:
                avg = {k: float(v) / count for k, v in sums.items()}
                train_time += time.perf_counter() - t0
                _check_finite(avg, step, last)
                last = avg
                sums, count = {}, 0
                if out:
                    if writer is None:
                        writer = csv.DictWriter(metrics_file, fieldnames=["step", *avg])
                        if not appending:
                            writer.writeheader()
                    writer.writerow({"step": step, **avg})
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(avg.items())[:4]}, refresh=False)
            else:
                train_time += time.perf_counter() - t0
            bar.update(1)
            if is_eval:
                ev = evaluate(algo, env, run_cfg.eval_episodes, run_cfg.deterministic_eval, seed=run_cfg.seed)
                record = {"step": step, **ev, "metrics": dict(last),
                          "updates_per_s": (step - start) / max(train_time, 1e-9),
                          "wall_time_s": time.perf_counter() - t_start}
                if out:
                    evals_file.write(json.dumps(record) + "\n")
                    evals_file.flush()
            if is_ckpt:
                metrics_file.flush()
                save_checkpoint(out / "checkpoint.pt", algo, sampler, step, header)
            if is_eval:
                yield record
    finally:
        bar.close()
        if out:
            metrics_file.close()
            evals_file.close()


def fit(algo: Algorithm, dataset: MultiAgentDataset, env, run_cfg: RunConfig) -> dict[str, Any]:
    """Train to the end; return the final record plus ``evals`` (every evaluation's step and return)."""
    records = list(iterate(algo, dataset, env, run_cfg))
    final = dict(records[-1])
    final["evals"] = [{"step": r["step"], "return": r["return"]} for r in records]
    return final


def build_algo(algo: str, spec, overrides: dict[str, Any] | None = None, device="cpu") -> Algorithm:
    """Instantiate a registered algorithm with config overrides (validated; unknown keys raise ConfigError)."""
    cls = get_algo(algo)
    cfg = cls.Config.from_dict(dict(overrides or {}))
    return cls(spec, cfg, device=device)


def run(env: str, dataset: str, algo: str, overrides: dict[str, Any] | None = None,
        run_cfg: RunConfig | None = None, dataset_size: int | None = None) -> dict[str, Any]:
    """Train ``algo`` on ``env``'s ``dataset`` from names; return a JSON-able result record.

    The record holds ``return`` (final evaluation), ``algo``, ``env``, ``dataset``, ``seed``, ``steps``,
    ``updates_per_s``, ``wall_time_s``, ``config``, ``marlkit_version``, the evaluation history and, for matrix
    games, ``joint_policy`` and ``per_agent_policy``.

    Raises:
        UnknownNameError: for unknown env/dataset/algo names.
        ConfigError: for invalid hyperparameters or run settings.
    """
    run_cfg = run_cfg or RunConfig()
    run_cfg.validate()
    seed_everything(run_cfg.seed)
    environment = make_env(env)
    if run_cfg.steps is None:
        run_cfg = replace(run_cfg, steps=environment.spec.default_steps)
    data = load_dataset(environment, dataset, size=dataset_size, seed=run_cfg.seed)
    device = resolve_device(run_cfg.device)
    seed_everything(run_cfg.seed)  # network init independent of how much randomness data building consumed
    model = build_algo(algo, environment.spec, overrides, device)
    t0 = time.perf_counter()
    result = fit(model, data, environment, run_cfg)
    final_metrics = result.pop("metrics", {})
    record = {
        "algo": algo, "env": env, "dataset": dataset, "seed": run_cfg.seed, "steps": run_cfg.steps,
        **result,
        "final_metrics": dict(final_metrics),
        "wall_time_s": time.perf_counter() - t0,
        "device": str(device), "threads": torch.get_num_threads(),
        "config": model.config.to_dict(), "run": asdict(run_cfg), "marlkit_version": __version__,
    }
    if run_cfg.out:
        Path(run_cfg.out).mkdir(parents=True, exist_ok=True)
        (Path(run_cfg.out) / "result.json").write_text(json.dumps(record, indent=2))
    return record
