"""HDF5 reading and writing of :class:`~marlkit.data.dataset.MultiAgentDataset` (schema version 1).

Datasets are stored under the same keys as the container's fields; provenance lives in the file's attrs
(``env``, ``dataset``, ``behavior``, ``n_agents``, ``action_space``, ``seed``, ``marlkit_version``,
``schema_version`` and the dataset card of :mod:`marlkit.data.card`: ``dataset_id``, ``simulator_versions``, ...). Writes go to a temporary file in the target directory and are renamed into place, so an
interrupted or failed write never leaves a half-written file and never touches an existing one.

Every field carries a checksum in its own attrs (``sha256``: SHA-256 over its dtype, shape and bytes), written
with the data and verified on every read: a flipped byte is an error naming the field, not a silently changed
value. Files written before checksums existed are still read, with a :class:`UnverifiedDatasetWarning`.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import h5py
import numpy as np

from marlkit import __version__
from marlkit.data.card import check_simulator_versions
from marlkit.data.dataset import OPTIONAL_FIELDS, REQUIRED_FIELDS, DatasetError, MultiAgentDataset
from marlkit.utils import atomic_path

__all__ = ["SCHEMA_VERSION", "UnverifiedDatasetWarning", "dataset_fingerprint", "field_checksum", "load_hdf5",
           "save_hdf5"]

SCHEMA_VERSION = 1
CHECKSUM_ATTR = "sha256"


class UnverifiedDatasetWarning(UserWarning):
    """A dataset file whose fields carry no checksums (written by an older marlkit): read, but not verified."""


def field_checksum(arr: np.ndarray) -> str:
    """SHA-256 (hex) over an array's dtype, shape and bytes: what :func:`save_hdf5` stores per field."""
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{arr.dtype.str}:{arr.shape}".encode())
    h.update(memoryview(arr).cast("B") if arr.size else b"")
    return h.hexdigest()


def dataset_fingerprint(dataset: MultiAgentDataset) -> str:
    """SHA-256 (hex, first 16 digits) over every present field's name and :func:`field_checksum`: equal for two
    datasets exactly when their arrays are (up to a hash collision), whoever built them."""
    h = hashlib.sha256()
    for name, arr in dataset.fields().items():
        h.update(f"{name}={field_checksum(arr)};".encode())
    return h.hexdigest()[:16]


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _read_field(path: Path, f, name: str) -> np.ndarray:
    """One field, checked to be an array that fits in memory and, if it has a checksum, to match it."""
    import h5py

    node = f[name]
    if not isinstance(node, h5py.Dataset):
        raise DatasetError(f"{path}: field {name!r} is an HDF5 {type(node).__name__.lower()}, not an array")
    nbytes = int(np.prod(node.shape, dtype=np.float64) * node.dtype.itemsize)
    memory = _memory_bytes()
    if memory is not None and nbytes > memory:
        raise DatasetError(f"{path}: field {name!r} declares shape {node.shape} ({nbytes / 2**30:.3g} GiB), more "
                           f"than this machine's memory ({memory / 2**30:.3g} GiB)")
    arr = node[()]
    stored = node.attrs.get(CHECKSUM_ATTR)
    if stored is not None:
        if isinstance(stored, bytes):
            stored = stored.decode()
        if field_checksum(arr) != stored:
            raise DatasetError(f"{path}: field {name!r} does not match its checksum (the file was altered or "
                               f"corrupted after it was written)")
    return arr


def save_hdf5(dataset: MultiAgentDataset, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``dataset`` to ``path`` atomically (temp file + rename).

    Every field is stored with its checksum (:func:`field_checksum`) in its attrs.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.
        DatasetError: if the dataset fails validation.
        OSError: if the file cannot be written (nothing is left behind and an existing file is untouched).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.validate()
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name, arr in dataset.fields().items():
                node = f.create_dataset(name, data=arr, compression="gzip" if arr.size > 4096 else None)
                node.attrs[CHECKSUM_ATTR] = field_checksum(arr)
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
        UnverifiedDatasetWarning: if the file's fields carry no checksums (an older marlkit wrote it).
        SimulatorVersionWarning: if the file's card records other simulator package versions than the
            installed ones (naming both; :func:`marlkit.data.card.check_simulator_versions`).

    Raises:
        FileNotFoundError: if the file does not exist.
        DatasetError: if the file is not valid HDF5, lacks a key, a field is not an array (a group), declares
            more data than fits in memory, does not match its checksum, or fails validation.
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
            arrays = {k: _read_field(path, f, k) for k in REQUIRED_FIELDS}
            arrays.update({k: _read_field(path, f, k) for k in OPTIONAL_FIELDS if k in f})
            unverified = [k for k in arrays if CHECKSUM_ATTR not in f[k].attrs]
        except (OSError, KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, DatasetError):
                raise
            raise DatasetError(f"{path}: could not read the data (truncated or corrupt?): {exc}") from None
        if unverified:
            warnings.warn(f"{path}: field(s) {', '.join(unverified)} carry no checksum (written by an older "
                          f"marlkit); read without verification", UnverifiedDatasetWarning, stacklevel=2)
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
