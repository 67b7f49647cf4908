"""Environment run defaults: the evaluation mode of each env's paper, per-algorithm defaults that make the bare
command reproduce the seed games, and the inspo.md presets built on them."""

from __future__ import annotations

import dataclasses
import json

import pytest

import marlkit.train as train_module
from marlkit.algos import ALGOS, get_algo
from marlkit.bench.cli import grid_from_args
from marlkit.bench.params import ParameterError, validate_parameters
from marlkit.bench.presets import INSPO_TABLE_ALGOS, preset
from marlkit.cli import build_parser
from marlkit.cli import main as cli_main
from marlkit.envs.registry import make_env
from marlkit.train import RunConfig, build_algo, eval_mode, run

BUILT_IN = ["xor", "mne", "jiang-lu", "bridge", "differential", "differential-partial"]


# ------------------------------------------------------------------------------------ evaluation modes
@pytest.mark.parametrize("env,default", [("bridge", False), ("differential", True), ("xor", None), ("mne", None)])
def test_env_default_mode_and_overrides(env, default):
    e = make_env(env)
    assert e.spec.deterministic_eval is default
    assert eval_mode(RunConfig(), e) is default
    for choice in (True, False):  # a choice applies to rollouts, never to the exact matrix-game evaluation
        assert eval_mode(RunConfig(deterministic_eval=choice), e) is (None if default is None else choice)


def test_the_mode_reaches_the_rollouts_and_the_record(monkeypatch):
    seen = []
    real = train_module.evaluate

    def spy(model, env, episodes, deterministic, seed=0):
        seen.append(deterministic)
        return real(model, env, episodes, deterministic, seed=seed)

    monkeypatch.setattr(train_module, "evaluate", spy)
    small = {"hidden": (8, 8)}
    for flag, mode in ((None, False), (True, True), (False, False)):
        rec = run("bridge", "optimal", "bc", small, RunConfig(steps=2, eval_episodes=2, progress=False, threads=1,
                                                             deterministic_eval=flag), dataset_size=200)
        assert rec["deterministic_eval"] is mode and seen[-1] is mode
    rec = run("xor", "b", "bc", small, RunConfig(steps=2, progress=False, threads=1, deterministic_eval=True))
    assert rec["deterministic_eval"] is None


def test_run_config_refuses_a_non_boolean_mode():
    from marlkit.algos.base import ConfigError

    with pytest.raises(ConfigError, match="deterministic_eval"):
        RunConfig(deterministic_eval="yes").validate()


def test_cli_switches(capsys, tmp_path):
    p = build_parser()
    for cmd in (["train", "--env", "xor", "--dataset", "b", "--algo", "bc"], ["bench"]):
        assert p.parse_known_args(cmd)[0].deterministic_eval is None
        assert p.parse_known_args([*cmd, "--stochastic-eval"])[0].deterministic_eval is False
        assert p.parse_known_args([*cmd, "--deterministic-eval"])[0].deterministic_eval is True
        with pytest.raises(SystemExit):
            p.parse_known_args([*cmd, "--stochastic-eval", "--deterministic-eval"])
        assert "not allowed with" in capsys.readouterr().err
    out = tmp_path / "run"
    assert cli_main(["train", "--env", "bridge", "--dataset", "optimal", "--algo", "bc", "--steps", "2",
                     "--hidden", "8,8", "--eval-episodes", "2", "--dataset-size", "200", "--deterministic-eval",
                     "--threads", "1", "--json", "--out", str(out)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["deterministic_eval"] is True
    assert json.loads((out / "result.json").read_text())["deterministic_eval"] is True


def test_bench_passes_the_mode_to_the_notebook():
    args = build_parser().parse_known_args(["bench", "--env", "bridge", "--datasets", "optimal", "--algos", "bc",
                                            "--stochastic-eval"])[0]
    cells = grid_from_args(args).cells()
    assert {c.parameters("/tmp/x")["deterministic_eval"] for c in cells} == {False}
    args = build_parser().parse_known_args(["bench", "--env", "xor", "--datasets", "b", "--algos", "bc"])[0]
    assert grid_from_args(args).cells()[0].parameters("/tmp/x")["deterministic_eval"] is None


def test_notebook_parameter_is_optional_and_typed():
    params = preset("tiny").cells()[0].parameters("/tmp/x")
    assert validate_parameters(params)["deterministic_eval"] is None
    del params["deterministic_eval"]  # a notebook that does not pass it: None, the env's mode
    assert validate_parameters(params)["deterministic_eval"] is None
    assert validate_parameters({**params, "deterministic_eval": False})["deterministic_eval"] is False
    with pytest.raises(ParameterError, match="deterministic_eval"):
        validate_parameters({**params, "deterministic_eval": "False"})


# ------------------------------------------------------------------------------- per-algorithm defaults
@pytest.mark.parametrize("env", BUILT_IN)
def test_every_default_names_a_registered_algorithm_and_its_fields(env):
    spec = make_env(env).spec
    for algo, defaults in spec.algo_defaults.items():
        assert algo in ALGOS, (env, algo)
        fields = {f.name for f in dataclasses.fields(get_algo(algo).Config)}
        assert set(defaults.hyperparameters) <= fields, (env, algo)
        assert defaults.source and (defaults.steps is None or defaults.steps > 0)
        get_algo(algo).Config.from_dict({k: list(v) if isinstance(v, tuple) else v
                                         for k, v in defaults.hyperparameters.items()})


def test_defaults_apply_under_the_users_options():
    spec = make_env("jiang-lu").spec
    assert build_algo("mabcq", spec).config.threshold == 0.2
    algo = build_algo("mabcq", spec, {"threshold": 0.5})
    assert algo.config.threshold == 0.5 and algo.config.hidden == (32, 32)
    assert spec.steps_for("mabcq") == 1200 and spec.steps_for("bc") == spec.default_steps
    assert build_algo("bc", spec).config.hidden == get_algo("bc").Config().hidden


@pytest.mark.parametrize("env", ["differential", "differential-partial"])
def test_differential_defaults_give_table9_columns_one_setting(env):
    """MATD3+BC and TD3+BC share the small-scale Table 9 settings, so the bare commands compare like with like."""
    spec = make_env(env).spec
    m, t = build_algo("matd3bc", spec).config, build_algo("td3bc-dec", spec).config
    for key in ("hidden", "gamma", "tau", "lr", "actor_lr"):
        assert getattr(m, key) == getattr(t, key)
    assert (m.hidden, m.gamma, m.vd, t.vd) == ((64, 64), 0.9, True, False)
    assert spec.steps_for("matd3bc") == spec.steps_for("td3bc-dec") == 3000
    assert build_algo("matd3bc", spec, {"gamma": 0.99}).config.gamma == 0.99
    assert build_algo("bc", spec).config.hidden == get_algo("bc").Config().hidden


def _bare(env, dataset, algo):
    return run(env, dataset, algo, None, RunConfig(progress=False, threads=1))


@pytest.mark.parametrize("algo,greedy", [("bcq-dec", ["a1", "a2"]), ("mabcq", ["a2", "a1"])])
def test_bare_jiang_lu_reproduces_tables_2_and_4(algo, greedy):
    """offline-decentralized-marl.md Sec. 5.1: plain decentralized BCQ converges to (a1, a2), MABCQ to the optimum
    (a2, a1), at the command line's defaults."""
    rec = _bare("jiang-lu", "behavior", algo)
    assert rec["steps"] == 1200
    assert rec["greedy_action"] == greedy


@pytest.mark.parametrize("dataset,ret", [("balanced", 20.0), ("imbalanced", 5.0)])
def test_bare_omiga_mne_reproduces_table2(dataset, ret):
    rec = _bare("mne", dataset, "omiga")
    assert rec["config"]["alpha"] == 0.1
    assert abs(rec["return"] - ret) < 0.25


@pytest.mark.parametrize("dataset,greedy", [("b", ["B", "B"]), ("c", ["A", "A"])])
def test_bare_omar_xor_reproduces_table1(dataset, greedy):
    """inspo.md Table 1: OMAR −2.00 on (b) (the OOD joint action (B, B)) and 0.00 on (c)."""
    assert _bare("xor", dataset, "omar")["greedy_action"] == greedy


@pytest.mark.parametrize("env,dataset,ret", [("xor", "a", 1.0), ("mne", "imbalanced", 5.0)])
def test_bare_alberdice_reproduces_tables_1_2(env, dataset, ret):
    """inspo.md Tables 1–2: AlberDICE 1.00 on XOR (a) (one of the in-data optima (A, B), (B, A)) and 5.00 on M-NE
    imbalanced (it stops at the data's (A, A), as OMIGA does)."""
    rec = _bare(env, dataset, "alberdice")
    assert rec["steps"] == 1000 and rec["config"]["hidden"] == [64, 64]
    assert abs(rec["return"] - ret) < 0.01


# ------------------------------------------------------------------------------------------- presets
def test_inspo_presets():
    matrix, bridge = preset("inspo-matrix"), preset("inspo-bridge")
    assert matrix.tasks == [("xor", "a"), ("xor", "b"), ("xor", "c"), ("mne", "balanced"), ("mne", "imbalanced")]
    assert bridge.tasks == [("bridge", "optimal"), ("bridge", "mixed")]
    for grid in (matrix, bridge):
        assert grid.algos == [a for a in INSPO_TABLE_ALGOS if a in ALGOS] and "cfcql" in grid.algos
        assert grid.seeds == [0, 1, 2, 3, 4] and grid.steps is None and not grid.hyperparameters
    assert bridge.deterministic_eval is False and matrix.deterministic_eval is None
    assert len(bridge.cells()) == 2 * len(bridge.algos) * 5


def test_bridge_inspo_keeps_a_constant_entropy_temperature():
    """Bridge's InSPO default is Eq. 9's constant β (the annealed one biases the bootstrapped Qs there)."""
    spec = make_env("bridge").spec
    algo = build_algo("inspo", spec, {"hidden": (8, 8)})
    assert (algo.config.beta, algo.config.beta_final) == (0.01, None)
    assert float(algo.beta(0)) == float(algo.beta(10_000)) == pytest.approx(0.01)
    annealed = build_algo("inspo", spec, {"hidden": (8, 8), "beta": 10.0, "beta_final": 0.01})
    assert float(annealed.beta(0)) == pytest.approx(10.0) and float(annealed.beta(10_000)) == pytest.approx(0.01, rel=1e-4)
    assert build_algo("inspo", make_env("xor").spec).config.beta_final == 0.01  # matrix games still anneal


def test_cli_none_switches_off_an_optional_option():
    from marlkit.cli import _coerce

    assert _coerce("none", "float | None", "beta_final") is None
    assert _coerce("None", "float | None", "ratio_clip") is None
    assert _coerce("0.5", "float | None", "beta_final") == 0.5
    with pytest.raises(SystemExit, match="--lr expects"):
        _coerce("none", "float", "lr")
