"""Test-session settings shared by the unit tests and the notebooks run under nbval.

- ``MARLKIT_FIGURES``: notebooks save their figures into a temporary folder, so running the tests leaves the
  committed ``figures/*.png`` untouched;
- ``MARLKIT_RESULTS``: the benchmark and results notebooks (10, 11) write their records and sweeps into a
  temporary folder instead of the checkout's ``results/`` (:mod:`marlkit.bench.paths`);
- ``MARLKIT_COURSE_SOLUTIONS=1``: the course notebooks fill in their exercises' reference solutions, so the
  :mod:`marlkit.course` checkers run (and must say "right") under nbval.

All three are inherited by the notebook kernels nbval starts (and by the Voilà server of the browser test). A
value already set in the environment is kept; the temporary results folder is removed at the end of the session.
"""

import os
import shutil
import tempfile

_CREATED: list[str] = []


def pytest_configure(config):
    if "MARLKIT_FIGURES" not in os.environ:
        os.environ["MARLKIT_FIGURES"] = tempfile.mkdtemp(prefix="marlkit-figures-")
    if "MARLKIT_RESULTS" not in os.environ:
        os.environ["MARLKIT_RESULTS"] = tempfile.mkdtemp(prefix="marlkit-results-")
        _CREATED.append(os.environ["MARLKIT_RESULTS"])
    os.environ.setdefault("MARLKIT_COURSE_SOLUTIONS", "1")


def pytest_unconfigure(config):
    for path in _CREATED:  # the session's notebook records and sweeps (figures are kept for a look)
        shutil.rmtree(path, ignore_errors=True)
