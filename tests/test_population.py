"""Vectorized populations: member k of a population equals the single run with its seed (and α), per-member
gradient clipping, the contract's refusals, and the CLI's --seeds/--alphas/--vectorize."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from marlkit.algos.base import ConfigError
from marlkit.algos.bc import BC
from marlkit.cli import main as cli_main
from marlkit.cli import parse_int_list
from marlkit.data.sampler import DeviceSampler
from marlkit.envs import load_dataset, make_env
from marlkit.population import Population, stack_batches, supports_population
from marlkit.train import RunConfig, build_algo, run, run_many
from marlkit.utils import seed_everything
from tests.helpers import toy_continuous_dataset

SMALL = {"hidden": (16, 16), "batch_size": 16}


def _members(algo, env, data_fn, seeds, overrides_fn):
    models, samplers = [], []
    for s in seeds:
        data = data_fn(s)
        seed_everything(s)
        models.append(build_algo(algo, env.spec, overrides_fn(s)))
        samplers.append(DeviceSampler(data, "cpu", seed=s))
    return models, samplers


def _max_diff(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k].double() - sb[k].double()).abs().max().item() for k in sa if torch.is_tensor(sa[k]))


@pytest.mark.parametrize("algo", ["bc", "omiga"])
@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_member_equals_single_run(algo, kind):
    if kind == "discrete":
        env = make_env("xor")
        data_fn = lambda s: load_dataset(env, "b", size=200, seed=s)
    else:
        _, env = toy_continuous_dataset()
        data_fn = lambda s: toy_continuous_dataset(seed=s)[0]
    seeds = [0, 3, 5]
    # OMIGA members also differ in alpha (a population field); BC members only in seeds
    alpha = {0: 1.0, 3: 10.0, 5: 3.0}
    over = (lambda s: {**SMALL, "alpha": alpha[s]}) if algo == "omiga" else (lambda s: dict(SMALL))
    singles, single_metrics = [], []
    for model, sampler in zip(*_members(algo, env, data_fn, seeds, over)):
        for _ in range(25):
            m = model.train_step(sampler)
        singles.append(model)
        single_metrics.append(m)
    models, samplers = _members(algo, env, data_fn, seeds, over)
    pop = Population(models)
    for _ in range(25):
        pm = pop.train_step(samplers)
    pop.write_back()
    for k, (single, member) in enumerate(zip(singles, models)):
        assert int(member.num_updates) == 25
        assert _max_diff(single, member) < 1e-5
        for name, v in single_metrics[k].items():
            assert pm[name].shape == (len(seeds),)
            assert torch.allclose(pm[name][k], v, rtol=1e-5, atol=1e-6), name
    # members really are different runs
    assert _max_diff(models[0], models[1]) > 1e-3


def test_clipping_is_per_member():
    env = make_env("xor")
    models = []
    for s in (0, 1):
        seed_everything(s)
        models.append(build_algo("omiga", env.spec, SMALL))
    pop = Population(models)
    stage = pop.stacked.update_stages[0]
    groups = pop.stacked.plan(stage).clip_groups
    torch.manual_seed(0)
    for g in groups:
        for p in g:
            p.grad = torch.randn_like(p)
    for p in groups[1]:
        p.grad[1] *= 1e-4  # member 1's V gradients are tiny: must stay unclipped
    expect = []
    for k in (0, 1):
        slices = [[p.grad[k].clone() for p in g] for g in groups]
        for grads in slices:
            torch.nn.utils.clip_grad_norm_([torch.nn.Parameter(torch.zeros_like(x)) for x in grads], 1.0)
            total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in grads]))
            coef = min(1.0, 1.0 / (float(total) + 1e-6))
            for x in grads:
                x.mul_(coef)
        expect.append(slices)
    tiny_before = [p.grad[1].clone() for p in groups[1]]
    pop.clip_grads(groups, stage.max_norm)
    for k in (0, 1):
        for g, slices in zip(groups, expect[k]):
            for p, x in zip(g, slices):
                assert torch.allclose(p.grad[k], x, rtol=1e-6, atol=1e-9)
    for p, before in zip(groups[1], tiny_before):
        assert torch.equal(p.grad[1], before)
    norms = [torch.linalg.vector_norm(torch.stack([p.grad[0].norm() for p in g])) for g in groups]
    assert all(abs(float(n) - 1.0) < 1e-4 for n in norms)


def test_run_many_vectorized_matches_sequential_records():
    cfg = RunConfig(steps=60, threads=1, progress=False, log_every=20)
    over = {"hidden": (16,), "batch_size": 32}
    vec = run_many("mne", "balanced", "omiga", over, cfg, seeds=[0, 2], alphas=[1.0, 10.0], vectorize=True)
    seq = run_many("mne", "balanced", "omiga", over, cfg, seeds=[0, 2], alphas=[1.0, 10.0], vectorize=False)
    assert [(r["config"]["alpha"], r["seed"]) for r in vec] == [(1.0, 0), (1.0, 2), (10.0, 0), (10.0, 2)]
    for v, s in zip(vec, seq):
        assert (v["seed"], v["config"]) == (s["seed"], s["config"])
        assert v["population"] == 4 and v["steps"] == 60
        np.testing.assert_allclose(v["per_agent_policy"], s["per_agent_policy"], atol=1e-5)
        assert v["return"] == pytest.approx(s["return"], abs=1e-5)
    single = run("mne", "balanced", "omiga", {**over, "alpha": 10.0}, RunConfig(steps=60, threads=1, progress=False,
                                                                                 log_every=20, seed=2))
    assert vec[3]["return"] == pytest.approx(single["return"], abs=1e-5)


def test_refusals():
    env = make_env("xor")
    seed_everything(0)
    a = build_algo("omiga", env.spec, SMALL)
    b = build_algo("omiga", env.spec, {**SMALL, "tau": 0.01})
    with pytest.raises(ConfigError, match="tau"):
        Population([a, b])
    with pytest.raises(ConfigError, match="one algorithm class"):
        Population([a, build_algo("bc", env.spec, SMALL)])
    with pytest.raises(ConfigError, match="at least one"):
        Population([])

    class Custom(BC):
        name = "custom"

        def update(self, batch):
            return super().update(batch)

    assert supports_population(BC) and not supports_population(Custom)
    with pytest.raises(ConfigError, match="does not support vectorized"):
        Population([Custom(env.spec, BC.Config(**SMALL))])
    with pytest.raises(ConfigError, match="checkpoint"):
        run_many("xor", "b", "bc", SMALL, RunConfig(steps=5, out="/tmp/x", checkpoint_every=5, progress=False),
                 seeds=[0, 1], vectorize=True)
    with pytest.raises(ConfigError, match="alpha"):
        run_many("xor", "b", "bc", SMALL, RunConfig(steps=5, progress=False), seeds=[0], alphas=[1.0])
    with pytest.raises(ValueError, match="one sampler per member"):
        Population([a]).train_step([])


def test_stack_batches_shapes():
    b = [{"x": torch.zeros(4, 2)}, {"x": torch.ones(4, 2)}]
    s = stack_batches(b)
    assert s["x"].shape == (2, 4, 2) and s["x"][1].sum() == 8


def test_cli_seeds(capsys):
    assert parse_int_list("0-2,7") == [0, 1, 2, 7]
    for bad in ("3-1", "a", "1,1", "-2"):
        with pytest.raises(SystemExit):
            parse_int_list(bad)
    args = ["train", "--env", "xor", "--dataset", "b", "--algo", "bc", "--steps", "40", "--threads", "1",
            "--hidden", "16", "--seeds", "0-1", "--json"]
    assert cli_main(args + ["--vectorize"]) == 0
    vec = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert cli_main(args) == 0
    seq = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seed"] for r in vec] == [r["seed"] for r in seq] == [0, 1]
    for v, s in zip(vec, seq):
        assert v["return"] == pytest.approx(s["return"], abs=1e-5)


def _compiled_vs_eager(backend, steps):
    env = make_env("xor")
    out = []
    for compile_ in (False, True):
        data = load_dataset(env, "b", size=200, seed=0)
        seed_everything(0)
        algo = build_algo("omiga", env.spec, SMALL)
        from marlkit.train import fit

        rec = fit(algo, data, env, RunConfig(steps=steps, threads=1, progress=False, log_every=5, compile=compile_,
                                             compile_backend=backend))
        out.append((algo, rec))
    return out


def test_compile_path_runs_on_cpu():
    """The compile path end to end with the tracing-only backend (fast): same numbers as eager."""
    (eager, r0), (comp, r1) = _compiled_vs_eager("eager", 10)
    assert comp._compile_opts == ("eager", None)
    assert _max_diff(eager, comp) < 1e-6
    assert r0["return"] == pytest.approx(r1["return"], abs=1e-6)
    with pytest.raises(ConfigError, match="compile"):
        run_many("xor", "b", "bc", SMALL, RunConfig(steps=5, progress=False, compile=True), seeds=[0, 1],
                 vectorize=True)
    with pytest.raises(ConfigError, match="compile"):
        RunConfig(compile="yes").validate()


@pytest.mark.skipif(not __import__("os").environ.get("MARLKIT_TEST_INDUCTOR"),
                    reason="inductor compiles C++ kernels, minutes on a small CPU; set MARLKIT_TEST_INDUCTOR=1")
def test_compile_inductor_cpu():
    (eager, _), (comp, _) = _compiled_vs_eager("inductor", 10)
    assert _max_diff(eager, comp) < 1e-4


def test_benchmark_smoke():
    """The speed tools run at a tiny size (population rows of update_speed, phase profile)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import profile_update
    import update_speed

    tiny = {"hidden": (8,), "batch_size": 8}
    seq, vec = update_speed.bench_population("omiga", "halfcheetah-6x1", "cpu", 1, 2, 1, tiny, 2)
    assert seq > 0 and vec > 0
    assert update_speed.bench_population("omiga", "5m_vs_6m", "cpu", 1, 1, 1, tiny, 2) is not None
    phases = profile_update.profile(*profile_update.build("bc", "5m_vs_6m", "cpu", tiny), 3)
    assert {"sample", "loss/forward", "loss/backward", "loss/optimizer", "hooks", "trainer"} <= set(phases)
    assert all(v >= 0 for v in phases.values())
    assert sum(phases.values()) > 0


def test_linear_backend_benchmark_compares_both_backends_and_restores_the_setting(capsys):
    """`benchmarks/linear_backend.py` times both backends and leaves marlkit's backend setting as it found it."""
    import sys
    from pathlib import Path

    from marlkit.nets.mlp import _LINEAR_POINTWISE, onednn_linear

    if _LINEAR_POINTWISE is None or not torch.backends.mkldnn.is_available():
        pytest.skip("this PyTorch build has no oneDNN linear")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import linear_backend

    before = onednn_linear()
    assert linear_backend.main(["--algos", "bc", "--calls", "1", "--repeats", "1", "--blocks", "1",
                                "--block", "1"]) == 0
    assert onednn_linear() is before
    out = capsys.readouterr().out
    assert "weight grad" in out and "oneDNN / MKL median" in out


def test_update_speed_smoke_covers_every_algorithm(tmp_path):
    """`benchmarks/update_speed.py --smoke` times every registered algorithm on both shapes and writes its table."""
    import json
    import sys
    from pathlib import Path

    from marlkit.algos import ALGOS

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import update_speed

    out = tmp_path / "speed.json"
    md = tmp_path / "RESULTS.md"
    assert update_speed.main(["--smoke", "--threads", "1", "--population", "0", "--json", str(out),
                              "--markdown", str(md)]) == 0
    raw = json.loads(out.read_text())
    rows = raw["rows"]
    timed = {r["algo"] for r in rows}
    assert set(ALGOS) <= timed and all(r["ms"] > 0 for r in rows)
    assert "halfcheetah-6x1" in md.read_text() and "5m_vs_6m" in md.read_text()
    # every algorithm side by side with OMIGA, with its FLOPs and floor
    assert {r["algo"] for r in raw["vs_omiga"]} == {n for n in ALGOS if update_speed.get_algo(n).supports_continuous}
    assert all(r["flops"] > 0 and r["ratio"] > 0 for r in raw["vs_omiga"])
    assert "Every algorithm against OMIGA" in md.read_text() and raw["gemm_rates"]["batched"] > 0


def test_gpu_script_runs_on_cpu(tmp_path):
    """`benchmarks/gpu.sh` (eager vs compiled, K=8 vs sequential, every algorithm) runs at a tiny size on CPU and
    writes only its own section of the results file."""
    import subprocess
    from pathlib import Path

    from marlkit.algos import ALGOS

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "RESULTS.md"
    out.write_text("# Kept\n\nbefore\n")
    proc = subprocess.run(["bash", str(root / "benchmarks" / "gpu.sh"), "--device", "cpu", "--smoke", "--out",
                           str(out)], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    assert text.startswith("# Kept\n\nbefore\n") and text.count("<!-- section:cpu -->") == 1
    assert all(f"| {name} (2 runs, vectorized)" in text for name in ALGOS)
    assert "| omiga (compiled)" in text and "## Update speed: cpu" in text
    proc = subprocess.run(["bash", str(root / "benchmarks" / "gpu.sh"), "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown option --bogus" in proc.stderr


def test_results_sections_are_replaced_in_place():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from update_speed import replace_section

    doc = replace_section("# Title\n", "cuda", "table 1\n")
    assert doc == "# Title\n<!-- section:cuda -->\ntable 1\n<!-- /section:cuda -->\n"
    doc = replace_section(doc + "tail\n", "cuda", "table 2\n")
    assert doc == "# Title\n<!-- section:cuda -->\ntable 2\n<!-- /section:cuda -->\ntail\n"
