import json
import os
import re
import subprocess
import sys

import pytest

from marlkit.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_train_json_record(capsys):
    assert main(["train", "--env", "xor", "--dataset", "b", "--algo", "bc", "--steps", "300", "--threads", "1",
                 "--hidden", "32,32", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    for key in ("return", "algo", "env", "dataset", "seed", "steps", "updates_per_s", "joint_policy",
                "per_agent_policy"):
        assert key in rec
    assert rec["steps"] == 300 and rec["config"]["hidden"] == [32, 32]
    assert len(rec["joint_policy"]) == 2 and len(rec["per_agent_policy"]) == 2


def test_train_writes_records(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--env", "mne", "--dataset", "balanced", "--algo", "bc", "--steps", "200", "--threads", "1",
                 "--hidden", "16", "--out", str(out), "--quiet", "--eval-every", "100"]) == 0
    assert (out / "result.json").exists() and (out / "metrics.csv").exists()
    assert len((out / "evals.jsonl").read_text().splitlines()) == 2
    assert "return" in capsys.readouterr().out


def test_lists(capsys):
    assert main(["envs"]) == 0
    envs = capsys.readouterr().out.split()
    assert {"xor", "mne", "jiang-lu"} <= set(envs)
    assert main(["algos"]) == 0
    assert "bc" in capsys.readouterr().out


@pytest.mark.parametrize("argv,match", [
    (["--env", "nope", "--dataset", "b", "--algo", "bc"], "unknown env 'nope'; valid:"),
    (["--env", "xor", "--dataset", "zz", "--algo", "bc"], "unknown dataset 'zz' for env 'xor'; valid: a, b, c"),
    (["--env", "xor", "--dataset", "b", "--algo", "nope"], "unknown algo 'nope'; valid:"),
])
def test_unknown_names_are_clear_errors(argv, match, capsys):
    assert main(["train", *argv, "--steps", "5"]) == 2
    assert match in capsys.readouterr().err


def test_unknown_hyperparameter_lists_valid_ones(capsys):
    assert main(["train", "--env", "xor", "--dataset", "b", "--algo", "bc", "--bogus", "1"]) == 2
    assert re.search("unknown option '--bogus'.*--lr", capsys.readouterr().err)


def test_console_script_runs_as_a_program():
    env = dict(os.environ, PYTHONPATH=ROOT, MARLKIT_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "marlkit.cli", "train", "--env", "xor", "--dataset", "a", "--algo",
                          "bc", "--steps", "50", "--hidden", "8", "--json"], capture_output=True, text=True, env=env,
                         check=True)
    assert json.loads(out.stdout)["algo"] == "bc"
