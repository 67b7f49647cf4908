"""Browsing datasets: what every env offers, what is built, and what a dataset file holds.

The functions behind ``marlkit data list``, ``marlkit data info PATH_OR_ID`` and ``marlkit data convert SRC
DST``. Built datasets are found in the cache (:func:`marlkit.data.build.data_dir`) by their file names
(:func:`marlkit.data.build.dataset_path`, and ``smax/<map>-<name>-...h5`` for SMAX); a file's card is read from
its HDF5 attrs without loading its arrays.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from marlkit.data.card import (
    attach_card,
    check_simulator_versions,
    dataset_id,
    dataset_version,
    env_family,
    parse_dataset_id,
    return_histogram,
)
from marlkit.behavior.weights import load_card
from marlkit.data.build import DEFAULT_TRANSITIONS, data_dir
from marlkit.data.dataset import DatasetError, MultiAgentDataset
from marlkit.data.io import is_dataset_path, load_file, save_file
from marlkit.envs.registry import UnknownNameError, list_envs, load_dataset, make_env

__all__ = ["built_files", "convert", "dataset_rows", "format_info", "format_rows", "open_dataset", "read_card"]

_BUILT_FAMILIES = ("mamujoco", "mpe", "smax")
"""Families whose named datasets are rolled out and cached as files (the others are sampled on use, or
built in memory by ``marlkit train`` and cached by ``marlkit data build``)."""


def built_files(env_name: str, name: str) -> list[Path]:
    """Cached files of ``env_name``'s dataset ``name`` of the current version (:func:`dataset_version`; files of
    older versions stay in the cache, unused), newest first."""
    root = data_dir()
    if env_name.startswith("smax:"):
        map_name = re.escape(env_name.split(":", 1)[1])
        folder, pattern = root / "smax", rf"^{map_name}-{re.escape(name)}-(n|ep)\d+-s\d+-T\d+\.h5$"
    else:
        folder = root / env_name.replace(":", "_")
        pattern = rf"^{re.escape(name)}-(\d+t|\d+ep|default)-seed\d+(-\w+)?\.h5$"
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if re.match(pattern, p.name) and _current_version(p, env_name)]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


def _current_version(path: Path, env_name: str) -> bool:
    """Whether the card of ``path`` has this marlkit's version of ``env_name``'s IDs (files from before
    datasets carried IDs count as version 0; an unreadable file is kept, so that opening it names the problem)."""
    try:
        parsed = parse_dataset_id(str(read_card(path).get("dataset_id") or ""))
    except DatasetError:
        return True
    return (parsed[2] if parsed else 0) == dataset_version(env_name)


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """The attrs (card) of a marlkit HDF5 file, without reading its arrays; JSON values are decoded.

    Raises:
        DatasetError: if the file is not readable HDF5.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs.items())
            shapes = {k: tuple(f[k].shape) for k in f}
    except OSError as exc:
        raise DatasetError(f"{path} is not a readable HDF5 file (truncated or corrupt?): {exc}") from None
    out = {}
    for k, v in attrs.items():
        v = v.decode() if isinstance(v, bytes) else (v.item() if isinstance(v, np.generic) else v)
        out[k] = v
    out.setdefault("transitions", shapes.get("rewards", (None,))[0])
    return out


def _named(env_name: str) -> tuple[dict | list, Any]:
    """(dataset names, env or None) without building SMAX maps (whose construction compiles JAX code)."""
    if env_name.startswith("smax:"):
        from marlkit.envs.smax import QUALITIES

        return QUALITIES, None

    env = make_env(env_name)
    return getattr(env, "datasets", {}), env


def _card_return(env, name: str) -> str | None:
    """The return a named dataset is known to have before it is built: the behavior card's measured return
    (MuJoCo) or the env's reference return of that name."""
    task = getattr(env, "task", None)
    if task is None or not env.spec.name.startswith("mamujoco:"):
        ref = getattr(env, "reference_returns", None) or {}
        return f"{ref[name]:.2f} (reference)" if isinstance(ref, dict) and name in ref else None
    try:

        m = load_card(task).get("measured_returns", {}).get(name)
    except FileNotFoundError:
        return None
    return f"{m['mean']:.2f} ± {m['std']:.2f} (behavior card, {m['episodes']} ep)" if m else None


def _default_size(env_name: str, env) -> str:
    """Transitions a named dataset has when built without a size (as ``marlkit train`` builds it)."""
    import inspect


    family = env_family(env_name)
    if family in DEFAULT_TRANSITIONS:
        return f"{DEFAULT_TRANSITIONS[family]} (default)"
    if family == "smax":
        from marlkit.envs.smax import DEFAULT_DATASET_SIZE

        return f"{DEFAULT_DATASET_SIZE} (default)"
    if env_name == "bridge":
        return "500 ep/behavior (default)"
    try:
        default = inspect.signature(env.make_dataset).parameters["size"].default
    except (AttributeError, KeyError, TypeError, ValueError):
        return ""
    return f"{default} (default)" if isinstance(default, int) else ""


def dataset_rows(envs: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per (env, named dataset): ``id``, ``size`` (of the newest built file, else the default build
    size), ``return`` (mean ± std of the built file, else the behavior card's or reference return),
    ``status`` (``built: FILE``, ``not built`` or ``sampled on use``); a family whose extra is missing gets one
    row saying so."""

    rows = []
    for env_name in envs if envs is not None else list_envs():
        if "<task>" in env_name:
            rows.append({"id": env_name.split()[0], "size": "", "return": "", "status": env_name.split(" ", 1)[1]})
            continue
        try:
            names, env = _named(env_name)
        except ImportError as exc:
            rows.append({"id": env_name, "size": "", "return": "", "status": f"needs its extra ({exc})"})
            continue
        family = env_family(env_name)
        for name in names:
            row = {"id": dataset_id(env_name, name), "size": "", "return": "", "status": "not built"}
            files = built_files(env_name, name)
            if files:
                card = read_card(files[0])
                row["size"] = str(card.get("transitions", ""))
                if card.get("return_mean") is not None:
                    row["return"] = f"{card['return_mean']:.2f} ± {card.get('return_std', float('nan')):.2f}"
                row["status"] = f"built: {files[0]}" + (f" (+{len(files) - 1} more)" if len(files) > 1 else "")
            else:
                row["size"] = _default_size(env_name, env)
                row["return"] = _card_return(env, name) or ""
                if family not in _BUILT_FAMILIES and family != "bridge":
                    row["status"] = "sampled on use"
            rows.append(row)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`dataset_rows` as an aligned text table."""
    cols = ("id", "size", "return", "status")
    width = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in cols[:-1]}
    lines = ["  ".join(c.ljust(width[c]) for c in cols[:-1]) + "  status"]
    lines += ["  ".join(str(r[c]).ljust(width[c]) for c in cols[:-1]) + "  " + str(r["status"]) for r in rows]
    return "\n".join(lines)


def open_dataset(path_or_id: str, max_episode_steps: int | None = None) -> tuple[MultiAgentDataset, str]:
    """Load a dataset named by a path (any format of :mod:`marlkit.data.io`; ``max_episode_steps`` marks the
    time-limit cuts of an OMIGA-layout file) or an ID ``env/name-vN`` (its newest built file; datasets sampled
    on use are sampled with seed 0). Returns ``(dataset, source)``.

    Raises:
        FileNotFoundError: for a path that does not exist.
        UnknownNameError: for an ID of an unknown env or dataset, another version, or one that is not built.
    """

    parsed = None if Path(path_or_id).exists() else parse_dataset_id(path_or_id)
    if parsed is None:
        if not is_dataset_path(path_or_id):
            raise UnknownNameError(f"{path_or_id!r} is neither an existing file or Vault nor a dataset ID "
                                   f"env/name-vN (see `marlkit data list`)")
        return load_file(path_or_id, max_episode_steps=max_episode_steps), str(path_or_id)
    env_name, name, version = parsed
    if version != dataset_version(env_name):
        raise UnknownNameError(f"dataset ID {path_or_id!r}: this marlkit builds version v{dataset_version(env_name)}, "
                               f"not v{version}")
    files = built_files(env_name, name)
    if files:
        return load_file(files[0]), str(files[0])
    family = env_family(env_name)
    if family in _BUILT_FAMILIES or family == "bridge":
        names, _ = _named(env_name)
        if name not in names:
            raise UnknownNameError(f"unknown dataset {name!r} for env {env_name!r}; valid: {', '.join(names)}")
        raise UnknownNameError(f"dataset {path_or_id} is not built; build it with "
                               f"`marlkit data build {env_name} --quality {name}`")
    return load_dataset(make_env(env_name), name), f"{path_or_id} (sampled, seed 0)"


def _decoded(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def format_info(ds: MultiAgentDataset, source: str, bins: int = 10) -> str:
    """The card, field shapes and dtypes, simulator version check and a text histogram of episode returns."""
    lines = [f"source: {source}", "card:"]
    for k in sorted(ds.meta):
        lines.append(f"  {k:>20}: {_decoded(ds.meta[k])}")
    rets = ds.episode_returns()
    lines.append(f"  {'(measured) return':>20}: " + (f"{rets.mean():.4f} ± {rets.std():.4f} over {rets.size} "
                                                     f"episodes" if rets.size else "no complete episode"))
    diffs = check_simulator_versions(ds.meta, source, warn=False)
    if diffs:
        lines.append(f"  {'WARNING':>20}: built with other simulator versions: {'; '.join(diffs)}")
    lines.append("fields:")
    for k, v in ds.fields().items():
        lines.append(f"  {k:>20}: {v.dtype!s:<8} {list(v.shape)}")
    lines.append("episode returns:")
    lines += ["  " + line for line in return_histogram(rets, bins=bins).splitlines()]
    return "\n".join(lines)


def convert(src: str, dst: str, fmt: str | None = None, overwrite: bool = False, env_name: str | None = None,
            name: str | None = None, max_episode_steps: int | None = None) -> tuple[MultiAgentDataset, Path]:
    """Convert between formats (HDF5 ↔ Vault, OMIGA layout → HDF5): read ``src``, give it a card, write ``dst``.

    Args:
        src: a path of any format of :mod:`marlkit.data.io`.
        dst: target path (``.h5`` for HDF5; a directory, e.g. ``vaults/task.vlt/medium``, for a Vault).
        fmt: ``hdf5``, ``vault`` or ``omiga`` (default from ``dst``: a ``.vlt`` path is a Vault, else HDF5).
        overwrite: replace an existing ``dst`` (otherwise it is never touched).
        env_name: the registry env the data belongs to: checked against the data (agents, shapes, action
            space) and recorded in the card with its reference returns.
        name: dataset name in the ID (default: the card's, else the source's file name).
        max_episode_steps: OMIGA layout only: rows reaching this length become timeouts.

    The card keeps an existing ``dataset_id`` and ``simulator_versions``; data from elsewhere gets the ID
    ``env/name-v0`` and empty ``simulator_versions`` (not recorded by the source).

    Raises:
        FileExistsError: if ``dst`` exists and ``overwrite`` is False.
        FileNotFoundError / DatasetError: for an unreadable ``src`` or data that does not match ``env_name``.
    """

    if Path(dst).exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")
    if Path(dst).resolve() == Path(src).resolve():
        raise ValueError(f"source and destination are the same path {src}")
    ds = load_file(src, max_episode_steps=max_episode_steps)
    ref = None
    if env_name is not None:
    
        env = make_env(env_name)
        ds.check_compatible(env.spec)
        ref = getattr(env, "reference_returns", None)
        if ds.meta.get("env") not in (None, env_name):
            raise DatasetError(f"{src} is a dataset of env {ds.meta['env']!r}, not {env_name!r}")
        ds.meta["env"] = env_name
    if name is not None:
        ds.meta["dataset"] = name
    ds.meta.setdefault("dataset", Path(src).stem if Path(src).suffix else Path(src).name)
    attach_card(ds, seed=ds.meta.get("seed"), reference_returns=ref,
                versions=None if "simulator_versions" in ds.meta else {})
    return ds, save_file(ds, dst, fmt=fmt, overwrite=overwrite)
