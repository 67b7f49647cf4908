"""The environment registry the CLI and the trainer use.

Names are plain (``xor``) or ``family:task`` (``mamujoco:HalfCheetah-6x1``). Families are imported lazily so
that ``import marlkit`` never pays for simulators.
"""

from __future__ import annotations

import importlib
import os
from typing import Callable

from marlkit.data.dataset import MultiAgentDataset
from marlkit.data.hdf5 import load_hdf5
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
    """Resolve ``dataset`` for ``env``: a path to a marlkit HDF5 file, or one of the env's named datasets.

    Args:
        env: the environment the data must match.
        dataset: file path (``*.h5``/``*.hdf5``) or a dataset name the env knows.
        size: number of transitions for sampled datasets (env default when None).
        seed: seed for sampled/built datasets.

    Raises:
        UnknownNameError: if the env has no dataset of that name.
        DatasetError: if a loaded file does not match the env.
    """
    if dataset.endswith((".h5", ".hdf5")) or os.path.sep in dataset:
        ds = load_hdf5(dataset)
    else:
        names = getattr(env, "datasets", {})
        if dataset not in names:
            raise UnknownNameError(f"unknown dataset {dataset!r} for env {env.spec.name!r}; "
                                   f"valid: {', '.join(sorted(names))} (or a path to an .h5 file)")
        kwargs = {"seed": seed}
        if size is not None:
            kwargs["size"] = size
        ds = env.make_dataset(dataset, **kwargs)
    ds.check_compatible(env.spec)
    return ds
