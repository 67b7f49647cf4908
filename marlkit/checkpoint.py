"""Checkpoints that never unpickle code, are written atomically, and refuse to load into the wrong run.

A checkpoint is one file written with ``torch.save`` and read with ``torch.load(weights_only=True)``: only
tensors, numbers, strings and containers of them. It holds

- ``algo``: the algorithm's ``state_dict`` (all networks, targets and mixers, the update counter);
- ``optimizers``: every optimizer's ``state_dict``;
- ``generators``: states of ``torch.Generator`` attributes of the algorithm and of the sampler;
- ``rng``: Python, NumPy and torch global RNG states;
- ``step``: the number of updates done;
- ``header``: a JSON string with the algorithm name and config, env, dataset fingerprint and marlkit version.

Resuming at step k and training on gives, on CPU with a fixed thread count, bit-identical parameters and
metrics to the uninterrupted run (tested for every algorithm).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from marlkit import __version__
from marlkit.errors import OutputError, describe_os_error
from marlkit.utils import atomic_path

__all__ = ["CheckpointError", "dataset_fingerprint", "load_checkpoint", "read_header", "save_checkpoint"]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used for this run (mismatch, corruption, missing file)."""


def dataset_fingerprint(dataset) -> str:
    """SHA-256 over every field's dtype, shape and bytes (hex string, 16 chars)."""
    h = hashlib.sha256()
    for name, arr in dataset.fields().items():
        arr = np.ascontiguousarray(arr)
        h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:16]


def _rng_to_tensors() -> dict[str, Any]:
    py = random.getstate()
    np_state = np.random.get_state()
    out = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _rng_from_tensors(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _generators(obj) -> dict[str, torch.Generator]:
    return {k: v for k, v in vars(obj).items() if isinstance(v, torch.Generator)}


def make_header(algo, env_name: str, fingerprint: str) -> dict[str, Any]:
    """The identity of a run that a checkpoint must match to be loaded."""
    return {"algo": algo.name, "config": algo.config.to_dict(), "env": env_name, "dataset": fingerprint,
            "marlkit_version": __version__}


_KEYS = ("header", "step", "algo", "optimizers", "generators", "rng")


def save_checkpoint(path: str | os.PathLike, algo, sampler, step: int, header: dict[str, Any]) -> Path:
    """Atomically write the full training state to ``path`` (temp file in the same folder, then rename).

    Raises:
        OutputError: if the file cannot be written (no space left on the device, no permission, ...): the
            message says why, and the previous checkpoint at ``path`` is left intact.
    """
    path = Path(path)
    payload = {
        "header": json.dumps(header, sort_keys=True),
        "step": int(step),
        "algo": algo.state_dict(),
        "optimizers": {k: opt.state_dict() for k, opt in algo.optimizers().items()},
        "generators": {**{f"algo.{k}": g.get_state() for k, g in _generators(algo).items()},
                       "sampler": sampler.generator.get_state()},
        "rng": _rng_to_tensors(),
    }
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except OSError as exc:
        err = OutputError(f"could not write checkpoint {path}: {describe_os_error(exc)}; the previous "
                          f"checkpoint there (if any) is intact")
        err.errno = exc.errno
        raise err from None
    except RuntimeError as exc:  # torch.save reports a failed write of its zip container as a RuntimeError
        raise OutputError(f"could not write checkpoint {path}: {exc}; the previous checkpoint there (if any) "
                          f"is intact") from None
    return path


def _read(path: Path) -> dict[str, Any]:
    """The payload of a checkpoint file, checked for its layout: a dict with every key, a JSON-object header
    naming algo, config, env and dataset, and a non-negative integer step."""
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory without a checkpoint.pt")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt/truncated files raise a variety of errors; report them as one kind
        if "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
            raise CheckpointError(f"checkpoint {path} holds Python objects besides tensors and numbers; refused "
                                  f"(loading it could run code)") from None
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated, corrupt or not a marlkit checkpoint; "
                              f"{type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, not a marlkit checkpoint")
    missing = [k for k in _KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks key(s) {missing} (not a complete marlkit checkpoint)")
    try:
        header = json.loads(payload["header"]) if isinstance(payload["header"], str) else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or not {"algo", "config", "env", "dataset"} <= set(header) \
            or not isinstance(header["config"], dict):
        raise CheckpointError(f"checkpoint {path}: header is not a JSON object with algo, config, env and dataset")
    step = payload["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint {path}: step must be a non-negative integer, got {step!r}")
    for key in ("algo", "optimizers", "generators", "rng"):
        if not isinstance(payload[key], dict):
            raise CheckpointError(f"checkpoint {path}: {key} must be a dict, got {type(payload[key]).__name__}")
    payload["header"] = header
    return payload


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a checkpoint (algorithm, config, env, dataset fingerprint) plus its ``step``.

    Raises:
        CheckpointError: if the file is missing, unreadable or not laid out as a marlkit checkpoint.
    """
    payload = _read(Path(path))
    return {**payload["header"], "step": payload["step"]}


def load_checkpoint(path: str | os.PathLike, algo, sampler, header: dict[str, Any]) -> int:
    """Restore the training state saved by :func:`save_checkpoint` into ``algo`` and ``sampler``.

    Returns:
        The number of updates already done.

    Raises:
        CheckpointError: if the file is missing/corrupt/not laid out as a checkpoint (header not JSON, missing
            keys, negative step, step not the algorithm's update counter), its algorithm, config, env or
            dataset fingerprint differs from ``header`` (the message lists every difference), or its tensors,
            optimizer or generator states do not fit the run.
    """
    path = Path(path)
    payload = _read(path)
    saved = payload["header"]
    diffs = []
    for key in ("algo", "env", "dataset"):
        if saved.get(key) != header.get(key):
            diffs.append(f"{key}: checkpoint {saved.get(key)!r} vs run {header.get(key)!r}")
    for key in sorted(set(saved.get("config", {})) | set(header.get("config", {}))):
        a, b = saved.get("config", {}).get(key), header.get("config", {}).get(key)
        if a != b:
            diffs.append(f"config.{key}: checkpoint {a!r} vs run {b!r}")
    if diffs:
        raise CheckpointError(f"checkpoint {path} does not match this run: " + "; ".join(diffs))
    try:
        algo.load_state_dict(payload["algo"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: its networks do not fit this algorithm "
                              f"({_first_line(exc)})") from None
    counter = payload["algo"].get("num_updates")
    if isinstance(counter, torch.Tensor) and counter.numel() == 1 and int(counter) != payload["step"]:
        raise CheckpointError(f"checkpoint {path}: step {payload['step']} disagrees with the algorithm's update "
                              f"counter {int(counter)}")
    opts = algo.optimizers()
    if set(opts) != set(payload["optimizers"]):
        raise CheckpointError(f"checkpoint {path} has optimizers {sorted(payload['optimizers'])}, algorithm has "
                              f"{sorted(opts)}")
    try:
        for k, opt in opts.items():
            opt.load_state_dict(payload["optimizers"][k])
        gens = payload["generators"]
        for k, g in _generators(algo).items():
            g.set_state(gens[f"algo.{k}"])
        sampler.generator.set_state(gens["sampler"])
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointError(f"checkpoint {path}: optimizer or generator state does not fit this run "
                              f"({_first_line(exc)})") from None
    try:
        _rng_from_tensors(payload["rng"])
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path}: random-number generator state is malformed "
                              f"({_first_line(exc)})") from None
    return int(payload["step"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
