"""Datasets: the transition container, HDF5 I/O, on-device sampling, mixing."""

from marlkit.data.dataset import DatasetError, MultiAgentDataset
from marlkit.data.hdf5 import load_hdf5, save_hdf5
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.data.views import concat, mix

__all__ = ["MultiAgentDataset", "DatasetError", "load_hdf5", "save_hdf5", "DeviceSampler", "Batch", "concat", "mix"]
