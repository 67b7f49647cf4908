"""benchmarks/vs_official.py: one-line usage errors (always), and a smoke run against the authors' official OMIGA
and ComaDICE code (and the ComaDICE repository's baselines) when ``MARLKIT_OMIGA_REPO`` and
``MARLKIT_COMADICE_REPO`` point at checkouts of it."""

import os
import sys
from pathlib import Path

import pytest

OMIGA_REPO = os.environ.get("MARLKIT_OMIGA_REPO")
COMADICE_REPO = os.environ.get("MARLKIT_COMADICE_REPO")


def _script():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import vs_official

    return vs_official


def test_missing_or_wrong_checkout_is_a_one_line_error(tmp_path, capsys):
    vs = _script()
    missing = tmp_path / "no-such-checkout"
    assert vs.main(["--omiga-repo", str(missing), "--comadice-repo", str(missing), "--smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "--omiga-repo" in err and "no such directory" in err

    (tmp_path / "algos").mkdir()  # a directory that is not the official OMIGA repository
    assert vs.main(["--omiga-repo", str(tmp_path), "--comadice-repo", str(tmp_path), "--smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not look like the official OMIGA repository" in err

    assert vs.main(["--smoke"]) == 2  # no checkouts given
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--omiga-repo is required" in err


def test_unknown_algorithm_is_a_one_line_error(capsys):
    vs = _script()
    assert vs.main(["--algos", "omiga,no-such-algo", "--smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--algos" in err and "no-such-algo" in err and "omar" in err


def test_every_row_has_an_official_step():
    vs = _script()
    for label, name, repo, extra in vs.ROWS:
        assert name in vs.OFFICIAL and repo in vs.REPOS, label


@pytest.mark.skipif(not (OMIGA_REPO and COMADICE_REPO),
                    reason="needs checkouts of the official code: set MARLKIT_OMIGA_REPO (github.com/"
                           "ZhengYinan-AIR/OMIGA) and MARLKIT_COMADICE_REPO (github.com/vietbt/ComaDICE)")
def test_smoke_against_official_code(tmp_path):
    vs = _script()
    md = tmp_path / "vs_official.md"
    before = set(sys.modules)
    assert vs.main(["--omiga-repo", OMIGA_REPO, "--comadice-repo", COMADICE_REPO, "--smoke",
                    "--shapes", "halfcheetah-6x1", "--markdown-out", str(md)]) == 0
    text = md.read_text()
    assert text.startswith(vs.SECTION)
    rows = [line for line in text.splitlines() if line.startswith("| halfcheetah-6x1 |")]
    assert len(rows) == len(vs.ROWS)
    assert vs.main(["--omiga-repo", OMIGA_REPO, "--comadice-repo", COMADICE_REPO, "--smoke", "--shapes",
                    "halfcheetah-6x1", "--algos", "omar", "--markdown-out", str(md)]) == 0
    assert [line.split("|")[2].strip() for line in md.read_text().splitlines()
            if line.startswith("| halfcheetah-6x1 |")] == ["OMAR (ComaDICE repo)"]
    # the checkouts' packages and the stand-ins do not outlive the run
    leaked = {m.split(".")[0] for m in set(sys.modules) - before}
    assert not leaked & {"algos", "networks", "agents", "runner", "envs"}
    assert "torch.utils.tensorboard" not in set(sys.modules) - before
