"""Packaging stays consistent: environment.yml installs what pyproject.toml declares, and CI runs the README's
test command."""

import os
import re
import tomllib

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    proj = _pyproject()["project"]
    wanted = set(map(_norm, proj["dependencies"]))
    for extra, reqs in proj["optional-dependencies"].items():
        wanted |= {_norm(r) for r in reqs if not r.startswith("marlkit")}  # `all` refers to the other extras
    with open(os.path.join(ROOT, "environment.yml")) as f:
        env = yaml.safe_load(f)
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_norm(r) for r in pip if not r.startswith("-e")}
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"


def test_ci_runs_the_readme_test_command():
    readme = open(os.path.join(ROOT, "README.md")).read()
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    block = re.search(r"<!-- test-command -->\s*```bash\n(.+?)\n```", readme, re.S)
    assert block, "README must hold the test command in a bash block after <!-- test-command -->"
    assert "test-command" in ci  # .ci/run extracts that very block
    assert "pytest" in block.group(1)


def test_console_script_declared():
    assert _pyproject()["project"]["scripts"]["marlkit"] == "marlkit.cli:main"


def test_simulator_pins_are_the_versions_the_cards_were_measured_with():
    """The mujoco extra pins exactly the versions recorded in the shipped behavior cards (their returns and the
    datasets built from them hold for those versions; tests/test_envs_mamujoco.py re-measures them)."""
    import json

    pins = {}
    for req in _pyproject()["project"]["optional-dependencies"]["mujoco"]:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^,;\s]+)", req.strip())
        if m:
            pins[m[1].lower()] = m[2]
    cards = [os.path.join(ROOT, "marlkit", "behavior_weights", f) for f in
             os.listdir(os.path.join(ROOT, "marlkit", "behavior_weights")) if f.endswith(".json")]
    assert cards
    for path in cards:
        with open(path) as f:
            versions = json.load(f)["simulator_versions"]
        for pkg in ("mujoco", "gymnasium-robotics", "gymnasium"):
            assert pins.get(pkg) == versions[pkg], (
                f"{os.path.basename(path)}: {pkg} card {versions[pkg]} pin {pins.get(pkg)}")
