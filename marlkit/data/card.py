"""Dataset identity and cards: ``env/name-vN`` IDs, the simulator versions a dataset was built with, and the
warning when they differ from the installed ones.

Every dataset marlkit builds or converts carries in ``meta`` (stored as HDF5 attrs, or in a Vault's
``metadata.json``) a *card*:

==================== ================================================================================
key                  meaning
==================== ================================================================================
dataset_id           ``env/name-vN`` (Minari's naming: ``mamujoco:Hopper-3x1/expert-v1``)
marlkit_version      the marlkit that built or converted it
simulator_versions   ``{package: version}`` of the env family's simulator packages (JSON)
behavior_fingerprint hash of the behavior weights and the actors' rollout precision (MuJoCo tasks), when there are any
seed                 seed of the build
transitions          size T
episodes             complete episodes (ending in a terminal or a timeout)
return_mean/std      mean and standard deviation of the undiscounted team return over those episodes
reference_returns    ``{"random": R0, "expert": R1}`` of the score ``100 (R - R0) / (R1 - R0)`` (JSON)
==================== ================================================================================

The version ``N`` of a built dataset is its family's (:func:`dataset_version`: :data:`DATASET_VERSIONS`, else
:data:`DATASET_VERSION`); it is bumped whenever a change to the behavior policies, the simulator pins or the build
procedure changes the data that a recipe (env, name, size, seed) gives, so a result quoted with an ID is tied to
one version of the data.
"""

from __future__ import annotations

import json
import re
import warnings
from importlib import metadata
from typing import Any

import numpy as np

__all__ = ["DATASET_VERSION", "DATASET_VERSIONS", "SIMULATOR_PACKAGES", "SimulatorVersionWarning", "attach_card",
           "check_simulator_versions", "dataset_id", "dataset_version", "env_family", "installed_versions", "parse_dataset_id", "return_histogram", "simulator_versions"]

DATASET_VERSION = 0
"""The ``vN`` of the IDs of the datasets this marlkit builds, in families without their own entry in
:data:`DATASET_VERSIONS` (see the module docstring)."""

DATASET_VERSIONS: dict[str, int] = {"mamujoco": 1, "bridge": 1}
"""Families whose data changed since v0: ``mamujoco`` v1 rolls the behavior actors out in float64, so a recipe
builds the same data on every CPU (:data:`marlkit.envs.mamujoco.BEHAVIOR_DTYPE`; v0 used float32 actors);
``bridge`` v1 draws the yielder and its retreat route per episode as AlberDICE's buffers do
(:class:`marlkit.envs.bridge.YieldPolicy`; v0 alternated the yielder on one route)."""


def env_family(env_name: str) -> str:
    """The family of a registry env name: the part before ``:`` (``mamujoco`` of ``mamujoco:Hopper-3x1``), or the
    whole name for marlkit's own envs (``bridge``, ``xor``)."""
    return env_name.split(":", 1)[0]


def dataset_version(env_name: str) -> int:
    """The ``N`` of ``env_name``'s dataset IDs ``env/name-vN``: its family's entry of :data:`DATASET_VERSIONS`,
    else :data:`DATASET_VERSION`."""
    return DATASET_VERSIONS.get(env_family(env_name), DATASET_VERSION)

SIMULATOR_PACKAGES: dict[str, tuple[str, ...]] = {
    "mamujoco": ("mujoco", "gymnasium-robotics", "gymnasium"),
    "mpe": ("mpe2", "pettingzoo"),
    "smax": ("jaxmarl", "jax"),
}
"""Distribution names whose versions decide the data of each env family (others are pure marlkit code)."""

_ID = re.compile(r"^(?P<env>[^/\s]+)/(?P<name>[^/\s]+)-v(?P<version>\d+)$")


class SimulatorVersionWarning(UserWarning):
    """A dataset was built with other simulator package versions than the installed ones."""


def dataset_id(env_name: str, name: str, version: int | None = None) -> str:
    """``"env/name-vN"``, e.g. ``dataset_id("mamujoco:Hopper-3x1", "expert") == "mamujoco:Hopper-3x1/expert-v1"``
    (``version`` defaults to :func:`dataset_version` of ``env_name``).

    Raises:
        ValueError: if ``env_name`` or ``name`` is empty or contains ``/`` or whitespace, or ``version < 0``.
    """
    for what, s in (("env name", env_name), ("dataset name", name)):
        if not isinstance(s, str) or not s or "/" in s or any(c.isspace() for c in s):
            raise ValueError(f"{what} must be a non-empty string without '/' or spaces, got {s!r}")
    version = dataset_version(env_name) if version is None else int(version)
    if version < 0:
        raise ValueError(f"dataset version must be >= 0, got {version}")
    return f"{env_name}/{name}-v{version}"


def parse_dataset_id(text: str) -> tuple[str, str, int] | None:
    """``"mamujoco:Hopper-3x1/expert-v1"`` -> ``("mamujoco:Hopper-3x1", "expert", 1)``; None if ``text`` is not
    an ID."""
    m = _ID.match(text.strip()) if isinstance(text, str) else None
    return (m["env"], m["name"], int(m["version"])) if m else None


def installed_versions(packages: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """Installed version of each distribution (None where it is not installed); reads package metadata only,
    nothing is imported."""
    out: dict[str, str | None] = {}
    for p in packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def simulator_versions(env_name: str) -> dict[str, str | None]:
    """Installed versions of the simulator packages of ``env_name``'s family (``{}`` for marlkit's own envs)."""
    return installed_versions(SIMULATOR_PACKAGES.get(env_family(env_name), ()))


def _as_dict(value: Any) -> dict | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


def check_simulator_versions(meta: dict, source: str = "dataset", warn: bool = True) -> list[str]:
    """Compare the ``simulator_versions`` recorded in a card with the installed ones.

    Args:
        meta: the dataset's ``meta`` (its card).
        source: how to name the dataset in the message (its path or ID).
        warn: emit one :class:`SimulatorVersionWarning` naming every difference.

    Returns:
        One ``"package built=X installed=Y"`` entry per installed package whose version differs (empty when
        they agree or the card records none; a package that is not installed cannot disagree: the data is
        used as it is, and only rolling the env out needs the simulator).
    """
    recorded = _as_dict(meta.get("simulator_versions"))
    if not recorded:
        return []
    now = installed_versions(list(recorded))
    diffs = [f"{p} built={recorded[p]} installed={now[p]}" for p in recorded
             if recorded[p] is not None and now[p] is not None and now[p] != recorded[p]]
    if diffs and warn:
        warnings.warn(f"{source} was built with other simulator versions than the installed ones: "
                      f"{'; '.join(diffs)} (returns and dynamics may differ)", SimulatorVersionWarning, stacklevel=3)
    return diffs


def attach_card(ds, env_name: str | None = None, name: str | None = None, *, seed: int | None = None,
                reference_returns: dict | None = None, version: int | None = None,
                versions: dict | None = None) -> dict:
    """Write the dataset card (module docstring) into ``ds.meta`` and return it.

    Args:
        ds: a :class:`~marlkit.data.dataset.MultiAgentDataset`.
        env_name / name: registry env name and dataset name (default: ``meta['env']`` / ``meta['dataset']``).
        seed: build seed (default ``meta['seed']``).
        reference_returns: ``{"random": R0, "expert": R1}`` of the env, if it has them.
        version: the ``vN`` of the ID (default: :func:`dataset_version` of the env).
        versions: simulator versions to record (default: the installed ones of the env's family).

    An existing ``dataset_id`` or ``simulator_versions`` in ``meta`` is kept (a converted dataset keeps the
    identity and versions it was built with).
    """
    from marlkit import __version__

    meta = ds.meta
    env_name = env_name or meta.get("env") or "unknown"
    name = name or meta.get("dataset") or "unnamed"
    meta.setdefault("env", env_name)
    meta.setdefault("dataset", name)
    if "dataset_id" not in meta:
        meta["dataset_id"] = dataset_id(env_name, re.sub(r"[/\s]+", "_", str(name)), version)
    if "simulator_versions" not in meta:
        meta["simulator_versions"] = json.dumps(versions if versions is not None else simulator_versions(env_name))
    rets = ds.episode_returns()
    meta.update({
        "marlkit_version": __version__, "transitions": int(ds.size), "episodes": int(rets.size),
        "return_mean": round(float(rets.mean()), 4) if rets.size else float("nan"),
        "return_std": round(float(rets.std()), 4) if rets.size else float("nan"),
    })
    if seed is not None:
        meta["seed"] = int(seed)
    if reference_returns:
        meta["reference_returns"] = json.dumps({k: float(v) for k, v in reference_returns.items()})
    return {k: meta.get(k) for k in ("dataset_id", "env", "dataset", "marlkit_version", "simulator_versions",
                                     "behavior_fingerprint", "seed", "transitions", "episodes", "return_mean",
                                     "return_std", "reference_returns") if k in meta}


def return_histogram(returns: np.ndarray, bins: int = 10, width: int = 40) -> str:
    """Text histogram of episode returns: one line per bin, ``[lo, hi)  count  ####``."""
    returns = np.asarray(returns, dtype=float)
    if returns.size == 0:
        return "(no complete episode)"
    lo, hi = float(returns.min()), float(returns.max())
    if hi == lo:
        return f"[{lo:.4g}, {hi:.4g}]  {returns.size:>6}  {'#' * width}"
    counts, edges = np.histogram(returns, bins=bins, range=(lo, hi))
    top = max(int(counts.max()), 1)
    return "\n".join(f"[{edges[k]:>11.4g}, {edges[k + 1]:>11.4g}{']' if k == bins - 1 else ')'}  {c:>6}  "
                     f"{'#' * int(width * c / top + 0.5)}" for k, c in enumerate(counts))
