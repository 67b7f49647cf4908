"""One entry point for every on-disk dataset format marlkit reads and writes.

=========== ===================================== ===============================================
format      what it is                            reader / writer
=========== ===================================== ===============================================
``hdf5``    marlkit's HDF5 schema (``.h5``)       :func:`marlkit.data.hdf5.load_hdf5` / ``save_hdf5``
``vault``   a flashbax Vault directory (OG-MARL)  :func:`marlkit.data.vault.read_vault` / ``write_vault``
``omiga``   OMIGA's HDF5 layout (``s, o, a, r, d``) :func:`marlkit.data.omiga_format.read_omiga_hdf5` / ``write_omiga_hdf5``
=========== ===================================== ===============================================

The format is recognised from the file itself (a directory with a ``metadata.json`` is a Vault; an HDF5 file
with the keys ``s, o, a, r, d`` and without marlkit's ``observations`` is in the OMIGA layout).
"""

from __future__ import annotations

import os
from pathlib import Path

from marlkit.data.dataset import DatasetError, MultiAgentDataset

__all__ = ["FORMATS", "detect_format", "is_dataset_path", "load_file", "save_file"]

FORMATS = ("hdf5", "vault", "omiga")


def is_dataset_path(text: str) -> bool:
    """True if ``text`` names a dataset on disk rather than a dataset name: an existing path, a path with a
    directory separator, or a name ending in ``.h5``/``.hdf5``/``.vlt``."""
    return (Path(text).exists() or os.path.sep in text or (os.path.altsep or "\0") in text
            or text.endswith((".h5", ".hdf5", ".vlt")))


def detect_format(path: str | os.PathLike) -> str:
    """``"hdf5"``, ``"vault"`` or ``"omiga"`` for an existing dataset at ``path``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        DatasetError: if it is none of the formats (says what was found).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset {path} does not exist")
    if path.is_dir():
        from marlkit.data.vault import is_vault

        if is_vault(path):
            return "vault"
        raise DatasetError(f"{path} is a directory but not a flashbax Vault (no metadata.json in it or in its "
                           f"sub-directories)")
    import h5py

    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
    except OSError as exc:
        raise DatasetError(f"{path} is not a readable HDF5 file (truncated or corrupt?): {exc}") from None
    if "observations" in keys:
        return "hdf5"
    if {"s", "o", "a", "r", "d"} <= keys:
        return "omiga"
    raise DatasetError(f"{path}: HDF5 file with keys {sorted(keys)} is neither a marlkit dataset (observations, "
                       f"states, actions, ...) nor in the OMIGA layout (s, o, a, r, d)")


def load_file(path: str | os.PathLike, max_episode_steps: int | None = None, meta: dict | None = None
              ) -> MultiAgentDataset:
    """Read a dataset in any of :data:`FORMATS` (recognised by :func:`detect_format`).

    Args:
        path: an ``.h5`` file or a Vault directory.
        max_episode_steps: OMIGA layout only: the time limit that marks timeouts (1000 for MuJoCo).
        meta: provenance merged into ``meta`` (Vault and OMIGA layouts, which carry no marlkit card).

    Raises:
        FileNotFoundError / DatasetError: as the format's reader; ImportError for a Vault without flashbax.
    """
    fmt = detect_format(path)
    if fmt == "vault":
        from marlkit.data.vault import read_vault

        return read_vault(path, meta=meta)
    if fmt == "omiga":
        from marlkit.data.omiga_format import read_omiga_hdf5

        return read_omiga_hdf5(path, max_episode_steps=max_episode_steps, meta=meta)
    from marlkit.data.hdf5 import load_hdf5

    ds = load_hdf5(path)
    ds.meta.update(meta or {})
    return ds


def save_file(dataset: MultiAgentDataset, path: str | os.PathLike, fmt: str | None = None,
              overwrite: bool = False) -> Path:
    """Write ``dataset`` atomically as ``fmt`` (default: ``vault`` for a path ending in ``.vlt`` or a
    ``.vlt`` parent directory, else ``hdf5``).

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.
        ValueError: for an unknown ``fmt``, or a Vault path ending in ``.h5``.
    """
    path = Path(path)
    if fmt is None:
        fmt = "vault" if path.suffix == ".vlt" or path.parent.suffix == ".vlt" else "hdf5"
    if fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; valid: {', '.join(FORMATS)}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if fmt == "vault":
        if path.suffix in (".h5", ".hdf5"):
            raise ValueError(f"a Vault is a directory; {path} ends in {path.suffix} "
                             f"(give e.g. task.vlt/{path.stem})")
        from marlkit.data.vault import write_vault

        return write_vault(dataset, path, overwrite=overwrite)
    if fmt == "omiga":
        from marlkit.data.omiga_format import write_omiga_hdf5

        return write_omiga_hdf5(dataset, path, overwrite=overwrite)
    from marlkit.data.hdf5 import save_hdf5

    return save_hdf5(dataset, path, overwrite=overwrite)
