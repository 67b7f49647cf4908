import numpy as np
import pytest
import torch

from marlkit.data import DeviceSampler, concat, load_hdf5, mix, save_hdf5
from marlkit.envs import make_env
from tests.helpers import toy_dataset


def test_hdf5_roundtrip_keeps_every_field_and_meta(tmp_path):
    ds = toy_dataset()
    path = save_hdf5(ds, tmp_path / "d.h5")
    back = load_hdf5(path)
    for k, v in ds.fields().items():
        np.testing.assert_array_equal(getattr(back, k), v)
    assert back.meta["env"] == "toy" and back.meta["n_agents"] == 2 and back.meta["schema_version"] == 1
    assert back.meta["action_space"] == "discrete"


def test_continuous_roundtrip(tmp_path):
    ds = toy_dataset(act_dim=2)
    back = load_hdf5(save_hdf5(ds, tmp_path / "c.h5"))
    assert not back.discrete and back.act_dim == 2
    np.testing.assert_allclose(back.actions, ds.actions)


def test_save_refuses_to_overwrite_and_leaves_no_temp_files(tmp_path):
    ds = toy_dataset()
    save_hdf5(ds, tmp_path / "d.h5")
    before = (tmp_path / "d.h5").read_bytes()
    with pytest.raises(FileExistsError):
        save_hdf5(toy_dataset(seed=1), tmp_path / "d.h5")
    assert (tmp_path / "d.h5").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]


def test_sampler_batches_live_on_device_with_right_shapes():
    ds = toy_dataset(T=50)
    s = DeviceSampler(ds, "cpu", seed=3)
    b = s.sample(16)
    assert b["observations"].shape == (16, 2, 3) and b["actions"].shape == (16, 2) and b["rewards"].shape == (16,)
    assert b["terminals"].dtype == torch.float32
    s0 = s.sample_initial(8)
    assert bool((s0["episode_starts"] == 1).all())


def test_sampler_is_reproducible_and_resumable():
    ds = toy_dataset(T=50)
    a, b = DeviceSampler(ds, seed=7), DeviceSampler(ds, seed=7)
    assert torch.equal(a.sample(8)["rewards"], b.sample(8)["rewards"])
    state = a.state_dict()
    x = a.sample(8)["rewards"]
    a.load_state_dict(state)
    assert torch.equal(a.sample(8)["rewards"], x)


def test_decentralized_batch_gives_each_agent_its_own_row():
    ds = toy_dataset(T=30, N=3)
    s = DeviceSampler(ds, seed=0)
    b = s.sample_decentralized(64)
    assert b["observations"].shape == (64, 3, 3) and b["rewards"].shape == (64, 3) and b["states"].shape == (64, 3, 4)
    obs = torch.from_numpy(ds.observations)
    rew = torch.from_numpy(ds.rewards)
    for i in range(3):  # agent i's observation and reward come from one and the same transition
        rows = [(obs[:, i] == b["observations"][k, i]).all(-1).nonzero()[0, 0] for k in range(8)]
        assert torch.equal(rew[torch.stack(rows)], b["rewards"][:8, i])


def test_concat_and_mix_keep_episodes_whole():
    g = make_env("xor")
    a, b = g.make_dataset("a", size=100, seed=0), g.make_dataset("c", size=100, seed=1)
    both = concat([a, b], name="a+c")
    assert both.size == 200 and both.meta["dataset"] == "a+c"
    m = mix([a, b], [0.5, 0.5], size=100, seed=0)
    assert m.size == 100
    m.validate()


def test_episode_returns_and_summary():
    ds = toy_dataset(T=20, episode_len=5)
    rets = ds.episode_returns()
    assert rets.shape == (4,)
    np.testing.assert_allclose(rets[0], ds.rewards[:5].sum(), rtol=1e-6)
    card = ds.summary()
    assert card["episodes"] == 4 and card["transitions"] == 20
