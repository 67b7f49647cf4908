"""The one training loop: a single run and a vectorized population go through the same code and leave the same
files and record keys per run."""

from __future__ import annotations

import csv
import json

import pytest

from marlkit.data.sampler import DeviceSampler
from marlkit.envs import load_dataset, make_env
from marlkit.train import RunConfig, _Lockstep, build_algo, run_many

SMALL = {"hidden": (16,), "batch_size": 32}


def _files(run_dir):
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    evals = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()]
    return rows, evals, json.loads((run_dir / "result.json").read_text())


def test_vectorized_members_leave_the_files_of_sequential_runs(tmp_path):
    cfg = RunConfig(steps=40, eval_every=20, log_every=10, threads=1, progress=False)
    vec = run_many("xor", "b", "bc", SMALL, RunConfig(**{**cfg.__dict__, "out": str(tmp_path / "vec")}),
                   seeds=[0, 1], vectorize=True)
    seq = run_many("xor", "b", "bc", SMALL, RunConfig(**{**cfg.__dict__, "out": str(tmp_path / "seq")}),
                   seeds=[0, 1])
    for v, s, name in zip(vec, seq, ("seed0", "seed1")):
        assert set(v) - set(s) == {"population", "population_updates_per_s"} and set(s) <= set(v)
        v_rows, v_evals, v_rec = _files(tmp_path / "vec" / name)
        s_rows, s_evals, s_rec = _files(tmp_path / "seq" / name)
        assert [r["step"] for r in v_rows] == [r["step"] for r in s_rows] == ["10", "20", "30", "40"]
        assert [e["step"] for e in v_evals] == [e["step"] for e in s_evals] == [20, 40]
        assert v_rec["run"]["out"] == str(tmp_path / "vec" / name) and v_rec["population"] == 2
        assert v["return"] == pytest.approx(s["return"], abs=1e-5)
        assert v_rows[0].keys() == s_rows[0].keys()
        for a, b in zip(v_rows, s_rows):
            for k in a.keys() - {"step"}:
                assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-4, abs=1e-6), k


def test_lockstep_steps_one_run_without_a_population():
    env = make_env("xor")
    algo = build_algo("bc", env.spec, SMALL)
    sampler = DeviceSampler(load_dataset(env, "b", size=64), seed=0)
    runs = _Lockstep([algo], [sampler])
    assert runs.engine is algo and runs.models() == [algo]
    metrics = runs.train_step()
    assert metrics and all(v.shape == (1,) for v in metrics.values())
    with pytest.raises(ValueError, match="vectorize"):
        _Lockstep([algo, algo], [sampler, sampler])


@pytest.mark.parametrize("vectorize", [False, True])
def test_setup_pretraining_runs_at_the_runs_thread_count(monkeypatch, vectorize):
    """An algorithm's setup (pre-training: InSPO's behavior cloning, BCQ's VAE) runs at the run's ``threads``, not
    at torch's default count, for single runs and vectorized populations alike."""
    import torch

    from marlkit.algos.bc import BC

    seen = []
    monkeypatch.setattr(BC, "prepare", lambda self, sampler: seen.append(torch.get_num_threads()))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_many("xor", "b", "bc", SMALL, RunConfig(steps=2, eval_every=0, threads=1, progress=False),
                 seeds=[0, 1], vectorize=vectorize)
    finally:
        torch.set_num_threads(previous)
    assert seen == [1, 1]


def test_metrics_are_on_disk_while_the_run_trains(tmp_path):
    """A long run's metrics.csv is readable before the run ends (each logged row is flushed)."""
    from marlkit.train import iterate

    env = make_env("xor")
    data = load_dataset(env, "b", seed=0)
    algo = build_algo("bc", env.spec, SMALL)
    records = iterate(algo, data, env, RunConfig(steps=40, eval_every=20, log_every=10, threads=1, progress=False,
                                                 out=str(tmp_path)))
    first = next(records)  # the loop is paused at update 20, its files still open
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert first["step"] == 20 and [r["step"] for r in rows] == ["10", "20"]
    records.close()
