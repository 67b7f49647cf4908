"""Algorithms, one module each, and the registry the CLI uses.

The registry maps names to ``"module:Class"`` strings and imports an algorithm's module when it is first
asked for. Every config is an :class:`AlgoConfig` dataclass whose numeric fields declare their valid ranges
(:func:`~marlkit.algos.base.ranged`), checked in one place, :meth:`AlgoConfig.validate`.
"""

from __future__ import annotations

import importlib

from marlkit.algos.base import AlgoConfig, Algorithm, ConfigError
from marlkit.envs.registry import UnknownNameError

__all__ = ["ALGOS", "get_algo", "list_algos", "Algorithm", "AlgoConfig", "ConfigError"]

ALGOS: dict[str, str] = {
    "alberdice": "marlkit.algos.alberdice:AlberDICE",
    "bc": "marlkit.algos.bc:BC",
    "mabcq": "marlkit.algos.mabcq:MABCQ",
    "bcq-dec": "marlkit.algos.mabcq:BCQDec",
    "macql": "marlkit.algos.macql:MACQL",
    "cql-dec": "marlkit.algos.macql:CQLDec",
    "matd3bc": "marlkit.algos.matd3bc:MATD3BC",
    "td3bc-dec": "marlkit.algos.matd3bc:TD3BCDec",
    "bcq-ma": "marlkit.algos.bcq_ma:BCQMA",
    "comadice": "marlkit.algos.comadice:ComaDICE",
    "cfcql": "marlkit.algos.cfcql:CFCQL",
    "cql-ma": "marlkit.algos.cql_ma:CQLMA",
    "icq": "marlkit.algos.icq:ICQ",
    "inspo": "marlkit.algos.inspo:InSPO",
    "omar": "marlkit.algos.omar:OMAR",
    "omiga": "marlkit.algos.omiga:OMIGA",
    "optidice": "marlkit.algos.optidice:OptiDICE",
}


def get_algo(name: str) -> type[Algorithm]:
    """The algorithm class registered under ``name``.

    Raises:
        UnknownNameError: naming the valid algorithms.
    """
    if name not in ALGOS:
        raise UnknownNameError(f"unknown algo {name!r}; valid: {', '.join(sorted(ALGOS))}")
    module, cls = ALGOS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def list_algos() -> dict[str, str]:
    """Name → one-line description (first line of the class docstring)."""
    out = {}
    for name in sorted(ALGOS):
        doc = (get_algo(name).__doc__ or "").strip().splitlines()
        out[name] = doc[0] if doc else ""
    return out
