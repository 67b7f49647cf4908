"""`marlkit data list / info / convert`: cards, IDs and versions of built datasets, conversions between HDF5,
flashbax Vaults and the OMIGA layout, and one-line errors (never a traceback) for bad input."""

import json
import re
import warnings

import h5py
import numpy as np
import pytest

from marlkit.cli import main
from marlkit.data.card import SimulatorVersionWarning, check_simulator_versions, dataset_id, parse_dataset_id
from marlkit.data.hdf5 import load_hdf5, save_hdf5
from marlkit.data.io import load_file
from marlkit.envs.registry import load_dataset, make_env


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MARLKIT_DATA", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def _fields_equal(a, b):
    assert a.fields().keys() == b.fields().keys()
    for k, v in a.fields().items():
        assert v.dtype == b.fields()[k].dtype
        np.testing.assert_array_equal(v, b.fields()[k], err_msg=k)


def test_ids():
    # versions are per family: MaMuJoCo's data changed once (float64 behavior actors), the others never did
    assert dataset_id("mamujoco:Hopper-3x1", "expert") == "mamujoco:Hopper-3x1/expert-v1"
    assert dataset_id("bridge", "optimal") == "bridge/optimal-v1" and dataset_id("bridge", "x", 3) == "bridge/x-v3"
    assert parse_dataset_id("mamujoco:Hopper-3x1/medium-replay-v2") == ("mamujoco:Hopper-3x1", "medium-replay", 2)
    assert parse_dataset_id("medium") is None and parse_dataset_id("a/b.h5") is None
    with pytest.raises(ValueError):
        dataset_id("xor", "a/b")


def test_built_dataset_carries_id_versions_and_card(tmp_path, capsys):
    assert main(["data", "build", "bridge", "--quality", "optimal", "--episodes", "6", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["dataset_id"] == "bridge/optimal-v1" and card["episodes"] == 6
    path = next((tmp_path / "cache" / "bridge").glob("optimal-6ep-seed0.h5"))
    with h5py.File(path) as f:
        attrs = dict(f.attrs)
    for key in ("dataset_id", "marlkit_version", "simulator_versions", "seed", "transitions", "episodes",
                "return_mean", "return_std", "reference_returns"):
        assert key in attrs, key
    assert json.loads(attrs["reference_returns"])["expert"] == pytest.approx(-1.2591, abs=1e-3)
    # named datasets that are sampled on use get a card too
    ds = load_dataset(make_env("xor"), "b", size=50)
    assert ds.meta["dataset_id"] == "xor/b-v0" and ds.meta["transitions"] == 50


def test_other_simulator_versions_warn_naming_both(tmp_path):
    ds = load_dataset(make_env("xor"), "a", size=20)
    ds.meta["simulator_versions"] = json.dumps({"mujoco": "2.1.0", "h5py": "0.0.1"})
    path = save_hdf5(ds, tmp_path / "old.h5")
    both = r"mujoco built=2\.1\.0 installed=.*h5py built=0\.0\.1 installed=3"
    with pytest.warns(SimulatorVersionWarning, match=both):
        load_hdf5(path)
    ds.meta["simulator_versions"] = json.dumps({"h5py": h5py.__version__, "no-such-simulator": "1.0"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_simulator_versions(ds.meta) == []


def test_list_and_info(tmp_path, capsys):
    assert main(["data", "list", "--env", "bridge"]) == 0
    out = capsys.readouterr().out
    assert "bridge/optimal-v1" in out and "not built" in out
    assert main(["data", "build", "bridge", "--quality", "mixed", "--episodes", "8", "--json"]) == 0
    capsys.readouterr()
    assert main(["data", "list", "--env", "bridge", "--json"]) == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["bridge/mixed-v1"]["status"].startswith("built: ")
    assert rows["bridge/optimal-v1"]["status"] == "not built"
    assert main(["data", "info", "bridge/mixed-v1", "--bins", "4"]) == 0
    out = capsys.readouterr().out
    assert "dataset_id: bridge/mixed-v1" in out and "observations: float32" in out
    hist = out.split("episode returns:\n")[1].splitlines()
    assert len(hist) == 4 and sum(int(re.search(r"[)\]]\s+(\d+)", line)[1]) for line in hist) == int(
        re.search(r"episodes: (\d+)", out)[1])
    assert main(["data", "info", "xor/a-v0", "--json"]) == 0          # sampled on use
    info = json.loads(capsys.readouterr().out)
    assert info["fields"]["actions"][0] == "int64"


def test_files_of_an_older_version_are_not_used(tmp_path, capsys, monkeypatch):
    """When a family's data changes (its entry of DATASET_VERSIONS is bumped), files built before stay in the
    cache but no longer count as built, and their old ID is refused with the current version named."""
    from marlkit.data import card

    assert main(["data", "build", "bridge", "--quality", "mixed", "--episodes", "8", "--json"]) == 0
    capsys.readouterr()
    monkeypatch.setitem(card.DATASET_VERSIONS, "bridge", 2)
    assert main(["data", "list", "--env", "bridge", "--json"]) == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["bridge/mixed-v2"]["status"] == "not built"
    assert main(["data", "info", "bridge/mixed-v1"]) != 0
    assert "builds version v2" in capsys.readouterr().err


def test_list_every_env(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("xor/a-v0", "bridge/mixed-v1", "mne/imbalanced-v0"):
        assert name in out


def test_convert_hdf5_vault_hdf5(tmp_path, capsys):
    pytest.importorskip("flashbax")
    ds = load_dataset(make_env("bridge"), "mixed")
    src = save_hdf5(ds, tmp_path / "mixed.h5")
    assert main(["data", "convert", str(src), "v/bridge.vlt/mixed"]) == 0
    assert "bridge/mixed-v1" in capsys.readouterr().out
    assert main(["data", "convert", "v/bridge.vlt", "back.h5", "--env", "bridge"]) == 0
    back = load_file("back.h5")
    _fields_equal(back, ds)
    assert back.meta["dataset_id"] == ds.meta["dataset_id"]
    # the destination exists: refused, and left as it was
    before = (tmp_path / "back.h5").read_bytes()
    assert main(["data", "convert", str(src), "back.h5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("marlkit: error:") and "--overwrite" in err and "Traceback" not in err
    assert (tmp_path / "back.h5").read_bytes() == before
    # the Vault does not match another env
    assert main(["data", "convert", "v/bridge.vlt/mixed", "x.h5", "--env", "xor"]) == 2
    assert "agents" in capsys.readouterr().err or not (tmp_path / "x.h5").exists()
    assert not (tmp_path / "x.h5").exists()


def test_convert_omiga_layout_to_hdf5(tmp_path, capsys):
    T, N = 10, 2
    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "omiga.hdf5", "w") as f:
        f["s"] = rng.normal(size=(T, 4)).astype(np.float32)
        f["o"] = rng.normal(size=(T, N, 3)).astype(np.float32)
        f["a"] = rng.uniform(-1, 1, size=(T, N, 2)).astype(np.float32)
        f["r"] = np.ones((T, 1), np.float32)
        f["d"] = np.zeros((T, 1), np.float32)
    assert main(["data", "convert", "omiga.hdf5", "omiga.h5", "--max-episode-steps", "5", "--name", "toy"]) == 0
    ds = load_hdf5(tmp_path / "omiga.h5")
    assert ds.size == T and ds.timeouts.sum() == 2 and ds.meta["dataset_id"] == "unknown/toy-v0"
    assert json.loads(ds.meta["simulator_versions"]) == {}          # not recorded by the source
    # `train` reads the OMIGA layout too, with the same checks against the env, whose episode limit marks the
    # time-limit cuts the layout does not store
    assert main(["train", "--env", "xor", "--dataset", "omiga.hdf5", "--algo", "bc", "--steps", "1"]) == 2
    assert "continuous actions" in capsys.readouterr().err
    from marlkit.envs.base import EnvSpec

    class Toy:
        spec = EnvSpec(name="toy", n_agents=N, obs_dim=3, state_dim=4, act_dim=2, episode_limit=4)

    cut = load_dataset(Toy(), str(tmp_path / "omiga.hdf5"))
    assert np.flatnonzero(cut.timeouts).tolist() == [3, 7]
    assert main(["data", "info", "omiga.hdf5", "--max-episode-steps", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["episode_returns"]["count"] == 2


@pytest.mark.parametrize("argv, match", [
    (["data", "info", "missing.h5"], "does not exist"),
    (["data", "info", "corrupt.h5"], "not a readable HDF5"),
    (["data", "info", "emptydir"], "not a flashbax Vault"),
    (["data", "info", "xor/zzz-v0"], "unknown dataset 'zzz'"),
    (["data", "info", "bridge/optimal-v1"], "not built; build it with `marlkit data build bridge"),
    (["data", "info", "xor/a-v7"], "version v0, not v7"),
    (["data", "info", "nonsense"], "neither an existing file"),
    (["data", "convert", "missing.h5", "out.h5"], "does not exist"),
    (["data", "convert", "corrupt.h5", "out.h5"], "not a readable HDF5"),
    (["data", "list", "--env", "nope"], "matches no environment"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, match):
    (tmp_path / "corrupt.h5").write_bytes(b"not hdf5")
    (tmp_path / "emptydir").mkdir()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("marlkit: error:") and match in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out.h5").exists()
