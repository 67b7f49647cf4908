"""Faults: a full disk while checkpointing, a kill -9 during a write, a resume after a kill, two sweeps on one
directory, a killed parent of bench workers. None corrupts saved data or runs anything twice."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from marlkit.bench.cells import cell_lock, run_cell
from marlkit.data import load_hdf5, save_hdf5
from marlkit.envs import make_env
from marlkit.errors import OutputError
from marlkit.train import RunConfig, build_algo, fit
from marlkit.utils import atomic_path, remove_stale_temporaries
from tests.helpers import toy_dataset

TINY = {"hidden": (8,), "batch_size": 8}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _fit(out, steps, checkpoint_every=0, resume=None, overwrite=False):
    env = make_env("xor")
    algo = build_algo("bc", env.spec, TINY)
    cfg = RunConfig(steps=steps, progress=False, threads=1, log_every=1, eval_every=2, eval_episodes=1,
                    out=str(out), checkpoint_every=checkpoint_every, resume=resume, overwrite=overwrite)
    return fit(algo, env.make_dataset("a", size=32), env, cfg)


@pytest.mark.parametrize("code,reason", [(errno.ENOSPC, "no space left on device"),
                                         (errno.EDQUOT, "disk quota exceeded"),
                                         (errno.EROFS, "read-only filesystem")],
                         ids=["disk_full", "quota", "read_only"])
def test_failed_checkpoint_write_keeps_previous(tmp_path, monkeypatch, code, reason):
    _fit(tmp_path, 2, checkpoint_every=2)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    import marlkit.checkpoint as ck

    def full(payload, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"half")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(ck.torch, "save", full)
    with pytest.raises(OutputError, match=f"could not write checkpoint .*: {reason}; the previous checkpoint"):
        _fit(tmp_path, 4, checkpoint_every=2, resume=str(tmp_path))
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_disk_full_through_the_cli(tmp_path, monkeypatch, capsys):
    import marlkit.checkpoint as ck
    from marlkit.cli import main

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", full)
    argv = ["train", "--env", "xor", "--dataset", "a", "--algo", "bc", "--steps", "2", "--hidden", "8",
            "--eval-episodes", "1", "--threads", "1", "--quiet", "--out", str(tmp_path / "r"), "--checkpoint-every", "1"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("marlkit: error:") and "no space left on device" in err and "\n" not in err


def test_resume_after_kill_has_no_duplicate_rows(tmp_path):
    _fit(tmp_path, 6, checkpoint_every=2)                # checkpoints at 2, 4, 6; rows 1..6
    import marlkit.checkpoint as ck

    full = tmp_path / "full"
    _fit(full, 6)
    # the state a kill -9 at update 5 leaves: checkpoint of update 4, rows (and an evaluation) up to 5, half a row
    run = tmp_path / "killed"
    _fit(run, 4, checkpoint_every=2)
    rows = (full / "metrics.csv").read_text().splitlines()
    (run / "metrics.csv").write_text("\n".join(rows[:6]) + "\n" + rows[6][:3])
    evals = (full / "evals.jsonl").read_text().splitlines()
    (run / "evals.jsonl").write_text("\n".join(evals[:2]) + "\n" + evals[2][:10])
    assert ck.read_header(run / "checkpoint.pt")["step"] == 4
    _fit(run, 6, checkpoint_every=2, resume=str(run))
    steps = [int(r.split(",")[0]) for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == [1, 2, 3, 4, 5, 6]
    import json

    assert [json.loads(r)["step"] for r in (run / "evals.jsonl").read_text().splitlines()] == [2, 4, 6]


def test_temporary_of_a_killed_writer_is_removed(tmp_path):
    target = tmp_path / "data.h5"
    stale = tmp_path / f"data.h5.{_dead_pid()}.abc123.tmp"
    stale.write_bytes(b"half a file")
    alive = tmp_path / f"data.h5.{os.getppid()}.def456.tmp"     # a writer that still runs: left alone
    alive.write_bytes(b"in progress")
    save_hdf5(toy_dataset(T=10), target)
    assert not stale.exists() and alive.exists()
    assert load_hdf5(target).size == 10


def test_killed_data_build_leaves_no_temporary(tmp_path, monkeypatch):
    monkeypatch.setenv("MARLKIT_DATA", str(tmp_path))
    from marlkit.data.build import build_dataset, dataset_path

    path = dataset_path("bridge", "optimal", None, 4, 0)
    path.parent.mkdir(parents=True)
    stale = path.with_name(f"{path.name}.{_dead_pid()}.xyz.tmp")
    stale.write_bytes(b"killed mid-write")
    build_dataset("bridge", "optimal", episodes=4, seed=0)
    assert path.is_file() and not stale.exists()


def test_atomic_path_failure_leaves_nothing(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        Path(tmp).write_text("new")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and remove_stale_temporaries(target) == [] and len(list(tmp_path.iterdir())) == 1


def test_cell_lock_is_exclusive_and_released(tmp_path):
    with cell_lock(tmp_path / "cell") as first:
        assert first
        with cell_lock(tmp_path / "cell") as second:
            assert not second
    with cell_lock(tmp_path / "cell") as again:
        assert again


def test_cell_lock_held_by_another_process(tmp_path):
    cell = tmp_path / "cell"
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from marlkit.bench.cells import cell_lock
        with cell_lock({str(cell)!r}) as mine:
            print(mine, flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "True"
        with cell_lock(cell) as mine:
            assert not mine
    finally:
        proc.kill()
        proc.wait()
    with cell_lock(cell) as mine:                       # the kernel released the dead holder's lock
        assert mine


def test_locked_cell_is_not_run_twice(tmp_path):
    from marlkit.bench.grid import Grid

    cell = Grid(tasks=[("xor", "a")], algos=["bc"], seeds=[0]).cells()[0]
    with cell_lock(cell.directory(tmp_path)):
        res = run_cell(cell, str(tmp_path), notebook="does-not-matter.ipynb")
    assert res["status"] == "busy"
    assert not (cell.directory(tmp_path) / "failed.json").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_worker_dies_with_its_parent(tmp_path):
    pidfile = tmp_path / "worker.pid"
    child = tmp_path / "worker.py"
    child.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from marlkit.bench.cells import die_with_parent
        assert die_with_parent()
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        time.sleep(60)
    """))
    parent = f"import subprocess, sys, time; subprocess.Popen([sys.executable, {str(child)!r}]); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", parent])
    try:
        for _ in range(600):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.05)
        worker = int(pidfile.read_text())
        os.kill(proc.pid, signal.SIGKILL)                # kill -9 of the parent
        proc.wait()
        for _ in range(100):
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail("the worker outlived its parent")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_prints_no_traceback_as_a_program(tmp_path):
    (tmp_path / "f").write_text("x")
    for argv, status in ([["train", "--env", "xor", "--dataset", "a", "--algo", "bc", "--device", "tpu"], 2],
                         [["train", "--env", "xor", "--dataset", "a", "--algo", "bc", "--out", str(tmp_path / "f"),
                           "--steps", "1", "--hidden", "8", "--threads", "1", "--quiet"], 1]):
        proc = subprocess.run([sys.executable, "-m", "marlkit.cli", *argv], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=120, check=False)
        assert proc.returncode == status, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stderr.strip().startswith("marlkit: error:")
