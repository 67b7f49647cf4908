"""Datasets: the transition container, HDF5 / flashbax Vault / OMIGA-layout I/O, cards and IDs, on-device
sampling, mixing.

The builders of the sequential environments' datasets and their cache (:func:`~marlkit.data.build.data_dir`)
live in :mod:`marlkit.data.build`, which is not imported here: it sits above the environments (it rolls their
behavior policies out and resolves env names through the registry), while the environments use this package.
"""

from marlkit.data.card import SimulatorVersionWarning, dataset_id
from marlkit.data.dataset import DatasetError, MultiAgentDataset
from marlkit.data.hdf5 import load_hdf5, save_hdf5
from marlkit.data.io import load_file, save_file
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.data.vault import read_vault, write_vault
from marlkit.data.views import concat, mix

__all__ = ["MultiAgentDataset", "DatasetError", "load_hdf5", "save_hdf5", "load_file", "save_file", "read_vault",
           "write_vault", "dataset_id", "SimulatorVersionWarning", "DeviceSampler", "Batch", "concat", "mix"]
