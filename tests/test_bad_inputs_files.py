"""Hostile files: altered datasets and hand-edited checkpoints are refused with an error naming the file and
the field or key, and a file written by marlkit round-trips with every field's checksum verified."""

import warnings

import h5py
import numpy as np
import pytest
import torch

from marlkit.checkpoint import CheckpointError, load_checkpoint, make_header, read_header, save_checkpoint
from marlkit.data import DatasetError, load_hdf5, save_hdf5
from marlkit.data.hdf5 import UnverifiedDatasetWarning, dataset_fingerprint, field_checksum
from marlkit.data.sampler import DeviceSampler
from marlkit.envs import make_env
from marlkit.train import build_algo
from tests.helpers import toy_dataset

FIELDS = ["observations", "states", "actions", "rewards", "next_observations", "next_states", "terminals",
          "timeouts", "episode_starts", "avail_actions", "next_avail_actions"]
FLOAT_FIELDS = ["observations", "states", "rewards", "next_observations", "next_states"]


@pytest.fixture
def toy_file(tmp_path):
    return save_hdf5(toy_dataset(T=20), tmp_path / "toy.h5")


def test_written_file_carries_every_checksum_and_reads_without_warning(toy_file):
    with h5py.File(toy_file, "r") as f:
        assert all(f[k].attrs["sha256"] == field_checksum(f[k][()]) for k in FIELDS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_hdf5(toy_file).size == 20


def test_dataset_fingerprint_follows_the_arrays(toy_file):
    a, b = load_hdf5(toy_file), load_hdf5(toy_file)
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    b.rewards[0] += 1.0
    assert dataset_fingerprint(a) != dataset_fingerprint(b)


@pytest.mark.parametrize("field", FIELDS)
def test_changed_value_fails_its_checksum(toy_file, field):
    with h5py.File(toy_file, "a") as f:
        arr = f[field][()]
        flat = arr.reshape(-1)
        flat[1] = (not flat[1]) if arr.dtype == bool else flat[1] + 1
        f[field][...] = arr
    with pytest.raises(DatasetError, match=f"field '{field}' does not match its checksum"):
        load_hdf5(toy_file)


def test_flipped_byte_in_the_file_is_caught(tmp_path):
    ds = toy_dataset(T=200)
    path = save_hdf5(ds, tmp_path / "raw.h5")        # small fields are stored uncompressed
    raw = bytearray(path.read_bytes())
    needle = ds.rewards[100:104].tobytes()
    at = raw.find(needle)
    assert at > 0
    raw[at + 1] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="'rewards' does not match its checksum"):
        load_hdf5(path)


def test_file_without_checksums_still_reads_with_a_warning(toy_file):
    with h5py.File(toy_file, "a") as f:
        for k in FIELDS:
            del f[k].attrs["sha256"]
    with pytest.warns(UnverifiedDatasetWarning, match="carry no checksum"):
        assert load_hdf5(toy_file).size == 20


@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_float64_value_beyond_float32_refused(toy_file, field):
    with h5py.File(toy_file, "a") as f:
        arr = f[field][()].astype(np.float64)
        arr.reshape(-1)[0] = -3e39
        del f[field]
        f.create_dataset(field, data=arr)
    with pytest.raises(DatasetError, match=f"{field} contains 1 value\\(s\\) beyond float32's range"):
        load_hdf5(toy_file)


def test_continuous_action_beyond_float32_refused():
    ds = toy_dataset(act_dim=2)
    acts = ds.actions.astype(np.float64)
    acts[0, 0, 0] = 1e300
    with pytest.raises(DatasetError, match="actions contains 1 value\\(s\\) beyond float32"):
        ds.replace(actions=acts)


@pytest.mark.parametrize("field", ["observations", "rewards", "terminals", "avail_actions"])
def test_field_that_is_a_group(toy_file, field):
    with h5py.File(toy_file, "a") as f:
        del f[field]
        f.create_group(field)
    with pytest.raises(DatasetError, match=f"field '{field}' is an HDF5 group, not an array"):
        load_hdf5(toy_file)


@pytest.mark.parametrize("field,shape", [("rewards", (10**13,)), ("observations", (10**11, 2, 3))])
def test_field_declaring_more_rows_than_memory(toy_file, field, shape):
    with h5py.File(toy_file, "a") as f:
        del f[field]
        f.create_dataset(field, shape=shape, dtype="f4", chunks=True)
    with pytest.raises(DatasetError, match=f"field '{field}' declares shape .* more than this machine's memory"):
        load_hdf5(toy_file)


# ---------------------------------------------------------------- checkpoints
@pytest.fixture
def ckpt(tmp_path):
    env = make_env("xor")
    algo = build_algo("bc", env.spec, {"hidden": (8,), "batch_size": 8})
    data = env.make_dataset("a", size=32)
    sampler = DeviceSampler(data, algo.device, seed=0)
    algo.setup(sampler)
    for _ in range(3):
        algo.train_step(sampler)
    header = make_header(algo, env.spec.name, "fingerprint")
    path = save_checkpoint(tmp_path / "checkpoint.pt", algo, sampler, 3, header)
    return path, algo, sampler, header


def _edit(path, fn):
    payload = torch.load(path, weights_only=True)
    payload = fn(payload)
    torch.save(payload, path)
    return path


def _set(key, value):
    def fn(p):
        p[key] = value
        return p
    return fn


def _drop(key):
    def fn(p):
        del p[key]
        return p
    return fn


def _algo_entry(fn_entry):
    def fn(p):
        fn_entry(p["algo"])
        return p
    return fn


def _first_weight_wrong_shape(state):
    k = next(k for k, v in state.items() if torch.is_tensor(v) and v.ndim == 2)
    state[k] = torch.zeros(state[k].shape[0] + 1, state[k].shape[1])


def _first_weight_missing(state):
    del state[next(k for k, v in state.items() if torch.is_tensor(v) and v.ndim == 2)]


def _bad_sampler_generator(p):
    p["generators"]["sampler"] = torch.zeros(3, dtype=torch.uint8)
    return p


def _bad_rng(p):
    p["rng"]["torch"] = torch.zeros(2, dtype=torch.uint8)
    return p


def _bad_optimizer(p):
    k = next(iter(p["optimizers"]))
    p["optimizers"][k] = {"state": {}, "param_groups": []}
    return p


def _header_missing_env(p):
    p["header"] = '{"algo": "bc", "config": {}, "dataset": "x"}'
    return p


CKPT_CASES = [
    ("header_not_json", _set("header", "{not json"), "header is not a JSON object"),
    ("header_json_list", _set("header", "[1, 2]"), "header is not a JSON object"),
    ("header_not_a_string", _set("header", 7), "header is not a JSON object"),
    ("header_missing_env", _header_missing_env, "header is not a JSON object"),
    ("step_negative", _set("step", -5), "step must be a non-negative integer, got -5"),
    ("step_string", _set("step", "3"), "step must be a non-negative integer"),
    ("step_bool", _set("step", True), "step must be a non-negative integer"),
    ("step_float", _set("step", 3.0), "step must be a non-negative integer"),
    ("step_not_update_counter", _set("step", 99), "step 99 disagrees with the algorithm's update counter 3"),
    ("missing_header", _drop("header"), "lacks key\\(s\\) \\['header'\\]"),
    ("missing_step", _drop("step"), "lacks key\\(s\\) \\['step'\\]"),
    ("missing_algo", _drop("algo"), "lacks key\\(s\\) \\['algo'\\]"),
    ("missing_optimizers", _drop("optimizers"), "lacks key\\(s\\) \\['optimizers'\\]"),
    ("missing_generators", _drop("generators"), "lacks key\\(s\\) \\['generators'\\]"),
    ("missing_rng", _drop("rng"), "lacks key\\(s\\) \\['rng'\\]"),
    ("top_level_list", lambda p: [p], "holds a list, not a marlkit checkpoint"),
    ("top_level_tensor", lambda p: torch.zeros(3), "holds a Tensor, not a marlkit checkpoint"),
    ("top_level_int", lambda p: 5, "holds a int, not a marlkit checkpoint"),
    ("algo_not_a_dict", _set("algo", [1, 2]), "algo must be a dict"),
    ("rng_not_a_dict", _set("rng", 3), "rng must be a dict"),
    ("weight_wrong_shape", _algo_entry(_first_weight_wrong_shape), "networks do not fit this algorithm"),
    ("weight_missing", _algo_entry(_first_weight_missing), "networks do not fit this algorithm"),
    ("bad_sampler_generator", _bad_sampler_generator, "generator state does not fit"),
    ("bad_optimizer_state", _bad_optimizer, "optimizer or generator state does not fit"),
    ("bad_rng_state", _bad_rng, "random-number generator state is malformed"),
]


@pytest.mark.parametrize("fn,match", [c[1:] for c in CKPT_CASES], ids=[c[0] for c in CKPT_CASES])
def test_hand_edited_checkpoint_refused(ckpt, fn, match):
    path, algo, sampler, header = ckpt
    _edit(path, fn)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path, algo, sampler, header)


def test_malicious_pickle_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    path = tmp_path / "evil.pt"
    torch.save({"header": "{}", "x": Evil()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="refused \\(loading it could run code\\)|unreadable"):
        read_header(path)


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9], ids=["empty", "third", "most"])
def test_truncated_checkpoint(ckpt, keep):
    path = ckpt[0]
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="unreadable"):
        read_header(path)


def test_checkpoint_directory_instead_of_file(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        read_header(tmp_path)
