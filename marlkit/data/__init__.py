"""Datasets: the transition container, HDF5 I/O, on-device sampling, mixing.

The builders of the sequential environments' datasets and their cache (:func:`~marlkit.data.build.data_dir`)
live in :mod:`marlkit.data.build`, which is not imported here: it sits above the environments (it rolls their
behavior policies out and resolves env names through the registry), while the environments use this package.
"""

from marlkit.data.dataset import DatasetError, MultiAgentDataset
from marlkit.data.hdf5 import load_hdf5, save_hdf5
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.data.views import concat, mix

__all__ = ["MultiAgentDataset", "DatasetError", "load_hdf5", "save_hdf5", "DeviceSampler", "Batch", "concat", "mix"]
