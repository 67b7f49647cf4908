"""Hostile Python API calls: each raises one of marlkit's own errors with a message naming the argument."""

import numpy as np
import pytest
import torch

from marlkit.algos.base import ConfigError
from marlkit.cli import parse_int_list
from marlkit.data import DatasetError
from marlkit.envs import load_dataset, make_env
from marlkit.errors import DeviceError, OutputError, RunExistsError
from marlkit.train import (
    NonFiniteLossError,
    RunConfig,
    _check_finite,
    build_algo,
    fit,
    prepare_out,
    run,
    run_many,
)
from marlkit.utils import MAX_SEED, resolve_device, seed_everything

TINY = {"hidden": (8,)}


@pytest.mark.parametrize("device", ["tpu", "meta", "xla0", "cuda:9", "cpu:x", "", "mps" if not
                                    torch.backends.mps.is_available() else "tpu"],
                         ids=["tpu", "meta", "junk", "cuda_9", "cpu_junk_index", "empty", "mps_absent"])
def test_resolve_device_refuses(device):
    if device == "cuda:9" and torch.cuda.device_count() > 9:
        pytest.skip("ten CUDA devices here")
    with pytest.raises(DeviceError, match="--device"):
        resolve_device(device)


def test_resolve_device_cuda_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.parametrize("field,value,error,match", [
    ("seed", 2**32, ConfigError, "seed must be at most"),
    ("seed", 2**80, ConfigError, "seed must be at most"),
    ("seed", True, ConfigError, "seed must be a non-negative integer"),
    ("seed", 1.0, ConfigError, "seed must be a non-negative integer"),
    ("steps", True, ConfigError, "steps must be a positive integer"),
    ("steps", 2.5, ConfigError, "steps must be a positive integer"),
    ("log_every", 0, ConfigError, "log_every must be a positive integer"),
    ("checkpoint_every", True, ConfigError, "checkpoint_every must be"),
    ("compile", "yes", ConfigError, "compile must be true/false"),
    ("compile_backend", "", ConfigError, "compile_backend must be"),
    ("overwrite", "yes", ConfigError, "overwrite must be true/false"),
    ("device", "tpu", DeviceError, "'tpu' \\(--device\\)"),
    ("device", "meta", DeviceError, "'meta' \\(--device\\)"),
], ids=lambda v: str(v)[:20])
def test_run_config_refuses(field, value, error, match):
    with pytest.raises(error, match=match):
        RunConfig(**{field: value}).validate()


@pytest.mark.parametrize("size", [0, -1, 2.5, True, "64"], ids=["zero", "negative", "float", "bool", "str"])
def test_dataset_size_refused(size):
    with pytest.raises(ConfigError, match="dataset_size"):
        run("xor", "a", "bc", TINY, RunConfig(steps=1, progress=False, threads=1), dataset_size=size)


@pytest.mark.parametrize("seeds,match", [([2**32], "seeds must be integers in"), ([-1], "seeds must be integers"),
                                         ([0, "1"], "seeds must be integers"), ([True], "seeds must be integers")],
                         ids=["above_2_32", "negative", "string", "bool"])
def test_run_many_seeds_refused(seeds, match):
    with pytest.raises(ConfigError, match=match):
        run_many("xor", "a", "bc", TINY, RunConfig(steps=1, progress=False, threads=1), seeds=seeds)


@pytest.mark.parametrize("dataset", [None, 3, "", b"a", ["a"]], ids=["none", "int", "empty", "bytes", "list"])
def test_load_dataset_needs_a_name_or_path(dataset):
    with pytest.raises(DatasetError, match="dataset must be a dataset name, an ID"):
        load_dataset(make_env("xor"), dataset)


@pytest.mark.parametrize("overrides,match", [
    ({"hidden": 64}, "hidden must be a tuple of positive integers such as \\(64, 64\\), got 64"),
    ({"hidden": 64.0}, "hidden must be a tuple"),
    ({"hidden": None}, "hidden must be a tuple"),
    ({"hidden": "64"}, "hidden must be a tuple"),
], ids=["int", "float", "none", "str"])
def test_hidden_not_a_tuple(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build_algo("bc", make_env("xor").spec, overrides)


def test_algorithm_built_for_another_env():
    env = make_env("xor")
    algo = build_algo("bc", make_env("mne").spec, TINY)
    with pytest.raises(ConfigError, match="built for env 'mne' but is trained on env 'xor'"):
        fit(algo, env.make_dataset("a", size=16), env, RunConfig(steps=1, progress=False, threads=1))


def test_networks_too_large():
    with pytest.raises(MemoryError, match="do not fit in memory"):
        build_algo("bc", make_env("xor").spec, {"hidden": (10**12,)})


def test_seed_everything_refuses_huge_seed():
    with pytest.raises(ValueError, match="at most"):
        seed_everything(MAX_SEED + 1)


@pytest.mark.parametrize("text", ["0-20000", "1,2,x", "3-1", "0,0", "-1", f"{2**32}", "0-" + str(2**62)],
                         ids=["too_many", "letter", "reversed", "duplicate", "negative", "above_2_32", "huge_range"])
def test_parse_int_list_refuses(text):
    with pytest.raises(SystemExit, match="--seeds"):
        parse_int_list(text)


def test_non_finite_metric_names_metric_step_and_cause():
    with pytest.raises(NonFiniteLossError, match="non-finite critic_loss = nan at update 12.*likely cause.*alpha"):
        _check_finite({"critic_loss": float("nan")}, 12, {"critic_loss": 1.5})


# ---------------------------------------------------------------- output directories
@pytest.mark.parametrize("name", ["checkpoint.pt", "result.json", "metrics.csv", "evals.jsonl"])
def test_prepare_out_refuses_existing_run(tmp_path, name):
    (tmp_path / name).write_text("keep")
    with pytest.raises(RunExistsError, match="already holds a run.*--resume.*--overwrite"):
        prepare_out(tmp_path)
    assert (tmp_path / name).read_text() == "keep"
    assert prepare_out(tmp_path, resume=str(tmp_path)) == tmp_path and (tmp_path / name).exists()
    prepare_out(tmp_path, overwrite=True)
    assert not (tmp_path / name).exists()


def test_prepare_out_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        prepare_out(tmp_path / "f")


def test_fit_refuses_existing_run(tmp_path):
    env = make_env("xor")
    (tmp_path / "metrics.csv").write_text("step\n1\n")
    with pytest.raises(RunExistsError):
        fit(build_algo("bc", env.spec, TINY), env.make_dataset("a", size=16), env,
            RunConfig(steps=1, progress=False, threads=1, out=str(tmp_path)))
    assert (tmp_path / "metrics.csv").read_text() == "step\n1\n"


def test_float32_overflow_in_memory():
    from tests.helpers import toy_dataset

    ds = toy_dataset()
    with pytest.raises(DatasetError, match="rewards contains 1 value\\(s\\) beyond float32"):
        ds.replace(rewards=np.concatenate([[1e39], ds.rewards[1:].astype(np.float64)]))


@pytest.mark.parametrize("quality,episodes", [("mixed", 3), ("optimal", 2)])
def test_bridge_card_states_the_episodes_built(quality, episodes):
    ds = make_env("bridge").make_dataset(quality, episodes=episodes)
    sources = 2 if quality == "mixed" else 1
    assert ds.episode_returns().size == sources * episodes
    assert f"{episodes} " in ds.meta["behavior"] and "500" not in ds.meta["behavior"]
