"""Comparison tables built from the command line's JSON records.

:func:`cli_record` runs ``marlkit train ... --json`` in a fresh process (so a table shows exactly what a user
typing the command gets) and :func:`comparison_table` collects algorithms × (env, dataset) into a pandas
DataFrame, skipping algorithms that are not registered in this installation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

__all__ = ["SEED_GAMES", "cli_record", "comparison_table", "pivot_returns", "registered", "policy_history"]

SEED_GAMES: list[tuple[str, str]] = [("xor", "a"), ("xor", "b"), ("xor", "c"), ("mne", "balanced"),
                                     ("mne", "imbalanced"), ("jiang-lu", "behavior")]
"""The matrix games printed in the seed papers with their datasets, as ``(env, dataset)``."""


def registered(algos: Iterable[str]) -> list[str]:
    """The names in ``algos`` that this installation registers (order kept)."""
    from marlkit.algos import ALGOS

    return [a for a in algos if a in ALGOS]


def cli_record(env: str, dataset: str, algo: str, steps: int | None = None, seed: int = 0,
               threads: int | None = 1, extra: Sequence[str] = (), timeout: float | None = 900) -> dict:
    """Run ``python -m marlkit.cli train --env ENV --dataset D --algo A --json`` and return its JSON record.

    The child process imports the same ``marlkit`` as the caller (its checkout is put first on PYTHONPATH).

    Args:
        steps, seed, threads: the CLI's ``--steps``, ``--seed``, ``--threads`` (None: the CLI's default).
        extra: further CLI tokens, e.g. hyperparameters ``["--hidden", "64,64"]``.
        timeout: seconds before the child is killed.

    Raises:
        RuntimeError: if the command fails; the message holds the command and the tail of its stderr.
    """
    cmd = [sys.executable, "-m", "marlkit.cli", "train", "--env", env, "--dataset", dataset, "--algo", algo,
           "--seed", str(seed), "--json"]
    if steps is not None:
        cmd += ["--steps", str(steps)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    cmd += list(extra)
    root = str(Path(__file__).resolve().parents[2])
    env_vars = dict(os.environ)
    env_vars["PYTHONPATH"] = root + (os.pathsep + env_vars["PYTHONPATH"] if env_vars.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env_vars, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd[1:])} printed no JSON record: {proc.stdout.strip()[-500:]}")
    return json.loads(lines[-1])


def comparison_table(algos: Sequence[str] = ("bc", "omiga", "comadice", "inspo"),
                     cases: Sequence[tuple[str, str]] = tuple(SEED_GAMES), steps: int | None = None,
                     seeds: Sequence[int] = (0,), threads: int | None = 1,
                     extra: dict[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Train every registered algorithm of ``algos`` on every ``(env, dataset)`` through the CLI.

    Algorithms not registered here are skipped (the table covers whichever exist).

    Args:
        algos: algorithm names, in column order.
        cases: ``(env, dataset)`` pairs (default: :data:`SEED_GAMES`).
        steps: ``--steps`` for every run (None: each env's default).
        seeds: one run per seed.
        threads: ``--threads`` (1 is fastest for the small matrix-game networks).
        extra: per-algorithm extra CLI tokens, e.g. ``{"inspo": ["--bc-steps", "200"]}``; the key ``"*"``
            applies to every algorithm.

    Returns:
        Long-form DataFrame, one row per run: ``env, dataset, algo, seed, return, greedy_return, steps,
        wall_time_s`` (use :func:`pivot_returns` for the algorithms-as-columns view).
    """
    extra = dict(extra or {})
    rows = []
    for algo in registered(algos):
        tokens = [*extra.get("*", ()), *extra.get(algo, ())]
        for env, dataset in cases:
            for seed in seeds:
                rec = cli_record(env, dataset, algo, steps=steps, seed=seed, threads=threads, extra=tokens)
                rows.append({"env": env, "dataset": dataset, "algo": algo, "seed": seed, "return": rec["return"],
                             "greedy_return": rec.get("greedy_return"), "steps": rec["steps"],
                             "wall_time_s": rec["wall_time_s"]})
    return pd.DataFrame(rows, columns=["env", "dataset", "algo", "seed", "return", "greedy_return", "steps",
                                       "wall_time_s"])


def pivot_returns(df: pd.DataFrame, decimals: int = 2, std: bool = False) -> pd.DataFrame:
    """``(env, dataset)`` × algorithm table of mean return (as ``"mean ± std"`` strings when ``std``), with the
    algorithms in their order of appearance."""
    order = list(dict.fromkeys(df["algo"]))
    g = df.groupby(["env", "dataset", "algo"], sort=False)["return"]
    if not std:
        return g.mean().round(decimals).unstack("algo")[order]
    agg = g.agg(["mean", "std"]).fillna(0.0)
    cell = agg["mean"].round(decimals).astype(str) + " ± " + agg["std"].round(decimals).astype(str)
    return cell.unstack("algo")[order]


def policy_history(env: str, dataset: str, algo: str, overrides: dict | None = None, steps: int = 1000,
                   eval_every: int = 50, seed: int = 0, threads: int | None = 1):
    """Train in-process and record each agent's policy at every evaluation (matrix games).

    Returns:
        ``(steps [K], policies [K, N, A], final_record)`` where ``final_record`` is the last evaluation record.

    Raises:
        ValueError: if the env reports no ``per_agent_policy`` (not a matrix game).
    """
    import numpy as np

    from marlkit.envs.registry import load_dataset, make_env
    from marlkit.train import RunConfig, build_algo, iterate
    from marlkit.utils import seed_everything

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
