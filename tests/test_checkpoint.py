"""Checkpoints, exact resume and same-seed reproducibility for every registered algorithm (CPU, 1 thread)."""

import json

import pytest
import torch

from marlkit.algos import ALGOS, get_algo
from marlkit.checkpoint import CheckpointError, read_header
from marlkit.envs import load_dataset, make_env
from marlkit.train import RunConfig, build_algo, fit
from marlkit.utils import seed_everything
from tests.helpers import toy_continuous_dataset

SMALL = {"hidden": (16, 16), "batch_size": 16}


def _task(algo_name):
    cls = get_algo(algo_name)
    if cls.supports_discrete:
        env = make_env("xor")
        return env, load_dataset(env, "b", size=200, seed=0)
    data, env = toy_continuous_dataset()
    return env, data


def _train(algo_name, steps, out=None, resume=None, checkpoint_every=0, seed=0):
    env, data = _task(algo_name)
    seed_everything(seed)
    algo = build_algo(algo_name, env.spec, SMALL)
    cfg = RunConfig(steps=steps, seed=seed, progress=False, threads=1, log_every=5, eval_episodes=2,
                    out=out, checkpoint_every=checkpoint_every, resume=resume)
    rec = fit(algo, data, env, cfg)
    return algo, rec


def _same(x, y) -> bool:
    """Equality of state-dict entries: tensors bit for bit, extra state (dicts, lists, numbers) recursively."""
    if torch.is_tensor(x):
        return torch.is_tensor(y) and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y))
    return x == y


def _same_params(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return all(_same(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("algo_name", sorted(ALGOS))
def test_exact_resume_is_bit_identical(algo_name, tmp_path):
    full, rec_full = _train(algo_name, 40, out=str(tmp_path / "full"), checkpoint_every=20)
    _train(algo_name, 20, out=str(tmp_path / "part"), checkpoint_every=20)
    resumed, rec_resumed = _train(algo_name, 40, out=str(tmp_path / "part"), checkpoint_every=20,
                                  resume=str(tmp_path / "part"))
    assert _same_params(full, resumed)
    assert rec_full["metrics"] == rec_resumed["metrics"]
    assert rec_full["return"] == rec_resumed["return"]
    # the resumed run's metrics file continues the interrupted one: same rows as the uninterrupted run
    assert (tmp_path / "full" / "metrics.csv").read_text() == (tmp_path / "part" / "metrics.csv").read_text()


@pytest.mark.parametrize("algo_name", sorted(ALGOS))
def test_same_seed_same_results(algo_name):
    a, ra = _train(algo_name, 15, seed=3)
    b, rb = _train(algo_name, 15, seed=3)
    assert _same_params(a, b) and ra["metrics"] == rb["metrics"]


def test_checkpoint_refuses_other_config_and_data(tmp_path):
    _train("bc", 10, out=str(tmp_path), checkpoint_every=10)
    header = read_header(tmp_path / "checkpoint.pt")
    assert header["algo"] == "bc" and header["step"] == 10 and header["config"]["hidden"] == [16, 16]
    env = make_env("xor")
    data = load_dataset(env, "b", size=200, seed=0)
    other = build_algo("bc", env.spec, {**SMALL, "lr": 1e-3})
    with pytest.raises(CheckpointError, match=r"config.lr: checkpoint 0.0005 vs run 0.001"):
        fit(other, data, env, RunConfig(steps=20, progress=False, threads=1, resume=str(tmp_path)))
    other_data = load_dataset(env, "c", size=200, seed=0)
    with pytest.raises(CheckpointError, match="dataset: checkpoint"):
        fit(build_algo("bc", env.spec, SMALL), other_data, env,
            RunConfig(steps=20, progress=False, threads=1, resume=str(tmp_path)))
    with pytest.raises(CheckpointError, match="env: checkpoint 'xor' vs run 'mne'"):
        mne = make_env("mne")
        fit(build_algo("bc", mne.spec, SMALL), load_dataset(mne, "balanced", size=50), mne,
            RunConfig(steps=20, progress=False, threads=1, resume=str(tmp_path)))


def test_corrupt_or_missing_checkpoint(tmp_path):
    _train("bc", 10, out=str(tmp_path), checkpoint_every=10)
    ckpt = tmp_path / "checkpoint.pt"
    data = ckpt.read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="unreadable"):
        read_header(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_header(tmp_path / "none.pt")
    assert ckpt.read_bytes() == data  # failed loads never touch files


def test_checkpoint_loads_with_weights_only(tmp_path):
    _train("bc", 10, out=str(tmp_path), checkpoint_every=10)
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert json.loads(payload["header"])["env"] == "xor" and payload["step"] == 10


def test_non_finite_loss_stops_with_a_clear_error():
    from marlkit.train import NonFiniteLossError

    env = make_env("xor")
    data = load_dataset(env, "b", size=100)
    algo = build_algo("bc", env.spec, SMALL)
    original = algo.update

    def poisoned(batch):
        m = original(batch)
        if int(algo.num_updates) >= 7:
            m["actor_loss"] = m["actor_loss"] * float("nan")
        return m

    algo.update = poisoned
    with pytest.raises(NonFiniteLossError, match=r"non-finite actor_loss = nan at update 10; last finite values: "
                                                 r"\{'actor_loss'"):
        fit(algo, data, env, RunConfig(steps=30, log_every=5, progress=False, threads=1))


def test_cli_checkpoint_and_resume(tmp_path, capsys):
    from marlkit.cli import main

    base = ["train", "--env", "xor", "--dataset", "a", "--algo", "bc", "--hidden", "8", "--threads", "1", "--json",
            "--out", str(tmp_path), "--checkpoint-every", "10"]
    assert main(base + ["--steps", "10"]) == 0
    capsys.readouterr()
    assert main(base + ["--steps", "20", "--resume", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 20
    assert main(base + ["--steps", "20", "--resume", str(tmp_path), "--lr", "0.1"]) == 2
    assert "does not match this run" in capsys.readouterr().err
