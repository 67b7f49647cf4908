"""After a sweep: the papers' table, ``results.csv`` and figures from the records, and the results notebook.

:func:`summarize` aggregates with :mod:`marlkit.eval.aggregate` (mean ± std, Welch t-test asterisks);
:func:`run_report` executes ``notebooks/11_results.ipynb`` (rliable aggregates, learning curves, α sweeps).
"""

from __future__ import annotations

import os
from pathlib import Path

from marlkit.bench.records import REPORT
from marlkit.bench.cells import find_notebook, stderr_to
from marlkit.eval import aggregate as agg
from marlkit.eval.checks import coverage

__all__ = ["run_report", "summarize"]


def run_report(out: str | os.PathLike, notebook: str | os.PathLike | None = None,
               timeout: float | None = None) -> Path:
    """Execute ``notebooks/11_results.ipynb`` with papermill on the records under ``out``.

    Writes ``out/11_results.ipynb`` (tables, rliable aggregates, learning curves, α sweep) with its figures in
    ``out/figures/``; the kernel's stderr goes to ``out/report_kernel.log``.

    Returns:
        The executed notebook's path.

    Raises:
        FileNotFoundError: if the notebook cannot be found.
        papermill.PapermillExecutionError: if the notebook fails.
    """
    import papermill as pm  # the optional bench extra

    nb = find_notebook(notebook, REPORT)
    root = Path(out).resolve()
    target = root / REPORT
    with stderr_to(root / "report_kernel.log"):
        pm.execute_notebook(str(nb), str(target), parameters={"results_dir": str(root), "make_if_missing": None,
                                                              "figures_dir": str(root / "figures")},
                            kernel_name="python3", progress_bar=False, log_output=False, cwd=str(nb.parent),
                            execution_timeout=timeout)
    return target


def summarize(out: str | os.PathLike, figures: bool = True, cells=None) -> dict[str, Path]:
    """Aggregate every record under ``out`` into ``results.csv``, ``table.md``, ``table.tex`` and figures
    (``learning_curves.png``; ``alpha_sweep.png`` when α was swept); see :mod:`marlkit.eval.aggregate`.

    ``cells``: the sweep's planned runs (:meth:`marlkit.bench.grid.Grid.cells`). The tables then keep every planned
    task and algorithm, a cell without a finished run reading ``not run`` or ``failed`` and a partial one naming
    its finished seeds (when no hyperparameter was swept: a swept algorithm's columns are its settings).

    Returns:
        Name → path of everything written (empty when there is no record yet).
    """
    root = Path(out)
    df = agg.load_records(root)
    if df.empty:
        return {}
    paths: dict[str, Path] = {"results": root / "results.csv"}
    agg.tidy(df).to_csv(paths["results"], index=False)
    score = agg.default_score(df)
    table = agg.results_table(df, score=score)
    cov = coverage(cells, root) if cells is not None and (df["variant"] == df["algo"]).all() else None
    paths["table_md"] = root / "table.md"
    paths["table_md"].write_text(agg.to_markdown(table, coverage=cov) + "\n")
    paths["table_tex"] = root / "table.tex"
    paths["table_tex"].write_text(agg.to_latex(table, coverage=cov) + "\n")
    if figures:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig = agg.plot_learning_curves(df, score=score)
        paths["learning_curves"] = root / "learning_curves.png"
        fig.savefig(paths["learning_curves"], dpi=120, bbox_inches="tight")
        plt.close(fig)
        if agg.alpha_varied(df):
            fig = agg.plot_alpha_sweep(df, score=score)
            paths["alpha_sweep"] = root / "alpha_sweep.png"
            fig.savefig(paths["alpha_sweep"], dpi=120, bbox_inches="tight")
            plt.close(fig)
    return paths

