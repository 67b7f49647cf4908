"""Benchmark results: load the run records, and report them as the papers do.

- :func:`load_records` reads every ``record.json`` under a directory (written by ``notebooks/10_benchmark.ipynb``)
  into one pandas DataFrame, one row per run; :func:`load_failures` lists the failed runs.
- :func:`results_table` gives the papers' table shape: rows = task × dataset, columns = algorithms (one column per
  hyperparameter setting when several were run), mean ± std over seeds, the best mean in **bold** and an asterisk
  on every entry *not significantly different from the best* by a heteroscedastic (Welch) two-sided t-test at the
  5 % level, as in inspo.md §5 ("we indicate the algorithm with the best mean performance in bold, and an asterisk
  (*) denotes that the metric is not significantly different from the top-performing metric"). Higher is better.
  :func:`to_markdown` / :func:`to_latex` print it.
- :func:`aggregate_estimates` and :func:`performance_profiles`: the rliable aggregates of Agarwal et al. (2021,
  "Deep RL at the edge of the statistical precipice"): IQM, mean, median, optimality gap over all runs × tasks,
  with 95 % stratified-bootstrap percentile confidence intervals, and score distributions (fraction of runs with
  score > τ). The point metrics are :mod:`rliable.metrics`; the stratified bootstrap (resample runs within each
  task) is implemented here with NumPy, because ``rliable.library`` needs ``arch``, whose releases that rliable
  accepts do not import with pandas 3.
- :func:`plot_learning_curves` (mean ± std over seeds against updates) and :func:`plot_alpha_sweep` (final score
  against α, like omiga.md Fig. 1(b) and comadice.md Fig. 1).

Statistics conventions: std is the population std over seeds (``ddof=0``, as NumPy's default that RL papers'
code uses); a t-test needs at least two seeds on both sides, otherwise no asterisk is given.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "aggregate_estimates",
    "alpha_varied",
    "default_score",
    "load_failures",
    "load_records",
    "performance_profiles",
    "plot_aggregates",
    "plot_alpha_sweep",
    "plot_learning_curves",
    "plot_performance_profiles",
    "results_table",
    "score_matrices",
    "stratified_bootstrap_ci",
    "tidy",
    "to_latex",
    "to_markdown",
    "welch_compare",
]

_COLUMNS = ["env", "dataset", "algo", "variant", "seed", "alpha", "return", "normalized_score", "steps",
            "wall_time_s", "updates_per_s", "marlkit_version", "git_commit", "config", "evals", "path"]


def _variant_labels(records: list[dict[str, Any]]) -> list[str]:
    """Label = algo plus the hyperparameters whose values differ among that algo's runs (e.g. ``omiga α=10``)."""
    by_algo: dict[str, list[dict]] = {}
    for r in records:
        by_algo.setdefault(r["algo"], []).append(r)
    varying: dict[str, list[str]] = {}
    for algo, rs in by_algo.items():
        keys = sorted(set().union(*(r.get("config", {}).keys() for r in rs)))
        varying[algo] = [k for k in keys
                         if len({json.dumps(r.get("config", {}).get(k), sort_keys=True) for r in rs}) > 1]
    labels = []
    for r in records:
        parts = []
        for k in varying[r["algo"]]:
            v = r.get("config", {}).get(k)
            name = "α" if k == "alpha" else k
            parts.append(f"{name}={v:g}" if isinstance(v, float) else f"{name}={v}")
        labels.append(r["algo"] + (" " + " ".join(parts) if parts else ""))
    return labels


def load_records(root: str | Path, pattern: str = "**/record.json") -> pd.DataFrame:
    """Every successful run record under ``root``, one row each.

    Columns: ``env, dataset, algo, variant`` (algo + the hyperparameters that vary among its runs), ``seed,
    alpha, return, normalized_score, steps, wall_time_s, updates_per_s, marlkit_version, git_commit, config``
    (dict), ``evals`` (list of {step, return, normalized_score, wall_time_s}) and ``path``.

    Raises:
        FileNotFoundError: if ``root`` does not exist.
        ValueError: naming a record file that is not valid JSON or lacks a required field.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"results directory {root} does not exist")
    records = []
    for path in sorted(root.glob(pattern)):
        try:
            rec = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        if rec.get("status", "ok") != "ok":
            continue
        missing = [k for k in ("env", "dataset", "algo", "seed", "return") if k not in rec]
        if missing:
            raise ValueError(f"{path} is not a marlkit run record: missing {missing}")
        rec["path"] = str(path)
        records.append(rec)
    if not records:
        return pd.DataFrame(columns=_COLUMNS)
    for rec, label in zip(records, _variant_labels(records)):
        rec["variant"] = label
    df = pd.DataFrame([{k: r.get(k) for k in _COLUMNS} for r in records])
    for k in ("return", "normalized_score", "alpha", "wall_time_s", "updates_per_s"):
        df[k] = pd.to_numeric(df[k], errors="coerce").astype(float)
    df["seed"] = df["seed"].astype(int)
    return df.sort_values(["env", "dataset", "variant", "seed"], kind="stable").reset_index(drop=True)


def load_failures(root: str | Path) -> pd.DataFrame:
    """The failed runs under ``root``: ``label, error, traceback, notebook, path`` (empty frame if none)."""
    rows = []
    for path in sorted(Path(root).glob("**/failed.json")):
        try:
            rec = json.loads(path.read_text())
        except ValueError:
            continue
        rows.append({"label": rec.get("label"), "error": rec.get("error"), "traceback": rec.get("traceback"),
                     "notebook": rec.get("notebook"), "path": str(path)})
    return pd.DataFrame(rows, columns=["label", "error", "traceback", "notebook", "path"])


def tidy(df: pd.DataFrame) -> pd.DataFrame:
    """One flat row per run (no nested columns): drops ``evals``/``config``, keeps the rest."""
    return df.drop(columns=[c for c in ("evals", "config") if c in df.columns])


def default_score(df: pd.DataFrame) -> str:
    """``"normalized_score"`` when every run has one, else ``"return"``."""
    if len(df) and df["normalized_score"].notna().all():
        return "normalized_score"
    return "return"


def welch_compare(groups: dict[str, Iterable[float]], level: float = 0.05) -> dict[str, dict[str, Any]]:
    """Mean ± std per group, the best mean, and which groups are not significantly different from it.

    Two-sided heteroscedastic (Welch) t-test of every group against the best one (scipy's
    ``ttest_ind(equal_var=False)``); ``star`` marks p ≥ ``level``. Degenerate cases: fewer than two values on
    either side → no test (``p = None``, no star); both sides constant → equal means are "not different"
    (star), different means are (no star).

    Args:
        groups: label → final scores over seeds (higher is better); NaNs are dropped.
        level: significance level (0.05).

    Returns:
        label → ``{"mean", "std", "n", "best", "star", "p"}``.

    Raises:
        ValueError: if ``groups`` is empty or a group has no finite value.
    """
    from scipy import stats

    if not groups:
        raise ValueError("welch_compare needs at least one group")
    vals = {}
    for k, v in groups.items():
        a = np.asarray(list(v), dtype=float)
        a = a[np.isfinite(a)]
        if a.size == 0:
            raise ValueError(f"group {k!r} has no finite value")
        vals[k] = a
    means = {k: float(a.mean()) for k, a in vals.items()}
    best = max(means, key=means.get)
    out = {}
    for k, a in vals.items():
        p: float | None = None
        star = False
        if k != best and a.size >= 2 and vals[best].size >= 2:
            if a.std() == 0 and vals[best].std() == 0:
                p = 1.0 if means[k] == means[best] else 0.0
            else:
                with warnings.catch_warnings():  # near-identical samples: scipy warns, the p-value stands
                    warnings.simplefilter("ignore", RuntimeWarning)
                    p = float(stats.ttest_ind(vals[best], a, equal_var=False).pvalue)
            star = bool(p >= level)
        out[k] = {"mean": means[k], "std": float(a.std()), "n": int(a.size), "best": k == best, "star": star,
                  "p": p}
    return out


def results_table(df: pd.DataFrame, score: str | None = None, column: str = "variant",
                  level: float = 0.05) -> pd.DataFrame:
    """The papers' table in long form: one row per (env, dataset, column) with mean, std, n, best, star, p.

    Args:
        df: runs from :func:`load_records`.
        score: ``"return"`` or ``"normalized_score"`` (default: :func:`default_score`).
        column: what the table's columns are (``"variant"``: algorithm and varying hyperparameters, or ``"algo"``).
        level: Welch test level.

    Raises:
        ValueError: if ``df`` is empty or ``score``/``column`` is not a column.
    """
    if df.empty:
        raise ValueError("no run records to tabulate")
    score = score or default_score(df)
    for c in (score, column):
        if c not in df.columns:
            raise ValueError(f"unknown column {c!r}; valid: {', '.join(df.columns)}")
    rows = []
    for (env, dataset), g in df.groupby(["env", "dataset"], sort=False):
        groups = {name: sub[score].to_numpy() for name, sub in g.groupby(column, sort=False)
                  if np.isfinite(sub[score].to_numpy(dtype=float)).any()}
        if not groups:
            continue
        for name, res in welch_compare(groups, level).items():
            rows.append({"env": env, "dataset": dataset, column: name, **res})
    out = pd.DataFrame(rows)
    out.attrs["score"] = score
    out.attrs["column"] = column
    return out


def _fmt_cell(res: pd.Series, decimals: int, bold: Callable[[str], str], star: str) -> str:
    text = f"{res['mean']:.{decimals}f} ± {res['std']:.{decimals}f}"
    if res["best"]:
        text = bold(text)
    if res["star"]:
        text += star
    return text


def coverage_status(coverage: pd.DataFrame) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    """``(env, dataset, algo) → (finished, failed, planned)`` seed counts of a plan's coverage (the rows of
    :func:`marlkit.eval.checks.coverage`, one per planned run with its ``status``)."""
    out = {}
    for (env, dataset, algo), g in coverage.groupby(["env", "dataset", "algo"], sort=False):
        out[env, dataset, algo] = (int((g.status == "ok").sum()), int((g.status == "failed").sum()), len(g))
    return out


def _missing_text(finished: int, failed: int, planned: int) -> str:
    """What a table cell says about the planned seeds that have no result ('' when all finished)."""
    if finished == planned:
        return ""
    parts = [f"{finished} of {planned} seeds"] if finished else ["failed" if failed == planned else "not run"]
    if failed and failed < planned:
        parts.append(f"{failed} failed")
    return ", ".join(parts)


def _pivot(table: pd.DataFrame, decimals: int, bold, star, coverage: pd.DataFrame | None = None
           ) -> tuple[list[str], list[list[str]]]:
    column = table.attrs.get("column", "variant" if "variant" in table.columns else "algo")
    cols = list(dict.fromkeys(table[column])) if len(table) else []
    tasks = list(dict.fromkeys(zip(table["env"], table["dataset"]))) if len(table) else []
    status = coverage_status(coverage) if coverage is not None else {}
    if status:  # the plan's order; planned tasks and algorithms without any finished run stay in the table
        tasks = list(dict.fromkeys([(env, dataset) for env, dataset, _ in status] + tasks))
        cols = list(dict.fromkeys([algo for _, _, algo in status] + cols))
    body = []
    for env, dataset in tasks:
        g = table[(table["env"] == env) & (table["dataset"] == dataset)] if len(table) else table
        cells = {r[column]: _fmt_cell(r, decimals, bold, star) for _, r in g.iterrows()}
        row = [env, dataset]
        for c in cols:
            note = _missing_text(*status[env, dataset, c]) if (env, dataset, c) in status else ""
            text = cells.get(c, "–")
            row.append(f"{text} ({note})" if note and c in cells else note or text)
        body.append(row)
    return ["Task", "Dataset", *cols], body


def to_markdown(table: pd.DataFrame, decimals: int = 2, coverage: pd.DataFrame | None = None) -> str:
    """Markdown table of :func:`results_table` (best in ``**bold**``, ``*`` = not significantly different).

    ``coverage``: the plan's runs with their status (:func:`marlkit.eval.checks.coverage`); every planned task and
    algorithm then has its cell, reading ``not run`` or ``failed`` without a finished run and naming the
    finished seeds (``2 of 3 seeds``) when some are missing."""
    head, body = _pivot(table, decimals, lambda s: f"**{s}**", "\\*", coverage)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    score = table.attrs.get("score", "score")
    lines.append("")
    lines.append(f"{score}: mean ± std over seeds; **bold**: best mean; \\*: not significantly different from the "
                 f"best (Welch two-sided t-test, 5 %).")
    return "\n".join(lines)


def _tex_escape(text: str) -> str:
    text = str(text)
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("α", r"$\alpha$")):
        text = text.replace(a, b)
    return text


def to_latex(table: pd.DataFrame, decimals: int = 2, caption: str | None = None,
             coverage: pd.DataFrame | None = None) -> str:
    """LaTeX (booktabs) table of :func:`results_table`: ``\\textbf`` for the best, ``$^*$`` for no difference
    (``coverage`` as in :func:`to_markdown`)."""
    head, body = _pivot(table, decimals, lambda s: "\\textbf{" + s.replace(" ± ", r" $\pm$ ") + "}", "$^*$",
                        coverage)
    body = [[_tex_escape(c) if i < 2 else c.replace(" ± ", r" $\pm$ ") for i, c in enumerate(row)] for row in body]
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{ll" + "r" * (len(head) - 2) + "}", r"\toprule",
             " & ".join(_tex_escape(h) for h in head) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    score = table.attrs.get("score", "score").replace("_", " ")
    lines.append(r"\caption{" + (caption or f"{score.capitalize()}: mean $\\pm$ std over seeds; best mean in bold; "
                 "$^*$: not significantly different from the best (Welch two-sided $t$-test, 5\\%).") + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- rliable
def score_matrices(df: pd.DataFrame, score: str | None = None, column: str = "variant"
                   ) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    """rliable's input: label → ``[runs, tasks]`` score matrix over the tasks every label was run on.

    Runs are seeds in increasing order; every (label, task) keeps the smallest run count found among all of
    them, so the matrices are rectangular.

    Raises:
        ValueError: if no task is shared by all labels.
    """
    score = score or default_score(df)
    d = df[np.isfinite(df[score].to_numpy(dtype=float))]
    tasks_by = {k: set(map(tuple, g[["env", "dataset"]].to_numpy())) for k, g in d.groupby(column, sort=False)}
    if not tasks_by:
        raise ValueError("no finite scores")
    tasks = sorted(set.intersection(*tasks_by.values()))
    if not tasks:
        raise ValueError("no task was run by every algorithm; aggregate a subset")
    runs = min(len(g) for _, g in d.groupby([column, "env", "dataset"]) if (g["env"].iat[0], g["dataset"].iat[0])
               in tasks)
    out = {}
    for k, g in d.groupby(column, sort=False):
        cols = []
        for env, dataset in tasks:
            t = g[(g["env"] == env) & (g["dataset"] == dataset)].sort_values("seed")
            cols.append(t[score].to_numpy(dtype=float)[:runs])
        out[k] = np.stack(cols, axis=1)
    return out, tasks


def stratified_bootstrap_ci(scores: np.ndarray, statistic: Callable[[np.ndarray], Any], reps: int = 2000,
                            confidence: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI of ``statistic`` under the stratified bootstrap (runs resampled within each task).

    Args:
        scores: ``[runs, tasks]``.
        statistic: maps a ``[runs, tasks]`` array to a scalar or a vector.

    Returns:
        ``(low, high)`` arrays of the statistic's shape.
    """
    scores = np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    n, t = scores.shape
    draws = []
    for _ in range(reps):
        idx = rng.integers(0, n, size=(n, t))
        draws.append(np.asarray(statistic(scores[idx, np.arange(t)])))
    draws = np.stack(draws)
    tail = 100 * (1 - confidence) / 2
    return np.percentile(draws, tail, axis=0), np.percentile(draws, 100 - tail, axis=0)


def _rliable_metrics():
    try:
        from rliable import metrics
    except ImportError as exc:
        raise ImportError("rliable aggregates need the rliable package: pip install 'marlkit[bench]'") from exc
    return metrics


def aggregate_estimates(df: pd.DataFrame, score: str | None = None, column: str = "variant", reps: int = 2000,
                        confidence: float = 0.95, seed: int = 0, optimality_threshold: float = 100.0
                        ) -> pd.DataFrame:
    """IQM, median, mean and optimality gap per label with stratified-bootstrap CIs (rliable's aggregates).

    Returns:
        One row per (label, metric): ``metric, value, low, high``; ``attrs["tasks"]`` lists the tasks used.

    Raises:
        ImportError: without rliable.
        ValueError: see :func:`score_matrices`.
    """
    m = _rliable_metrics()
    funcs = {"IQM": m.aggregate_iqm, "Median": m.aggregate_median, "Mean": m.aggregate_mean,
             "Optimality gap": lambda s: m.aggregate_optimality_gap(s, optimality_threshold)}
    mats, tasks = score_matrices(df, score, column)
    rows = []
    for k, s in mats.items():
        def stat(x):
            return np.array([f(x) for f in funcs.values()])
        lo, hi = stratified_bootstrap_ci(s, stat, reps, confidence, seed)
        for i, (name, f) in enumerate(funcs.items()):
            rows.append({column: k, "metric": name, "value": float(f(s)), "low": float(lo[i]), "high": float(hi[i])})
    out = pd.DataFrame(rows)
    out.attrs["tasks"] = tasks
    out.attrs["score"] = score or default_score(df)
    return out


def performance_profiles(df: pd.DataFrame, taus: np.ndarray | None = None, score: str | None = None,
                         column: str = "variant", reps: int = 500, confidence: float = 0.95, seed: int = 0
                         ) -> dict[str, dict[str, np.ndarray]]:
    """Score distributions: the fraction of runs (over all runs × tasks) with score > τ, with bootstrap CIs.

    Returns:
        label → ``{"tau", "fraction", "low", "high"}`` arrays.
    """
    mats, _ = score_matrices(df, score, column)
    if taus is None:
        allv = np.concatenate([s.ravel() for s in mats.values()])
        taus = np.linspace(allv.min(), allv.max(), 41) if allv.max() > allv.min() else np.array([allv.min()])

    def frac(x):
        return (x.reshape(-1, 1) > taus.reshape(1, -1)).mean(0)
    out = {}
    for k, s in mats.items():
        lo, hi = stratified_bootstrap_ci(s, frac, reps, confidence, seed)
        out[k] = {"tau": np.asarray(taus), "fraction": frac(s), "low": lo, "high": hi}
    return out


# ------------------------------------------------------------------------------------------------- figures
def _score_label(score: str) -> str:
    return "normalized score" if score == "normalized_score" else "return"


def plot_aggregates(est: pd.DataFrame, column: str = "variant"):
    """Horizontal interval plot of :func:`aggregate_estimates` (one panel per metric); returns the figure."""
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(est["metric"]))
    labels = list(dict.fromkeys(est[column]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.5 * len(labels) + 1.4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], metrics):
        sub = est[est["metric"] == name].set_index(column).loc[labels]
        for i, (lab, r) in enumerate(sub.iterrows()):
            ax.barh(i, r["high"] - r["low"], left=r["low"], height=0.6, color=colors[i % len(colors)], alpha=0.6)
            ax.plot([r["value"]] * 2, [i - 0.3, i + 0.3], color="k", lw=1.5)
        ax.set_yticks(range(len(labels)), labels if ax is axes[0][0] else [""] * len(labels))
        ax.set_title(name)
        ax.grid(axis="x", alpha=0.3)
    fig.supxlabel(_score_label(est.attrs.get("score", "score")) + " (95 % stratified bootstrap CI)")
    fig.tight_layout()
    return fig


def plot_performance_profiles(profiles: dict[str, dict[str, np.ndarray]], score: str = "normalized_score"):
    """Performance profiles with CI bands; returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for k, p in profiles.items():
        ax.plot(p["tau"], p["fraction"], label=k)
        ax.fill_between(p["tau"], p["low"], p["high"], alpha=0.2)
    ax.set_xlabel(f"{_score_label(score)} τ")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _tasks(df: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(map(tuple, df[["env", "dataset"]].to_numpy())))


def _task_panels(tasks: list[tuple[str, str]]):
    """A grid of at most 3 columns with one panel per task; returns ``(fig, axes)`` with the panels in task order
    (unused panels of the last row are hidden)."""
    import matplotlib.pyplot as plt

    ncol = min(3, len(tasks))
    nrow = math.ceil(len(tasks) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), squeeze=False)
    for ax in axes.ravel()[len(tasks):]:
        ax.axis("off")
    return fig, axes.ravel()[:len(tasks)]


def plot_learning_curves(df: pd.DataFrame, score: str | None = None, column: str = "variant"):
    """Evaluation score against updates, mean ± std over seeds, one panel per task; returns the figure."""
    score = score or default_score(df)
    tasks = _tasks(df)
    fig, axes = _task_panels(tasks)
    for ax, (env, dataset) in zip(axes, tasks):
        g = df[(df["env"] == env) & (df["dataset"] == dataset)]
        for name, sub in g.groupby(column, sort=False):
            curves = pd.DataFrame([{"seed": r.seed, "step": e["step"], "v": e.get(score)}
                                   for r in sub.itertuples() for e in (r.evals or [])])
            if curves.empty or curves["v"].isna().all():
                continue
            st = curves.groupby("step")["v"].agg(["mean", "std"]).fillna(0.0)
            ax.plot(st.index, st["mean"], label=name)
            ax.fill_between(st.index, st["mean"] - st["std"], st["mean"] + st["std"], alpha=0.2)
        ax.set_title(f"{env} / {dataset}")
        ax.set_xlabel("gradient updates")
        ax.set_ylabel(_score_label(score))
        ax.grid(alpha=0.3)
    handles, _ = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def alpha_varied(df: pd.DataFrame) -> bool:
    """True when some algorithm was run with more than one α on the same task (an α sweep)."""
    d = df[df["alpha"].notna()]
    return bool(len(d)) and int(d.groupby(["env", "dataset", "algo"])["alpha"].nunique().max()) > 1


def plot_alpha_sweep(df: pd.DataFrame, score: str | None = None):
    """Final score against α (log axis), mean ± std over seeds, one line per algorithm, one panel per task
    (the shape of omiga.md Fig. 1(b) and comadice.md Fig. 1); returns the figure.

    Only algorithms run with several α values on a task are drawn.

    Raises:
        ValueError: if no algorithm was run with several α values (see :func:`alpha_varied`).
    """
    score = score or default_score(df)
    d = df[df["alpha"].notna()]
    counts = d.groupby(["env", "dataset", "algo"])["alpha"].transform("nunique")
    d = d[counts > 1]
    if d.empty:
        raise ValueError("no algorithm was run with several values of the regularization weight α")
    tasks = _tasks(d)
    fig, axes = _task_panels(tasks)
    for ax, (env, dataset) in zip(axes, tasks):
        g = d[(d["env"] == env) & (d["dataset"] == dataset)]
        for algo, sub in g.groupby("algo", sort=False):
            st = sub.groupby("alpha")[score].agg(["mean", "std"]).fillna(0.0).sort_index()
            ax.errorbar(st.index, st["mean"], yerr=st["std"], marker="o", capsize=3, label=algo)
        ax.set_xscale("log")
        ax.set_title(f"{env} / {dataset}")
        ax.set_xlabel("α")
        ax.set_ylabel(_score_label(score))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
