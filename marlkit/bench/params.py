"""The benchmark notebook's ``parameters`` cell: its schema and its validation.

Errors: :class:`ParameterError` for a parameter of the wrong type or out of range (papermill injects strings
as given on its command line, so ``-p steps ten`` arrives here as the string ``"ten"``).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["NOTEBOOK_PARAMETERS", "OPTIONAL_PARAMETERS", "ParameterError", "validate_parameters"]


class ParameterError(TypeError):
    """A benchmark-notebook parameter of the wrong type or out of range; the message names it."""


#: name -> (accepted types, may be None, description); the benchmark notebook's ``parameters`` cell.
NOTEBOOK_PARAMETERS: dict[str, tuple[tuple[type, ...], bool, str]] = {
    "env": ((str,), False, "environment name (`marlkit envs`)"),
    "dataset": ((str,), False, "dataset name of the env or a path to an .h5 file"),
    "algo": ((str,), False, "algorithm name (`marlkit algos`)"),
    "hyperparameters": ((dict, str), True, "algorithm hyperparameters: a dict or a JSON object string"),
    "alpha": ((int, float), True, "regularization weight α (None: the algorithm's default)"),
    "seed": ((int,), False, "seed of data sampling, initialisation and evaluation"),
    "steps": ((int,), True, "gradient updates (None: the env's default)"),
    "eval_every": ((int,), False, "evaluate every this many updates (0: only at the end)"),
    "eval_episodes": ((int,), False, "evaluation episodes for sequential envs"),
    "dataset_size": ((int,), True, "transitions for sampled datasets (None: the env's default)"),
    "device": ((str,), False, "auto, cpu or cuda[:k]"),
    "threads": ((int,), True, "CPU threads (None: MARLKIT_NUM_THREADS, else measured)"),
    "out_dir": ((str,), True, ("directory of the record (record.json, record.csv, learning_curve.png); None: "
                               "results/10_benchmark ($MARLKIT_RESULTS/10_benchmark); relative: from the notebook's "
                               "folder")),
    "figures_dir": ((str,), True, ("also save the learning curve there as 10_learning_curve.png (None: the course "
                                   "figures folder, $MARLKIT_FIGURES or figures/; '': no)")),
    "deterministic_eval": ((bool,), True, "greedy (True) or sampled (False) evaluation actions (None: the env's "
                                          "mode, the one its paper used; matrix games are evaluated exactly)"),
}

#: parameters a caller may leave out (they were added after records of older runs were written): name -> value.
OPTIONAL_PARAMETERS: dict[str, Any] = {"deterministic_eval": None}


def _type_name(types: tuple[type, ...], optional: bool) -> str:
    if dict in types:
        out = "a dict or a JSON object string"
    elif bool in types:
        out = "True or False"
    elif float in types:
        out = "a number"
    else:
        out = {int: "an integer", str: "a string"}[types[0]]
    return out + (" or None" if optional else "")


def validate_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Check the benchmark notebook's parameters; return them normalised (``hyperparameters`` parsed to a dict).

    Args:
        params: every name of :data:`NOTEBOOK_PARAMETERS` (missing ones raise, except those of
            :data:`OPTIONAL_PARAMETERS`, which take their value there).

    Returns:
        A new dict with the same keys; ``hyperparameters`` is a dict (``{}`` for None) and ``alpha`` a float or None.

    Raises:
        ParameterError: naming the parameter, the expected type and the value received (e.g. papermill's
            ``-p steps ten`` or ``-p alpha high``), a JSON string that is not an object, or a value out of range.
    """
    out: dict[str, Any] = {}
    params = {**OPTIONAL_PARAMETERS, **params}
    missing = [k for k in NOTEBOOK_PARAMETERS if k not in params]
    if missing:
        raise ParameterError(f"missing benchmark parameter(s): {', '.join(missing)}")
    unknown = sorted(set(params) - set(NOTEBOOK_PARAMETERS))
    if unknown:
        raise ParameterError(f"unknown benchmark parameter(s) {unknown}; valid: {', '.join(NOTEBOOK_PARAMETERS)}")
    for name, (types, optional, _doc) in NOTEBOOK_PARAMETERS.items():
        value = params[name]
        if value is None and optional:
            out[name] = None
            continue
        wrong = (isinstance(value, bool) and bool not in types) or not isinstance(value, types)
        if wrong:
            raise ParameterError(
                f"benchmark parameter {name!r} must be {_type_name(types, optional)}, got {type(value).__name__} "
                f"{value!r} (papermill: -p {name} <value>, e.g. in the parameters cell)")
        out[name] = value
    for name in ("env", "dataset", "algo", "device", "out_dir"):
        if out[name] is not None and not out[name].strip():
            raise ParameterError(f"benchmark parameter {name!r} must be a non-empty string")
    hp = out["hyperparameters"]
    if hp is None:
        hp = {}
    elif isinstance(hp, str):
        try:
            hp = json.loads(hp) if hp.strip() else {}
        except json.JSONDecodeError as exc:
            raise ParameterError(f"benchmark parameter 'hyperparameters' is not valid JSON ({exc}): {hp!r}") from None
        if not isinstance(hp, dict):
            raise ParameterError(f"benchmark parameter 'hyperparameters' must be a JSON object, got {hp!r}")
    if not all(isinstance(k, str) for k in hp):
        raise ParameterError(f"hyperparameter names must be strings, got {list(hp)!r}")
    out["hyperparameters"] = dict(hp)
    if out["alpha"] is not None:
        a = float(out["alpha"])
        if not math.isfinite(a) or a <= 0:
            raise ParameterError(f"benchmark parameter 'alpha' must be a positive finite number, got {out['alpha']!r}")
        if "alpha" in hp and float(hp["alpha"]) != a:
            raise ParameterError(f"alpha given twice: alpha={a} and hyperparameters['alpha']={hp['alpha']}")
        out["alpha"] = a
    checks = {"seed": 0, "eval_every": 0, "steps": 1, "eval_episodes": 1, "dataset_size": 1, "threads": 1}
    for name, lowest in checks.items():
        if out[name] is not None and out[name] < lowest:
            raise ParameterError(f"benchmark parameter {name!r} must be >= {lowest}, got {out[name]!r}")
    return out

