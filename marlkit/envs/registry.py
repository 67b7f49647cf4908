"""The environment registry the CLI and the trainer use.

Names are plain (``xor``) or ``family:task`` (``mamujoco:HalfCheetah-6x1``). Families are imported lazily so
that ``import marlkit`` never pays for simulators.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable

from marlkit.data.card import attach_card, dataset_version, parse_dataset_id
from marlkit.data.dataset import MultiAgentDataset
from marlkit.data.io import is_dataset_path, load_file
from marlkit.envs.base import MultiAgentEnv

__all__ = ["make_env", "list_envs", "load_dataset", "register_env", "register_family", "UnknownNameError"]


class UnknownNameError(KeyError):
    """An unknown env/dataset/algorithm name; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


# name -> "module:function" returning a MultiAgentEnv
_ENVS: dict[str, str] = {
    "xor": "marlkit.envs.matrix:_xor",
    "mne": "marlkit.envs.matrix:_mne",
    "jiang-lu": "marlkit.envs.matrix:_jiang_lu",
    "differential": "marlkit.envs.differential:make_full",
    "differential-partial": "marlkit.envs.differential:make_partial",
    "bridge": "marlkit.envs.bridge:BridgeEnv",
}
# family prefix -> ("module:function(task) -> env", "module:function() -> list of task names")
# (built-in families import their simulator only when a task is built or listed)
_FAMILIES: dict[str, tuple[str, str]] = {
    "smax": ("marlkit.envs.smax:make_smax", "marlkit.envs.smax:list_maps"),
    "mpe": ("marlkit.envs.mpe:make_task", "marlkit.envs.mpe:list_tasks"),
    "mamujoco": ("marlkit.envs.mamujoco:make_task", "marlkit.envs.mamujoco:list_tasks"),
}

# family prefix -> pip extra that installs its simulator
_EXTRAS = {"smax": "smax", "mpe": "mpe", "mamujoco": "mujoco"}


def register_env(name: str, target: str | Callable[[], MultiAgentEnv]) -> None:
    """Register a plain env name to a factory (callable or ``"module:function"`` string)."""
    _ENVS[name] = target


def register_family(prefix: str, factory: str, lister: str) -> None:
    """Register a ``prefix:task`` family: ``factory(task)`` builds an env, ``lister()`` lists its tasks."""
    _FAMILIES[prefix] = (factory, lister)


def _resolve(target):
    if callable(target):
        return target
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def list_envs() -> list[str]:
    """All registered env names (families expanded where their package is importable)."""
    names = sorted(_ENVS)
    for prefix, (_, lister) in sorted(_FAMILIES.items()):
        try:
            names += [f"{prefix}:{t}" for t in _resolve(lister)()]
        except ImportError:
            names.append(f"{prefix}:<task> (optional extra not installed)")
    return names


def make_env(name: str) -> MultiAgentEnv:
    """Build an environment by registry name.

    Raises:
        UnknownNameError: naming the valid environments.
    """
    if not isinstance(name, str):
        raise UnknownNameError(f"env name must be a string, got {name!r}")
    if name in _ENVS:
        return _resolve(_ENVS[name])()
    if ":" in name:
        prefix, task = name.split(":", 1)
        if prefix in _FAMILIES:
            try:
                return _resolve(_FAMILIES[prefix][0])(task)
            except ImportError as exc:
                extra = _EXTRAS.get(prefix, prefix)
                raise ImportError(f"env family {prefix!r} needs its optional dependencies: "
                                  f"pip install 'marlkit[{extra}]' ({exc})") from exc
            except UnknownNameError:
                raise
            except KeyError as exc:  # the family's own unknown-task error
                raise UnknownNameError(str(exc.args[0]) if exc.args else f"unknown env {name!r}") from None
    raise UnknownNameError(f"unknown env {name!r}; valid: {', '.join(list_envs())}")


def load_dataset(env: MultiAgentEnv, dataset: str, size: int | None = None, seed: int = 0) -> MultiAgentDataset:
    """Resolve ``dataset`` for ``env``: a path to a marlkit HDF5 file or a flashbax Vault directory
    (:func:`marlkit.data.io.load_file`), a dataset ID ``env/name-vN``, or one of the env's named datasets.

    Args:
        env: the environment the data must match.
        dataset: file path (``*.h5``/``*.hdf5``, a Vault directory), an ID, or a dataset name the env knows.
        size: number of transitions for sampled datasets (env default when None).
        seed: seed for sampled/built datasets.

    Raises:
        UnknownNameError: if the env has no dataset of that name, or the ID names another env or version.
        DatasetError: if a loaded file does not match the env (agent count, shapes, action space), or
            ``dataset`` is not a string or path.
    """
    if not isinstance(dataset, (str, os.PathLike)) or not str(dataset):
        from marlkit.data.dataset import DatasetError

        raise DatasetError(f"dataset must be a dataset name, an ID env/name-vN or a path, got {dataset!r}")
    dataset = os.fspath(dataset)
    parsed = None if Path(dataset).exists() else parse_dataset_id(dataset)
    if parsed is not None:                    # an ID env/name-vN: the env's named dataset of that version
        id_env, name, version = parsed
        if id_env != env.spec.name:
            raise UnknownNameError(f"dataset ID {dataset!r} belongs to env {id_env!r}, not {env.spec.name!r}")
        if version != dataset_version(id_env):
            raise UnknownNameError(f"dataset ID {dataset!r}: this marlkit builds version v{dataset_version(id_env)} of "
                                   f"{id_env}/{name}, not v{version}")
        dataset = name
    if parsed is None and is_dataset_path(dataset):
        # the OMIGA layout does not mark time-limit cuts: the env's episode limit does
        ds = load_file(dataset, max_episode_steps=env.spec.episode_limit)
    else:
        names = getattr(env, "datasets", {})
        if dataset not in names:
            raise UnknownNameError(f"unknown dataset {dataset!r} for env {env.spec.name!r}; "
                                   f"valid: {', '.join(sorted(names))} (or a path to an .h5 file or a Vault)")
        kwargs = {"seed": seed}
        if size is not None:
            kwargs["size"] = size
        ds = env.make_dataset(dataset, **kwargs)
        if "dataset_id" not in ds.meta:       # sampled in memory (matrix games): card without a file
            attach_card(ds, env.spec.name, dataset, seed=seed,
                        reference_returns=getattr(env, "reference_returns", None))
    ds.check_compatible(env.spec)
    return ds
