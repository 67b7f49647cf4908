"""The OMIGA HDF5 layout reader (keys s, o, a, r, d; next state from the next row) on files generated here."""

import h5py
import numpy as np
import pytest

from marlkit.data.dataset import DatasetError
from marlkit.data.omiga_format import read_omiga_hdf5, write_omiga_hdf5
from marlkit.envs.registry import make_env


def _write(path, T=7, N=2, obs=3, S=4, A=2, d=None, r_cols=1, **override):
    rng = np.random.default_rng(0)
    arrays = {
        "s": np.arange(T, dtype=np.float32)[:, None].repeat(S, 1),       # row index as the state
        "o": rng.normal(size=(T, N, obs)).astype(np.float32),
        "a": rng.uniform(-1, 1, size=(T, N, A)).astype(np.float32),
        "r": np.arange(T, dtype=np.float32)[:, None].repeat(r_cols, 1),
        "d": (np.zeros(T) if d is None else np.asarray(d, float))[:, None],
    }
    arrays.update(override)
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if v is not None:
                f.create_dataset(k, data=v)
    return arrays


def test_next_state_from_next_row_and_terminals(tmp_path):
    path = tmp_path / "omiga.hdf5"
    raw = _write(path, T=7, d=[0, 0, 1, 0, 0, 0, 0], r_cols=2)
    ds = read_omiga_hdf5(path, meta={"dataset": "toy"})
    # the last row (not terminal) has no next row and is dropped
    assert ds.size == 6 and ds.meta["dataset"] == "toy"
    np.testing.assert_array_equal(ds.states[:, 0], [0, 1, 2, 3, 4, 5])
    # next state = next row inside an episode; a terminal row keeps its own (never bootstrapped)
    np.testing.assert_array_equal(ds.next_states[:, 0], [1, 2, 2, 4, 5, 6])
    np.testing.assert_array_equal(ds.next_observations[0], raw["o"][1])
    assert ds.terminals.tolist() == [False, False, True, False, False, False]
    assert ds.episode_starts.tolist() == [True, False, False, True, False, False]
    np.testing.assert_array_equal(ds.rewards, np.arange(6))              # equal per-agent columns -> team reward
    np.testing.assert_array_equal(ds.actions, raw["a"][:6])


def test_time_limit_marks_timeouts(tmp_path):
    path = tmp_path / "omiga.hdf5"
    _write(path, T=7, d=[0, 0, 0, 0, 0, 0, 1])
    ds = read_omiga_hdf5(path, max_episode_steps=3)
    assert ds.timeouts.tolist() == [False, False, True, False, False, True, False]
    assert ds.episode_starts.tolist() == [True, False, False, True, False, False, True]
    np.testing.assert_array_equal(ds.next_states[:, 0], [1, 2, 2, 4, 5, 5, 6])
    assert ds.terminals[-1]


def test_errors_name_the_problem(tmp_path):
    path = tmp_path / "bad.hdf5"
    _write(path, d=None, s=None)
    with pytest.raises(DatasetError, match="'s'"):
        read_omiga_hdf5(path)
    _write(path, r=np.stack([np.arange(7), np.zeros(7)], 1).astype(np.float32))
    with pytest.raises(DatasetError, match="per-agent"):
        read_omiga_hdf5(path)
    _write(path, a=np.zeros((6, 2, 2), np.float32))
    with pytest.raises(DatasetError, match="'a'"):
        read_omiga_hdf5(path)
    _write(path, d=[0, 2, 0, 0, 0, 0, 0])
    with pytest.raises(DatasetError, match="0/1"):
        read_omiga_hdf5(path)
    with pytest.raises(FileNotFoundError):
        read_omiga_hdf5(tmp_path / "none.hdf5")


def test_round_trip_through_the_layout(tmp_path):
    env = make_env("bridge")
    ds = env.make_dataset("mixed", episodes=20)
    path = write_omiga_hdf5(ds, tmp_path / "bridge.hdf5")
    back = read_omiga_hdf5(path, max_episode_steps=env.spec.episode_limit)
    assert back.size == ds.size and back.discrete
    np.testing.assert_array_equal(back.actions, ds.actions)
    np.testing.assert_array_equal(back.terminals, ds.terminals)
    np.testing.assert_array_equal(back.timeouts, ds.timeouts)
    inner = ~(ds.terminals | ds.timeouts)
    np.testing.assert_allclose(back.next_states[inner], ds.next_states[inner])
    np.testing.assert_allclose(back.episode_returns(), ds.episode_returns(), rtol=1e-6)
    back.check_compatible(env.spec)
