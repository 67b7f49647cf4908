"""Loading a dataset for training keeps one copy of the data: the CPU sampler's tensors are views of the arrays
read from the HDF5 file (no second copy), and the memory benchmark's load measurement runs (not timed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from marlkit.data import DeviceSampler, load_hdf5, save_hdf5
from tests.helpers import toy_dataset


def test_cpu_sampler_shares_memory_with_the_loaded_arrays(tmp_path):
    path = save_hdf5(toy_dataset(T=5000, N=3, obs_dim=7, state_dim=5, act_dim=2, episode_len=50), tmp_path / "d.h5")
    ds = load_hdf5(path)
    sampler = DeviceSampler(ds, "cpu")
    for name in ("observations", "next_observations", "states", "next_states", "actions", "rewards"):
        arr = getattr(ds, name)
        assert arr.dtype == np.float32
        assert np.shares_memory(sampler.tensors[name].numpy(), arr), f"{name} was copied"
    batch = sampler.sample(4)  # minibatches are gathered copies, not views into the store
    assert not np.shares_memory(batch["observations"].numpy(), ds.observations)


def test_data_build_load_measurement_small(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import data_build

    path = save_hdf5(toy_dataset(T=2000, N=2, obs_dim=4, state_dim=3, act_dim=1, episode_len=20), tmp_path / "d.h5")
    r = data_build.measure_load(path, "cpu")
    assert r["transitions"] == 2000 and r["dataset_mb"] > 0
    assert all(r["shares_memory"][k] for k in ("observations", "next_observations", "states", "actions"))
    lines = data_build.markdown_section({"build": {"env": "toy", "quality": "q", "transitions": 2000, "wall_s": 1.0,
                                                   "cpu_s": 1.0, "peak_rss_mb": 1.0, "file_mb": 0.1}, "load": r})
    assert any("load" in line for line in lines)
