"""The tidy result record of one benchmark run: reference returns, provenance, ``record.json``/``record.csv``.

The files a run leaves in its cell directory are named here (:data:`RECORD`, :data:`FAILED`, the executed
:data:`NOTEBOOK`); the presence of a readable ``record.json`` marks a finished run.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import platform
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import torch

from marlkit import __version__
from marlkit.data.hdf5 import dataset_fingerprint
from marlkit.envs.matrix import MatrixGame, expected_return
from marlkit.nets.mlp import onednn_linear
from marlkit.utils import cpu_info

__all__ = [
    "FAILED",
    "NOTEBOOK",
    "RECORD",
    "REPORT",
    "SCHEMA_VERSION",
    "atomic_write",
    "cpu_model",
    "describe_record",
    "git_commit",
    "make_record",
    "plot_learning_curve",
    "reference_returns",
    "run_title",
    "utc_now",
    "write_record",
]

NOTEBOOK = "10_benchmark.ipynb"
"""The benchmark notebook (one execution per grid cell)."""
REPORT = "11_results.ipynb"
"""The results notebook executed over a finished sweep."""
RECORD = "record.json"
"""A finished run's record (written last, so its presence marks the run finished)."""
FAILED = "failed.json"
"""A failed run's exception, message and traceback."""
SCHEMA_VERSION = 1


def utc_now() -> str:
    """The current UTC time in ISO 8601 to the second (``2026-01-31T12:00:00+00:00``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def reference_returns(env) -> dict[str, float] | None:
    """Reference returns of the D4RL-style normalised score (0 = random, 100 = expert) for ``env``.

    Sequential envs provide ``env.reference_returns``. For a matrix game the references are exact: *random* is
    the expected payoff of the uniform product policy and *expert* the largest payoff (the cooperative optimum).

    Returns:
        ``{"random": R0, "expert": R1}`` or None when the env defines none (or the two coincide).
    """
    ref = getattr(env, "reference_returns", None)
    if ref:
        return {"random": float(ref["random"]), "expert": float(ref["expert"])}
    if isinstance(env, MatrixGame):
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


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere, ``"unknown"`` if empty).

    Recorded with every run because float32 training ends elsewhere on another CPU model (its kernels sum in another
    order), and because MaMuJoCo datasets of version 0 differed across CPU models (float32 behavior actors; v1 rolls
    them out in float64)."""
    return cpu_info("model name") or platform.processor() or "unknown"


def make_record(params: dict[str, Any], evals: list[dict[str, Any]], algo, env, wall_time_s: float,
                data=None) -> dict:
    """The tidy result record of one benchmark run.

    Args:
        params: validated notebook parameters (:func:`validate_parameters`).
        evals: the records yielded by :func:`marlkit.train.iterate` (at least one: the final evaluation).
        algo: the trained :class:`~marlkit.algos.base.Algorithm` (for its full config).
        env: the environment (for reference returns).
        wall_time_s: wall time of the whole run (data building, training, evaluation), seconds.
        data: the training :class:`~marlkit.data.dataset.MultiAgentDataset`, for ``dataset_fingerprint``
            (:func:`marlkit.data.hdf5.dataset_fingerprint`; None when not given).

    Returns:
        A JSON-able dict: every parameter (also under ``parameters``), the full algorithm ``config``, ``alpha``
        (the config's α or None), ``return`` and ``normalized_score`` of the final evaluation (None without
        reference returns), ``deterministic_eval`` (the evaluation mode used: true greedy, false sampled, null on
        matrix games, which are evaluated exactly), ``evals`` (step, return, normalized score, wall time of each evaluation), ``wall_time_s``,
        ``updates_per_s`` (training updates per second of training time), ``marlkit_version``, ``git_commit``,
        ``git_dirty``, library versions, ``cpu`` (:func:`cpu_model`), ``onednn_linear`` (whether large CPU linear
        layers ran on oneDNN rather than MKL: :func:`marlkit.nets.mlp.onednn_linear`), ``dataset_fingerprint`` and
        a UTC timestamp.

    Raises:
        ValueError: if ``evals`` is empty.
    """
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
        "deterministic_eval": final.get("deterministic_eval"),
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
        "cpu": cpu_model(), "onednn_linear": onednn_linear(),
        "dataset_fingerprint": None if data is None else dataset_fingerprint(data),
        "created_utc": utc_now(),
        "parameters": dict(params),
    }
    for key in ("return_std", "win_rate", "greedy_return", "greedy_action", "per_agent_policy", "joint_policy"):
        if key in final:
            record[key] = final[key]
    return record


def write_record(record: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``record.json`` (the whole record) and ``record.csv`` (one row per evaluation: every scalar
    parameter and result repeated, plus ``step``, ``eval_return``, ``eval_normalized_score``, ``final``).

    Both writes are atomic (temp file + rename); ``record.json`` is written last, so its presence marks a
    finished run for :func:`run_sweep`'s resume.

    Returns:
        ``{"json": path, "csv": path}``.
    """
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
    atomic_write(paths["csv"], buf.getvalue())
    atomic_write(paths["json"], json.dumps(record, indent=2))
    return paths


def run_title(params: dict[str, Any], config: dict[str, Any] | None = None) -> str:
    """A one-line title of a run: algorithm, task, α and the hyperparameters set away from the defaults, e.g.
    ``inspo · xor/b · α = 0.01 · hidden 64x64, lr 0.001``.

    Args:
        params: validated notebook parameters (:func:`~marlkit.bench.params.validate_parameters`).
        config: the algorithm's full config (``algo.config.to_dict()``), for the α actually used (None: only
            ``params["alpha"]``).
    """
    alpha = (config or {}).get("alpha", params.get("alpha"))
    parts = [params["algo"], f"{params['env']}/{Path(str(params['dataset'])).name}"]
    if alpha is not None:
        parts.append(f"α = {alpha:g}")
    hp = {k: v for k, v in params.get("hyperparameters", {}).items() if k != "alpha"}
    if hp:
        parts.append(", ".join(f"{k} {'x'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                               for k, v in sorted(hp.items())))
    return " · ".join(parts)


def plot_learning_curve(evals: list[dict[str, Any]], title: str = "", ax=None, normalized: bool = False,
                        reference: dict[str, float] | None = None):
    """Plot evaluation return (or normalised score) against gradient updates; returns the matplotlib figure.

    Args:
        evals: evaluation records (``step`` and ``return`` / ``normalized_score`` each).
        title: axes title (see :func:`run_title`).
        ax: axes to draw into (cleared first); None: a new figure.
        normalized: plot the normalised score (0 = random, 100 = expert) instead of the return.
        reference: ``{"random": R0, "expert": R1}`` (:func:`reference_returns`): both drawn as dashed lines and
            the y-limits set from them (widened to the curve when it leaves that band), so curves of different
            runs on a task share one scale.
    """
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
    if reference:
        lo, hi = (0.0, 100.0) if normalized else (reference["random"], reference["expert"])
        ax.axhline(hi, ls="--", lw=1, color="tab:green", label=f"best / expert ({hi:g})")
        ax.axhline(lo, ls="--", lw=1, color="tab:gray", label=f"random ({lo:g})")
        finite = [v for v in values if v is not None and np.isfinite(v)]
        bottom, top = min([lo, *finite]), max([hi, *finite])
        pad = 0.05 * (top - bottom)
        ax.set_ylim(bottom - pad, top + pad)
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("gradient updates")
    ax.set_ylabel("normalized score" if normalized else "evaluation return")
    ax.set_title(textwrap.fill(title, 64), fontsize=9)  # long hyperparameter lists wrap instead of clipping
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def describe_record(record: dict[str, Any], env=None) -> str:
    """The closing summary of a run, computed from its record: final return and normalized score against the
    references, the best evaluation on the way, and on matrix games the greedy joint action and the probability
    the learned joint policy puts on joint actions outside the dataset (out-of-distribution, OOD).

    Args:
        record: a record of :func:`make_record`.
        env: the run's environment (for the dataset's support on matrix games; None: no OOD line).
    """
    lines = []
    ref = record.get("reference_returns")
    ns = record.get("normalized_score")
    head = f"{record['algo']} on {record['env']}/{Path(str(record['dataset'])).name} after {record['steps']} " \
           f"updates: return {record['return']:.3f}"
    if ns is not None and ref:
        head += f", normalized score {ns:.0f} (0 = random {ref['random']:.3g}, 100 = best {ref['expert']:.3g})"
    lines.append(head + ".")
    evals = record.get("evals") or []
    if len(evals) > 1:
        best = max(evals, key=lambda e: e["return"])
        # a drop counts when it exceeds 1 % of the reference range (of the best return without references)
        tol = 0.01 * ((ref["expert"] - ref["random"]) if ref else max(abs(best["return"]), 1e-9))
        if best["step"] != evals[-1]["step"] and best["return"] > record["return"] + tol:
            lines.append(f"Its best evaluation was {best['return']:.3f} at update {best['step']}: the run ended "
                         f"{best['return'] - record['return']:.3f} below it.")
        else:
            lines.append(f"It ended at its best evaluation, within 1 % of the reference range (first evaluation: "
                         f"{evals[0]['return']:.3f} at update {evals[0]['step']}).")
    if "greedy_action" in record:
        lines.append(f"Greedy joint action: ({', '.join(map(str, record['greedy_action']))}), "
                     f"return {record.get('greedy_return', float('nan')):.3f}.")
    datasets = getattr(env, "datasets", None) or {}
    if "joint_policy" in record and record["dataset"] in datasets and isinstance(env, MatrixGame):
        from marlkit.exact.matrix import ood_mass

        ood = ood_mass(np.asarray(record["joint_policy"]), datasets[record["dataset"]].joint)
        lines.append(f"Probability of joint actions outside the dataset: {ood:.3f}.")
    return "\n".join(lines)
