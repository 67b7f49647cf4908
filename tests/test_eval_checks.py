"""marlkit.eval.checks: coverage of a planned grid and the paper-lite protocol's checks."""

import json

import numpy as np
import pandas as pd

from marlkit.bench.grid import Grid
from marlkit.eval.checks import coverage, protocol_checks, welch_greater, welch_not_below


def test_coverage_lists_every_planned_cell(tmp_path):
    cells = Grid(tasks=[("xor", "b")], algos=["bc", "omiga"], seeds=[0, 1], steps=5).cells()
    cells[0].directory(tmp_path).mkdir(parents=True)
    (cells[0].directory(tmp_path) / "record.json").write_text(json.dumps({"return": 0.5}))
    cells[1].directory(tmp_path).mkdir(parents=True)
    (cells[1].directory(tmp_path) / "failed.json").write_text(json.dumps({"error": "boom"}))
    cov = coverage(cells, tmp_path)
    assert list(cov["status"]) == ["ok", "failed", "not run", "not run"]
    assert cov["return"].iloc[0] == 0.5 and cov["error"].iloc[1] == "boom"


def test_welch_tests():
    hi, lo = [10.0, 11.0, 12.0], [1.0, 2.0, 3.0]
    assert welch_greater(hi, lo)[0] is True and welch_greater(lo, hi)[0] is False
    assert welch_not_below(lo, hi)[0] is False and welch_not_below(hi, lo)[0] is True
    assert welch_not_below([1.0, 2.0, 3.0], [1.5, 2.5, 2.0])[0] is True  # not significantly below
    assert welch_greater([1.0], lo)[0] is None


def test_protocol_checks_outcomes():
    rng = np.random.default_rng(0)
    rows = []
    for algo, mean in (("omiga", 100.0), ("bc", 50.0), ("omar", 120.0), ("icq", 90.0)):
        rows += [{"env": "mamujoco:Hopper-3x1", "dataset": "medium-replay", "algo": algo,
                  "return": mean + rng.normal()} for _ in range(3)]
    rows += [{"env": "mamujoco:Hopper-3x1", "dataset": "medium-expert", "algo": "omiga", "return": 80.0 + s}
             for s in range(3)]
    cards = pd.DataFrame([{"env": "mamujoco:Hopper-3x1", "dataset": "medium-expert", "return_mean": 100.0}])
    grid = Grid(tasks=[("mamujoco:Hopper-3x1", d) for d in ("medium-replay", "medium-expert", "medium")],
                algos=["bc", "omiga", "inspo", "icq"], seeds=[0, 1, 2], steps=10,
                task_settings={"mamujoco:Hopper-3x1/medium-replay": {"algos": ["omar", "cql-ma"]}})
    out = protocol_checks(pd.DataFrame(rows), cards, grid.cells()).set_index(["check", "task"])["outcome"]
    mr, me, m = (f"mamujoco:Hopper-3x1 {d}" for d in ("medium-replay", "medium-expert", "medium"))
    assert out["offline RL beats BC (Welch 5 %)", mr] == "met"
    assert out["reported: inspo above BC", mr] == "not run"
    assert out["omiga.md Table 1: OMIGA ≥ omar", mr] == "not met"
    assert out["omiga.md Table 1: OMIGA ≥ cql-ma", mr] == "not run"  # planned, no record
    assert ("omiga.md Table 1: OMIGA ≥ omar", m) not in out.index  # not planned there
    assert out["omiga.md Table 1: OMIGA ≥ icq", mr] == "met"
    assert out["omiga.md Table 1: OMIGA ≥ icq", m] == "not run"
    assert out["competence: OMIGA ≥ dataset mean", me] == "not met"
    assert out["omiga.md Table 1: OMIGA ≥ ICQ on a majority of MaMuJoCo cells", "all"] == "not met"  # 1 of 3
