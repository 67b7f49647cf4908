"""The one update contract, checked for every registered algorithm (new algorithms join automatically):

1. a K=2 vectorized population equals two separate runs of the same seeds (metrics and parameters);
2. the compiled update (``backend="eager"``: the torch.compile path without code generation) equals the eager one;
3. the phase profiler reports every stage;
4. (exact, bit-identical resume from checkpoints: ``tests/test_checkpoint.py``, also over every algorithm);

on a discrete and a continuous task where the algorithm supports them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from marlkit.algos import ALGOS, get_algo
from marlkit.algos.base import Stage
from marlkit.data.sampler import DeviceSampler
from marlkit.envs import load_dataset, make_env
from marlkit.population import Population
from marlkit.train import build_algo
from marlkit.utils import seed_everything
from tests.helpers import toy_continuous_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

SMALL = {"hidden": (16, 16), "batch_size": 16}
EXTRA = {  # keep the algorithms' pre-training short
    "inspo": {"bc_steps": 5, "q_warmup_steps": 5, "batch_size": 32},
    "bcq-ma": {"vae_hidden": (16, 16)},
    **{name: {"vae_pretrain_steps": 3} for name in ("mabcq", "bcq-dec", "macql", "cql-dec", "matd3bc", "td3bc-dec")},
}
CASES = [(name, kind) for name in sorted(ALGOS) for kind in ("discrete", "continuous")
         if (get_algo(name).supports_discrete if kind == "discrete" else get_algo(name).supports_continuous)]


def _task(kind: str, seed: int):
    if kind == "discrete":
        env = make_env("xor")
        return env, load_dataset(env, "b", size=300, seed=seed)
    data, env = toy_continuous_dataset(seed=seed)
    return env, data


def _run(name: str, kind: str, seed: int):
    """A freshly built and set-up algorithm with its sampler, as a single run with ``seed`` builds them."""
    env, data = _task(kind, seed)
    seed_everything(seed)
    algo = build_algo(name, env.spec, {**SMALL, **EXTRA.get(name, {})})
    sampler = DeviceSampler(data, "cpu", seed=seed)
    algo.setup(sampler)
    return algo, sampler


def _tensors(algo) -> dict[str, torch.Tensor]:
    return {k: v for k, v in algo.state_dict().items() if torch.is_tensor(v)}


def _max_diff(a, b) -> float:
    sa, sb = _tensors(a), _tensors(b)
    assert sa.keys() == sb.keys()
    return max(((sa[k].double() - sb[k].double()).abs().max().item() if sa[k].numel() else 0.0) for k in sa)


@pytest.mark.parametrize("name,kind", CASES)
def test_population_member_equals_single_run(name, kind):
    seeds, steps = (0, 3), 20
    singles, single_metrics = [], []
    for s in seeds:
        algo, sampler = _run(name, kind, s)
        metrics = [algo.train_step(sampler) for _ in range(steps)]
        singles.append(algo)
        single_metrics.append(metrics)
    members, samplers = zip(*(_run(name, kind, s) for s in seeds))
    pop = Population(list(members))
    pop_metrics = [pop.train_step(list(samplers)) for _ in range(steps)]
    pop.write_back()
    for k, (single, member) in enumerate(zip(singles, members)):
        assert _max_diff(single, member) < 1e-5, f"member {k} drifted from its single run"
        for step, (mine, theirs) in enumerate(zip(single_metrics[k], pop_metrics)):
            assert mine.keys() == theirs.keys()
            for key, v in mine.items():
                assert theirs[key].shape == (len(seeds),)
                assert torch.allclose(theirs[key][k], v, rtol=1e-5, atol=1e-5), (step, key)
    assert _max_diff(members[0], members[1]) > 1e-4  # the members are different runs


@pytest.mark.parametrize("name,kind", CASES)
def test_compiled_update_equals_eager(name, kind):
    steps = 4  # covers TD3's delayed actor (policy_freq 2)
    eager, s1 = _run(name, kind, 0)
    compiled, s2 = _run(name, kind, 0)
    compiled.enable_compile(backend="eager")
    for _ in range(steps):
        m1, m2 = eager.train_step(s1), compiled.train_step(s2)
        assert m1.keys() == m2.keys()
        for key in m1:
            assert torch.allclose(m1[key], m2[key], rtol=1e-5, atol=1e-6), key
    assert _max_diff(eager, compiled) < 1e-5


@pytest.mark.parametrize("name", sorted(ALGOS))
def test_profiler_reports_every_stage(name):
    from profile_update import profile

    kind = "discrete" if get_algo(name).supports_discrete else "continuous"
    algo, sampler = _run(name, kind, 0)
    times = profile(algo, sampler, updates=4)
    stages = [st.name for st in algo.update_stages]
    assert stages and all(isinstance(st, Stage) for st in algo.update_stages)
    for st in stages:
        assert {f"{st}/forward", f"{st}/backward", f"{st}/optimizer"} <= set(times)
    assert all(v >= 0 for v in times.values())


def _cli_case(name: str):
    cls = get_algo(name)
    args = ["train", "--algo", name, "--seeds", "0-1", "--vectorize", "--json", "--steps", "3", "--threads", "1",
            "--hidden", "8,8", "--batch-size", "32", "--eval-episodes", "2"]
    extra = {"inspo": ["--bc-steps", "2", "--q-warmup-steps", "2"], "bcq-ma": ["--vae-hidden", "8,8"]}
    if name in ("mabcq", "bcq-dec", "macql", "cql-dec", "matd3bc", "td3bc-dec"):
        extra[name] = ["--vae-pretrain-steps", "2"]
    envs = []
    if cls.supports_continuous:
        envs.append(["--env", "differential", "--dataset", "random", "--dataset-size", "400"])
    if cls.supports_discrete:
        envs.append(["--env", "xor", "--dataset", "b", "--dataset-size", "400"])
    return [args + env + extra.get(name, []) for env in envs]


@pytest.mark.parametrize("name", sorted(ALGOS))
def test_cli_vectorizes_every_algorithm(name, capsys):
    """``marlkit train ... --seeds 0-1 --vectorize --json``: the Differential Game for every continuous-capable
    algorithm, XOR (b) for every discrete-capable one; one JSON record per seed."""
    import json

    from marlkit.cli import main as cli_main

    for argv in _cli_case(name):
        assert cli_main(argv) == 0, argv
        records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        assert [r["seed"] for r in records] == [0, 1] and all(r["population"] == 2 for r in records)
