"""Where the benchmark and results notebooks read and write, independent of the caller's working directory.

A notebook run by Jupyter or Voilà has its own folder as working directory; ``papermill notebooks/X.ipynb ...``
run from elsewhere does not. The notebooks therefore resolve their path parameters with
:func:`notebook_path`: a relative path is taken from the notebook's folder (:func:`notebook_folder`), and a
missing one (None) falls back to the course defaults:

- results: ``$MARLKIT_RESULTS`` if set, else ``results/`` of the checkout that holds the notebooks
  (:func:`results_root`);
- figures: ``$MARLKIT_FIGURES`` if set, else the repository's ``figures/`` (:func:`marlkit.eval.plots.figures_dir`).

The test session (root ``conftest.py``) points both variables at temporary folders, so executing the notebooks
under the tests writes nothing into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

from marlkit.bench.cells import find_notebook
from marlkit.bench.records import NOTEBOOK

__all__ = ["display_path", "figures_folder", "notebook_folder", "notebook_path", "results_root"]


def notebook_folder(name: str = NOTEBOOK) -> Path:
    """The folder of the running course notebook ``name``: the working directory when it holds that notebook
    (Jupyter, Voilà, papermill with ``cwd``), else the folder :func:`~marlkit.bench.cells.find_notebook` finds
    (``notebooks/`` of the checkout that holds marlkit, else of the working directory).

    Raises:
        FileNotFoundError: if the notebook is found nowhere.
    """
    cwd = Path.cwd()
    if (cwd / name).is_file():
        return cwd.resolve()
    return find_notebook(None, name).parent


def results_root(name: str = NOTEBOOK) -> Path:
    """``$MARLKIT_RESULTS``, else ``results/`` next to the notebooks' folder (the checkout's ``results/``)."""
    env = os.environ.get("MARLKIT_RESULTS")
    return Path(env).resolve() if env else notebook_folder(name).parent / "results"


def notebook_path(value: str | os.PathLike | None, default: str | os.PathLike, name: str = NOTEBOOK) -> Path:
    """A notebook's path parameter as an absolute path: ``default`` when ``value`` is None or empty, an absolute
    ``value`` as given, a relative one from the notebook's folder (:func:`notebook_folder`, not the caller's
    working directory).

    Raises:
        TypeError: if ``value`` is neither None, a string nor a path.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return Path(default).resolve()
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"a path parameter must be a string or None, got {type(value).__name__} {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (notebook_folder(name) / path).resolve()


def figures_folder(value: str | os.PathLike | None, name: str = NOTEBOOK) -> Path | None:
    """A notebook's ``figures_dir`` parameter: None → the course figures folder, the one
    :func:`marlkit.eval.plots.savefig` uses (``$MARLKIT_FIGURES``, else ``figures/`` next to the notebooks'
    folder); ``""`` → None (save no figure there); a path → :func:`notebook_path`. The folder is created.

    Raises:
        TypeError: if ``value`` is neither None, a string nor a path.
    """
    if isinstance(value, str) and not value.strip():
        return None
    if value is None:
        env = os.environ.get("MARLKIT_FIGURES")
        folder = Path(env).resolve() if env else notebook_folder(name).parent / "figures"
    else:
        folder = notebook_path(value, value, name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def display_path(path: str | os.PathLike, name: str = NOTEBOOK) -> str:
    """``path`` for a notebook's printed output: relative to the checkout that holds the notebooks when it lies
    inside it (``results/quick/...``), else relative to ``$MARLKIT_RESULTS`` as ``$MARLKIT_RESULTS/...``, else
    as given, so executed notebooks carry no machine-specific prefix for the course's own folders."""
    p = Path(path).resolve()
    checkout = notebook_folder(name).parent
    if p.is_relative_to(checkout):
        return str(p.relative_to(checkout))
    env = os.environ.get("MARLKIT_RESULTS")
    if env and p.is_relative_to(Path(env).resolve()):
        return str(Path("$MARLKIT_RESULTS") / p.relative_to(Path(env).resolve()))
    return str(path)
