"""Comparison tables built from the records of ``marlkit train ... --json``.

:func:`cli_record` trains one run with the command's settings through :func:`marlkit.train.run` (in this
process by default; or runs the command itself in a fresh interpreter) and returns its JSON record, so a table
shows exactly what a user typing the command gets; :func:`comparison_table` collects
algorithms × (env, dataset) × seeds into a long-form pandas DataFrame and :func:`pivot_returns` turns it into the
algorithms-as-columns view of the papers' tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from marlkit.algos import ALGOS, ConfigError, get_algo
from marlkit.cli import parse_overrides
from marlkit.data.dataset import DatasetError
from marlkit.envs.registry import UnknownNameError, load_dataset, make_env
from marlkit.eval.plots import plot_table
from marlkit.train import RunConfig, build_algo, iterate, run
from marlkit.utils import seed_everything

__all__ = [
    "SEED_GAMES",
    "cli_record",
    "comparison_table",
    "learned_policy_view",
    "pivot_returns",
    "policy_history",
    "registered",
]

SEED_GAMES: list[tuple[str, str]] = [("xor", "a"), ("xor", "b"), ("xor", "c"), ("mne", "balanced"),
                                     ("mne", "imbalanced"), ("jiang-lu", "behavior")]
"""The matrix games printed in the seed papers with their datasets, as ``(env, dataset)``."""

COLUMNS = ["env", "dataset", "algo", "seed", "return", "greedy_return", "greedy_action", "steps", "wall_time_s"]


def registered(algos: Iterable[str]) -> list[str]:
    """The names in ``algos`` that this installation registers (order kept)."""
    return [a for a in algos if a in ALGOS]


def cli_record(env: str, dataset: str, algo: str, steps: int | None = None, seed: int = 0,
               threads: int | None = 1, extra: Sequence[str] = (), in_process: bool = True,
               timeout: float | None = 900) -> dict:
    """The JSON record of ``marlkit train --env ENV --dataset D --algo A --json [...]``.

    Args:
        steps, seed, threads: the CLI's ``--steps``, ``--seed``, ``--threads`` (None: the CLI's default).
        extra: hyperparameter tokens as on the command line, e.g. ``["--hidden", "64,64"]``.
        in_process: train here with :func:`marlkit.train.run` (no interpreter start-up per run; the record
            goes through JSON as the command prints it) instead of running ``python -m marlkit.cli`` in a child
            process (which imports this checkout's ``marlkit``).
        timeout: seconds before a child process is killed.

    Raises:
        RuntimeError: if the run fails (unknown name, invalid hyperparameter, ...) or the command prints no
            JSON; the message holds the command.
    """
    argv = ["train", "--env", env, "--dataset", dataset, "--algo", algo, "--seed", str(seed), "--json"]
    if steps is not None:
        argv += ["--steps", str(steps)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    argv += [str(t) for t in extra]
    if in_process:
        try:
            overrides = parse_overrides(get_algo(algo).Config, [str(t) for t in extra])
            record = run(env, dataset, algo, overrides,
                         RunConfig(steps=steps, seed=seed, threads=threads, progress=False))
        except (SystemExit, ConfigError, UnknownNameError, DatasetError, FileNotFoundError) as exc:
            raise RuntimeError(f"marlkit {' '.join(argv)} failed: {exc}") from None
        return json.loads(json.dumps(record))
    root = str(Path(__file__).resolve().parents[2])
    env_vars = dict(os.environ)
    env_vars["PYTHONPATH"] = root + (os.pathsep + env_vars["PYTHONPATH"] if env_vars.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-m", "marlkit.cli", *argv], capture_output=True, text=True,
                          env=env_vars, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"marlkit {' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    out = proc.stdout
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"marlkit {' '.join(argv)} printed no JSON record: {out.strip()[-500:]}")
    return json.loads(lines[-1])


def comparison_table(algos: Sequence[str], cases: Sequence[tuple[str, str]] = tuple(SEED_GAMES),
                     steps: int | None = None, seeds: Sequence[int] = (0,), threads: int | None = 1,
                     extra: dict[str, Sequence[str]] | None = None, in_process: bool = True,
                     progress: bool = False) -> pd.DataFrame:
    """Train every registered algorithm of ``algos`` on every ``(env, dataset)`` and seed as ``marlkit train``.

    Algorithms not registered here are skipped (the table covers whichever exist).

    Args:
        algos: algorithm names, in column order.
        cases: ``(env, dataset)`` pairs (default: :data:`SEED_GAMES`).
        steps: ``--steps`` for every run (None: each env's default).
        seeds: one run per seed.
        threads: ``--threads`` (1 is fastest for the small matrix-game networks).
        extra: per-algorithm hyperparameter tokens, e.g. ``{"omar": ["--omar-coe", "1"]}``; the key ``"*"`` applies to
            every algorithm.
        in_process: see :func:`cli_record`.
        progress: print one line per finished run.

    Returns:
        Long-form DataFrame, one row per run, columns ``env, dataset, algo, seed, return, greedy_return,
        greedy_action, steps, wall_time_s``.

    Raises:
        ValueError: if no algorithm of ``algos`` is registered or ``seeds``/``cases`` is empty.
    """
    names = registered(algos)
    if not names:
        raise ValueError(f"none of {list(algos)} is a registered algorithm")
    if not seeds or not cases:
        raise ValueError("comparison_table needs at least one seed and one (env, dataset) case")
    extra = dict(extra or {})
    rows = []
    for algo in names:
        tokens = [*extra.get("*", ()), *extra.get(algo, ())]
        for env, dataset in cases:
            for seed in seeds:
                rec = cli_record(env, dataset, algo, steps=steps, seed=seed, threads=threads, extra=tokens,
                                 in_process=in_process)
                rows.append({"env": env, "dataset": dataset, "algo": algo, "seed": seed, "return": rec["return"],
                             "greedy_return": rec.get("greedy_return"),
                             "greedy_action": ",".join(rec.get("greedy_action", [])), "steps": rec["steps"],
                             "wall_time_s": rec["wall_time_s"]})
                if progress:
                    print(f"{algo:>8} {env}/{dataset} seed {seed}: return {rec['return']:.3f}", flush=True)
    return pd.DataFrame(rows, columns=COLUMNS)


def pivot_returns(df: pd.DataFrame, decimals: int = 2, std: bool = False, value: str = "return") -> pd.DataFrame:
    """``(env, dataset)`` × algorithm table of the mean of ``value`` over seeds (``"mean ± std"`` strings when
    ``std``), with algorithms in their order of appearance. ``value="greedy_return"`` tabulates the payoff of
    the greedy joint action instead of the exact return of the stochastic policy."""
    order = list(dict.fromkeys(df["algo"]))
    g = df.groupby(["env", "dataset", "algo"], sort=False)[value]
    if not std:
        return g.mean().round(decimals).unstack("algo")[order]
    agg = g.agg(["mean", "std"]).fillna(0.0)
    cell = agg["mean"].map(lambda v: f"{v:.{decimals}f}") + " ± " + agg["std"].map(lambda v: f"{v:.{decimals}f}")
    return cell.unstack("algo")[order]


def learned_policy_view(algo: str, env: str = "xor", dataset: str = "b", steps: int = 200, seed: int = 0,
                        extra: Sequence[str] = ()):
    """Train ``algo`` as ``marlkit train`` does (:func:`cli_record`) on a 2-agent matrix game and draw its learned joint policy next to the
    dataset and the payoff (a plain function for notebook widgets).

    Returns:
        ``(fig, record)`` with the CLI's JSON record.

    Raises:
        ValueError: if the game does not have exactly 2 agents.
    """
    game = make_env(env)
    if game.spec.n_agents != 2:
        raise ValueError(f"learned_policy_view draws 2-agent games, {env!r} has {game.spec.n_agents} agents")
    rec = cli_record(env, dataset, algo, steps=steps, seed=seed, extra=extra)
    fig, axes = plt.subplots(1, 3, figsize=(8.4, 2.8))
    plot_table(game.payoff, game.action_names, f"{env}: payoff", axes[0], fmt=".0f", cmap="vlag")
    plot_table(game.datasets[dataset].joint, game.action_names, f"dataset {dataset}", axes[1], vmin=0, vmax=1)
    plot_table(rec["joint_policy"], game.action_names, f"{algo}: return {rec['return']:.2f}", axes[2],
               vmin=0, vmax=1)
    fig.tight_layout()
    return fig, rec


def policy_history(env: str, dataset: str, algo: str, overrides: dict | None = None, steps: int = 1000,
                   eval_every: int = 50, seed: int = 0, threads: int | None = 1):
    """Train in-process and record each agent's policy at every evaluation (matrix games).

    Returns:
        ``(steps [K], policies [K, N, A], final_record)`` where ``final_record`` is the last evaluation record.

    Raises:
        ValueError: if the env reports no ``per_agent_policy`` (not a matrix game).
    """
    seed_everything(seed)
    game = make_env(env)
    data = load_dataset(game, dataset, seed=seed)
    seed_everything(seed)
    model = build_algo(algo, game.spec, overrides)
    cfg = RunConfig(steps=steps, eval_every=eval_every, seed=seed, threads=threads, progress=False)
    records = list(iterate(model, data, game, cfg))
    if "per_agent_policy" not in records[-1]:
        raise ValueError(f"env {env!r} reports no per-agent policy (matrix games only)")
    return (np.array([r["step"] for r in records]), np.array([r["per_agent_policy"] for r in records]),
            records[-1])
