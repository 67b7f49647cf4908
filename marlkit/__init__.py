"""marlkit — offline cooperative multi-agent reinforcement learning.

The flow: a dataset (:mod:`marlkit.data`) → an algorithm (:mod:`marlkit.algos`) trained by the one loop
(:mod:`marlkit.train`) → evaluation on an environment (:mod:`marlkit.envs`, :mod:`marlkit.eval`), with exact
tabular oracles (:mod:`marlkit.exact`) to check the neural algorithms on small games.

The modules import each other without a cycle (``tests/test_imports.py`` walks the graph), roughly bottom up:
the networks (:mod:`marlkit.nets`) and the data containers and sampler (:mod:`marlkit.data`); the environment
interface, matrix games and registry (:mod:`marlkit.envs`); the behavior-weights I/O
(:mod:`marlkit.behavior.weights`) and the dataset builders (:mod:`marlkit.data.build`), which the MPE and
MaMuJoCo wrappers call with themselves (SMAX builds its own, in the same cache); the algorithms (:mod:`marlkit.algos`) and populations
(:mod:`marlkit.population`); the training loop (:mod:`marlkit.train`) with its evaluation
(:mod:`marlkit.eval.evaluate`); then comparison tables (:mod:`marlkit.eval.tables`), benchmarks
(:mod:`marlkit.bench`) and the command line (:mod:`marlkit.cli`).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
