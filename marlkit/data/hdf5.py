"""HDF5 reading and writing of :class:`~marlkit.data.dataset.MultiAgentDataset` (schema version 1).

Datasets are stored under the same keys as the container's fields; provenance lives in the file's attrs
(``env``, ``dataset``, ``behavior``, ``n_agents``, ``action_space``, ``seed``, ``marlkit_version``,
``schema_version`` and the dataset card of :mod:`marlkit.data.card`: ``dataset_id``, ``simulator_versions``, ...). Writes go to a temporary file in the target directory and are renamed into place, so an
interrupted or failed write never leaves a half-written file and never touches an existing one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from marlkit import __version__
from marlkit.data.card import check_simulator_versions
from marlkit.data.dataset import OPTIONAL_FIELDS, REQUIRED_FIELDS, DatasetError, MultiAgentDataset
from marlkit.utils import atomic_path

__all__ = ["SCHEMA_VERSION", "load_hdf5", "save_hdf5"]

SCHEMA_VERSION = 1


def save_hdf5(dataset: MultiAgentDataset, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``dataset`` to ``path`` atomically (temp file + rename).

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.validate()
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name, arr in dataset.fields().items():
                f.create_dataset(name, data=arr, compression="gzip" if arr.size > 4096 else None)
            attrs = {
                "n_agents": dataset.n_agents,
                "action_space": "discrete" if dataset.discrete else "continuous",
                "marlkit_version": __version__,
                "schema_version": SCHEMA_VERSION,
            }
            for key, value in dataset.meta.items():
                attrs.setdefault(key, value)
            for key, value in attrs.items():
                f.attrs[key] = value if isinstance(value, (str, int, float, bool, np.generic)) else json.dumps(value)
    return path


def load_hdf5(path: str | os.PathLike) -> MultiAgentDataset:
    """Read and validate a marlkit HDF5 dataset.

    Warns:
        SimulatorVersionWarning: if the file's card records other simulator package versions than the
            installed ones (naming both; :func:`marlkit.data.card.check_simulator_versions`).

    Raises:
        FileNotFoundError: if the file does not exist.
        DatasetError: if the file is not valid HDF5, lacks a key, or any field fails validation.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset file {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path} is not a readable HDF5 file (truncated or corrupt?): {exc}") from None
    with f:
        missing = [k for k in REQUIRED_FIELDS if k not in f]
        if missing:
            hint = ""
            if all(k in f for k in ("s", "o", "a", "r", "d")):
                hint = (" (this file is in the OMIGA layout: read it with marlkit.data.omiga_format.read_omiga_hdf5"
                        " or convert it with `marlkit data convert SRC DST.h5`)")
            raise DatasetError(f"{path}: missing key(s) {missing}; a marlkit dataset needs {list(REQUIRED_FIELDS)}"
                               f"{hint}")
        try:
            arrays = {k: f[k][()] for k in REQUIRED_FIELDS}
            arrays.update({k: f[k][()] for k in OPTIONAL_FIELDS if k in f})
        except (OSError, KeyError) as exc:
            raise DatasetError(f"{path}: could not read the data (truncated or corrupt?): {exc}") from None
        meta = {}
        for key, value in f.attrs.items():
            if isinstance(value, bytes):
                value = value.decode()
            if isinstance(value, np.generic):
                value = value.item()
            meta[key] = value
    schema = meta.get("schema_version")
    if schema is not None and int(schema) > SCHEMA_VERSION:
        raise DatasetError(f"{path}: schema version {schema} is newer than this marlkit supports ({SCHEMA_VERSION})")
    n_agents = meta.get("n_agents")
    ds = MultiAgentDataset(**arrays, meta=meta)
    if n_agents is not None and int(n_agents) != ds.n_agents:
        raise DatasetError(f"{path}: attrs say n_agents={n_agents} but observations hold {ds.n_agents} agents")
    space = meta.get("action_space")
    if space is not None and space != ("discrete" if ds.discrete else "continuous"):
        raise DatasetError(f"{path}: attrs say action_space={space!r} but the actions array disagrees")
    check_simulator_versions(meta, str(path))
    return ds
