"""Build the named datasets of the sequential environments locally and deterministically, with a cache.

``build_dataset("mamujoco:Hopper-3x1", "medium", transitions=100_000, seed=0)`` rolls the task's behavior
policy out (:func:`marlkit.data.rollout.collect`), attaches a dataset card (size, episodes, mean ± std return,
behavior source, ``env/name-vN`` ID, simulator versions, reference returns: :mod:`marlkit.data.card`; like
omiga.md Table 2) to ``meta`` — stored as HDF5 attrs — and caches the file under
``data_dir()/<env>/<quality>-<size>-seed<seed>[-<behavior weights hash>].h5`` (``$MARLKIT_DATA`` overrides the
directory). A second call with the same arguments loads the file.

Qualities:

- a behavior level the env knows (``env.behavior_policy(quality)``): ``random``, ``medium``, ``expert``;
- ``medium-expert``: half the transitions from ``medium``, half from ``expert`` (OMIGA/D4RL naming);
- ``medium-replay`` (multi-agent MuJoCo): rollouts of every TD3 checkpoint up to ``medium`` in equal shares
  (a stand-in for the replay buffer the papers record while training up to medium performance);
- Bridge's ``optimal`` and ``mixed`` (scripted, episodes-based).

The CLI front end is ``marlkit data build ENV --quality Q [--transitions N | --episodes N] --seed S``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from marlkit.data.card import attach_card, env_family
from marlkit.behavior.weights import load_card
from marlkit.data.dataset import MultiAgentDataset
from marlkit.data.hdf5 import load_hdf5, save_hdf5
from marlkit.data.rollout import collect
from marlkit.data.views import concat
from marlkit.envs.base import MultiAgentEnv
from marlkit.envs.registry import make_env

__all__ = ["build_dataset", "data_dir", "dataset_path", "dataset_card", "DEFAULT_TRANSITIONS"]

DEFAULT_TRANSITIONS = {"mamujoco": 100_000, "mpe": 25_000}
"""Transitions built when no size is given (per family); Bridge defaults to its 500 (+500) episodes."""


def data_dir() -> Path:
    """Where built datasets are cached: ``$MARLKIT_DATA`` or ``~/.cache/marlkit``.

    Raises:
        OutputError: if that path exists and is not a directory.
    """
    path = Path(os.environ.get("MARLKIT_DATA") or Path.home() / ".cache" / "marlkit")
    if path.exists() and not path.is_dir():
        from marlkit.errors import OutputError

        raise OutputError(f"MARLKIT_DATA={path} is a file, not a directory for the dataset cache")
    return path


def dataset_path(env_name: str, quality: str, transitions: int | None, episodes: int | None, seed: int,
                 source: str | None = None) -> Path:
    """Cache location of a built dataset; ``source`` (the env's ``behavior_fingerprint``, e.g. a hash of the
    MuJoCo behavior weights) is part of the name, so retrained behavior policies never reuse stale files."""
    size = f"{transitions}t" if transitions is not None else (f"{episodes}ep" if episodes is not None else "default")
    tag = f"-{source}" if source else ""
    return data_dir() / env_name.replace(":", "_") / f"{quality}-{size}-seed{seed}{tag}.h5"


def dataset_card(ds: MultiAgentDataset) -> dict:
    """Size, episodes, mean ± std return and provenance of a dataset (what ``marlkit data build`` prints)."""
    rets = ds.episode_returns()
    return {"dataset_id": ds.meta.get("dataset_id"), "env": ds.meta.get("env"), "dataset": ds.meta.get("dataset"),
            "transitions": ds.size,
            "episodes": int(rets.size), "return_mean": round(float(rets.mean()), 4) if rets.size else None,
            "return_std": round(float(rets.std()), 4) if rets.size else None,
            "behavior": ds.meta.get("behavior"), "seed": ds.meta.get("seed")}


def _split(total: int, parts: int) -> list[int]:
    base = [total // parts] * parts
    for k in range(total - sum(base)):
        base[k] += 1
    return base


def _rollout(env, quality: str, transitions: int | None, episodes: int | None, seed: int) -> MultiAgentDataset:
    names = getattr(env, "datasets", {})
    if quality not in names:
        raise KeyError(f"unknown dataset quality {quality!r} for {env.spec.name}; valid: {', '.join(sorted(names))}")
    if not hasattr(env, "behavior_policy"):  # envs with their own builders (Bridge)
        ds = env.make_dataset(quality, seed=seed, episodes=episodes) if episodes is not None else \
            env.make_dataset(quality, seed=seed, size=transitions)
        return ds
    if quality == "medium-expert":
        sizes = _split(transitions if transitions is not None else episodes, 2)
        parts = [_rollout(env, q, n if transitions is not None else None, n if episodes is not None else None,
                          seed + k) for k, (q, n) in enumerate(zip(("medium", "expert"), sizes))]
        return concat(parts, name="medium-expert")
    if quality == "medium-replay":
        ckpts = load_card(env.task)["replay_checkpoints"]
        sizes = _split(transitions if transitions is not None else episodes, len(ckpts))
        parts = []
        for k, (ck, n) in enumerate(zip(ckpts, sizes)):
            if n <= 0:
                continue
            kw = {"transitions": n} if transitions is not None else {"episodes": n}
            parts.append(collect(env, env.behavior_policy(ck), seed=seed + 1000 + k, n_envs=16,
                                 meta={"dataset": ck}, **kw))
        ds = concat(parts, name="medium-replay")
        ds.meta["behavior"] = f"TD3 checkpoints {ckpts[0]}..{ckpts[-1]} of {env.task} (up to medium), equal shares"
        return ds
    kw = {"transitions": transitions} if transitions is not None else {"episodes": episodes}
    n_envs = 16 if env.spec.name.startswith("mamujoco") else 64
    return collect(env, env.behavior_policy(quality), seed=seed, n_envs=n_envs, meta={"dataset": quality}, **kw)


def build_dataset(env: str | MultiAgentEnv, quality: str, transitions: int | None = None,
                  episodes: int | None = None, seed: int = 0, cache: bool = True,
                  verbose: bool = False) -> MultiAgentDataset:
    """Roll out ``env``'s behavior policy of ``quality`` into a dataset (cached; deterministic per seed).

    Args:
        env: registry name (``bridge``, ``mpe:simple_spread-3``, ``mamujoco:Hopper-3x1``, ...) or the environment
            itself (what its own ``make_dataset`` passes, so that the env is not built a second time).
        quality: dataset name (see the module docstring).
        transitions / episodes: size; at most one (default: :data:`DEFAULT_TRANSITIONS` of the family).
        seed: seeds the behavior noise and the env resets.
        cache: read/write the file under :func:`dataset_path`.
        verbose: print the dataset card.

    Raises:
        ValueError: if both sizes are given or a size is not positive.
        UnknownNameError / KeyError: for an unknown env or quality (messages list the valid ones).
        FileNotFoundError: if a MuJoCo task has no shipped behavior weights.
    """
    if transitions is not None and episodes is not None:
        raise ValueError("give at most one of transitions= and episodes=")
    for name, v in (("transitions", transitions), ("episodes", episodes)):
        if v is not None and (not isinstance(v, (int, np.integer)) or v <= 0):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if isinstance(env, str):
        env = make_env(env)
    env_name = env.spec.name
    if transitions is None and episodes is None:
        family = env_family(env_name)
        transitions = DEFAULT_TRANSITIONS.get(family)
    source = getattr(env, "behavior_fingerprint", None)
    path = dataset_path(env_name, quality, transitions, episodes, seed, source)
    if cache and path.exists():
        ds = load_hdf5(path)
        ds.check_compatible(env.spec)
        if "dataset_id" not in ds.meta:       # cached before datasets carried cards: versions unknown
            attach_card(ds, env.spec.name, quality, seed=seed, versions={},
                        reference_returns=getattr(env, "reference_returns", None))
        if verbose:
            print(_format_card(dataset_card(ds), path, cached=True))
        return ds
    ds = _rollout(env, quality, transitions, episodes, seed)
    ds.meta.update({"env": env.spec.name, "dataset": quality, "seed": int(seed)})
    if source:
        ds.meta["behavior_fingerprint"] = source
    attach_card(ds, env.spec.name, quality, seed=seed, reference_returns=getattr(env, "reference_returns", None))
    card = dataset_card(ds)
    ds.validate()
    if cache:
        save_hdf5(ds, path, overwrite=True)
    if verbose:
        print(_format_card(card, path if cache else None, cached=False))
    return ds


def _format_card(card: dict, path, cached: bool) -> str:
    lines = [f"{k:>12}: {v}" for k, v in card.items()]
    if path is not None:
        lines.append(f"{'file':>12}: {path}{' (cached)' if cached else ''}")
    return "\n".join(lines)
