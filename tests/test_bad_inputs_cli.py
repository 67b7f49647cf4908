"""Hostile command lines: every one ends in one ``marlkit: error: ...`` line naming the option or file, with exit
status 2 for usage errors and 1 for failures while running, and never a Python traceback."""

import errno
import json
import pathlib

import h5py
import numpy as np
import pytest

from marlkit.cli import main
from marlkit.data import save_hdf5
from marlkit.envs import make_env

TRAIN = ["train", "--env", "xor", "--dataset", "a", "--algo", "bc", "--steps", "2", "--hidden", "8",
         "--eval-episodes", "1", "--threads", "1", "--quiet", "--dataset-size", "32"]


def _train(*extra, dataset=None, algo=None):
    argv = list(TRAIN)
    if dataset is not None:
        argv[argv.index("--dataset") + 1] = dataset
    if algo is not None:
        argv[argv.index("--algo") + 1] = algo
    return argv + list(extra)


def _one_error(capsys, argv, status, match):
    """Run ``argv``; assert the exit status and one error line containing ``match``."""
    assert main(argv) == status
    err = capsys.readouterr().err.strip()
    assert err.startswith("marlkit: error:"), err
    assert "\n" not in err and "Traceback" not in err, err
    assert match in err, err
    return err


# ---------------------------------------------------------------- devices and numbers (usage: status 2)
USAGE = [
    ("device_cuda_absent", _train("--device", "cuda:0"), "--device"),
    ("device_cuda_9", _train("--device", "cuda:9"), "cuda:9"),
    ("device_tpu", _train("--device", "tpu"), "'tpu' (--device)"),
    ("device_meta", _train("--device", "meta"), "'meta' (--device)"),
    ("device_junk", _train("--device", "gpu0"), "'gpu0' (--device)"),
    ("device_cpu_index_junk", _train("--device", "cpu:x"), "(--device)"),
    ("seed_huge", _train("--seed", str(2**70)), "seed must be at most"),
    ("seed_2_32", _train("--seed", str(2**32)), "seed must be at most"),
    ("seed_negative", _train("--seed", "-1"), "seed must be a non-negative integer"),
    ("seeds_huge_range", _train("--seeds", "0-100000000000"), "names more than"),
    ("seeds_too_many_commas", _train("--seeds", ",".join(map(str, range(10001)))), "names more than"),
    ("seeds_above_2_32", _train("--seeds", f"{2**32}"), "at most 2**32 - 1"),
    ("seeds_reversed", _train("--seeds", "5-1"), "--seeds expects"),
    ("seeds_letters", _train("--seeds", "a-b"), "--seeds expects"),
    ("seeds_duplicate", _train("--seeds", "0,0"), "distinct"),
    ("seeds_empty", _train("--seeds", ""), "--seeds expects"),
    ("seed_and_seeds", _train("--seed", "3", "--seeds", "0-1"), "--seed (one run) or --seeds"),
    ("dataset_size_zero", _train("--dataset-size", "0"), "--dataset-size"),
    ("dataset_size_negative", _train("--dataset-size", "-3"), "--dataset-size"),
    ("steps_zero", _train("--steps", "0"), "steps must be a positive integer"),
    ("steps_negative", _train("--steps", "-4"), "steps must be a positive integer"),
    ("eval_episodes_zero", _train("--eval-episodes", "0"), "eval_episodes must be"),
    ("eval_every_negative", _train("--eval-every", "-1"), "eval_every must be"),
    ("threads_zero", _train("--threads", "0"), "threads must be"),
    ("threads_negative", _train("--threads", "-2"), "threads must be"),
    ("checkpoint_every_negative", _train("--checkpoint-every", "-1"), "checkpoint_every must be"),
    ("checkpoint_without_out", _train("--checkpoint-every", "1"), "needs an output directory"),
    ("alphas_letters", _train("--alphas", "x,y"), "--alphas expects numbers"),
    ("alphas_for_bc", _train("--alphas", "1,2"), "no regularization weight"),
    ("alpha_for_bc", _train("--alpha", "1"), "no regularization weight --alpha"),
    ("alpha_nan", _train("--alpha", "nan", algo="omiga"), "alpha must be a finite number"),
    ("lr_negative", _train("--lr", "-1"), "lr must be positive"),
    ("lr_letters", _train("--lr", "fast"), "--lr expects"),
    ("batch_size_zero", _train("--batch-size", "0"), "batch_size must be a positive integer"),
    ("batch_size_float", _train("--batch-size", "1.5"), "--batch-size expects"),
    ("gamma_above_one", _train("--gamma", "2"), "gamma must be in"),
    ("hidden_zero", _train("--hidden", "0"), "hidden must be a non-empty tuple"),
    ("hidden_letters", _train("--hidden", "wide"), "--hidden expects"),
    ("share_params_junk", _train("--share-params", "maybe"), "--share-params expects"),
    ("unknown_hyperparameter", _train("--momentum", "0.9"), "unknown option '--momentum'"),
    ("hyperparameter_without_value", _train("--lr"), "--lr needs a value"),
    ("stray_positional", _train("stray"), "unexpected argument 'stray'"),
    ("vectorize_with_checkpoints", _train("--seeds", "0-1", "--vectorize", "--checkpoint-every", "1", "--out",
                                          "OUT"), "not supported for vectorized"),
    ("resume_and_overwrite", _train("--resume", "OUT", "--overwrite"), "--resume (continue the run) or"),
    ("unknown_env", _train()[:2] + ["pong"] + _train()[3:], "unknown env 'pong'"),
    ("unknown_dataset", _train(dataset="zzz"), "unknown dataset 'zzz'"),
    ("unknown_algo", _train(algo="dqn"), "unknown algo 'dqn'"),
    ("dataset_id_of_other_env", _train(dataset="bridge/optimal-v1"), "belongs to env 'bridge'"),
    ("dataset_id_future_version", _train(dataset="xor/a-v9"), "not v9"),
    ("resume_missing", _train("--resume", "OUT/none.pt"), "does not exist"),
]


@pytest.mark.parametrize("argv,match", [c[1:] for c in USAGE], ids=[c[0] for c in USAGE])
def test_usage_error_is_one_line_status_2(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    if "--device" in argv and argv[argv.index("--device") + 1].startswith("cuda"):
        import torch

        if torch.cuda.is_available() and argv[argv.index("--device") + 1] == "cuda:0":
            pytest.skip("CUDA is present here")
    _one_error(capsys, argv, 2, match)


# ---------------------------------------------------------------- output paths
def test_out_is_a_file(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    _one_error(capsys, _train("--out", str(tmp_path / "f")), 1, "is a file")
    assert (tmp_path / "f").read_text() == "x"


def test_out_below_a_file(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    _one_error(capsys, _train("--out", str(tmp_path / "f" / "run")), 1, "--out")


@pytest.mark.parametrize("code,reason", [(errno.EROFS, "read-only filesystem"), (errno.EACCES, "permission denied"),
                                         (errno.ENOSPC, "no space left on device")],
                         ids=["read_only_filesystem", "no_permission", "disk_full"])
def test_out_not_writable(capsys, tmp_path, monkeypatch, code, reason):
    real = pathlib.Path.write_bytes

    def refuse(self, data):
        if self.name.startswith(".write-test"):
            raise OSError(code, reason)
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", refuse)
    _one_error(capsys, _train("--out", str(tmp_path / "run")), 1, reason)


def test_existing_run_refused_then_overwritten_or_resumed(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(_train("--out", str(out), "--checkpoint-every", "2", "--json")) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    err = _one_error(capsys, _train("--out", str(out), "--steps", "4"), 2, "already holds a run")
    assert "--resume" in err and "--overwrite" in err and "new --out" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before        # nothing touched
    assert main(_train("--out", str(out), "--steps", "4", "--resume", str(out), "--json")) == 0
    assert main(_train("--out", str(out), "--overwrite", "--json")) == 0
    assert not (out / "checkpoint.pt").exists()                              # the stale checkpoint is gone


def test_existing_run_refused_for_every_seed_before_training(capsys, tmp_path):
    out = tmp_path / "sweep"
    (out / "seed1").mkdir(parents=True)
    (out / "seed1" / "result.json").write_text("{}")
    _one_error(capsys, _train("--out", str(out), "--seeds", "0-1"), 2, "seed1 already holds a run")
    assert not (out / "seed0").exists()


def test_marlkit_data_is_a_file(capsys, tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("x")
    monkeypatch.setenv("MARLKIT_DATA", str(tmp_path / "cache"))
    assert main(["data", "build", "xor", "--quality", "a", "--transitions", "16"]) in (1, 2)
    err = capsys.readouterr().err.strip()
    assert err.startswith("marlkit: error:") and "MARLKIT_DATA" in err and "Traceback" not in err


# ---------------------------------------------------------------- files given to train
@pytest.fixture
def xor_file(tmp_path):
    return save_hdf5(make_env("xor").make_dataset("a", size=32), tmp_path / "xor.h5")


def _edit(path, name, fn):
    with h5py.File(path, "a") as f:
        fn(f, name)
    return path


def _flip(f, name):
    arr = f[name][()]
    raw = bytearray(np.ascontiguousarray(arr).tobytes())
    raw[len(raw) // 2] ^= 0x10
    f[name][...] = np.frombuffer(bytes(raw), dtype=arr.dtype).reshape(arr.shape)


def _group(f, name):
    del f[name]
    f.create_group(name)


def _huge(f, name):
    del f[name]
    f.create_dataset(name, shape=(10**13,), dtype="f4", chunks=(1024,))


def _overflow(f, name):
    arr = f[name][()].astype(np.float64)
    arr.reshape(-1)[0] = 1e39
    attrs = dict(f[name].attrs)
    del f[name]
    f.create_dataset(name, data=arr)
    f[name].attrs.update({k: v for k, v in attrs.items() if k != "sha256"})


FILE_CASES = [
    ("byte_flip_rewards", "rewards", _flip, 2, "'rewards' does not match its checksum"),
    ("byte_flip_observations", "observations", _flip, 2, "'observations' does not match its checksum"),
    ("field_is_group", "rewards", _group, 2, "'rewards' is an HDF5 group"),
    ("declares_too_many_rows", "rewards", _huge, 2, "more than this machine's memory"),
    ("float64_beyond_float32_reward", "rewards", _overflow, 2, "rewards contains 1 value(s) beyond float32"),
    ("float64_beyond_float32_state", "states", _overflow, 2, "states contains 1 value(s) beyond float32"),
]


@pytest.mark.parametrize("name,fn,status,match", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_bad_dataset_file_given_to_train(capsys, xor_file, name, fn, status, match):
    _edit(xor_file, name, fn)
    _one_error(capsys, _train(dataset=str(xor_file)), status, match)


@pytest.mark.parametrize("content,match", [(b"", "unreadable"), (b"not a checkpoint", "unreadable"),
                                           (b"PK\x03\x04" + b"\0" * 64, "unreadable")],
                         ids=["empty", "text", "zip_header_only"])
def test_bad_resume_file(capsys, tmp_path, content, match):
    (tmp_path / "c.pt").write_bytes(content)
    _one_error(capsys, _train("--resume", str(tmp_path / "c.pt")), 2, match)


def test_resume_directory_without_checkpoint(capsys, tmp_path):
    _one_error(capsys, _train("--resume", str(tmp_path)), 2, "does not exist")


def test_dataset_directory_not_a_vault(capsys, tmp_path):
    _one_error(capsys, _train(dataset=str(tmp_path)), 2, "not a flashbax Vault")


def test_dataset_file_not_hdf5(capsys, tmp_path):
    (tmp_path / "x.h5").write_text("junk")
    _one_error(capsys, _train(dataset=str(tmp_path / "x.h5")), 2, "not a readable HDF5 file")


# ---------------------------------------------------------------- runtime failures (status 1)
def test_networks_too_large_to_allocate(capsys):
    argv = _train()
    argv[argv.index("--hidden") + 1] = str(10**12)  # weights of terabytes: refused at once
    _one_error(capsys, argv, 1, "do not fit in memory")


def test_non_finite_loss_is_status_1(capsys, monkeypatch):
    from marlkit import cli
    from marlkit.train import NonFiniteLossError

    def boom(*a, **k):
        raise NonFiniteLossError("non-finite loss = nan at update 7; likely cause: alpha too small")

    monkeypatch.setattr(cli, "run", boom)
    _one_error(capsys, _train(), 1, "non-finite loss = nan at update 7")


# ---------------------------------------------------------------- data and bench commands
DATA = [
    ("info_missing", ["data", "info", "OUT/none.h5"], "does not exist"),
    ("info_directory", ["data", "info", "OUT"], "not a flashbax Vault"),
    ("build_unknown_env", ["data", "build", "pong", "--quality", "a"], "unknown env 'pong'"),
    ("build_zero_transitions", ["data", "build", "xor", "--quality", "a", "--transitions", "0"],
     "transitions must be a positive integer"),
    ("build_negative_episodes", ["data", "build", "bridge", "--quality", "optimal", "--episodes", "-1"],
     "episodes must be a positive integer"),
    ("build_both_sizes", ["data", "build", "xor", "--quality", "a", "--transitions", "4", "--episodes", "4"],
     "at most one of"),
    ("list_unknown_env", ["data", "list", "--env", "pong"], "matches no environment"),
    ("convert_missing", ["data", "convert", "OUT/none.h5", "OUT/x.h5"], "does not exist"),
    ("bench_threads_zero", ["bench", "--env", "xor", "--datasets", "a", "--algos", "bc", "--threads", "0"],
     "--threads must be a positive integer"),
    ("bench_workers_zero", ["bench", "--env", "xor", "--datasets", "a", "--algos", "bc", "--workers", "0"],
     "--workers must be a positive integer"),
    ("bench_env_without_datasets", ["bench", "--env", "xor", "--algos", "bc", "--list"], "give both --env"),
    ("bench_hp_not_json", ["bench", "--env", "xor", "--datasets", "a", "--algos", "bc", "--hp", "{", "--list"],
     "--hp is not valid JSON"),
    ("bench_hp_not_object", ["bench", "--env", "xor", "--datasets", "a", "--algos", "bc", "--hp", "[1]",
                             "--list"], "--hp must be a JSON object"),
    ("bench_preset_and_grid", ["bench", "--preset", "quick", "--grid", "g.yaml", "--list"], "not both"),
]


@pytest.mark.parametrize("argv,match", [c[1:] for c in DATA], ids=[c[0] for c in DATA])
def test_data_and_bench_errors(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "OUT").mkdir()
    monkeypatch.setenv("MARLKIT_DATA", str(tmp_path / "cache"))
    _one_error(capsys, argv, 2, match)


def test_bench_out_with_another_grid_refused(capsys, tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "grid.json").write_text(json.dumps({"grid": {"seeds": [0, 1], "steps": 10}}))
    err = _one_error(capsys, ["bench", "--env", "xor", "--datasets", "a", "--algos", "bc", "--out", str(out)], 2,
                     "holds a sweep run with other settings")
    assert "--overwrite" in err and "steps" in err and "seeds" not in err


def test_bench_overwrite_reruns_cells_of_other_settings(tmp_path, monkeypatch):
    import marlkit.bench.cli as bench_cli
    from marlkit.bench.grid import Grid

    out = tmp_path / "sweep"
    grid = Grid(tasks=[("xor", "a")], algos=["bc"], seeds=[0], steps=10)
    cell = grid.cells()[0]
    cell.directory(out).mkdir(parents=True)
    (cell.directory(out) / "record.json").write_text('{"status": "ok"}')
    (out / "grid.json").write_text(json.dumps({"grid": {"steps": 10}}))
    monkeypatch.setattr(bench_cli, "run_sweep", lambda *a, **k: (_ for _ in ()).throw(SystemExit(0)))
    with pytest.raises(SystemExit):
        main(["bench", "--env", "xor", "--datasets", "a", "--algos", "bc", "--steps", "20", "--out", str(out),
              "--overwrite", "--quiet"])
    assert not (cell.directory(out) / "record.json").exists()


MORE = [
    ("info_bins_zero", ["data", "info", "DATA", "--bins", "0"], "--bins must be a positive integer"),
    ("info_bins_negative", ["data", "info", "DATA", "--bins", "-3"], "--bins must be a positive integer"),
    ("info_max_episode_steps_zero", ["data", "info", "DATA", "--max-episode-steps", "0"],
     "--max-episode-steps must be a positive integer"),
    ("convert_max_episode_steps_negative", ["data", "convert", "DATA", "OUT/y.h5", "--max-episode-steps", "-1"],
     "--max-episode-steps must be a positive integer"),
    ("convert_onto_itself", ["data", "convert", "DATA", "DATA"], "exists; pass --overwrite"),
    ("convert_below_a_file", ["data", "convert", "DATA", "DATA/sub.h5"], "a file of that name exists"),
    ("convert_env_mismatch", ["data", "convert", "DATA", "OUT/y.h5", "--env", "bridge"], "env 'bridge'"),
    ("info_group_field", ["data", "info", "GROUP"], "'rewards' is an HDF5 group"),
    ("info_flipped_field", ["data", "info", "FLIPPED"], "'rewards' does not match its checksum"),
    ("bench_grid_missing", ["bench", "--grid", "OUT/none.yaml", "--list"], "--grid OUT/none.yaml does not exist"),
    ("bench_grid_binary", ["bench", "--grid", "DATA", "--list"], "not a readable YAML text file"),
    ("bench_out_is_a_file", ["bench", "--env", "xor", "--datasets", "a", "--algos", "bc", "--out", "DATA"],
     "is a file, not a sweep directory"),
    ("bench_timeout_negative", ["bench", "--env", "xor", "--datasets", "a", "--algos", "bc", "--timeout", "-1",
                                "--out", "OUT/s"], "--timeout must be a positive number"),
    ("bench_seeds_letters", ["bench", "--env", "xor", "--datasets", "a", "--algos", "bc", "--seeds", "x", "--list"],
     "cannot read seeds 'x'"),
    ("bench_steps_zero", ["bench", "--env", "xor", "--datasets", "a", "--algos", "bc", "--steps", "0", "--list"],
     "steps must be an integer >= 1"),
    ("bench_unknown_algo", ["bench", "--env", "xor", "--datasets", "a", "--algos", "zzz", "--list"], "zzz"),
    ("train_resume_is_a_dataset", _train("--resume", "DATA"), "not a marlkit checkpoint"),
    ("train_vectorize_resume", _train("--seeds", "0-1", "--vectorize", "--resume", "OUT"), "not supported"),
]


@pytest.mark.parametrize("argv,match", [c[1:] for c in MORE], ids=[c[0] for c in MORE])
def test_more_usage_errors(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "OUT").mkdir()
    save_hdf5(make_env("xor").make_dataset("a", size=32), tmp_path / "DATA")
    for name, fn in (("GROUP", _group), ("FLIPPED", _flip)):
        save_hdf5(make_env("xor").make_dataset("a", size=32), tmp_path / name)
        _edit(tmp_path / name, "rewards", fn)
    _one_error(capsys, argv, 2, match)
