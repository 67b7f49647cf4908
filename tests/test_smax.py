"""SMAX (jaxmarl) track: env API, behavior datasets, evaluation of torch policies, BC, OMIGA and InSPO training,
a smoke run of every discrete algorithm.

Two maps (``5m_vs_6m``, ``2s3z``) and one episode-batch size (32, the chunk size shared by dataset building and the
default evaluation) keep this file at one XLA compilation per map; jax's persistent compilation cache makes later
runs faster.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("jaxmarl")

from marlkit.data.hdf5 import load_hdf5
from marlkit.envs.registry import UnknownNameError, list_envs, load_dataset, make_env
from marlkit.eval.evaluate import evaluate
from marlkit.train import RunConfig, build_algo, iterate, run

MAP = "5m_vs_6m"
MAP2 = "2s3z"
#: small networks and short pre-training phases: these tests check that training works, not paper numbers
SMALL = {"hidden": (64, 64)}
FAST = {"bc": {}, "omiga": {}, "comadice": {}, "bcq-ma": {"vae_hidden": (64, 64)}, "cql-ma": {}, "icq": {},
        "inspo": {"batch_size": 128, "bc_steps": 150, "q_warmup_steps": 30, "beta_decay_steps": 150}}


@pytest.fixture(scope="module")
def env():
    return make_env(f"smax:{MAP}")


@pytest.fixture(scope="module")
def datasets(env):
    """Small datasets of every ε-level (same seed), built once for the module."""
    return {q: env.make_dataset(q, size=3000, seed=0, cache=False) for q in ("good", "medium", "poor")}


@pytest.fixture(scope="module")
def env2():
    return make_env(f"smax:{MAP2}")


@pytest.fixture(scope="module")
def good2(env2):
    """A small 2s3z ``good`` dataset (the heuristic wins about half of these battles)."""
    return env2.make_dataset("good", size=2000, seed=0, cache=False)


def test_import_marlkit_does_not_import_jax():
    code = ("import sys, marlkit, marlkit.envs, marlkit.envs.registry, marlkit.train, marlkit.cli; "
            "assert 'jax' not in sys.modules and 'jaxmarl' not in sys.modules, 'jax imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_and_spec(env):
    spec = env.spec
    assert spec.name == "smax:5m_vs_6m" and spec.n_agents == 5 and spec.n_actions == 5 + 6
    assert spec.episode_limit == 100 and spec.discrete
    assert "smax:2s3z" in list_envs() and "smax:6h_vs_8z" in list_envs() and "smax:3s_vs_5z" in list_envs()
    with pytest.raises(UnknownNameError, match="corridor.*not in SMAX"):
        make_env("smax:corridor")
    with pytest.raises(UnknownNameError, match="valid: .*5m_vs_6m"):
        make_env("smax:no_such_map")


def test_reset_step_shapes_masks_and_frozen_end(env):
    E, N, A = 32, env.spec.n_agents, env.spec.n_actions
    obs, state, avail = env.reset(n_envs=E, seed=3)
    assert obs.shape == (E, N, env.spec.obs_dim) and state.shape == (E, env.spec.state_dim)
    assert avail.shape == (E, N, A) and avail.dtype == bool and avail[..., 4].all()
    rng = np.random.default_rng(0)
    done = np.zeros(E, bool)
    total = np.zeros(E)
    for t in range(env.spec.episode_limit):
        logits = np.where(avail, rng.random(avail.shape), -1.0)
        res = env.step(logits.argmax(-1))
        assert res.reward.shape == (E,) and res.info["won"].shape == (E,)
        assert not (res.terminal & res.timeout).any()
        assert not ((res.terminal | res.timeout) & done).any(), "a finished battle must stay finished"
        assert (res.reward[done] == 0).all()
        total += res.reward
        done |= res.terminal | res.timeout
        # dead allies can only stop
        dead = ~res.avail[..., :4].any(-1)
        assert (res.avail[dead][:, 5:] == 0).all()
        avail = res.avail
        if done.all():
            break
    assert done.all()
    assert (total >= 0).all() and (total <= 2.0 + 1e-5).all()
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((E, N + 1), int))
    with pytest.raises(ValueError, match=r"integers in \[0, 11\)"):
        env.step(np.full((E, N), A))


def test_datasets_valid_deterministic_and_ordered(env, datasets):
    again = env.make_dataset("medium", size=3000, seed=0, cache=False)
    np.testing.assert_array_equal(again.actions, datasets["medium"].actions)
    np.testing.assert_array_equal(again.observations, datasets["medium"].observations)
    other = env.make_dataset("medium", size=3000, seed=1, cache=False)
    assert not np.array_equal(other.actions, datasets["medium"].actions)
    for q, ds in datasets.items():
        assert ds.size == 3000 and ds.n_agents == 5 and ds.meta["dataset"] == q
        ds.check_compatible(env.spec)
        # every logged action is legal, dead/finished rows included
        taken = np.take_along_axis(ds.avail_actions, ds.actions[..., None], -1)[..., 0]
        assert taken.all(), q
        assert ds.episode_starts[0] and (ds.terminals | ds.timeouts)[-1]
        # an episode start follows every episode end
        ends = np.flatnonzero(ds.terminals | ds.timeouts)[:-1]
        assert ds.episode_starts[ends + 1].all()
    ret = {q: datasets[q].meta["behavior_return_mean"] for q in datasets}
    assert ret["good"] > ret["medium"] > ret["poor"], ret


def test_dataset_cache_and_cli_loader(env, tmp_path, monkeypatch):
    monkeypatch.setenv("MARLKIT_DATA", str(tmp_path))
    ds = load_dataset(env, "good", size=500, seed=2)
    path = env.dataset_path("good", 500, 2)
    assert path.exists() and path.is_relative_to(tmp_path)
    cached = load_hdf5(path)
    np.testing.assert_array_equal(cached.actions, ds.actions)
    assert cached.meta["epsilon"] == 0.0 and cached.meta["env"] == "smax:5m_vs_6m"
    mixed = env.make_dataset("mixed", size=500, seed=2)
    assert mixed.size >= 250 and mixed.meta["dataset"] == "mixed"
    with pytest.raises(UnknownNameError, match="valid: good"):
        env.make_dataset("medium-replay", size=10)
    with pytest.raises(ValueError, match="size"):
        env.make_dataset("good", size=0)
    with pytest.raises(ValueError, match="at most one"):
        env.make_dataset("good", size=10, episodes=2)
    eps = env.make_dataset("poor", episodes=7, seed=2, cache=False)
    assert int(eps.episode_starts.sum()) == 7 and eps.terminals[-1] | eps.timeouts[-1]
    assert eps.meta["episodes"] == 7


class _TorchHeuristicStandIn(torch.nn.Module):
    """A torch 'policy' for the evaluation test: attack the first enemy in range, else move east."""

    device = torch.device("cpu")

    def act(self, obs, avail, deterministic=True, generator=None):
        attack = avail[..., 5:]
        first = attack.float().argmax(-1) + 5
        return torch.where(attack.any(-1), first, torch.zeros_like(first) + 1)


def test_evaluate_torch_policy_returns_win_rate(env):
    out = evaluate(_TorchHeuristicStandIn(), env, episodes=32, seed=0)
    assert set(out) >= {"return", "win_rate", "returns"}
    assert 0.0 <= out["win_rate"] <= 1.0 and len(out["returns"]) == 32
    assert out == evaluate(_TorchHeuristicStandIn(), env, episodes=32, seed=0)  # seeded: reproducible


def test_bc_trains_on_smax_good_and_beats_random(env, datasets):
    from marlkit.train import RunConfig, build_algo, fit

    torch.manual_seed(0)
    algo = build_algo("bc", env.spec, {"hidden": (64, 64), "batch_size": 256})
    rec = fit(algo, datasets["good"], env, RunConfig(steps=400, progress=False, threads=1, eval_episodes=32))
    poor = datasets["poor"].meta["behavior_return_mean"]
    assert rec["return"] > poor, (rec["return"], poor)
    assert 0.0 <= rec["win_rate"] <= 1.0


def test_time_limit_is_exact():
    """No battle is decided within 5 steps (the armies start 16 units apart): all time out at step 5."""
    from marlkit.envs.smax import SMAXEnv

    short = SMAXEnv(MAP, episode_limit=5)  # the limit is traced: same compiled step as the fixture's env
    E, N = 32, short.spec.n_agents
    short.reset(n_envs=E, seed=5)
    flags = [short.step(np.full((E, N), 4)) for _ in range(6)]
    assert not any(f.timeout.any() or f.terminal.any() for f in flags[:4])
    assert flags[4].timeout.all() and not flags[4].terminal.any()
    assert not flags[5].timeout.any() and (flags[5].reward == 0).all()  # frozen afterwards
    ds = short.make_dataset("poor", size=100, seed=0, cache=False)
    assert (np.flatnonzero(ds.timeouts)[:3] == [4, 9, 14]).all()


class _UniformRandom(torch.nn.Module):
    """Uniformly random over each agent's available actions (the reference a learned policy must beat)."""

    device = torch.device("cpu")

    def act(self, obs, avail, deterministic=True, generator=None):
        p = avail.float()
        return torch.multinomial(p.reshape(-1, p.shape[-1]), 1, generator=generator).reshape(p.shape[:-1])


class _AvailChecked(torch.nn.Module):
    """Wraps a trained algorithm and records every action it takes that ``avail`` forbids."""

    def __init__(self, algo):
        super().__init__()
        self.algo, self.device, self.violations, self.decisions = algo, algo.device, 0, 0

    def act(self, obs, avail, deterministic=True, generator=None):
        a = self.algo.act(obs, avail, deterministic=deterministic, generator=generator)
        self.violations += int((~avail.gather(-1, a.unsqueeze(-1))).sum())
        self.decisions += a.numel()
        return a


def _mean_log_likelihood(algo, ds, rows: int = 1024) -> float:
    """Mean log π(a|o) of the dataset's actions over its first ``rows`` transitions (all agents)."""
    obs = torch.as_tensor(ds.observations[:rows], dtype=torch.float32)
    avail = torch.as_tensor(ds.avail_actions[:rows])
    act = torch.as_tensor(ds.actions[:rows]).unsqueeze(-1)
    with torch.no_grad():
        p = algo.action_probs(obs, avail).gather(-1, act)
    return float(p.clamp_min(1e-12).log().mean())


@pytest.mark.parametrize("algo_name", ["omiga", "inspo"])
@pytest.mark.parametrize("map_name", [MAP, MAP2])
def test_omiga_and_inspo_learn_on_smax(request, algo_name, map_name):
    """OMIGA and InSPO on small ``good`` datasets of 5m_vs_6m and 2s3z: finite losses, an evaluation with return
    and win rate in range, greedy and sampled actions inside ``avail_actions``, a higher likelihood of the dataset's
    (heuristic) actions than at initialisation, and a return above uniform play over available actions."""
    env = request.getfixturevalue("env" if map_name == MAP else "env2")
    ds = request.getfixturevalue("datasets")["good"] if map_name == MAP else request.getfixturevalue("good2")
    torch.manual_seed(0)
    algo = build_algo(algo_name, env.spec, {**SMALL, **FAST[algo_name]})
    ll_init = _mean_log_likelihood(algo, ds)
    records = list(iterate(algo, ds, env, RunConfig(steps=200, log_every=50, progress=False, threads=1,
                                                    eval_episodes=32)))
    final = records[-1]
    assert final["step"] == 200 and final["metrics"]
    assert all(np.isfinite(v) for v in final["metrics"].values()), final["metrics"]
    assert 0.0 <= final["win_rate"] <= 1.0 and 0.0 <= final["return"] <= 2.0 + 1e-6
    assert len(final["returns"]) == 32
    ll = _mean_log_likelihood(algo, ds)
    assert ll > ll_init + 0.5, (ll_init, ll)
    for deterministic in (True, False):
        checked = _AvailChecked(algo)
        out = evaluate(checked, env, episodes=32, deterministic=deterministic, seed=0)
        assert checked.decisions > 0 and checked.violations == 0
        if deterministic:  # the same seeded greedy rollouts as the training loop's final evaluation
            assert out["return"] == pytest.approx(final["return"])
    random = evaluate(_UniformRandom(), env, episodes=32, seed=0)
    assert final["return"] > random["return"] + 0.1, (final["return"], random["return"])


@pytest.mark.parametrize("algo_name", ["bc", "omiga", "comadice", "inspo", "bcq-ma", "cql-ma", "icq"])
def test_discrete_algorithms_run_on_smax(algo_name, tmp_path_factory, monkeypatch):
    """Every discrete algorithm trains a few updates and evaluates through :func:`marlkit.train.run` (the CLI's
    path: env and dataset from names, the dataset built and cached under ``$MARLKIT_DATA``)."""
    monkeypatch.setenv("MARLKIT_DATA", str(tmp_path_factory.getbasetemp() / "smax-data"))
    rec = run(f"smax:{MAP}", "good", algo_name, {**SMALL, **FAST[algo_name]},
              RunConfig(steps=5, log_every=5, progress=False, threads=1, eval_episodes=32), dataset_size=600)
    assert rec["algo"] == algo_name and rec["env"] == f"smax:{MAP}" and rec["steps"] == 5
    assert rec["final_metrics"] and all(np.isfinite(v) for v in rec["final_metrics"].values())
    assert 0.0 <= rec["win_rate"] <= 1.0 and 0.0 <= rec["return"] <= 2.0 + 1e-6


def test_train_from_an_og_marl_vault(env, env2, datasets, tmp_path):
    """A SMAX dataset written as a flashbax Vault with OG-MARL's leaves only trains like the HDF5 file; a Vault of
    another map is refused with the same error as an HDF5 file."""
    pytest.importorskip("flashbax")
    from marlkit.data.dataset import DatasetError
    from marlkit.data.vault import read_vault, write_vault

    good = datasets["good"]
    path = write_vault(good, tmp_path / "5m_vs_6m.vlt" / "Good", successors=False)
    back = read_vault(path)
    np.testing.assert_array_equal(back.actions, good.actions[:back.size])
    np.testing.assert_array_equal(back.avail_actions, good.avail_actions[:back.size])
    rec = run(f"smax:{MAP}", str(path), "bc", SMALL, RunConfig(steps=50, eval_episodes=32, seed=0, threads=1,
                                                                  progress=False))
    assert rec["dataset"] == str(path) and 0.0 <= rec["win_rate"] <= 1.0
    with pytest.raises(DatasetError, match="obs_dim 140 != env 'smax:2s3z'"):
        load_dataset(env2, str(path))
