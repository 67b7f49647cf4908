"""flashbax Vaults in and out: Vaults built here with flashbax itself in OG-MARL's layout (discrete with legal
actions, continuous, uneven per-agent observation sizes zero-padded) are read into marlkit datasets, written
back, and read both by flashbax and by marlkit; a dataset written as a Vault and read back is identical."""

import contextlib
import io
import json

import numpy as np
import pytest

pytest.importorskip("flashbax")

import jax.numpy as jnp
from flashbax.buffers.trajectory_buffer import TrajectoryBufferState
from flashbax.vault import Vault

from marlkit.data.dataset import DatasetError, MultiAgentDataset
from marlkit.data.io import detect_format, load_file, save_file
from marlkit.data.vault import read_vault, vault_uids, write_vault
from marlkit.envs.registry import load_dataset, make_env


def fbx_write(root, experience, name="task.vlt", uid="Good"):
    """Write ``experience`` ([B, T, ...] leaves) with flashbax, as OG-MARL's recorders do."""
    T = int(np.asarray(experience["actions"]).shape[1])
    with contextlib.redirect_stdout(io.StringIO()):
        v = Vault(vault_name=name, experience_structure=experience, rel_dir=str(root), vault_uid=uid)
        v.write(TrajectoryBufferState(experience=experience, current_index=jnp.asarray(T),
                                      is_full=jnp.asarray(False)), source_interval=(0, T))
    return root / name / uid


def fbx_read(path):
    with contextlib.redirect_stdout(io.StringIO()):
        exp = Vault(vault_name=path.parent.name, rel_dir=str(path.parent.parent), vault_uid=path.name).read()
    return exp.experience


def assert_identical(a: MultiAgentDataset, b: MultiAgentDataset, added=()):
    """Every field equal in dtype, shape and value, and ``meta`` equal (up to keys a format ``added``)."""
    fa, fb = a.fields(), b.fields()
    assert fa.keys() == fb.keys()
    for k in fa:
        assert fa[k].dtype == fb[k].dtype and fa[k].shape == fb[k].shape, k
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)
    assert {k: v for k, v in a.meta.items() if k not in added} == b.meta


def discrete_experience(B=2, T=9, N=3, O=5, S=6, A=4):
    rng = np.random.default_rng(0)
    legals = rng.random((B, T, N, A)) < 0.6
    legals[..., 0] = True                                  # no-op always legal
    actions = np.zeros((B, T, N), np.int32)
    for idx in np.ndindex(B, T, N):
        actions[idx] = rng.choice(np.flatnonzero(legals[idx]))
    term = np.zeros((B, T, N), np.float32)
    trunc = np.zeros((B, T, N), np.float32)
    term[0, [3, 8]] = 1                                    # stream 0: two episodes ending in termination
    trunc[1, 4] = 1                                        # stream 1: a time-limit cut, then an unfinished one
    reward = rng.normal(size=(B, T, 1)).astype(np.float32).repeat(N, axis=2)
    return {"observations": rng.normal(size=(B, T, N, O)).astype(np.float32), "actions": actions,
            "rewards": reward, "terminals": term, "truncations": trunc,
            "infos": {"legals": legals, "state": rng.normal(size=(B, T, S)).astype(np.float32)}}


def test_read_og_marl_discrete_vault_with_legals(tmp_path):
    exp = discrete_experience()
    path = fbx_write(tmp_path, exp, "3m.vlt", "Good")
    assert detect_format(path) == "vault" and detect_format(path.parent) == "vault"
    ds = read_vault(path.parent, meta={"env": "toy"})      # a Vault directory with one uid
    # stream 0 keeps its 9 rows (it ends terminal); stream 1 drops its last, unfinished row
    assert ds.size == 9 + 8 and ds.discrete and ds.n_agents == 3 and ds.meta["env"] == "toy"
    np.testing.assert_array_equal(ds.observations[:9], exp["observations"][0])
    np.testing.assert_array_equal(ds.actions[9:], exp["actions"][1, :8])
    np.testing.assert_array_equal(ds.avail_actions[:9], exp["infos"]["legals"][0])
    np.testing.assert_array_equal(ds.states[9:], exp["infos"]["state"][1, :8])
    np.testing.assert_array_equal(ds.rewards[:9], exp["rewards"][0, :, 0])       # team reward: agent 0's
    assert np.flatnonzero(ds.terminals).tolist() == [3, 8]
    assert np.flatnonzero(ds.timeouts).tolist() == [9 + 4]
    assert np.flatnonzero(ds.episode_starts).tolist() == [0, 4, 9, 9 + 5]
    # next observation / state / legals = the next row inside an episode
    np.testing.assert_array_equal(ds.next_observations[:3], exp["observations"][0, 1:4])
    np.testing.assert_array_equal(ds.next_states[9:13], exp["infos"]["state"][1, 1:5])
    np.testing.assert_array_equal(ds.next_avail_actions[4:8], exp["infos"]["legals"][0, 5:9])
    # episode returns follow OG-MARL's calculate_returns (sum of agent 0's rewards per episode)
    r0 = exp["rewards"][:, :, 0]
    np.testing.assert_allclose(ds.episode_returns(), [r0[0, :4].sum(), r0[0, 4:].sum(), r0[1, :5].sum()], rtol=1e-6)


def test_vault_round_trip_both_ways_discrete(tmp_path):
    exp = discrete_experience()
    ds = read_vault(fbx_write(tmp_path, exp))
    out = write_vault(ds, tmp_path / "out.vlt" / "Good")
    # flashbax reads marlkit's Vault back, with OG-MARL's leaves and shapes
    back = fbx_read(out)
    assert np.asarray(back["observations"]).shape == (1, ds.size, 3, 5)
    np.testing.assert_array_equal(np.asarray(back["actions"])[0], ds.actions)
    np.testing.assert_array_equal(np.asarray(back["infos"]["legals"])[0], ds.avail_actions)
    np.testing.assert_array_equal(np.asarray(back["rewards"])[0], np.repeat(ds.rewards[:, None], 3, 1))
    np.testing.assert_array_equal(np.asarray(back["terminals"])[0, :, 0] != 0, ds.terminals)
    np.testing.assert_array_equal(np.asarray(back["truncations"])[0, :, 1] != 0, ds.timeouts)
    # OG-MARL's episode returns of that Vault (agent 0's rewards summed up to each step whose flags are set for
    # every agent) are marlkit's
    r0 = np.asarray(back["rewards"])[0, :, 0]
    ends = (np.asarray(back["terminals"])[0] != 0).all(-1) | (np.asarray(back["truncations"])[0] != 0).all(-1)
    starts = np.concatenate([[0], np.flatnonzero(ends)[:-1] + 1])
    og = [r0[a:b + 1].sum() for a, b in zip(starts, np.flatnonzero(ends))]
    np.testing.assert_allclose(og, ds.episode_returns(), rtol=1e-6)
    # and marlkit reads it back field for field
    assert_identical(read_vault(out), ds)


def test_continuous_uneven_observations_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    B, T, N, A, sizes = 1, 12, 3, 2, [3, 5, 2]
    obs = np.zeros((B, T, N, max(sizes)), np.float32)      # OG-MARL zero-pads smaller observations
    for i, k in enumerate(sizes):
        obs[:, :, i, :k] = rng.normal(size=(B, T, k))
    term = np.zeros((B, T, N), bool)
    term[0, [4, 11]] = True
    exp = {"observations": obs, "actions": rng.uniform(-1, 1, (B, T, N, A)).astype(np.float32),
           "rewards": np.ones((B, T, N), np.float32), "terminals": term, "truncations": np.zeros((B, T, N), bool),
           "infos": {}}
    ds = read_vault(fbx_write(tmp_path, exp, "hopper.vlt", "medium"))
    assert not ds.discrete and ds.act_dim == 2 and ds.size == T
    # no global state in the Vault: the joint observation stands in
    np.testing.assert_array_equal(ds.states, obs[0].reshape(T, -1))
    mask = np.zeros((N, max(sizes)), bool)
    for i, k in enumerate(sizes):
        mask[i, :k] = True
    ds = ds.replace(obs_mask=mask, meta={"env": "toy", "dataset": "medium", "dataset_id": "toy/medium-v0"})
    out = write_vault(ds, tmp_path / "mk" / "hopper.vlt" / "medium")
    again = read_vault(out)
    assert_identical(again, ds)
    assert json.loads((out / "metadata.json").read_text())["marlkit_obs_mask"][2] == [1, 1, 0, 0, 0]
    # Vault -> HDF5 -> Vault keeps everything too
    h5 = save_file(again, tmp_path / "medium.h5")
    assert_identical(load_file(h5), ds, added=("action_space", "marlkit_version", "n_agents", "schema_version"))


def test_marlkit_dataset_round_trip_and_og_marl_only_leaves(tmp_path):
    env = make_env("bridge")
    ds = load_dataset(env, "mixed", seed=0)
    ds = ds.subset(np.arange(int(np.flatnonzero(ds.terminals | ds.timeouts)[40]) + 1))   # 41 whole episodes
    out = save_file(ds, tmp_path / "bridge.vlt" / "mixed")
    assert_identical(load_file(out), ds)
    # OG-MARL's leaves only: successors come from the next row, episode ends keep their own row
    plain = write_vault(ds, tmp_path / "plain.vlt" / "mixed", successors=False)
    assert sorted(fbx_read(plain)["infos"]) == (["legals", "state"] if ds.avail_actions is not None else ["state"])
    back = read_vault(plain)
    inner = ~(ds.terminals | ds.timeouts)
    np.testing.assert_array_equal(back.next_observations[inner], ds.next_observations[inner])
    np.testing.assert_array_equal(back.actions, ds.actions)
    # rows whose successor is not the following row cannot be written without their successors
    k = int(np.flatnonzero(inner)[0])
    nxt = ds.next_observations.copy()
    nxt[k] += 1
    odd = ds.replace(next_observations=nxt)
    assert_identical(read_vault(write_vault(odd, tmp_path / "ok.vlt" / "x")), odd)
    with pytest.raises(DatasetError, match="successors=True"):
        write_vault(odd, tmp_path / "bad.vlt" / "x", successors=False)
    assert not (tmp_path / "bad.vlt" / "x").exists()


def test_vault_matches_env_like_hdf5(tmp_path):
    env = make_env("bridge")
    ds = load_dataset(env, "optimal", seed=0)
    out = write_vault(ds, tmp_path / "bridge.vlt" / "optimal")
    assert_identical(load_dataset(env, str(out)), ds)
    with pytest.raises(DatasetError, match="agents|obs_dim|actions"):
        load_dataset(make_env("differential"), str(out))


def test_vault_errors_and_no_overwrite(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_vault(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a flashbax Vault"):
        read_vault(tmp_path / "empty")
    exp = discrete_experience()
    fbx_write(tmp_path, exp, "3m.vlt", "Good")
    fbx_write(tmp_path, exp, "3m.vlt", "Poor")
    assert vault_uids(tmp_path / "3m.vlt") == ["Good", "Poor"]
    with pytest.raises(DatasetError, match="Good, Poor"):
        read_vault(tmp_path / "3m.vlt")
    bad = dict(exp, actions=exp["observations"][:, :, :, 0])
    with pytest.raises(DatasetError, match="non-integer"):
        read_vault(fbx_write(tmp_path, bad, "bad.vlt", "x"))
    missing = {k: v for k, v in exp.items() if k != "terminals"}
    with pytest.raises(DatasetError, match="terminals"):
        read_vault(fbx_write(tmp_path, missing, "noterm.vlt", "x"))
    ds = read_vault(tmp_path / "3m.vlt" / "Good")
    target = tmp_path / "out.vlt" / "Good"
    write_vault(ds, target)
    before = sorted(p.name for p in target.rglob("*"))
    with pytest.raises(FileExistsError):
        write_vault(ds.subset(np.arange(9)), target)
    assert sorted(p.name for p in target.rglob("*")) == before and read_vault(target).size == ds.size
    write_vault(ds.subset(np.arange(9)), target, overwrite=True)
    assert read_vault(target).size == 9
    assert sorted(p.name for p in target.parent.iterdir()) == ["Good"]          # no temporary left behind
