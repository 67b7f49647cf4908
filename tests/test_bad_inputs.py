"""Bad inputs: each gets a clear error (type and message asserted) and leaves every existing file untouched."""

import hashlib

import h5py
import numpy as np
import pytest

from marlkit.algos.base import ConfigError
from marlkit.data import DatasetError, load_hdf5, mix, save_hdf5
from marlkit.envs import UnknownNameError, load_dataset, make_env
from marlkit.train import RunConfig, build_algo, run
from marlkit.utils import seed_everything
from tests.helpers import toy_dataset


def _snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def good_file(tmp_path):
    path = save_hdf5(make_env("xor").make_dataset("b", size=64), tmp_path / "xor_b.h5")
    return path


def _rewrite(path, **changes):
    """Copy the good file with some keys replaced (None deletes the key)."""
    bad = path.with_name("bad.h5")
    with h5py.File(path, "r") as src, h5py.File(bad, "w") as dst:
        for k in src:
            if k in changes:
                continue
            dst.create_dataset(k, data=src[k][()])
            dst[k].attrs.update(src[k].attrs)  # checksums of the fields left as they were
        for k, v in changes.items():
            if v is not None:
                dst.create_dataset(k, data=v)
        for k, v in src.attrs.items():
            dst.attrs[k] = v
    return bad


def _field(path, key):
    with h5py.File(path, "r") as f:
        return f[key][()]


# ---------------------------------------------------------------- files on disk
@pytest.mark.parametrize("key", ["observations", "rewards", "terminals", "episode_starts", "next_states"])
def test_missing_key(good_file, key):
    bad = _rewrite(good_file, **{key: None})
    before = _snapshot(good_file.parent)
    with pytest.raises(DatasetError, match=f"missing key.*{key}"):
        load_hdf5(bad)
    assert _snapshot(good_file.parent) == before


def test_truncated_file(good_file):
    data = good_file.read_bytes()
    bad = good_file.with_name("trunc.h5")
    bad.write_bytes(data[: len(data) // 3])
    before = _snapshot(good_file.parent)
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        load_hdf5(bad)
    assert _snapshot(good_file.parent) == before


def test_not_an_hdf5_file(tmp_path):
    bad = tmp_path / "junk.h5"
    bad.write_text("this is not hdf5")
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        load_hdf5(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_hdf5(tmp_path / "nothing.h5")


@pytest.mark.parametrize("key,fill", [("rewards", np.nan), ("rewards", np.inf), ("observations", np.nan),
                                      ("states", -np.inf), ("next_observations", np.nan), ("next_states", np.nan)])
def test_non_finite_values(good_file, key, fill):
    arr = _field(good_file, key).astype(np.float32)
    arr.reshape(-1)[3] = fill
    bad = _rewrite(good_file, **{key: arr})
    before = _snapshot(good_file.parent)
    with pytest.raises(DatasetError, match=f"{key} contains 1 NaN/inf"):
        load_hdf5(bad)
    assert _snapshot(good_file.parent) == before


def test_nan_continuous_action():
    ds = toy_dataset(act_dim=2)
    acts = ds.actions.copy()
    acts[0, 0, 0] = np.nan
    with pytest.raises(DatasetError, match="actions contains 1 NaN/inf"):
        ds.replace(actions=acts)


def test_inconsistent_lengths(good_file):
    bad = _rewrite(good_file, rewards=_field(good_file, "rewards")[:-1])
    with pytest.raises(DatasetError, match="rewards must have shape.*inconsistent length"):
        load_hdf5(bad)


def test_wrong_dtype_actions(good_file):
    bad = _rewrite(good_file, actions=_field(good_file, "actions").astype("S1"))
    with pytest.raises(DatasetError, match="discrete actions must be integers"):
        load_hdf5(bad)


def test_non_boolean_flags(good_file):
    t = _field(good_file, "terminals").astype(np.int64)
    t[0] = 2
    with pytest.raises(DatasetError, match="terminals must be boolean"):
        load_hdf5(_rewrite(good_file, terminals=t))


@pytest.mark.parametrize("attr,value,match", [
    ("n_agents", 3, "n_agents=3 but observations hold 2"),
    ("schema_version", 99, "schema version 99 is newer"),
], ids=["attrs_disagree_with_arrays", "newer_schema_refused"])
def test_bad_file_attribute(good_file, attr, value, match):
    bad = _rewrite(good_file)
    with h5py.File(bad, "a") as f:
        f.attrs[attr] = value
    with pytest.raises(DatasetError, match=match):
        load_hdf5(bad)


def test_failed_write_keeps_existing_file(tmp_path, good_file):
    before = _snapshot(tmp_path)
    ds = make_env("xor").make_dataset("a", size=16)
    with pytest.raises(FileExistsError):
        save_hdf5(ds, good_file)
    ds.meta["unserialisable"] = object()  # json.dumps fails mid-write: nothing may be left behind
    with pytest.raises(TypeError):
        save_hdf5(ds, good_file, overwrite=True)
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------- dataset vs env
@pytest.mark.parametrize("shape,match", [
    ({"N": 3, "obs_dim": 1, "state_dim": 1, "n_actions": 2}, "dataset has 3 agents but env 'xor' has 2"),
    ({"N": 2, "obs_dim": 1, "state_dim": 1, "act_dim": 1}, "continuous actions but env 'xor'"),
    ({"N": 2, "obs_dim": 4, "state_dim": 1, "n_actions": 2}, "obs_dim 4 != env 'xor' obs_dim 1"),
    ({"N": 2, "obs_dim": 1, "state_dim": 1, "n_actions": 3}, "out of range for env 'xor' with 2 actions"),
], ids=["agent_count", "action_space", "obs_dim", "action_out_of_range"])
def test_dataset_does_not_fit_env(tmp_path, shape, match):
    path = save_hdf5(toy_dataset(**shape), tmp_path / "data.h5")
    with pytest.raises(DatasetError, match=match):
        load_dataset(make_env("xor"), str(path))


# ---------------------------------------------------------------- container invariants
def test_episode_starts_inconsistent_with_terminals():
    ds = toy_dataset(T=10, episode_len=5)
    starts = ds.episode_starts.copy()
    starts[5] = False
    with pytest.raises(DatasetError, match="episode_starts inconsistent with terminals/timeouts at index 5"):
        ds.replace(episode_starts=starts)


def test_first_transition_must_start_an_episode():
    ds = toy_dataset(T=10, episode_len=5)
    starts = ds.episode_starts.copy()
    starts[0] = False
    with pytest.raises(DatasetError, match=r"episode_starts\[0\] must be True"):
        ds.replace(episode_starts=starts)


def test_terminal_and_timeout_at_once():
    ds = toy_dataset(T=10, episode_len=5)
    with pytest.raises(DatasetError, match="both terminal and timeout"):
        ds.replace(timeouts=ds.terminals.copy())


def test_action_not_available():
    ds = toy_dataset(T=10, n_actions=3)
    avail = ds.avail_actions.copy()
    avail[0, 0, ds.actions[0, 0]] = False
    with pytest.raises(DatasetError, match="not in avail_actions"):
        ds.replace(avail_actions=avail)


def test_row_without_available_action():
    ds = toy_dataset(T=10, n_actions=3)
    avail = ds.avail_actions.copy()
    avail[2, 1] = False
    with pytest.raises(DatasetError, match="avail_actions has a row with no available action"):
        ds.replace(avail_actions=avail)


def test_negative_action():
    ds = toy_dataset(T=10)
    acts = ds.actions.copy()
    acts[0, 0] = -1
    with pytest.raises(DatasetError, match="non-negative"):
        ds.replace(actions=acts, avail_actions=None, next_avail_actions=None)


def test_empty_dataset():
    ds = toy_dataset(T=10)
    with pytest.raises(DatasetError, match="no transitions"):
        ds.subset(np.array([], dtype=int))


def test_bad_mix_fractions():
    a = make_env("xor").make_dataset("a", size=20)
    with pytest.raises(DatasetError, match="sum to 1"):
        mix([a, a], [0.7, 0.7])


# ---------------------------------------------------------------- names and sizes
def test_unknown_env():
    with pytest.raises(UnknownNameError, match="unknown env 'pong'; valid: .*xor"):
        make_env("pong")


def test_unknown_dataset():
    with pytest.raises(UnknownNameError, match="unknown dataset 'd' for env 'xor'"):
        load_dataset(make_env("xor"), "d")


def test_unknown_algo():
    with pytest.raises(UnknownNameError, match="unknown algo 'dqn'"):
        build_algo("dqn", make_env("xor").spec)


@pytest.mark.parametrize("size", [0, -5])
def test_non_positive_dataset_size(size):
    with pytest.raises(ValueError, match="dataset size must be a positive integer"):
        make_env("xor").make_dataset("a", size=size)


@pytest.mark.parametrize("overrides,match", [
    ({"gamma": 1.5}, "gamma must be in"),
    ({"gamma": -0.1}, "gamma must be in"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"lr": -1e-3}, "lr must be positive"),
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"hidden": ()}, "hidden must be a non-empty tuple"),
    ({"batch_size": 12.5}, "batch_size must be an integer"),
    ({"share_params": "yes"}, "share_params must be true/false"),
    ({"momentum": 0.9}, "unknown hyperparameter"),
])
def test_out_of_range_hyperparameters(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build_algo("bc", make_env("xor").spec, overrides)


@pytest.mark.parametrize("field,value,match", [
    ("steps", 0, "steps must be a positive integer"),
    ("eval_episodes", -1, "eval_episodes must be a positive integer"),
    ("eval_every", -2, "eval_every must be a non-negative integer"),
    ("seed", -1, "seed must be a non-negative integer"),
    ("threads", 0, "threads must be a positive integer"),
])
def test_out_of_range_run_settings(field, value, match):
    with pytest.raises(ConfigError, match=match):
        run("xor", "a", "bc", {"hidden": (8,)}, RunConfig(**{field: value, "progress": False}))


def test_bad_seed_type():
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        seed_everything("7")
