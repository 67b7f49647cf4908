"""marlkit bench: grids, resumable papermill sweeps (local pool and Ray), failures, parameters, result tables.

Notebook executions are slow (a kernel start each), so one module-scoped 2×2×2 sweep is shared by the resume and
failure tests, which add one execution each.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from marlkit.algos.bc import BC, BCConfig
from marlkit.algos.inspo import InSPOConfig
from marlkit.bench import (
    FAILED,
    RECORD,
    Grid,
    GridError,
    ParameterError,
    find_notebook,
    parse_seeds,
    preset,
    run_sweep,
    summarize,
    validate_parameters,
)
from marlkit.eval import aggregate as agg
from marlkit.nets.mlp import onednn_linear

GOOD = dict(env="xor", dataset="b", algo="bc", hyperparameters={}, alpha=None, seed=0, steps=10, eval_every=0,
            eval_episodes=32, dataset_size=None, device="cpu", threads=1, out_dir="x", figures_dir=None)
SMALL = {"hidden": [16, 16], "batch_size": 32}


@dataclasses.dataclass
class AlphaBCConfig(BCConfig):
    """BC with an (unused) α, to test how grids treat algorithms with and without α."""

    alpha: float = 1.0


class AlphaBC(BC):
    """Test-only algorithm whose config has α."""

    name = "alpha-bc"
    Config = AlphaBCConfig


# ------------------------------------------------------------------------------------------ pure functions
def test_validate_parameters_accepts_defaults_and_json_hyperparameters():
    p = validate_parameters({**GOOD, "hyperparameters": '{"hidden": [64, 64]}', "alpha": 3})
    assert p["hyperparameters"] == {"hidden": [64, 64]} and p["alpha"] == 3.0


@pytest.mark.parametrize("name,value,match", [
    ("steps", "ten", r"'steps' must be an integer or None, got str 'ten'"),
    ("steps", 10.0, r"'steps' must be an integer"),
    ("seed", True, r"'seed' must be an integer, got bool"),
    ("alpha", "high", r"'alpha' must be a number or None, got str"),
    ("env", 3, r"'env' must be a string"),
    ("hyperparameters", "[1, 2]", r"must be a JSON object"),
    ("hyperparameters", "{hidden: 1}", r"not valid JSON"),
    ("eval_episodes", 0, r"'eval_episodes' must be >= 1"),
    ("alpha", -1.0, r"positive finite"),
])
def test_validate_parameters_names_the_bad_parameter(name, value, match):
    with pytest.raises(ParameterError, match=match):
        validate_parameters({**GOOD, name: value})


def test_validate_parameters_missing_and_unknown():
    with pytest.raises(ParameterError, match="missing benchmark parameter"):
        validate_parameters({k: v for k, v in GOOD.items() if k != "seed"})
    with pytest.raises(ParameterError, match="unknown benchmark parameter"):
        validate_parameters({**GOOD, "lr": 1e-3})


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,2,5-6") == [0, 2, 5, 6]
    assert parse_seeds(3) == [3]
    for bad in ("a", "3-1", "", [-1]):
        with pytest.raises(GridError):
            parse_seeds(bad)


def test_grid_alpha_sweep_collapses_for_algorithms_without_alpha(monkeypatch):
    from marlkit.algos import ALGOS

    monkeypatch.setitem(ALGOS, "alpha-bc", f"{__name__}:AlphaBC")
    grid = Grid(tasks=[("xor", "b")], algos=["bc", "alpha-bc"], seeds=[0, 1], sweep={"alpha": [1.0, 10.0]})
    cells = grid.cells()
    assert len(cells) == 2 + 2 * 2  # bc once per seed, alpha-bc per α and seed
    assert {c.parameters("o")["alpha"] for c in cells if c.algo == "alpha-bc"} == {1.0, 10.0}
    assert {c.parameters("o")["alpha"] for c in cells if c.algo == "bc"} == {None}
    assert len({c.directory("o") for c in cells}) == len(cells)
    with pytest.raises(GridError, match="belongs to none of the algorithms"):
        Grid(tasks=[("xor", "b")], algos=["bc"], seeds=[0], sweep={"alpha": [1.0]}).cells()


def test_validate_parameters_deterministic_eval_and_default_paths():
    assert validate_parameters(GOOD)["deterministic_eval"] is None  # left out: the env's default
    for value in (True, False, None):
        assert validate_parameters({**GOOD, "deterministic_eval": value})["deterministic_eval"] is value
    with pytest.raises(ParameterError, match=r"'deterministic_eval' must be True or False or None, got str"):
        validate_parameters({**GOOD, "deterministic_eval": "yes"})
    with pytest.raises(ParameterError, match=r"'deterministic_eval' must be True or False or None, got int"):
        validate_parameters({**GOOD, "deterministic_eval": 1})
    assert validate_parameters({**GOOD, "out_dir": None, "figures_dir": None})["out_dir"] is None
    with pytest.raises(ParameterError, match="'out_dir' must be a non-empty string"):
        validate_parameters({**GOOD, "out_dir": " "})


def test_grid_per_algorithm_steps_and_sweeps(monkeypatch, tmp_path):
    from marlkit.algos import ALGOS

    monkeypatch.setitem(ALGOS, "alpha-bc", f"{__name__}:AlphaBC")
    grid = Grid(tasks=[("xor", "b")], algos=["bc", "alpha-bc"], seeds=[0], steps=100, sweep={"lr": [1e-3]},
                algo_steps={"alpha-bc": 300}, algo_sweep={"alpha-bc": {"alpha": [0.1, 1.0], "lr": [5e-4]}})
    cells = grid.cells()
    assert [(c.algo, c.steps, dict(c.swept)) for c in cells] == [
        ("bc", 100, {"lr": 1e-3}),
        ("alpha-bc", 300, {"alpha": 0.1, "lr": 5e-4}), ("alpha-bc", 300, {"alpha": 1.0, "lr": 5e-4})]
    # the per-algorithm count reaches the notebook's parameters, hence the record
    assert {c.parameters("o")["steps"] for c in cells if c.algo == "alpha-bc"} == {300}
    assert (grid.steps_of("bc"), grid.steps_of("alpha-bc")) == (100, 300)
    for bad, match in [({"algo_steps": {"omiga": 10}}, "algo_steps given for 'omiga'"),
                       ({"algo_steps": {"bc": 0}}, r"algo_steps\['bc'\] must be an integer >= 1"),
                       ({"algo_steps": {"bc": 1.5}}, r"algo_steps\['bc'\] must be an integer"),
                       ({"algo_sweep": {"bc": {"alpha": [1.0]}}}, "unknown hyperparameter.*in algo_sweep for 'bc'"),
                       ({"algo_sweep": {"alpha-bc": {"alpha": []}}}, "needs a non-empty list"),
                       ({"algo_sweep": {"omiga": {"alpha": [1.0]}}}, "algo_sweep given for 'omiga'")]:
        with pytest.raises(GridError, match=match):
            Grid(tasks=[("xor", "b")], algos=["bc", "alpha-bc"], seeds=[0], **bad).cells()
    f = tmp_path / "grid.yaml"
    f.write_text("envs: [xor]\ndatasets: [b]\nalgos: [bc, alpha-bc]\nsteps: 50\nalgo_steps: {alpha-bc: 70}\n"
                 "algo_sweep: {alpha-bc: {alpha: [1, 10]}}\n")
    assert sorted((c.algo, c.steps) for c in Grid.from_yaml(f).cells()) == [
        ("alpha-bc", 70), ("alpha-bc", 70), ("bc", 50)]
    f.write_text("envs: [xor]\ndatasets: [b]\nalgos: [bc]\nalgo_steps: 100\n")
    with pytest.raises(GridError, match="algo_steps must be a mapping"):
        Grid.from_yaml(f)


def test_quick_preset_settings_and_command_line_overrides(capsys):
    """quick: InSPO at tests/test_inspo.py's small-network settings for 1500 updates, the others 1000, OMIGA at
    α = 0.1, 1, 10; --steps applies to every run, --alphas replaces the preset's α values, --algos keeps the
    per-algorithm settings of the algorithms kept."""
    import argparse

    from marlkit.bench.cli import add_bench_parser, grid_from_args
    from marlkit.cli import main

    grid = preset("quick")
    cells = grid.cells()
    steps = {c.algo: c.steps for c in cells}
    assert steps == {"bc": 1000, "omiga": 1000, "comadice": 1000, "inspo": 1500}
    assert sorted({c.parameters("o")["alpha"] for c in cells if c.algo == "omiga"}) == [0.1, 1.0, 10.0]
    assert {c.parameters("o")["alpha"] for c in cells if c.algo != "omiga"} == {None}  # their own defaults
    assert len(cells) == 2 * 2 * (1 + 3 + 1 + 1)
    inspo = validate_parameters(next(c for c in cells if c.algo == "inspo").parameters("o"))
    assert inspo["hyperparameters"] == {"hidden": [64, 64], "lr": 1e-3, "beta_decay_steps": 1000, "bc_steps": 200,
                                        "q_warmup_steps": 200}

    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers())

    def grid_of(*argv):
        return grid_from_args(parser.parse_args(["bench", "--preset", "quick", *argv]))

    assert {c.steps for c in grid_of("--steps", "20").cells()} == {20}
    assert {c.parameters("o")["alpha"] for c in grid_of("--alphas", "3").cells() if c.algo == "omiga"} == {3.0}
    kept = grid_of("--algos", "bc,inspo")
    assert kept.algo_steps == {"inspo": 1500} and not kept.algo_sweep
    assert main(["bench", "--preset", "quick", "--list"]) == 0
    out = capsys.readouterr().out
    assert "xor/b/omiga alpha=0.1 seed=0" in out and out.strip().endswith(f"{len(cells)} runs")


def test_recorded_grid_without_the_per_algorithm_fields_still_matches(tmp_path):
    """A grid.json written before Grid had algo_steps/algo_sweep holds the same settings when this grid leaves
    them empty; a per-algorithm step count is a different setting, per-algorithm sweep values are new cells."""
    from marlkit.bench.cli import check_recorded_grid

    grid = Grid(tasks=[("xor", "b")], algos=["bc", "omiga"], seeds=[0], steps=10)
    old = dataclasses.asdict(grid)
    del old["algo_steps"], old["algo_sweep"]
    (tmp_path / "grid.json").write_text(json.dumps({"grid": old}, default=str))
    assert check_recorded_grid(grid, tmp_path) == []
    with pytest.raises(GridError, match="differs in algo_steps"):
        check_recorded_grid(dataclasses.replace(grid, algo_steps={"omiga": 20}), tmp_path)
    assert check_recorded_grid(dataclasses.replace(grid, algo_sweep={"omiga": {"alpha": [1.0]}}), tmp_path) == []


def test_grid_from_yaml_and_errors(tmp_path):
    f = tmp_path / "grid.yaml"
    f.write_text("envs: [xor, mne]\ndatasets: [b, imbalanced]\nalgos: bc\nseeds: 0-2\nsteps: 5\n"
                 "sweep: {lr: [0.001, 0.01]}\n")
    grid = Grid.from_yaml(f)
    assert grid.tasks == [("xor", "b"), ("mne", "imbalanced")]  # each env paired with its own datasets
    assert len(grid.cells()) == 2 * 3 * 2
    f.write_text("envs: [xor]\ndatasets: [b]\nalgos: [nope]\n")
    with pytest.raises(GridError, match="unknown algo"):
        Grid.from_yaml(f).cells()
    f.write_text("envs: [xor]\ndatasets: [b]\nalgos: [bc]\nsteps: -3\n")
    with pytest.raises(GridError, match="steps must be an integer >= 1"):
        Grid.from_yaml(f).cells()
    f.write_text("envs: [xor]\nfoo: 1\n")
    with pytest.raises(GridError, match="unknown grid key"):
        Grid.from_yaml(f)


def test_shipped_grid_files_expand():
    files = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.yaml"))
    assert files
    for f in files:
        assert Grid.from_yaml(f).cells(), f


def test_presets_and_cli_list(capsys):
    from marlkit.algos import ALGOS
    from marlkit.cli import main

    assert len(preset("tiny").cells()) == len(preset("tiny").algos) and preset("tiny").algos
    table1 = preset("mamujoco-table1")
    assert {e for e, _ in table1.tasks} == {"mamujoco:Hopper-3x1", "mamujoco:Ant-2x4", "mamujoco:HalfCheetah-6x1"}
    assert table1.seeds == [0, 1, 2, 3, 4] and set(table1.algos) <= set(ALGOS)
    assert main(["bench", "--preset", "quick", "--list"]) == 0
    assert "xor/b/bc seed=0" in capsys.readouterr().out
    assert main(["bench", "--env", "xor", "--datasets", "a,b", "--algos", "bc", "--seeds", "0-1", "--list"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "4 runs"
    assert main(["bench", "--env", "xor", "--datasets", "b", "--algos", "zzz", "--list"]) == 2
    assert "unknown algo" in capsys.readouterr().err


def test_smax_paper_preset_grid(capsys):
    """smax-paper: 4 SMAX maps × good/medium/poor × BC/OMIGA/ComaDICE/InSPO × 5 seeds at omiga.md Table 6's
    settings; expanding it (and narrowing it on the command line) builds no env and trains nothing."""
    from marlkit.cli import main

    grid = preset("smax-paper")
    maps = ["smax:5m_vs_6m", "smax:2s3z", "smax:6h_vs_8z", "smax:3s_vs_5z"]
    assert grid.tasks == [(m, d) for m in maps for d in ("good", "medium", "poor")]
    assert grid.algos == ["bc", "omiga", "comadice", "inspo"] and grid.seeds == [0, 1, 2, 3, 4]
    assert (grid.steps, grid.eval_episodes, grid.eval_every, grid.dataset_size) == (50_000, 32, 5000, 50_000)
    cells = grid.cells()
    assert len(cells) == 4 * 3 * 4 * 5
    assert {(c.env, c.dataset, c.algo, c.seed) for c in cells} == {
        (m, d, a, s) for m in maps for d in ("good", "medium", "poor") for a in grid.algos for s in range(5)}
    hp = {c.algo: dict(c.hyperparameters) for c in cells}
    for a in ("bc", "omiga", "comadice"):
        assert hp[a]["hidden"] == (256, 256) and hp[a]["batch_size"] == 128 and hp[a]["lr"] == 5e-4, a
    assert "batch_size" not in hp["inspo"] and "alpha" not in hp["inspo"]  # InSPO's own defaults
    from marlkit.algos.omiga import OMIGAConfig

    assert (OMIGAConfig.alpha, OMIGAConfig.tau) == (10.0, 0.005)  # omiga.md Table 6, through the defaults
    # omiga.md's α = 2 variant on 6h_vs_8z poor: the preset narrowed and α swept
    variant = preset("smax-paper")
    variant.tasks, variant.algos, variant.sweep = [("smax:6h_vs_8z", "poor")], ["omiga"], {"alpha": [2.0]}
    variant.algo_hyperparameters = {"omiga": variant.algo_hyperparameters["omiga"]}
    (cell,) = [c for c in variant.cells() if c.seed == 0]
    params = validate_parameters(cell.parameters("x"))
    assert params["alpha"] == 2.0 and params["hyperparameters"]["batch_size"] == 128
    # narrowed as in docs/smax.md's small-scale run: the kept algorithms keep their per-algorithm settings
    assert main(["bench", "--preset", "smax-paper", "--env", "smax:5m_vs_6m", "--datasets", "good",
                 "--algos", "bc,omiga,inspo", "--seeds", "0", "--steps", "2000", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("3 runs, ≈") and "smax:5m_vs_6m/good/omiga seed=0" in out


def test_task_settings_add_columns_steps_and_hyperparameters_per_task(tmp_path):
    grid = Grid(tasks=[("xor", "a"), ("xor", "b")], algos=["bc"], seeds=[0, 1], steps=10, eval_every=5,
                hyperparameters={"hidden": [8, 8]},
                task_settings={"xor/b": {"algos": ["omiga"], "steps": 30, "eval_every": 3,
                                         "hyperparameters": {"hidden": [16, 16]}}})
    cells = grid.cells()
    assert [(c.dataset, c.algo) for c in cells[::2]] == [("a", "bc"), ("b", "bc"), ("b", "omiga")]
    by = {(c.dataset, c.algo): c for c in cells}
    assert (by["a", "bc"].steps, by["a", "bc"].eval_every, dict(by["a", "bc"].hyperparameters)) == (10, 5, {"hidden": (8, 8)})
    assert (by["b", "omiga"].steps, by["b", "omiga"].eval_every) == (30, 3)
    assert dict(by["b", "omiga"].hyperparameters) == {"hidden": (16, 16)}
    (tmp_path / "g.yaml").write_text("envs: [xor]\ndatasets: [a, b]\nalgos: [bc]\n"
                                     "task_settings: {xor/b: {algos: [omiga], steps: 30}}\n")
    assert len(Grid.from_yaml(tmp_path / "g.yaml").cells()) == 3
    for bad, match in (({"xor/c": {"steps": 1}}, "not a task of the grid"), ({"xor/b": {"stps": 1}}, "mapping of"),
                       ({"xor/b": {"steps": 0}}, "steps must be an integer"),
                       ({"xor/b": {"algos": ["zzz"]}}, "unknown algo")):
        with pytest.raises(GridError, match=match):
            Grid(tasks=[("xor", "b")], algos=["bc"], seeds=[0], task_settings=bad).cells()


def test_paper_lite_preset_budget_and_priority(capsys, monkeypatch):
    """paper-lite keeps its columns (task × algorithm) in priority order while they fit the CPU budget (the first
    always) and drops the rest from the end, runs omiga.md Table 1's costly baselines on the medium-replay
    MaMuJoCo tasks only, and --list prints the budget and what it dropped."""
    from marlkit.bench import presets
    from marlkit.cli import main

    order = presets.paper_lite_cells()
    assert order[0] == ("mamujoco:HalfCheetah-6x1", "medium-replay", "bc")
    assert {a for e, d, a in order if e == "smax:2s3z"} == set(presets.PAPER_LITE_ALGOS)
    grid, dropped = presets.paper_lite_plan()
    kept = list(dict.fromkeys((c.env, c.dataset, c.algo) for c in grid.cells()))
    assert kept + dropped == order and kept[0] == order[0]  # a prefix of the priority order is kept
    cost = sum(presets.estimated_cpu_s(c) for c in grid.cells())
    assert cost <= presets.PAPER_LITE_BUDGET_CPU_H * 3600
    next_cost = sum(presets.estimated_cpu_s(c) for c in presets._paper_lite_grid(dropped[:1]).cells())
    assert cost + next_cost > presets.PAPER_LITE_BUDGET_CPU_H * 3600  # the next column would not have fitted
    assert {c.seed for c in grid.cells()} == {0, 1, 2} and {c.eval_episodes for c in grid.cells()} == {32}
    monkeypatch.setattr(presets, "PAPER_LITE_BUDGET_CPU_H", 1e6)  # a large budget keeps every column
    grid, dropped = presets.paper_lite_plan()
    assert not dropped and list(dict.fromkeys((c.env, c.dataset, c.algo) for c in grid.cells())) == order
    assert {c.algo for c in grid.cells() if c.dataset == "medium-replay" and "HalfCheetah" in c.env} == \
        {"bc", "omiga", "comadice", "inspo", "icq", "bcq-ma", "cql-ma", "omar"}
    assert {c.algo for c in grid.cells() if c.env == "smax:2s3z"} == set(presets.PAPER_LITE_ALGOS)
    assert all(dict(c.hyperparameters)["lr"] == 5e-4 for c in grid.cells() if c.env.startswith("smax"))
    monkeypatch.setattr(presets, "PAPER_LITE_BUDGET_CPU_H", 2.5)  # BC and OMIGA (3 seeds each) fit, ComaDICE not
    grid, dropped = presets.paper_lite_plan()
    assert grid.tasks == [order[0][:2]] and [c.algo for c in grid.cells() if c.seed == 0] == ["bc", "omiga"]
    assert dropped[0] == ("mamujoco:HalfCheetah-6x1", "medium-replay", "comadice")
    monkeypatch.setattr(presets, "PAPER_LITE_BUDGET_CPU_H", 15.0)
    assert main(["bench", "--preset", "paper-lite", "--list"]) == 0
    out = capsys.readouterr().out
    assert "CPU-hours estimated" in out and "budget: 15 CPU-hours" in out
    dropped_text = presets.describe_dropped(*presets.paper_lite_plan())
    assert dropped_text in out and "mamujoco:Hopper-3x1/medium-replay, " in dropped_text
    assert "mamujoco:HalfCheetah-6x1/medium-replay (" in dropped_text  # a task partly kept names its columns
    # narrowed on the command line: a per-task column stays on its task
    assert main(["bench", "--preset", "paper-lite", "--algos", "omiga,bcq-ma", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("6 runs, ") and all("/bcq-ma " in l or "/omiga " in l for l in lines[:-2])


def test_cost_model_scales_with_the_batch_size():
    """The cost model's update costs are measured at batch 128: a cell at another batch size (an override, the
    env's per-algorithm default, or the config's own default such as InSPO's 512) scales in proportion."""
    from marlkit.bench import presets
    from marlkit.envs.mamujoco import ALGO_DEFAULTS

    def cost(algo, hp=(), env="mamujoco:HalfCheetah-6x1", dataset="medium-replay"):
        cell = Grid(tasks=[(env, dataset)], algos=[algo], seeds=[0], steps=1000, eval_every=0,
                    hyperparameters=dict(hp)).cells()[0]
        family = env.split(":")[0]
        return presets.estimated_cpu_s(cell) - presets.EVAL_S[family] * cell.eval_episodes / 32

    ms = presets.UPDATE_MS["halfcheetah-6x1"]
    assert cost("omiga") == pytest.approx(ms["omiga"])  # 1000 updates at batch 128
    assert cost("omiga", {"batch_size": 256}) == pytest.approx(2 * ms["omiga"])
    inspo_batch = ALGO_DEFAULTS["inspo"].hyperparameters["batch_size"]  # MaMuJoCo's default for InSPO
    assert cost("inspo") == pytest.approx(ms["inspo"] * inspo_batch / 128)
    assert cost("inspo", env="smax:2s3z", dataset="good") == \
        pytest.approx(presets.UPDATE_MS["5m_vs_6m"]["inspo"] * InSPOConfig().batch_size / 128)


# --------------------------------------------------------------------------------------- synthetic records
def _write(root: Path, env, dataset, algo, seed, ret, alpha=None, evals=None):
    d = root / env / dataset / algo / f"a{alpha}" / f"seed={seed}"
    d.mkdir(parents=True)
    config = {"lr": 1e-3} | ({"alpha": alpha} if alpha is not None else {})
    rec = {"status": "ok", "env": env, "dataset": dataset, "algo": algo, "seed": seed, "alpha": alpha,
           "return": ret, "normalized_score": ret, "config": config,
           "evals": evals or [{"step": 10, "return": ret / 2, "normalized_score": ret / 2},
                              {"step": 20, "return": ret, "normalized_score": ret}]}
    (d / RECORD).write_text(json.dumps(rec))


def test_welch_table_bold_and_asterisks(tmp_path):
    best, close, far, single = [10.0, 11.0, 12.0], [9.5, 11.0, 12.4], [1.0, 1.1, 0.9], [50.0]
    for s in range(3):
        _write(tmp_path, "xor", "b", "best", s, best[s])
        _write(tmp_path, "xor", "b", "close", s, close[s])
        _write(tmp_path, "xor", "b", "far", s, far[s])
        _write(tmp_path, "mne", "imbalanced", "best", s, 5.0)   # constant columns: equal means -> star
        _write(tmp_path, "mne", "imbalanced", "close", s, 5.0)
        _write(tmp_path, "mne", "imbalanced", "far", s, 4.0)    # constant but lower -> significant
    _write(tmp_path, "jiang-lu", "behavior", "best", 0, single[0])
    _write(tmp_path, "jiang-lu", "behavior", "close", 0, 1.0)
    df = agg.load_records(tmp_path)
    assert len(df) == 20
    table = agg.results_table(df).set_index(["env", "dataset", "variant"])
    row = table.loc[("xor", "b")]
    assert row.loc["best", "best"] and not row.loc["best", "star"]
    p_close = stats.ttest_ind(best, close, equal_var=False).pvalue
    p_far = stats.ttest_ind(best, far, equal_var=False).pvalue
    assert p_close >= 0.05 > p_far  # the synthetic data mean what the test says
    assert row.loc["close", "star"] and row.loc["close", "p"] == pytest.approx(p_close)
    assert not row.loc["far", "star"] and row.loc["far", "p"] == pytest.approx(p_far)
    assert row.loc["best", "mean"] == pytest.approx(11.0) and row.loc["best", "std"] == pytest.approx(np.std(best))
    m = table.loc[("mne", "imbalanced")]
    assert m.loc["close", "star"] and not m.loc["far", "star"]
    one = table.loc[("jiang-lu", "behavior")]
    assert one.loc["best", "best"] and not one.loc["close", "star"] and np.isnan(one.loc["close", "p"])
    md = agg.to_markdown(agg.results_table(df))
    assert "| xor | b | **11.00 ± 0.82** | 10.97 ± 1.18\\* | 1.00 ± 0.08 |" in md
    tex = agg.to_latex(agg.results_table(df))
    assert r"\textbf{11.00 $\pm$ 0.82}" in tex and r"10.97 $\pm$ 1.18$^*$" in tex


def test_table_keeps_planned_cells_without_results(tmp_path):
    """With the plan's coverage, a planned algorithm or task without a finished run keeps its cell ('not run',
    'failed'), and a partial one names its finished seeds."""
    for s in range(3):
        _write(tmp_path, "xor", "b", "best", s, 1.0 + s)
    _write(tmp_path, "xor", "b", "close", 0, 1.0)
    cov = pd.DataFrame([{"env": env, "dataset": ds, "algo": algo, "seed": s, "status": status}
                        for env, ds in (("xor", "b"), ("mne", "balanced"))
                        for algo, statuses in (("best", ["ok"] * 3), ("close", ["ok", "failed", "not run"]),
                                               ("late", ["not run"] * 3), ("broken", ["failed"] * 3))
                        for s, status in enumerate(statuses)]).assign(
        status=lambda d: np.where(d.env == "mne", "not run", d.status))
    md = agg.to_markdown(agg.results_table(agg.load_records(tmp_path)), coverage=cov)
    assert "| Task | Dataset | best | close | late | broken |" in md
    assert "| xor | b | **2.00 ± 0.82** | 1.00 ± 0.00 (1 of 3 seeds, 1 failed) | not run | failed |" in md
    assert "| mne | balanced | not run | not run | not run | not run |" in md
    assert "not run" in agg.to_latex(agg.results_table(agg.load_records(tmp_path)), coverage=cov)
    assert "not run" not in agg.to_markdown(agg.results_table(agg.load_records(tmp_path)))


def test_aggregates_profiles_and_alpha_sweep(tmp_path):
    rng = np.random.default_rng(0)
    for algo, shift in (("a", 0.0), ("b", 10.0)):
        for alpha in (0.1, 1.0, 10.0):
            for s in range(3):
                _write(tmp_path, "xor", "b", algo, s, float(rng.normal(50 + shift + alpha, 5)), alpha)
                _write(tmp_path, "mne", "balanced", algo, s, float(rng.normal(20 + shift, 5)), alpha)
    df = agg.load_records(tmp_path)
    assert set(df["variant"]) == {f"{a} α={x:g}" for a in "ab" for x in (0.1, 1.0, 10.0)}
    est = agg.aggregate_estimates(df, reps=200)
    iqm = est[(est["variant"] == "b α=10") & (est["metric"] == "IQM")].iloc[0]
    scores = df[df["variant"] == "b α=10"]["normalized_score"].to_numpy()
    assert iqm["value"] == pytest.approx(stats.trim_mean(scores, 0.25))
    assert iqm["low"] <= iqm["value"] <= iqm["high"]
    prof = agg.performance_profiles(df, reps=50)
    p = prof["a α=1"]
    mine = df[df["variant"] == "a α=1"]["normalized_score"].to_numpy()
    assert np.allclose(p["fraction"], [(mine > t).mean() for t in p["tau"]])
    assert np.all(np.diff(p["fraction"]) <= 0) and np.all(p["low"] <= p["fraction"] + 1e-12)
    import matplotlib
    matplotlib.use("Agg")
    for fig in (agg.plot_alpha_sweep(df), agg.plot_learning_curves(df), agg.plot_aggregates(est),
                agg.plot_performance_profiles(prof)):
        assert fig.axes
    assert agg.alpha_varied(df)
    one_alpha_each = df[df["alpha"] == 1.0].assign(alpha=np.where(df[df["alpha"] == 1.0]["algo"] == "a", 1.0, 3.0))
    assert not agg.alpha_varied(one_alpha_each)  # different defaults per algorithm are not a sweep
    with pytest.raises(ValueError, match="several values"):
        agg.plot_alpha_sweep(one_alpha_each)
    paths = summarize(tmp_path)
    assert {"results", "table_md", "table_tex", "learning_curves", "alpha_sweep"} <= set(paths)
    assert all(p.is_file() for p in paths.values())


def test_load_records_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        agg.load_records(tmp_path / "missing")
    assert agg.load_records(tmp_path).empty
    (tmp_path / RECORD).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        agg.load_records(tmp_path)


# -------------------------------------------------------------------------------- papermill executions
papermill = pytest.importorskip("papermill")


def _grid(**kw):
    base = dict(tasks=[("xor", "a"), ("xor", "b")], algos=["bc"], seeds=[0, 1], sweep={"lr": [1e-3, 5e-4]},
                hyperparameters=SMALL, steps=20, eval_every=10)
    return Grid(**{**base, **kw})


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 2 datasets × 2 learning rates × 2 seeds sweep on the local process pool."""
    out = tmp_path_factory.mktemp("sweep")
    summary = run_sweep(_grid(), out, workers=2, progress=False)
    return out, summary


def test_2x2x2_grid_completes_with_notebook_next_to_record(sweep):
    out, summary = sweep
    assert summary["cells"] == 8 and summary["ok"] == 8 and not summary["failed"], summary
    records = sorted(out.glob("**/" + RECORD))
    assert len(records) == 8
    for path in records:
        assert (path.parent / "10_benchmark.ipynb").is_file() and (path.parent / "record.csv").is_file()
        rec = json.loads(path.read_text())
        assert rec["status"] == "ok" and rec["steps"] == 20 and [e["step"] for e in rec["evals"]] == [10, 20]
        assert rec["parameters"]["threads"] == 1 and rec["threads"] == 1
        assert rec["marlkit_version"] and "git_commit" in rec and rec["updates_per_s"] > 0
        assert rec["normalized_score"] == pytest.approx(100 * rec["return"])  # xor: random 0, best payoff 1
        assert rec["config"]["hidden"] == [16, 16]
        assert rec["cpu"] and len(rec["dataset_fingerprint"]) == 16
        assert rec["onednn_linear"] is onednn_linear()  # the CPU matmul backend the run used
    fingerprints = {(r["dataset"], r["seed"]): r["dataset_fingerprint"]
                    for r in (json.loads(p.read_text()) for p in records)}
    assert len(set(fingerprints.values())) == len(fingerprints)  # one dataset per (dataset, seed)
    df = agg.load_records(out)
    assert set(df["variant"]) == {"bc lr=0.001", "bc lr=0.0005"}
    assert sorted(df.groupby(["dataset", "variant"]).size()) == [2, 2, 2, 2]


def test_interrupted_sweep_resumes(sweep):
    out, _ = sweep
    records = sorted(out.glob("**/" + RECORD))
    lost = records[3]
    lost.unlink()  # as if the sweep had been killed during this run
    before = {p: p.stat().st_mtime_ns for p in records if p != lost}
    summary = run_sweep(_grid(), out, workers=2, progress=False)
    assert summary["skipped"] == 7 and summary["ran"] == 1 and summary["ok"] == 1
    assert lost.is_file()
    assert {p: p.stat().st_mtime_ns for p in before} == before  # finished runs untouched


def test_failure_is_recorded_and_not_fatal(sweep):
    out, _ = sweep
    grid = _grid(tasks=[("xor", "b"), ("xor", "nope")], seeds=[0], sweep={"lr": [1e-3]})
    summary = run_sweep(grid, out, workers=2, progress=False)
    assert summary["skipped"] == 1 and summary["ran"] == 1 and len(summary["failed"]) == 1
    failed = next(out.glob("**/" + FAILED))
    info = json.loads(failed.read_text())
    assert "UnknownNameError" in info["error"] and "unknown dataset 'nope'" in info["error"]
    assert "load_dataset" in info["traceback"]  # the notebook line that raised
    assert (failed.parent / "10_benchmark.ipynb").is_file()
    assert len(agg.load_failures(out)) == 1 and len(agg.load_records(out)) == 8


def test_cli_on_a_finished_sweep_summarizes_and_reports(sweep, capsys):
    from marlkit.cli import main

    out, _ = sweep
    grid = out / "grid.yaml"
    grid.write_text("envs: [xor]\ndatasets: [a, b]\nalgos: [bc]\nseeds: 0-1\nsweep: {lr: [0.001, 0.0005]}\n"
                    "hyperparameters: {hidden: [16, 16], batch_size: 32}\nsteps: 20\neval_every: 10\n")
    assert main(["bench", "--grid", str(grid), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "ran 0 (ok 0, failed 0), skipped 8" in text  # nothing reruns
    assert "| xor | b |" in text and "report notebook:" in text
    for name in ("table.md", "table.tex", "results.csv", "learning_curves.png", "11_results.ipynb",
                 "figures/11_learning_curves.png", "figures/11_aggregates.png"):
        assert (out / name).is_file(), name


def test_wrong_typed_papermill_parameter_gives_clear_error(tmp_path):
    nb = find_notebook()
    with pytest.raises(papermill.PapermillExecutionError) as info:
        papermill.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                   parameters={"steps": "ten", "out_dir": str(tmp_path)}, progress_bar=False,
                                   cwd=str(nb.parent))
    assert info.value.ename == "ParameterError"
    assert "'steps' must be an integer or None, got str 'ten'" in info.value.evalue
    assert not (tmp_path / RECORD).exists()


def test_ray_backend_local(tmp_path):
    ray = pytest.importorskip("ray")
    from marlkit.bench import init_ray

    try:
        init_ray(workers=2)
    except Exception as exc:  # Ray's own start-up (raylet waiting for its agents) can time out on a loaded host
        if "timed out during startup" in str(exc):
            pytest.skip(f"a local Ray could not start on this machine: {exc}")
        raise
    grid = _grid(tasks=[("xor", "c")], seeds=[0, 1], sweep={})
    try:
        summary = run_sweep(grid, tmp_path, backend="ray", workers=2, progress=False)
    finally:
        ray.shutdown()
    assert summary["ok"] == 2 and not summary["failed"], summary
    records = agg.load_records(tmp_path)
    assert sorted(records["seed"]) == [0, 1] and (records["steps"] == 20).all()


def test_run_title_learning_curve_limits_and_closing_summary():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from marlkit.bench import describe_record, plot_learning_curve, reference_returns, run_title
    from marlkit.envs import make_env

    params = {**GOOD, "algo": "omiga", "hyperparameters": {"hidden": [64, 64], "lr": 1e-3}, "alpha": 0.1}
    assert run_title(params, {"alpha": 0.1}) == "omiga · xor/b · α = 0.1 · hidden 64x64, lr 0.001"
    assert run_title({**GOOD, "hyperparameters": {}}) == "bc · xor/b"
    xor = make_env("xor")
    ref = reference_returns(xor)
    evals = [{"step": 10, "return": 0.2}, {"step": 20, "return": 0.3}]
    fig = plot_learning_curve(evals, reference=ref)
    lo, hi = fig.axes[0].get_ylim()
    assert lo < ref["random"] < 0.2 and 0.3 < ref["expert"] < hi  # the references set the scale
    plt.close(fig)
    fig = plot_learning_curve([{"step": 10, "return": -2.0}], reference=ref)
    assert fig.axes[0].get_ylim()[0] < -2.0  # widened to a curve below the random reference
    plt.close(fig)
    record = {"algo": "bc", "env": "xor", "dataset": "b", "steps": 20, "return": 0.2, "normalized_score": 20.0,
              "reference_returns": ref, "evals": [{"step": 10, "return": 0.5}, {"step": 20, "return": 0.2}],
              "greedy_action": ["A", "A"], "greedy_return": 0.0,
              "joint_policy": [[4 / 9, 2 / 9], [2 / 9, 1 / 9]]}
    text = describe_record(record, xor)
    assert "return 0.200, normalized score 20" in text and "best evaluation was 0.500 at update 10" in text
    assert "Greedy joint action: (A, A)" in text and "outside the dataset: 0.111" in text
