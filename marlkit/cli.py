"""The ``marlkit`` command line.

    marlkit train --env xor --dataset b --algo bc --json
    marlkit train --env mne --dataset imbalanced --algo omiga --alpha 1 --steps 3000
    marlkit train --env xor --dataset b --algo omiga --seeds 0-7 --vectorize --json
    marlkit envs | marlkit algos
    marlkit data build mamujoco:Hopper-3x1 --quality medium --transitions 100000 --seed 0
    marlkit data list | marlkit data info mamujoco:Hopper-3x1/medium-v1
    marlkit data convert vaults/3m.vlt/Good 3m-good.h5 --env smax:3m
    marlkit bench --preset quick
    marlkit bench --env xor --datasets a,b --algos bc --seeds 0-4 --steps 2000 [--backend ray]

``--seeds 0-7`` (ranges and commas: ``0-3,10``) trains one run per seed; with ``--alphas 1,10`` one run per
(α, seed) pair. Runs go one after another, or, with ``--vectorize``, all at once as one population with stacked
weights (:mod:`marlkit.population`). With ``--json`` every run prints one JSON record on its own line (JSON
Lines, α-major then seed order); a single run without ``--seeds`` prints one record as before.

Any algorithm hyperparameter can be set as ``--name value`` (``--f soft-chi2``, ``--tau 0.01``) and boolean ones
as ``--name`` / ``--no-name``; names are checked against the algorithm's config and unknown ones are an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from marlkit.algos import get_algo, list_algos
from marlkit.algos.base import ConfigError
from marlkit.bench import add_bench_parser
from marlkit.bench.cli import add_eval_mode_options
from marlkit.bench.grid import GridError
from marlkit.checkpoint import CheckpointError
from marlkit.data.build import build_dataset, dataset_card
from marlkit.data.dataset import DatasetError
from marlkit.envs.registry import UnknownNameError, list_envs
from marlkit.errors import DeviceError, OutputError, ResourceError, describe_os_error
from marlkit.train import NonFiniteLossError, RunConfig, run, run_many
from marlkit.utils import MAX_SEED

MAX_RUNS = 10_000
"""The most runs one ``--seeds`` list may name."""

__all__ = ["main", "parse_overrides", "parse_int_list"]


def parse_int_list(text: str) -> list[int]:
    """``"0-3,7"`` → ``[0, 1, 2, 3, 7]`` (non-negative integers, inclusive ranges, order kept).

    Raises:
        SystemExit: on malformed input, a reversed range, a duplicate, a seed above 2**32 - 1 or more than
            :data:`MAX_RUNS` runs.
    """
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                if hi - lo + 1 + len(out) > MAX_RUNS:
                    raise SystemExit(f"marlkit: error: --seeds {text!r} names more than {MAX_RUNS} runs")
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise SystemExit(f"marlkit: error: --seeds expects non-negative integers and ranges like 0-7,9; got {text!r}") \
            from None
    if any(v < 0 for v in out) or len(set(out)) != len(out):
        raise SystemExit(f"marlkit: error: --seeds must list distinct non-negative integers, got {text!r}")
    if len(out) > MAX_RUNS:
        raise SystemExit(f"marlkit: error: --seeds {text!r} names more than {MAX_RUNS} runs")
    if any(v > MAX_SEED for v in out):
        raise SystemExit(f"marlkit: error: --seeds must be at most 2**32 - 1 = {MAX_SEED}, got {text!r}")
    return out


def _coerce(value: str, kind: str, name: str) -> Any:
    kind = str(kind)
    if "None" in kind and value.lower() == "none":  # an optional field (``float | None``) switched off
        return None
    try:
        if kind.startswith("tuple"):
            return tuple(int(v) for v in value.replace(",", " ").split())
        if kind.startswith("bool"):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
    except ValueError:
        raise SystemExit(f"marlkit: error: --{name.replace('_', '-')} expects {kind}, got {value!r}") from None
    return value


def parse_overrides(config_cls, tokens: list[str]) -> dict[str, Any]:
    """Turn ``['--alpha', '1', '--no-tn']`` into ``{'alpha': 1.0, 'tn': False}`` using the config's field types.

    Raises:
        SystemExit: for an unknown hyperparameter or a value of the wrong type (message lists valid names).
    """
    fields = {f.name: f.type for f in dataclasses.fields(config_cls)}
    out: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--"):
            raise SystemExit(f"marlkit: error: unexpected argument {tok!r}")
        key = tok[2:].replace("-", "_")
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif key.startswith("no_") and key[3:] in fields and str(fields[key[3:]]).startswith("bool"):
            out[key[3:]] = False
            i += 1
            continue
        elif key in fields and str(fields[key]).startswith("bool") and (
                i + 1 >= len(tokens) or tokens[i + 1].startswith("--")):
            out[key] = True
            i += 1
            continue
        else:
            if i + 1 >= len(tokens):
                raise SystemExit(f"marlkit: error: {tok} needs a value")
            value = tokens[i + 1]
            i += 2
        if key not in fields:
            valid = ", ".join("--" + k.replace("_", "-") for k in sorted(fields))
            raise SystemExit(f"marlkit: error: unknown option {tok!r} for this algorithm; valid hyperparameters: {valid}")
        out[key] = _coerce(value, fields[key], key)
    return out


def _train(args, extra: list[str]) -> int:
    cls = get_algo(args.algo)
    overrides = parse_overrides(cls.Config, extra)
    if args.alpha is not None:
        if "alpha" not in {f.name for f in dataclasses.fields(cls.Config)}:
            raise SystemExit(f"marlkit: error: algo {args.algo!r} has no regularization weight --alpha")
        overrides["alpha"] = args.alpha
    if args.seed is not None and args.seeds is not None:
        raise SystemExit("marlkit: error: give --seed (one run) or --seeds (several), not both")
    if args.resume and args.overwrite:
        raise SystemExit("marlkit: error: give --resume (continue the run) or --overwrite (replace it), not both")
    run_cfg = RunConfig(steps=args.steps, eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                        seed=0 if args.seed is None else args.seed, device=args.device, threads=args.threads,
                        progress=not args.json and not args.quiet, out=args.out,
                        checkpoint_every=args.checkpoint_every, resume=args.resume, compile=args.compile,
                        overwrite=args.overwrite, deterministic_eval=args.deterministic_eval)
    many = args.seeds is not None or args.alphas is not None or args.vectorize
    try:
        if many:
            alphas = None
            if args.alphas is not None:
                try:
                    alphas = [float(a) for a in args.alphas.split(",")]
                except ValueError:
                    raise SystemExit(f"marlkit: error: --alphas expects numbers like 1,3,10; got {args.alphas!r}") \
                        from None
            seeds = parse_int_list(args.seeds) if args.seeds is not None else [run_cfg.seed]
            records = run_many(args.env, args.dataset, args.algo, overrides, run_cfg, seeds=seeds, alphas=alphas,
                               dataset_size=args.dataset_size, vectorize=args.vectorize)
        else:
            records = [run(args.env, args.dataset, args.algo, overrides, run_cfg, dataset_size=args.dataset_size)]
    except ConfigError as exc:
        raise SystemExit(f"marlkit: error: {exc}") from None
    for record in records:
        _print_record(record, args)
    return 0


def _print_record(record: dict, args) -> None:
    if args.json:
        print(json.dumps(record))
    else:
        keys = ["algo", "env", "dataset", "seed", "steps", "return", "greedy_action", "win_rate", "normalized_score",
                "deterministic_eval", "updates_per_s", "wall_time_s"]
        for k in keys:
            if k in record:
                print(f"{k:>16}: {record[k]}")
        if args.out and "population" not in record:
            print(f"{'record':>16}: {args.out}/result.json")


def _envs(args, extra) -> int:
    for name in list_envs():
        print(name)
    return 0


def _algos(args, extra) -> int:
    for name, doc in list_algos().items():
        print(f"{name:<12} {doc}")
    return 0


def _data_build(args, extra) -> int:
    if args.transitions is not None and args.episodes is not None:
        raise SystemExit("marlkit: error: give at most one of --transitions and --episodes")
    try:
        ds = build_dataset(args.env, args.quality, transitions=args.transitions, episodes=args.episodes,
                           seed=args.seed, cache=not args.no_cache, verbose=not args.json)
    except (KeyError, ValueError) as exc:
        if isinstance(exc, KeyError) and type(exc).__name__ != "KeyError":
            raise
        raise SystemExit(f"marlkit: error: {exc.args[0] if exc.args else exc}") from None
    if args.json:
        print(json.dumps(dataset_card(ds)))
    return 0


def _data_errors(func):
    """Run a ``marlkit data`` command; bad input (a missing or malformed file, an existing destination, a
    missing extra) becomes one ``marlkit: error:`` line and exit status 2."""
    def wrapped(args, extra) -> int:
        from marlkit.envs.registry import UnknownNameError

        try:
            return func(args, extra)
        except (UnknownNameError, FileNotFoundError, FileExistsError, ImportError, ValueError, OSError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"marlkit: error: {_plain(msg)}", file=sys.stderr)
            return 2
    return wrapped


@_data_errors
def _data_list(args, extra) -> int:
    from marlkit.data.browse import dataset_rows, format_rows

    envs = None
    if args.env:
        from marlkit.envs.registry import list_envs

        known = list_envs()
        envs = [e for e in known if e == args.env or e.startswith(args.env.rstrip(":") + ":")]
        if not envs:
            raise ValueError(f"--env {args.env!r} matches no environment; see `marlkit envs`")
    rows = dataset_rows(envs)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(format_rows(rows))
    return 0


def _positive_steps(args) -> None:
    if args.max_episode_steps is not None and args.max_episode_steps < 1:
        raise ValueError(f"--max-episode-steps must be a positive integer, got {args.max_episode_steps}")


@_data_errors
def _data_info(args, extra) -> int:
    import warnings

    from marlkit.data.browse import format_info, open_dataset

    if args.bins < 1:
        raise ValueError(f"--bins must be a positive integer, got {args.bins}")
    _positive_steps(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # the version check is part of the printed card
        ds, source = open_dataset(args.dataset, max_episode_steps=args.max_episode_steps)
    if args.json:
        from marlkit.data.card import check_simulator_versions

        rets = ds.episode_returns()
        print(json.dumps({"source": source, "meta": {k: v for k, v in ds.meta.items()},
                          "fields": {k: [str(v.dtype), list(v.shape)] for k, v in ds.fields().items()},
                          "episode_returns": {"count": int(rets.size),
                                              "mean": float(rets.mean()) if rets.size else None,
                                              "std": float(rets.std()) if rets.size else None},
                          "simulator_version_differences": check_simulator_versions(ds.meta, source, warn=False)},
                         default=str))
    else:
        print(format_info(ds, source, bins=args.bins))
    return 0


@_data_errors
def _data_convert(args, extra) -> int:
    from marlkit.data.browse import convert

    _positive_steps(args)
    ds, path = convert(args.src, args.dst, fmt=args.to, overwrite=args.overwrite, env_name=args.env,
                       name=args.name, max_episode_steps=args.max_episode_steps)
    print(f"wrote {path}: {ds.meta['dataset_id']}, {ds.size} transitions, {ds.meta['episodes']} episodes")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="marlkit", description="Offline cooperative multi-agent RL.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one algorithm on one dataset and evaluate it",
                       description="Train; extra --name value options set algorithm hyperparameters.")
    t.add_argument("--env", required=True, help="environment name (see `marlkit envs`)")
    t.add_argument("--dataset", required=True,
                   help="dataset name or ID (env/name-vN) of the env, or a path to an .h5 file or a flashbax Vault")
    t.add_argument("--algo", required=True, help="algorithm name (see `marlkit algos`)")
    t.add_argument("--alpha", type=float, default=None, help="regularization weight α of the algorithm")
    t.add_argument("--steps", type=int, default=None, help="gradient updates (default: the env's)")
    t.add_argument("--seed", type=int, default=None, help="seed of the one run (default 0)")
    t.add_argument("--seeds", default=None, help="several runs, e.g. 0-7 or 0,3,5 (one record per run)")
    t.add_argument("--alphas", default=None, help="comma-separated values of the algorithm's α (its meaning per algorithm: the config docstring; OMIGA: KL weight, ComaDICE: DICE weight, CQL-MA/OMAR/MACQL: CQL weight, ICQ: Lagrangian coefficient, InSPO: behavior-KL temperature, MATD3BC: TD3+BC's Q scale): one run per (α, seed)")
    t.add_argument("--vectorize", action="store_true",
                   help="train all --seeds/--alphas runs at once as one population (stacked weights)")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda[:k]")
    t.add_argument("--threads", type=int, default=None, help="CPU threads (default: measured)")
    t.add_argument("--eval-every", type=int, default=0, help="evaluate every N updates (0: at the end)")
    t.add_argument("--eval-episodes", type=int, default=32)
    add_eval_mode_options(t)
    t.add_argument("--dataset-size", type=int, default=None, help="transitions for sampled datasets")
    t.add_argument("--out", default=None, help="directory for metrics.csv, evals.jsonl, result.json")
    t.add_argument("--checkpoint-every", type=int, default=0,
                   help="write OUT/checkpoint.pt every N updates (full training state; needs --out)")
    t.add_argument("--resume", default=None, help="continue from a checkpoint file or a run directory")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (without it such an --out is refused)")
    t.add_argument("--compile", action="store_true",
                   help="torch.compile the update (CUDA graphs on CUDA; slow to compile on CPU)")
    t.add_argument("--json", action="store_true", help="print one JSON record and nothing else")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)

    d = sub.add_parser("data", help="build, list, inspect and convert datasets").add_subparsers(
        dest="data_command", required=True)
    b = d.add_parser("build", help="roll behavior policies out into a cached HDF5 dataset and print its card")
    b.add_argument("env", help="environment name (see `marlkit envs`)")
    b.add_argument("--quality", required=True, help="dataset name: random, medium, expert, medium-expert, "
                                                    "medium-replay (MuJoCo), optimal/mixed (bridge)")
    b.add_argument("--transitions", type=int, default=None, help="number of transitions")
    b.add_argument("--episodes", type=int, default=None, help="number of episodes")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--no-cache", action="store_true", help="rebuild and do not write the cache")
    b.add_argument("--json", action="store_true", help="print the dataset card as one JSON object")
    b.set_defaults(func=_data_build)
    ls = d.add_parser("list", help="every env's named datasets with their card summary (size, return, built or not)")
    ls.add_argument("--env", default=None, help="only this env or family (e.g. mamujoco)")
    ls.add_argument("--json", action="store_true", help="one JSON object per dataset")
    ls.set_defaults(func=_data_list)
    inf = d.add_parser("info", help="a dataset's card, field shapes and return histogram")
    inf.add_argument("dataset", metavar="PATH_OR_ID",
                     help="an .h5 file, a flashbax Vault directory, or an ID env/name-vN (see `marlkit data list`)")
    inf.add_argument("--bins", type=int, default=10, help="histogram bins")
    inf.add_argument("--max-episode-steps", type=int, default=None,
                     help="OMIGA layout: time limit whose rows become timeouts (1000 for MuJoCo)")
    inf.add_argument("--json", action="store_true", help="print one JSON object")
    inf.set_defaults(func=_data_info)
    cv = d.add_parser("convert", help="convert a dataset: HDF5 <-> flashbax Vault, OMIGA layout -> HDF5")
    cv.add_argument("src", help="source: .h5 (marlkit or OMIGA layout) or a Vault directory")
    cv.add_argument("dst", help="destination: .h5 file, or a Vault directory such as vaults/task.vlt/medium")
    cv.add_argument("--to", choices=("hdf5", "vault", "omiga"), default=None,
                    help="output format (default: vault for a .vlt path, else hdf5)")
    cv.add_argument("--env", default=None, help="env the data belongs to: checked and recorded in the card")
    cv.add_argument("--name", default=None, help="dataset name in the ID env/name-v0")
    cv.add_argument("--max-episode-steps", type=int, default=None,
                    help="OMIGA layout: time limit whose rows become timeouts (1000 for MuJoCo)")
    cv.add_argument("--overwrite", action="store_true", help="replace an existing destination")
    cv.set_defaults(func=_data_convert)

    add_bench_parser(sub)
    sub.add_parser("envs", help="list environments").set_defaults(func=_envs)
    sub.add_parser("algos", help="list algorithms").set_defaults(func=_algos)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``marlkit`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args, extra)
    except SystemExit as exc:                    # marlkit's own usage messages: one line, status 2
        if not isinstance(exc.code, str):
            raise
        print(exc.code, file=sys.stderr)
        return 2
    except USAGE_ERRORS as exc:
        return _error(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc, 2)
    except ImportError as exc:
        if "pip install" not in str(exc):        # not one of marlkit's missing-extra messages
            raise
        return _error(exc, 2)
    except RUNTIME_ERRORS as exc:
        return _error(exc, 1)
    except MemoryError as exc:
        return _error(f"out of memory: {exc or 'the run does not fit in this machine memory'}", 1)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _error(f"{describe_os_error(exc)}{where}", 1)
    except RuntimeError as exc:                  # torch reports a failed allocation as a RuntimeError
        if not is_out_of_memory(exc):
            raise
        return _error(f"out of memory (networks, batch or data too large for this machine; try a smaller --hidden, "
                      f"--batch-size or --dataset-size): {str(exc).strip().splitlines()[0][:240]}", 1)
    except KeyboardInterrupt:
        return _error("interrupted", 130)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's failed-allocation errors (CPU allocator or CUDA out of memory)."""
    text = str(exc).lower()
    return isinstance(exc, getattr(__import__("torch"), "OutOfMemoryError", ())) or "can't allocate memory" in text \
        or "out of memory" in text


USAGE_ERRORS = (UnknownNameError, ConfigError, DeviceError, DatasetError, CheckpointError, GridError,
                FileNotFoundError, FileExistsError)
"""Errors of the input given (options, names, files): exit status 2."""
RUNTIME_ERRORS = (NonFiniteLossError, OutputError, ResourceError)
"""Failures while running (non-finite loss, unwritable output, out of memory): exit status 1."""


def _error(message, status: int) -> int:
    print(f"marlkit: error: {_plain(message)}", file=sys.stderr)
    return status


def _plain(message):
    """An OSError's ``[Errno 17] File exists: 'x'`` as ``x: a file of that name exists``; anything else as is."""
    if isinstance(message, OSError) and str(message).startswith("[Errno") and message.filename:
        return f"{message.filename}: {describe_os_error(message)}"
    return message


if __name__ == "__main__":
    sys.exit(main())
