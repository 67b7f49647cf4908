"""Test-session settings shared by the unit tests and the notebooks run under nbval.

- ``MARLKIT_FIGURES``: notebooks save their figures into a temporary folder, so running the tests leaves the
  committed ``figures/*.png`` untouched;
- ``MARLKIT_RESULTS``: the benchmark and results notebooks (10, 11) write their records and sweeps into a
  temporary folder instead of the checkout's ``results/`` (:mod:`marlkit.bench.paths`);
- ``MARLKIT_COURSE_SOLUTIONS=1``: the course notebooks fill in their exercises' reference solutions, so the
  :mod:`marlkit.course` checkers run (and must say "right") under nbval.

Both are inherited by the notebook kernels nbval starts. A value already set in the environment is kept.
"""

import os
import tempfile


def pytest_configure(config):
    if "MARLKIT_FIGURES" not in os.environ:
        os.environ["MARLKIT_FIGURES"] = tempfile.mkdtemp(prefix="marlkit-figures-")
    if "MARLKIT_RESULTS" not in os.environ:
        os.environ["MARLKIT_RESULTS"] = tempfile.mkdtemp(prefix="marlkit-results-")
    os.environ.setdefault("MARLKIT_COURSE_SOLUTIONS", "1")
