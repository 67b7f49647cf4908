"""marlkit — offline cooperative multi-agent reinforcement learning.

The flow: a dataset (:mod:`marlkit.data`) → an algorithm (:mod:`marlkit.algos`) trained by the one loop
(:mod:`marlkit.train`) → evaluation on an environment (:mod:`marlkit.envs`, :mod:`marlkit.eval`), with exact
tabular oracles (:mod:`marlkit.exact`) to check the neural algorithms on small games.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
