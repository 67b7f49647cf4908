"""The notebooks write figures only where ``$MARLKIT_FIGURES`` says (and notebooks 10/11 their records only where
``$MARLKIT_RESULTS`` says) when those are set, so that running the tests leaves the checkout untouched; relative
path parameters are taken from the notebook's own folder, not from the caller's working directory."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from marlkit.bench import NOTEBOOK, REPORT, figures_folder, notebook_folder, notebook_path, results_root
from marlkit.eval.plots import figures_dir

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: a literal path into the checkout's figures/ folder (which would bypass MARLKIT_FIGURES)
FIGURES_LITERAL = re.compile(r"""["'](\.\./|\./)?figures(/[^"']*)?["']""")


def _code(nb_path: Path) -> str:
    cells = json.loads(nb_path.read_text())["cells"]
    lines = [line for c in cells if c["cell_type"] == "code" for line in "".join(c["source"]).splitlines()]
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def _defaults(nb_path: Path) -> dict:
    """The parameters cell's values (the notebook's defaults)."""
    cell = next(c for c in json.loads(nb_path.read_text())["cells"]
                if "parameters" in c.get("metadata", {}).get("tags", []))
    out = {}
    for node in ast.parse("".join(cell["source"])).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = ast.literal_eval(node.value)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_notebooks_list_is_complete():
    assert {p.name for p in NOTEBOOKS} >= {NOTEBOOK, REPORT, "01_matrix_games.ipynb"}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_no_notebook_writes_to_a_hard_coded_figures_folder(nb):
    """Figures go through marlkit.eval.plots.savefig or a figures_dir parameter resolved by figures_folder, both
    of which honour MARLKIT_FIGURES; a literal "../figures" would not."""
    code = _code(nb)
    hits = [m.group(0) for m in FIGURES_LITERAL.finditer(code)]
    assert not hits, f"{nb.name} names the figures folder literally: {hits}"
    if ".savefig(" in code or "savefig(" in code:
        uses = ("savefig(fig" in code and "from marlkit.eval.plots import" in code) or "figures_folder(" in code
        assert uses, f"{nb.name} saves figures without marlkit's savefig or figures_folder"


@pytest.mark.parametrize("name", [NOTEBOOK, REPORT])
def test_benchmark_and_results_notebooks_follow_the_environment(name, monkeypatch, tmp_path):
    figs, results = tmp_path / "figs", tmp_path / "results"
    monkeypatch.setenv("MARLKIT_FIGURES", str(figs))
    monkeypatch.setenv("MARLKIT_RESULTS", str(results))
    monkeypatch.chdir(tmp_path)  # a caller outside the checkout
    defaults = _defaults(ROOT / "notebooks" / name)
    assert figures_folder(defaults["figures_dir"], name) == figs.resolve()
    assert figures_dir() == figs  # what marlkit.eval.plots.savefig uses in notebooks 01-06
    assert results_root(name) == results.resolve()
    key = "out_dir" if name == NOTEBOOK else "results_dir"
    assert notebook_path(defaults[key], results_root(name) / "x", name).is_relative_to(results.resolve())


def test_relative_paths_are_taken_from_the_notebook_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("MARLKIT_RESULTS", raising=False)
    monkeypatch.delenv("MARLKIT_FIGURES", raising=False)
    monkeypatch.chdir(tmp_path)
    folder = notebook_folder(NOTEBOOK)
    assert folder == (ROOT / "notebooks").resolve()
    assert notebook_path("../results/x", "unused") == (ROOT / "results" / "x").resolve()
    assert notebook_path(str(tmp_path / "abs"), "unused") == tmp_path / "abs"
    assert notebook_path(None, tmp_path / "d") == (tmp_path / "d").resolve()
    assert results_root() == ROOT / "results"
    assert figures_folder("") is None
    with pytest.raises(TypeError, match="must be a string or None"):
        notebook_path(3, "unused")
    (tmp_path / NOTEBOOK).write_text("{}")  # a notebook's own folder as working directory (Jupyter, Voilà)
    assert notebook_folder(NOTEBOOK) == tmp_path.resolve()
