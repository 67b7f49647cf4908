"""A benchmark protocol's bookkeeping and checks: which planned runs exist, and whether the results show what
the seed papers claim (used by ``notebooks/12_real_benchmarks.ipynb`` on the paper-lite protocol).

- :func:`coverage`: every planned cell of a grid with its status (``ok``, ``failed``, ``not run``), so a table
  never silently drops a cell.
- :func:`welch_greater` / :func:`welch_not_below`: one-sided Welch tests (unequal variances) between two sets
  of per-seed final returns.
- :func:`protocol_checks`: the checks of docs/benchmarks.md's paper-lite section — competence on
  ``medium-expert`` (OMIGA reaches the dataset's mean return), offline RL beats imitation on ``medium-replay``
  (OMIGA above BC, Welch at 5 %; InSPO, ComaDICE and ICQ reported against the same test), and omiga.md Table 1's
  ordering (OMIGA ≥ BCQ-MA, CQL-MA and OMAR where they ran; OMIGA ≥ ICQ on a majority of the MaMuJoCo cells,
  "≥" meaning not significantly below at 5 %). A check whose runs are missing is reported as ``not run``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["coverage", "protocol_checks", "welch_greater", "welch_not_below"]


def coverage(cells: Iterable, root: str | Path) -> pd.DataFrame:
    """Status of every planned cell: ``env, dataset, algo, seed, steps, status, return, error``.

    ``status`` is ``ok`` (its ``record.json`` exists), ``failed`` (``failed.json``) or ``not run``.
    """
    rows = []
    for c in cells:
        d = c.directory(root)
        row = {"env": c.env, "dataset": c.dataset, "algo": c.algo, "seed": c.seed, "steps": c.steps,
               "status": "not run", "return": math.nan, "error": ""}
        if (d / "record.json").is_file():
            rec = json.loads((d / "record.json").read_text())
            row.update(status="ok", **{"return": float(rec["return"])})
        elif (d / "failed.json").is_file():
            row.update(status="failed", error=str(json.loads((d / "failed.json").read_text()).get("error", ""))[:200])
        rows.append(row)
    return pd.DataFrame(rows, columns=["env", "dataset", "algo", "seed", "steps", "status", "return", "error"])


def _welch(a, b, alternative: str) -> float:
    from scipy import stats

    a, b = np.asarray(list(a), float), np.asarray(list(b), float)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if np.std(a) == 0 and np.std(b) == 0:
        return 0.0 if (a.mean() > b.mean()) == (alternative == "greater") and a.mean() != b.mean() else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)


def welch_greater(a, b, level: float = 0.05) -> tuple[bool | None, float]:
    """Is the mean of ``a`` significantly above that of ``b`` (one-sided Welch t-test at ``level``)?

    Returns ``(verdict, p)``; ``verdict`` is None when either side has fewer than two values.
    """
    p = _welch(a, b, "greater")
    return (None if math.isnan(p) else p < level), p


def welch_not_below(a, b, level: float = 0.05) -> tuple[bool | None, float]:
    """Is ``a`` "≥" ``b``: not significantly below it (one-sided Welch test of ``a < b`` not rejected)?"""
    p = _welch(a, b, "less")
    return (None if math.isnan(p) else p >= level), p


def _finals(df: pd.DataFrame, env: str, dataset: str, algo: str) -> np.ndarray:
    g = df[(df["env"] == env) & (df["dataset"] == dataset) & (df["algo"] == algo)]
    return g["return"].to_numpy(float)


def _outcome(verdict: bool | None, ran: bool) -> str:
    if not ran:
        return "not run"
    return "too few seeds" if verdict is None else ("met" if verdict else "not met")


def protocol_checks(records: pd.DataFrame, datasets: pd.DataFrame, cells: Iterable,
                    level: float = 0.05) -> pd.DataFrame:
    """The paper-lite checks over the planned cells: ``check, task, outcome, detail``.

    Args:
        records: one row per finished run (``env, dataset, algo, return``), e.g. :func:`~marlkit.eval.aggregate
            .load_records`.
        datasets: dataset cards (``env, dataset, return_mean``), e.g. ``benchmarks/results/paper-lite/datasets.csv``.
        cells: the planned grid cells (:meth:`~marlkit.bench.grid.Grid.cells`): which algorithms run on which task.
    """
    cols = ["env", "dataset", "algo", "return"]
    records = records[cols] if len(records) else pd.DataFrame(columns=cols)
    planned: dict[tuple[str, str], set[str]] = {}
    for c in cells:
        planned.setdefault((c.env, c.dataset), set()).add(c.algo)
    rows = []
    for (env, dataset), algos in planned.items():
        task = f"{env} {dataset}"
        omiga = _finals(records, env, dataset, "omiga")
        if dataset == "medium-expert":
            card = datasets[(datasets["env"] == env) & (datasets["dataset"] == dataset)]["return_mean"]
            ran = len(omiga) > 0 and len(card) > 0
            data_mean = float(card.mean()) if len(card) else math.nan
            detail = f"OMIGA {omiga.mean():.1f} vs data {data_mean:.1f}" if ran else "OMIGA or the card missing"
            rows.append({"check": "competence: OMIGA ≥ dataset mean", "task": task,
                         "outcome": _outcome(bool(omiga.mean() >= data_mean) if ran else None, ran), "detail": detail})
        if dataset == "medium-replay":
            bc = _finals(records, env, dataset, "bc")
            for algo in [a for a in ("omiga", "inspo", "comadice", "icq") if a in algos]:
                x = _finals(records, env, dataset, algo)
                ran = len(x) > 0 and len(bc) > 0
                verdict, p = welch_greater(x, bc, level) if ran else (None, math.nan)
                detail = f"{x.mean():.1f} vs BC {bc.mean():.1f} (p = {p:.3f})" if ran else f"{algo} or BC missing"
                check = "offline RL beats BC (Welch 5 %)" if algo == "omiga" else f"reported: {algo} above BC"
                rows.append({"check": check, "task": task, "outcome": _outcome(verdict, ran), "detail": detail})
        if env.startswith("mamujoco:"):
            for algo in [a for a in ("bcq-ma", "cql-ma", "omar", "icq") if a in algos]:
                x = _finals(records, env, dataset, algo)
                ran = len(x) > 0 and len(omiga) > 0
                verdict, p = welch_not_below(omiga, x, level) if ran else (None, math.nan)
                detail = f"OMIGA {omiga.mean():.1f} vs {x.mean():.1f} (p = {p:.3f})" if ran else f"OMIGA or {algo} missing"
                rows.append({"check": f"omiga.md Table 1: OMIGA ≥ {algo}", "task": task,
                             "outcome": _outcome(verdict, ran), "detail": detail})
    out = pd.DataFrame(rows, columns=["check", "task", "outcome", "detail"])
    icq = out[out["check"] == "omiga.md Table 1: OMIGA ≥ icq"]
    judged = icq[icq["outcome"].isin(["met", "not met"])]
    if len(icq):
        met = int((judged["outcome"] == "met").sum())
        summary = {"check": "omiga.md Table 1: OMIGA ≥ ICQ on a majority of MaMuJoCo cells", "task": "all",
                   "outcome": ("not run" if judged.empty else ("met" if met > len(icq) / 2 else "not met")),
                   "detail": f"{met} of {len(icq)} planned cells met ({len(icq) - len(judged)} not judged)"}
        out = pd.concat([out, pd.DataFrame([summary])], ignore_index=True)
    return out
