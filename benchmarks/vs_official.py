"""marlkit's OMIGA and ComaDICE update speed against the authors' official implementations, and its BCQ-MA,
CQL-MA and OMAR against the ComaDICE repository's versions of those baselines, side by side.

The official code is imported at run time from checkouts given on the command line (nothing of it is part of
marlkit); each official training step is driven exactly as its own training loop calls it:

- OMIGA (github.com/ZhengYinan-AIR/OMIGA): ``algos.OMIGA.OMIGA(...).train_step(o, s, a, r, mask, s_next, o_next,
  a_next)``, built with ``eval_env=None`` (no environment is needed for an update);
- ComaDICE (github.com/vietbt/ComaDICE): ``runner.madice.continuous.Trainer(MADice(...), ...).update(states, obs,
  actions, rewards, masks, next_states, next_obs, is_inits)`` (the continuous-action ComaDICE), with the
  trainer's TensorBoard writer and environment wrapper replaced by inert stand-ins while it is built (neither is
  used by an update), and the package ``runner/__init__.py`` skipped (it imports every baseline's trainer and,
  through them, the MuJoCo environments);
- the ComaDICE repository's continuous baselines (``agents/continuous/{bcq,cql,omar}.py``, derived from the
  official OMIGA code and sharing its ``train_step`` signature), built with the config of their
  ``runner/<algo>/continuous.py``. marlkit runs them at the repository's settings where those differ from its
  defaults (OMAR: 2 CEM rounds of 20 samples, 5 elites, c = 0.5, clip 1), so that both sides sample the same
  numbers of candidates; what still differs in the work is listed under the table.

Settings (the official codes'): batch 128, 256-unit 3-layer local networks shared across agents with one-hot agent
ids (marlkit ``share_params=True``), mixer hidden 64, lr 5e-4, γ 0.99, τ 0.005, gradient-norm clip 1, α 10,
soft-χ² divergence (ComaDICE). ComaDICE is timed twice: marlkit's default full gradient of Eq. 11 and
``full_gradient=False``, the semi-gradient of the official code.

Data: :func:`update_speed.synthetic` of the shape. ``--pool`` minibatches are drawn once with marlkit's
``algo.sample`` (ComaDICE's include its initial-state minibatch) and converted to each official step's argument
layout: rewards and ``mask = 1 − terminal`` as ``[B, 1]``; ComaDICE's per-agent states ``[B, N, state_dim]`` are
the global state repeated over agents and ``is_inits`` marks the rows that start an episode; the official OMIGA
mixer is built on the observation size and reads ``s`` as ``[B, N, obs_dim]``, so it gets the joint observation.
Both implementations cycle through the same pre-drawn minibatches, so sampling is excluded from both timings
(marlkit is timed with ``algo.update(batch)``).

Timing: after a warm-up block of each, ``--blocks`` rounds of one block of ``--block`` updates of the official
code and one of marlkit's (the order alternates between rounds), each block timed with process CPU time and
wall time. Reported per implementation: median ms/update over blocks; per round the ratio official/marlkit of
the two adjacent blocks (median and min–max over rounds). FLOPs per update: ``FlopCounterMode`` over one update
of each (matrix products, including the oneDNN products of marlkit's large CPU linear layers; elementwise work
is not counted); GFLOP/s = FLOPs per CPU-second.

    python benchmarks/vs_official.py --omiga-repo ../OMIGA --comadice-repo ../ComaDICE \\
        --blocks 6 --block 50 --threads 1 --markdown-out benchmarks/results/vs_official.md
    python benchmarks/vs_official.py --omiga-repo ../OMIGA --comadice-repo ../ComaDICE --smoke
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import shlex
import statistics
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from update_speed import CLOCK, SHAPES, git_commit, machine, synthetic

from marlkit import __version__
from marlkit.algos import get_algo
from marlkit.data.sampler import DeviceSampler

SECTION = "## Against the authors' official code (CPU, measured side by side)"
DEFAULT_SHAPES = ("halfcheetah-6x1", "ant-2x4")
SETTINGS = {"batch_size": 128, "hidden": 256, "lr": 5e-4, "gamma": 0.99, "tau": 0.005, "mixer_hidden": 64,
            "grad_clip": 1.0, "alpha": 10.0}
SMOKE = {"hidden": 16, "block": 3, "blocks": 1}

REPOS = {
    "omiga": ("OMIGA", ("algos/OMIGA.py", "networks/network.py")),
    "comadice": ("ComaDICE", ("agents/continuous/madice.py", "runner/madice/continuous.py", "runner/evaluate.py")),
}
"""Official repository per algorithm: display name and the files an update needs (checked before importing)."""

ROWS = (
    ("OMIGA", "omiga", "omiga", {}),
    ("ComaDICE", "comadice", "comadice", {}),
    ("ComaDICE, full_gradient=False", "comadice", "comadice", {"full_gradient": False}),
    ("BCQ-MA (ComaDICE repo)", "bcq-ma", "comadice", {}),
    ("CQL-MA (ComaDICE repo)", "cql-ma", "comadice", {}),
    ("OMAR (ComaDICE repo)", "omar", "comadice",
     {"omar_iters": 2, "omar_num_samples": 20, "omar_num_elites": 5, "omar_coe": 0.5, "grad_clip": 1.0}),
)
"""Table rows: label, marlkit algorithm, official repository, marlkit config overrides (the baselines run at the
ComaDICE repository's settings where they differ from marlkit's defaults, so both sides do the same work)."""

BASELINES = {"bcq-ma": ("agents.continuous.bcq", "BCQ", {"vae_hidden_sizes": 64}),
             "cql-ma": ("agents.continuous.cql", "CQL", {}),
             "omar": ("agents.continuous.omar", "OMAR", {})}
"""The ComaDICE repository's continuous MARL baselines (``agents/continuous``): module, class and the config keys
its ``runner/<algo>/continuous.py`` adds to the common ones."""

NOTES = """Work per update (read from the official code at the commits above; both sides use 3-layer 256-unit local
networks and 64-unit mixers unless listed):

- OMIGA, official: three losses with three backward passes, three clip-norm calls and three per-tensor Adam
  steps; the target Q, V and mixer forwards run with autograd recording (their outputs are detached afterwards);
  the target mixer runs twice (at s and at s'); V(o') comes from a target V network (soft-updated, like the Q and
  mixer targets, by a Python loop of three ops per tensor). Its mixer (one shared 64-unit hidden layer, weight
  and bias heads) is built on the observation size and reads `s` as `[B, N, obs_dim]`: N·obs_dim inputs
  (54 on halfcheetah-6x1, 126 on ant-2x4).
- OMIGA, marlkit: one loss, one backward, one fused Adam step; targets without autograd, the target mixer on s and
  s' in one pass; V(o') from the online V without gradient (no V target); separate 2-layer weight and bias nets on
  the global state (17 / 105 inputs); fused Polyak updates of the Q and mixer targets only. Same local-network
  forwards and backwards as the official code, so the same matrix-product FLOPs up to the mixers.
- ComaDICE, official: four backward calls (q with the mixer; ν with λ_ν; λ_e alone; the actor); the ν loss
  evaluates the mixer again with gradient (its backward pass also runs through the mixer, whose gradient is not
  used); the actor's weights come from extra target-q and target-mixer forwards at (o, a) and s; no separate
  initial-state minibatch (the in-batch rows that start an episode, ~0.1% of the rows here); two learned
  Lagrange multipliers; Polyak updates of every network, actor included, by a Python loop; host syncs
  (`.item()`, NaN asserts). Its q-fitting regresses the mixed q onto r + γ ν̄_tot(s') (no ν(o) forward). Its
  mixer reads per-agent states `[B, N, state_dim]`: N·state_dim inputs (102 / 210).
- ComaDICE, marlkit: two stages (q-fitting; ν and policy in one loss and one backward), fused Adam. More
  local-network work than the official code: the q-fitting target A_tot ≈ r + γ ν̄_tot(s') − ν_tot(s) needs a
  ν(o) forward, Eq. 11 evaluates ν with gradient on the 128 initial observations o₀ as well as on o (and on o'
  for the full gradient), and stage 2 re-evaluates q (just fitted) without gradient; the mixer runs on s, s₀
  (and s') without gradient; Polyak updates of the ν and mixer targets only; mixer on the global state
  (17 / 105 inputs).
- The ComaDICE repository's baselines (`agents/continuous/{bcq,cql,omar}.py`): one shared 256-unit network per
  role with one-hot ids, a 64-unit mixer on the joint observation, per-tensor Adam, Polyak updates by a Python
  loop. BCQ: twin critics, a 64-unit VAE, 10 decoded candidates per next observation, a perturbation actor, three
  backward passes. CQL: one critic, 10 uniform and 2 × 10 policy proposals through the mixer (log-sum-exp of the
  mixed values), a Gaussian actor weighted by Q. OMAR: CQL's critic and mixer plus a Gaussian CEM (2 rounds of
  20 samples, 5 elites; its mean and std are not carried between rounds) and the rectified actor.
- marlkit's BCQ-MA and CQL-MA do the same matrix-product work (FLOPs within 2 %): BCQ-MA in three stages (VAE,
  twin critics, actor), CQL-MA with the local CQL(H) penalty on the 30 proposals valued in one batched call and
  SAC's actor and temperature stages. marlkit's OMAR follows the OMAR paper's code instead: independent twin
  critics without a mixer, each with its CQL penalty on the 30 proposals (the second critic is why its update has
  ≈ 1.46× the FLOPs), CEM on Q¹ only with its mean and std carried between rounds."""


class UsageError(Exception):
    """A problem with the command line or the checkouts, reported as one line and exit status 2."""


# ---------------------------------------------------------------------------------------------- checkouts
def check_repo(kind: str, path: str | None) -> Path:
    """The checkout's root, after checking that it holds the files an official update needs.

    Raises:
        UsageError: if the path is missing, not a directory, or lacks those files.
    """
    name, files = REPOS[kind]
    if not path:
        raise UsageError(f"--{kind}-repo is required (a checkout of the official {name} code)")
    root = Path(path).expanduser()
    if not root.exists():
        raise UsageError(f"--{kind}-repo {path}: no such directory")
    if not root.is_dir():
        raise UsageError(f"--{kind}-repo {path}: not a directory")
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise UsageError(f"--{kind}-repo {path} does not look like the official {name} repository "
                         f"(missing {', '.join(missing)})")
    return root.resolve()


def repo_commit(root: Path, override: str | None = None) -> str:
    """``override`` if given, else the HEAD commit when ``root`` is the top of a git work tree, else 'unknown'."""
    if override:
        return override

    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root.resolve():
            return "unknown"
        return git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class _Inert:
    """Accepts any construction and any call (stands in for a logger or an environment class)."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _module(name: str, path: list[str] | None = None, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    if path is not None:
        mod.__path__ = path
    mod.__dict__.update(attrs)
    return mod


@contextlib.contextmanager
def imports_from(root: Path, stubs: dict[str, types.ModuleType]):
    """Import from ``root`` (first on ``sys.path``) with ``stubs`` in ``sys.modules``, inside the block only.

    On exit ``sys.path`` and the stubbed entries are restored and the checkout's top-level modules are dropped from
    ``sys.modules`` (objects already built keep working), so two checkouts never see each other's packages.
    """
    tops = {p.stem for p in root.iterdir() if p.is_dir() or p.suffix == ".py"}
    before = set(sys.modules)
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    sys.path.insert(0, str(root))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script_method in the official code
            yield
    finally:
        sys.path.remove(str(root))
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
        for k in set(sys.modules) - before:
            if k.split(".")[0] in tops:
                del sys.modules[k]


def omiga_step_args(b):
    """A marlkit batch as the arguments of the official OMIGA ``train_step(o, s, a, r, mask, s_next, o_next,
    a_next)`` (and of the ComaDICE repository's baselines derived from it): rewards and ``mask = 1 − terminal`` as
    ``[B, 1]``; its mixer reads ``s`` as ``[B, N, obs_dim]``, so ``s`` is the joint observation."""
    o, no, a = b["observations"], b["next_observations"], b["actions"]
    r, mask = b["rewards"].unsqueeze(-1), (1.0 - b["terminals"]).unsqueeze(-1)
    return (o, o, a, r, mask, no, no, a)


def build_official_omiga(root: Path, shape: dict, hidden: int):
    """The official OMIGA agent and a function running one official ``train_step`` on a marlkit batch."""
    N, O, A = shape["n_agents"], shape["obs_dim"], shape["act_dim"]
    config = {"gamma": SETTINGS["gamma"], "tau": SETTINGS["tau"], "hidden_sizes": hidden,
                  "mix_hidden_sizes": SETTINGS["mixer_hidden"], "batch_size": SETTINGS["batch_size"],
                  "lr": SETTINGS["lr"],
                  "grad_norm_clip": SETTINGS["grad_clip"], "device": "cpu"}
    with imports_from(root, {}):
        mod = importlib.import_module("algos.OMIGA")
        agent = mod.OMIGA(O, A, N, None, config)  # observation size, action size, agents, eval_env, config

    return agent, agent.train_step, omiga_step_args


def build_official_comadice(root: Path, shape: dict, hidden: int):
    """The official continuous ComaDICE trainer and a function running one official ``update`` on a marlkit
    batch."""
    N, O, S, A = shape["n_agents"], shape["obs_dim"], shape["state_dim"], shape["act_dim"]
    stubs = {
        "torch.utils.tensorboard": _module("torch.utils.tensorboard", SummaryWriter=_Inert),
        "runner": _module("runner", [str(root / "runner")]),  # skip runner/__init__.py (imports every baseline)
        "envs": _module("envs", []),
        "envs.mamujoco": _module("envs.mamujoco", []),
        "envs.mamujoco.env": _module("envs.mamujoco.env", MaMujocoWrapper=_Inert),  # evaluation only
    }
    with imports_from(root, stubs):
        madice = importlib.import_module("agents.continuous.madice")
        trainer_mod = importlib.import_module("runner.madice.continuous")
        model = madice.MADice(S, O, A, N, hidden).to("cpu")
        # (model, logdir, offline_data, n_agents, alpha, lr, f_divergence, seed, device), as its main.py
        trainer = trainer_mod.Trainer(model, None, None, N, SETTINGS["alpha"], SETTINGS["lr"], "soft_chisquare", 0,
                                      "cpu")

    def convert(b):
        o, no, a = b["observations"], b["next_observations"], b["actions"]
        st = b["states"].unsqueeze(1).expand(-1, N, -1).contiguous()
        nst = b["next_states"].unsqueeze(1).expand(-1, N, -1).contiguous()
        r, mask = b["rewards"].unsqueeze(-1), (1.0 - b["terminals"]).unsqueeze(-1)
        return (st, o, a, r, mask, nst, no, b["episode_starts"].bool())

    return trainer, trainer.update, convert


def build_comadice_baseline(algo_name: str, root: Path, shape: dict, hidden: int):
    """One of the ComaDICE repository's continuous baselines (:data:`BASELINES`), built as its
    ``runner/<algo>/continuous.py`` builds it, and a function running one ``train_step`` on a marlkit batch (the
    same signature as the official OMIGA's, from which these agents derive)."""
    N, O, A = shape["n_agents"], shape["obs_dim"], shape["act_dim"]
    module, cls, extra = BASELINES[algo_name]
    config = {"gamma": SETTINGS["gamma"], "tau": SETTINGS["tau"], "hidden_sizes": hidden,
              "mix_hidden_sizes": SETTINGS["mixer_hidden"], "batch_size": SETTINGS["batch_size"],
              "lr": SETTINGS["lr"], "grad_norm_clip": SETTINGS["grad_clip"], "device": "cpu", **extra}
    with imports_from(root, {}):
        agent = getattr(importlib.import_module(module), cls)(O, A, N, None, config)

    return agent, agent.train_step, omiga_step_args


OFFICIAL = {"omiga": build_official_omiga, "comadice": build_official_comadice,
            **{name: functools.partial(build_comadice_baseline, name) for name in BASELINES}}


def trained_parameters(obj) -> int:
    """Number of parameters stepped by the optimizers found among ``obj``'s attributes (or in a dict of them)."""
    seen = {}
    for v in vars(obj).values():
        opts = v.values() if isinstance(v, dict) else [v]
        for opt in opts:
            if isinstance(opt, torch.optim.Optimizer):
                for g in opt.param_groups:
                    for p in g["params"]:
                        seen[id(p)] = p.numel()
    return sum(seen.values())


# ---------------------------------------------------------------------------------------------- measurement
def build_marlkit(name: str, spec, data, hidden: int, extra: dict, pool: int):
    cls = get_algo(name)
    cfg = cls.Config.from_dict({"hidden": (hidden, hidden), "batch_size": SETTINGS["batch_size"],
                                "share_params": True, "lr": SETTINGS["lr"], **extra})
    torch.manual_seed(0)
    algo = cls(spec, cfg, device="cpu")
    sampler = DeviceSampler(data, "cpu", seed=0)
    algo.setup(sampler)
    batches = [algo.sample(sampler, i) for i in range(pool)]
    return algo, batches


def _onednn_linear_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of ``mkldnn._linear_pointwise(x [..., in], W [out, in], ...)``, the oneDNN product behind marlkit's
    large CPU linear layers (forward and backward), which ``FlopCounterMode`` has no formula for."""
    rows = 1
    for d in x_shape[:-1]:
        rows *= d
    return 2 * rows * x_shape[-1] * w_shape[0]


def count_flops(step) -> int:
    """Matrix-product FLOPs of one call of ``step`` (``FlopCounterMode``, plus marlkit's oneDNN linear)."""
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    custom = {op: _onednn_linear_flops} if op is not None else {}
    with FlopCounterMode(display=False, custom_mapping=custom) as fc:
        step()
    return int(fc.get_total_flops())


def time_block(step, n: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per update over ``n`` calls of ``step``."""
    c0, w0 = time.process_time(), CLOCK()
    for _ in range(n):
        step()
    return (time.process_time() - c0) / n, (CLOCK() - w0) / n


def measure(label: str, algo_name: str, extra: dict, shape_name: str, root: Path, hidden: int, block: int,
            blocks: int, pool: int) -> dict:
    """Alternating blocks of the official and marlkit updates of one (algorithm, shape); see the module doc."""
    shape = SHAPES[shape_name]
    data, spec = synthetic(shape)
    algo, batches = build_marlkit(algo_name, spec, data, hidden, extra, pool)
    torch.manual_seed(0)
    agent, official_step, convert = OFFICIAL[algo_name](root, shape, hidden)
    official_batches = [convert(b) for b in batches]
    it = {"official": 0, "marlkit": 0}

    def off():
        official_step(*official_batches[it["official"] % pool])
        it["official"] += 1

    def mk():
        algo.update(batches[it["marlkit"] % pool])
        it["marlkit"] += 1

    steps = {"official": off, "marlkit": mk}
    for fn in steps.values():
        time_block(fn, max(block, 3))
    flops = {k: count_flops(fn) for k, fn in steps.items()}
    cpu = {k: [] for k in steps}
    wall = {k: [] for k in steps}
    for r in range(blocks):
        for k in (("official", "marlkit") if r % 2 == 0 else ("marlkit", "official")):
            c, w = time_block(steps[k], block)
            cpu[k].append(c)
            wall[k].append(w)
    ratio_cpu = [o / m for o, m in zip(cpu["official"], cpu["marlkit"])]
    ratio_wall = [o / m for o, m in zip(wall["official"], wall["marlkit"])]
    med = {k: statistics.median(v) for k, v in cpu.items()}
    return {"label": label, "shape": shape_name, "cpu_ms": {k: 1e3 * v for k, v in med.items()},
                "wall_ms": {k: 1e3 * statistics.median(v) for k, v in wall.items()},
                "ratio_cpu": (statistics.median(ratio_cpu), min(ratio_cpu), max(ratio_cpu)),
                "ratio_wall": (statistics.median(ratio_wall), min(ratio_wall), max(ratio_wall)),
                "flops": flops, "gflops": {k: flops[k] / med[k] / 1e9 for k in steps},
                "params": {"official": trained_parameters(agent), "marlkit": trained_parameters(algo)}}


# ---------------------------------------------------------------------------------------------- output
def table(rows: list[dict]) -> list[str]:
    head = ("| shape | algorithm | official ms/update | marlkit ms/update | official / marlkit (CPU), median "
            "[min–max] | wall ms official / marlkit | official / marlkit (wall), median [min–max] | "
            "MFLOP/update official / marlkit | GFLOP/s official / marlkit | trained params official / marlkit |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        rc, rw = r["ratio_cpu"], r["ratio_wall"]
        out.append(
            f"| {r['shape']} | {r['label']} | {r['cpu_ms']['official']:.2f} | {r['cpu_ms']['marlkit']:.2f} | "
            f"**{rc[0]:.2f}×** [{rc[1]:.2f}–{rc[2]:.2f}] | {r['wall_ms']['official']:.2f} / "
            f"{r['wall_ms']['marlkit']:.2f} | {rw[0]:.2f}× [{rw[1]:.2f}–{rw[2]:.2f}] | "
            f"{r['flops']['official'] / 1e6:.1f} / {r['flops']['marlkit'] / 1e6:.1f} | "
            f"{r['gflops']['official']:.1f} / {r['gflops']['marlkit']:.1f} | "
            f"{r['params']['official']:,} / {r['params']['marlkit']:,} |")
    return out


def markdown(rows: list[dict], argv: list[str], commits: dict[str, str], args) -> str:
    cmd = "python benchmarks/vs_official.py " + " ".join(shlex.quote(a) for a in argv)
    lines = [
        SECTION, "",
        f"Command: `{cmd}`", "",
        (f"Machine: {machine()}; torch {torch.__version__}, {args.threads} thread(s); marlkit {__version__} "
         f"(commit {git_commit()})."), "",
        (f"Official code: OMIGA (github.com/ZhengYinan-AIR/OMIGA) commit `{commits['omiga']}`, ComaDICE "
         f"(github.com/vietbt/ComaDICE) commit `{commits['comadice']}`, imported from the given checkouts at run "
         "time; each official training step is called as its own training loop calls it."), "",
        (f"Settings: batch {SETTINGS['batch_size']}, hidden {args.hidden} (3-layer local networks shared across "
         "agents with one-hot ids, marlkit `share_params=True`), lr 5e-4, synthetic data. Both implementations "
         f"cycle through the same {args.pool} pre-drawn minibatches (marlkit timed with `algo.update(batch)`, "
         f"sampling excluded on both sides). {args.blocks} rounds of one block of {args.block} updates of each, order "
         "alternating per round, after a warm-up block of each; ms/update: median over blocks of process CPU time "
         "(wall time alongside); ratio: official/marlkit per round (adjacent blocks), median [min–max]; FLOPs: "
         "`FlopCounterMode` over one update (matrix products, marlkit's oneDNN products included); GFLOP/s per "
         "CPU-second. CPU-time ratios are the robust figures on a loaded machine; wall times vary with load."), "",
        *table(rows), "",
        NOTES, "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--omiga-repo", help="checkout of github.com/ZhengYinan-AIR/OMIGA")
    p.add_argument("--comadice-repo", help="checkout of github.com/vietbt/ComaDICE")
    p.add_argument("--omiga-commit", help="commit of the OMIGA checkout (default: read with git, else 'unknown')")
    p.add_argument("--comadice-commit", help="commit of the ComaDICE checkout (default: read with git)")
    p.add_argument("--shapes", default=",".join(DEFAULT_SHAPES), help="comma-separated continuous task shapes")
    p.add_argument("--block", type=int, default=50, help="updates per timed block")
    p.add_argument("--blocks", type=int, default=10, help="rounds (one block of each implementation per round)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--pool", type=int, default=32, help="pre-drawn minibatches cycled by both implementations")
    p.add_argument("--hidden", type=int, default=SETTINGS["hidden"], help="hidden width of the local networks")
    p.add_argument("--smoke", action="store_true", help="tiny run: hidden 16, 3 updates per block, 1 round")
    p.add_argument("--algos", help="comma-separated marlkit algorithms of the table to run (default: every row: "
                   + ", ".join(dict.fromkeys(r[1] for r in ROWS)) + ")")
    p.add_argument("--markdown-out", help="write the markdown section to this file")
    args = p.parse_args(argv)
    if args.smoke:
        args.hidden, args.block, args.blocks = SMOKE["hidden"], SMOKE["block"], SMOKE["blocks"]
    try:
        known = {r[1] for r in ROWS}
        args.algos = [a.strip() for a in (args.algos or "").split(",") if a.strip()]
        unknown = [a for a in args.algos if a not in known]
        if unknown:
            raise UsageError(f"--algos: unknown {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
        roots = {"omiga": check_repo("omiga", args.omiga_repo),
                 "comadice": check_repo("comadice", args.comadice_repo)}
        shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
        bad = [s for s in shapes if s not in SHAPES or "act_dim" not in SHAPES[s]]
        if bad or not shapes:
            ok = ", ".join(k for k, v in SHAPES.items() if "act_dim" in v)
            raise UsageError(f"--shapes: unknown or discrete shape(s) {', '.join(bad) or '(none)'}; "
                             f"choose from {ok}")
        if min(args.block, args.blocks, args.threads, args.pool, args.hidden) < 1:
            raise UsageError("--block, --blocks, --threads, --pool and --hidden must be positive")
        commits = {"omiga": repo_commit(roots["omiga"], args.omiga_commit),
                   "comadice": repo_commit(roots["comadice"], args.comadice_commit)}
        torch.set_num_threads(args.threads)
        rows = []
        print("\n".join(table([])), flush=True)
        for shape in shapes:
            for label, name, repo, extra in ROWS:
                if args.algos and name not in args.algos:
                    continue
                try:
                    rows.append(measure(label, name, extra, shape, roots[repo], args.hidden, args.block,
                                        args.blocks, args.pool))
                except ImportError as e:
                    raise UsageError(f"could not import the official {REPOS[repo][0]} code from {roots[repo]}: "
                                     f"{e}") from None
                print(table(rows[-1:])[-1], flush=True)
    except UsageError as e:
        print(f"vs_official.py: error: {e}", file=sys.stderr)
        return 2
    text = markdown(rows, argv, commits, args)
    print()
    print(text)
    if args.markdown_out:
        Path(args.markdown_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown_out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
