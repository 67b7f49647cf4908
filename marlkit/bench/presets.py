"""Named benchmark grids (``marlkit bench --preset NAME``): what each runs is listed in :data:`PRESETS`."""

from __future__ import annotations

from typing import Any

from marlkit.algos import ALGOS, get_algo
from marlkit.bench.grid import Grid, GridError

__all__ = ["INSPO_BRIDGE_TASKS", "INSPO_MATRIX_TASKS", "INSPO_TABLE_ALGOS", "MAMUJOCO_TABLE1_DATASETS",
           "MAMUJOCO_TABLE1_ENVS", "PAPER_LITE_ALGOS", "PAPER_LITE_BUDGET_CPU_H", "PAPER_LITE_TASKS", "PRESETS",
           "QUICK_ALGO_HYPERPARAMETERS", "QUICK_ALGO_STEPS", "QUICK_ALGO_SWEEP", "SEED_PAPER_ALGOS",
           "SMAX_PAPER_DATASETS", "SMAX_PAPER_MAPS", "SMAX_PAPER_STEPS", "UPDATE_MS", "estimated_cpu_s",
           "describe_dropped", "paper_lite_cells", "paper_lite_plan", "preset"]

#: omiga.md Table 1, multi-agent MuJoCo block: tasks and dataset qualities (names of marlkit's MaMuJoCo family).
MAMUJOCO_TABLE1_ENVS = ["mamujoco:Hopper-3x1", "mamujoco:Ant-2x4", "mamujoco:HalfCheetah-6x1"]
MAMUJOCO_TABLE1_DATASETS = ["expert", "medium", "medium-replay", "medium-expert"]


def _algos_supporting(discrete: bool) -> list[str]:
    names = []
    for name in sorted(ALGOS):
        cls = get_algo(name)
        if getattr(cls, "supports_discrete" if discrete else "supports_continuous", True):
            names.append(name)
    return names


SEED_PAPER_ALGOS = ("bc", "omiga", "comadice", "inspo")
"""BC and the three seed papers' own methods: the quick presets' columns (other algorithms via ``--algos``)."""


def _seed_paper_algos() -> list[str]:
    return [a for a in SEED_PAPER_ALGOS if a in ALGOS]


INSPO_TABLE_ALGOS = ("bc", "omar", "alberdice", "cfcql", "omiga", "inspo")
"""The columns of inspo.md Tables 1–3, in the paper's order (those not registered are left out when a preset is
built)."""
#: inspo.md Tables 1–2: XOR datasets (a), (b), (c) and M-NE balanced / imbalanced.
INSPO_MATRIX_TASKS = [("xor", "a"), ("xor", "b"), ("xor", "c"), ("mne", "balanced"), ("mne", "imbalanced")]
#: inspo.md Table 3: Bridge's optimal and mixed datasets.
INSPO_BRIDGE_TASKS = [("bridge", "optimal"), ("bridge", "mixed")]


def _inspo_table_algos() -> list[str]:
    return [a for a in INSPO_TABLE_ALGOS if a in ALGOS]


PRESETS: dict[str, str] = {
    "tiny": "CI smoke test: BC and OMIGA × xor/b × seed 0, 100 updates (< 1 min)",
    "quick": "the main job: BC, OMIGA, ComaDICE, InSPO × xor/b and mne/imbalanced (inspo.md Tables 1-2) × seeds "
             "0-1, each algorithm with the updates it needs (InSPO 1500 at tests/test_inspo.py's small-network "
             "settings, the others 1000) and OMIGA at α = 0.1, 1, 10 (omiga.md Fig. 1(b)); built-in data, no "
             "download (a few minutes on a laptop CPU)",
    "mamujoco-table1": "omiga.md Table 1, MaMuJoCo block: every continuous-action algorithm × Hopper-3x1, Ant-2x4, "
                       "HalfCheetah-6x1 × expert, medium, medium-replay, medium-expert × seeds 0-4, env default "
                       "updates, 32 evaluation episodes",
    "smax-paper": "the SMAC maps of omiga.md Table 1 and inspo.md Table 4 on SMAX (needs marlkit[smax]): BC, OMIGA, "
                  "ComaDICE, InSPO × smax:5m_vs_6m, 2s3z, 6h_vs_8z, 3s_vs_5z × good, medium, poor × seeds 0-4, "
                  "50,000 updates (hidden 256, batch 128, lr 5e-4: omiga.md Table 6), 32 evaluation episodes "
                  "every 5,000 updates",
    "paper-lite": "a reduced real-task protocol sized to a small CPU budget (docs/benchmarks.md): BC, OMIGA, "
                  "ComaDICE, InSPO, ICQ (+ BCQ-MA, CQL-MA, OMAR on the two medium-replay MaMuJoCo tasks) × the "
                  "tasks of PAPER_LITE_TASKS, in priority order, the columns that fit PAPER_LITE_BUDGET_CPU_H × "
                  "seeds 0-2, updates chosen from measured learning curves, 32 evaluation episodes; --list prints "
                  "the budget and the columns dropped",
    "inspo-matrix": "inspo.md Tables 1-2: BC, OMAR, AlberDICE, CFCQL, OMIGA, InSPO (those registered) × XOR (a), (b), "
                    "(c) and M-NE balanced, imbalanced × seeds 0-4, each algorithm at the games' defaults (its "
                    "hyperparameters and update count, see marlkit.envs.matrix); exact evaluation",
    "inspo-bridge": "inspo.md Table 3: BC, OMAR, AlberDICE, CFCQL, OMIGA, InSPO (those registered) × Bridge optimal, "
                    "mixed × seeds 0-4, each algorithm at Bridge's defaults (marlkit.envs.bridge), stochastic "
                    "evaluation (sampled actions, as the paper), 32 episodes",
}

#: smax-paper preset: the seed papers' SMAC maps that SMAX has (omiga.md Table 1: 5m_vs_6m, 6h_vs_8z; inspo.md
#: Table 4: 2s3z, 3s_vs_5z, 5m_vs_6m, 6h_vs_8z) and omiga.md Table 4's dataset qualities.
SMAX_PAPER_MAPS = ["smax:5m_vs_6m", "smax:2s3z", "smax:6h_vs_8z", "smax:3s_vs_5z"]
SMAX_PAPER_DATASETS = ["good", "medium", "poor"]
#: Gradient updates per smax-paper run. Neither paper states an update count for SMAC; the authors' OMIGA SMAC
#: script trains 55 epochs of batch-128 minibatches over 1000 episodes (≈ 21,500 updates on a 50,000-transition
#: SMAX dataset); 50,000 (the SMAX env default) is over twice that.
SMAX_PAPER_STEPS = 50_000


#: quick preset, per-algorithm updates where 1000 are too few. InSPO anneals β over ``beta_decay_steps`` and
#: its agents separate on XOR (b) only once β is small (InSPOConfig.beta_decay_steps): 1500 updates at the
#: small-network settings of tests/test_inspo.py (measured there on seeds 0 and 1: XOR (b) 0.999 / 0.999,
#: M-NE imbalanced 19.95 / 19.55), against 1000 updates with the defaults' 1500-step decay, which leave β ≈ 3.7
#: and XOR (b) at 0.08.
QUICK_ALGO_STEPS = {"inspo": 1500}
QUICK_ALGO_HYPERPARAMETERS = {"inspo": {"lr": 1e-3, "beta_decay_steps": 1000, "bc_steps": 200,
                                        "q_warmup_steps": 200}}
#: quick preset, the α sweep: OMIGA at its default α = 10 and two more relaxed values; on XOR (b) α = 0.1 is
#: inspo.md Fig. 3's "OMIGA (relaxed)" that picks the out-of-dataset joint action (B, B), and on M-NE imbalanced
#: α = 1 gives inspo.md Table 2's 5.00 (the exact oracle: xor/b −2.00, −0.18, 0.21; mne/imbalanced 5.00, 5.00,
#: 2.80 at α = 0.1, 1, 10).
QUICK_ALGO_SWEEP = {"omiga": {"alpha": [0.1, 1.0, 10.0]}}

#: Milliseconds per update of one run on one CPU thread (batch 128, hidden (256, 256), separate per-agent
#: parameters): the sequential columns of the K = 8 table in benchmarks/RESULTS.md (`python
#: benchmarks/update_speed.py --threads 1 --updates 20 --cpu-time ...`). The cost model of ``--list``'s budget:
#: MaMuJoCo cells take the halfcheetah-6x1 shape (6 agents: an upper bound for Hopper-3x1 and Ant-2x4), SMAX
#: cells the 5m_vs_6m shape.
UPDATE_MS_BATCH = 128  #: the minibatch size of the :data:`UPDATE_MS` measurements
UPDATE_MS: dict[str, dict[str, float]] = {
    "halfcheetah-6x1": {"bc": 5.50, "bcq-dec": 92.99, "bcq-ma": 76.67, "comadice": 35.25, "cql-dec": 234.94,
                        "cql-ma": 195.35, "icq": 48.76, "inspo": 32.99, "mabcq": 110.46, "macql": 249.55,
                        "matd3bc": 49.92, "omar": 333.27, "omiga": 19.31, "td3bc-dec": 21.57},
    "5m_vs_6m": {"bc": 5.39, "bcq-dec": 16.82, "bcq-ma": 15.73, "comadice": 30.01, "cql-dec": 9.95,
                 "cql-ma": 7.22, "icq": 14.73, "inspo": 25.38, "mabcq": 16.70, "macql": 10.02, "omar": 28.67,
                 "omiga": 19.31},
}
#: CPU seconds of one evaluation of 32 episodes (HalfCheetah-6x1: 32 parallel episodes of 1,000 steps; SMAX:
#: 32 episodes of at most 100 steps), measured on the runs of docs/benchmarks.md's learning curves.
EVAL_S: dict[str, float] = {"mamujoco": 60.0, "smax": 20.0}

#: paper-lite: the columns run on every task (the seed papers' methods, BC and ICQ of omiga.md Table 1).
PAPER_LITE_ALGOS = ("bc", "omiga", "comadice", "inspo", "icq")
#: paper-lite's tasks in priority order, each with the columns it adds to PAPER_LITE_ALGOS (omiga.md Table 1's
#: BCQ-MA, CQL-MA and OMAR on the two medium-replay MaMuJoCo tasks, where offline RL must beat imitation).
PAPER_LITE_TASKS: list[tuple[str, str, tuple[str, ...]]] = [
    ("mamujoco:HalfCheetah-6x1", "medium-replay", ("bcq-ma", "cql-ma", "omar")),
    ("mamujoco:Hopper-3x1", "medium-replay", ("bcq-ma", "cql-ma", "omar")),
    ("mamujoco:HalfCheetah-6x1", "medium-expert", ()),
    ("mamujoco:Hopper-3x1", "medium-expert", ()),
    ("smax:2s3z", "good", ()),
    ("smax:2s3z", "medium", ()),
    ("mamujoco:Ant-2x4", "medium-replay", ()),
    ("mamujoco:Hopper-3x1", "medium", ()),
    ("smax:5m_vs_6m", "medium", ()),
]
#: paper-lite's gradient updates per family. MaMuJoCo: read off the learning curves of docs/benchmarks.md (OMIGA
#: and BC on HalfCheetah-6x1 medium-replay, up to 200,000 updates, evaluations every 20,000): from 60,000 updates on,
#: both OMIGA seeds measured so far stay in their plateau band (seed 1 to 200,000: 1,429–1,977; seed 0 to 120,000:
#: 1,811–2,229), above the three BC seeds' means over the same evaluations (1,256–1,424). Two OMIGA seeds, one task:
#: docs/benchmarks.md keeps the value provisional until the third seed and Hopper-3x1 are in. SMAX: the
#: smax-paper preset's count (above).
PAPER_LITE_STEPS: dict[str, int] = {"mamujoco": 60_000, "smax": SMAX_PAPER_STEPS}
#: paper-lite's compute budget in CPU-hours (one thread per run): columns (task × algorithm, every seed) are dropped
#: from the end of the priority order (:func:`paper_lite_cells`) until the rest fit, never by cutting updates below
#: the learning curves' plateau.
PAPER_LITE_BUDGET_CPU_H = 15.0
PAPER_LITE_SEEDS = [0, 1, 2]
PAPER_LITE_EVALS = 10


def _family(env: str) -> str:
    return env.split(":", 1)[0]


def _batch_size(cell) -> int:
    """The minibatch size a cell's runs use: the cell's override, else its env family's default for the algorithm
    (MaMuJoCo's ``ALGO_DEFAULTS``), else the algorithm config's default."""
    hp = {**dict(cell.hyperparameters), **dict(cell.swept)}
    if "batch_size" in hp:
        return int(hp["batch_size"])
    if _family(cell.env) == "mamujoco":
        from marlkit.envs.mamujoco import ALGO_DEFAULTS as MAMUJOCO_DEFAULTS

        env_default = MAMUJOCO_DEFAULTS.get(cell.algo)
        if env_default is not None and "batch_size" in env_default.hyperparameters:
            return int(env_default.hyperparameters["batch_size"])
    return int(get_algo(cell.algo).Config().batch_size)


def estimated_cpu_s(cell) -> float | None:
    """CPU seconds a grid cell is expected to take on one thread under the :data:`UPDATE_MS` / :data:`EVAL_S`
    cost model (updates + evaluations), or None for a task family or algorithm the model does not cover.
    :data:`UPDATE_MS` is measured at batch 128; an update at another batch size is scaled in proportion (its
    matrix products are), e.g. InSPO's default 512 costs 4 times its 128-row figure."""
    family = _family(cell.env)
    shape = {"mamujoco": "halfcheetah-6x1", "smax": "5m_vs_6m"}.get(family)
    ms = UPDATE_MS.get(shape, {}).get(cell.algo)
    if ms is None or not cell.steps:
        return None
    ms *= _batch_size(cell) / UPDATE_MS_BATCH
    evals = (cell.steps // cell.eval_every if cell.eval_every else 0) + (1 if cell.eval_every == 0 or
                                                                         cell.steps % cell.eval_every else 0)
    return cell.steps * ms / 1000.0 + evals * EVAL_S[family] * cell.eval_episodes / 32


def paper_lite_cells() -> list[tuple[str, str, str]]:
    """paper-lite's columns in priority order, ``(env, dataset, algo)``: the tasks of :data:`PAPER_LITE_TASKS` in
    their order, each with :data:`PAPER_LITE_ALGOS` and then its own extra columns (registered algorithms only)."""
    return [(env, dataset, algo) for env, dataset, extra in PAPER_LITE_TASKS
            for algo in dict.fromkeys([*PAPER_LITE_ALGOS, *extra]) if algo in ALGOS]


def paper_lite_plan() -> tuple[Grid, list[tuple[str, str, str]]]:
    """paper-lite's grid and the columns ``(env, dataset, algo)`` dropped to fit :data:`PAPER_LITE_BUDGET_CPU_H`
    under :func:`estimated_cpu_s`: the columns of :func:`paper_lite_cells` (each × :data:`PAPER_LITE_SEEDS`) are
    kept in priority order until the next one would exceed the budget; it and every later column are dropped (the
    first column always runs, so ``--list`` shows an overrun rather than an empty grid).

    Hyperparameters: the configs' defaults (omiga.md App. C for MaMuJoCo); SMAX cells as the smax-paper preset
    (hidden 256, lr 5e-4, batch 128 except InSPO, γ = 0.99: omiga.md Table 6).
    """
    kept: list[tuple[str, str, str]] = []
    dropped: list[tuple[str, str, str]] = []
    total = 0.0
    for column in paper_lite_cells():
        cost = sum(estimated_cpu_s(c) or 0.0 for c in _paper_lite_grid([column]).cells())
        if dropped or (kept and total + cost > PAPER_LITE_BUDGET_CPU_H * 3600):
            dropped.append(column)
            continue
        kept.append(column)
        total += cost
    return _paper_lite_grid(kept), dropped


def describe_dropped(grid: Grid, dropped: list[tuple[str, str, str]]) -> str:
    """The columns :func:`paper_lite_plan` dropped, one phrase per task: ``env/dataset`` when the whole task is
    dropped, ``env/dataset (algo, ...)`` when the grid keeps some of its columns; ``"nothing"`` when none."""
    tasks = {t: [a for e, d, a in dropped if (e, d) == t] for t in dict.fromkeys((e, d) for e, d, _ in dropped)}
    parts = [f"{e}/{d}" + (f" ({', '.join(algos)})" if (e, d) in grid.tasks else "") for (e, d), algos in tasks.items()]
    return ", ".join(parts) or "nothing"


def _paper_lite_grid(columns: list[tuple[str, str, str]]) -> Grid:
    """The grid of the columns ``(env, dataset, algo)``: the algorithms every task keeps run as the grid's
    ``algos``, the rest as per-task columns (``task_settings[...]["algos"]``)."""
    tasks = list(dict.fromkeys((env, dataset) for env, dataset, _ in columns))
    per_task = {t: [a for e, d, a in columns if (e, d) == t] for t in tasks}
    common = [a for a in per_task[tasks[0]] if all(a in algos for algos in per_task.values())]
    settings: dict[str, dict[str, Any]] = {}
    for env, dataset in tasks:
        steps = PAPER_LITE_STEPS[_family(env)]
        task: dict[str, Any] = {"steps": steps, "eval_every": max(1, steps // PAPER_LITE_EVALS)}
        if extra := [a for a in per_task[(env, dataset)] if a not in common]:
            task["algos"] = extra
        if _family(env) == "smax":  # as the smax-paper preset: omiga.md Table 6
            task["hyperparameters"] = {"hidden": [256, 256], "lr": 5e-4, "gamma": 0.99}
        settings[f"{env}/{dataset}"] = task
    return Grid(tasks=tasks, algos=common, seeds=list(PAPER_LITE_SEEDS), task_settings=settings, eval_episodes=32,
                device="auto")


def preset(name: str) -> Grid:
    """The grid of a named preset (see :data:`PRESETS`); algorithms are read from the registry at call time.

    Raises:
        GridError: for an unknown preset name.
    """
    if name == "tiny":
        return Grid(tasks=[("xor", "b")], algos=[a for a in ("bc", "omiga") if a in _seed_paper_algos()], seeds=[0],
                    steps=100,
                    eval_every=50, hyperparameters={"hidden": [64, 64]})
    if name == "quick":
        algos = _seed_paper_algos()
        return Grid(tasks=[("xor", "b"), ("mne", "imbalanced")], algos=algos, seeds=[0, 1], steps=1000,
                    eval_every=100, hyperparameters={"hidden": [64, 64]},
                    algo_hyperparameters={a: hp for a, hp in QUICK_ALGO_HYPERPARAMETERS.items() if a in algos},
                    algo_steps={a: n for a, n in QUICK_ALGO_STEPS.items() if a in algos},
                    algo_sweep={a: sw for a, sw in QUICK_ALGO_SWEEP.items() if a in algos})
    if name == "mamujoco-table1":
        return Grid(tasks=[(e, d) for e in MAMUJOCO_TABLE1_ENVS for d in MAMUJOCO_TABLE1_DATASETS],
                    algos=_algos_supporting(False), seeds=[0, 1, 2, 3, 4], steps=None, eval_every=5000,
                    eval_episodes=32, device="auto")
    if name == "smax-paper":
        # omiga.md App. C, Table 6 (SMAC): hidden 256 (3-layer MLPs), batch 128, lr 5e-4, γ = 0.99 (pinned here so
        # the preset does not drift with marlkit's defaults); τ = 0.005 and OMIGA's α = 10 are the configs'
        # defaults (left unpinned so that --alphas can sweep α). InSPO keeps its own batch size (512, see
        # InSPOConfig; inspo.md's hyperparameter appendix is not in the text). omiga.md evaluates 32 episodes and
        # runs 5 seeds (Sec. 5.3); the datasets are 50,000 transitions.
        algos = _seed_paper_algos()
        per_algo: dict[str, dict[str, Any]] = {a: {"batch_size": 128} for a in algos if a != "inspo"}
        return Grid(tasks=[(e, d) for e in SMAX_PAPER_MAPS for d in SMAX_PAPER_DATASETS], algos=algos,
                    seeds=[0, 1, 2, 3, 4], steps=SMAX_PAPER_STEPS, eval_every=5000, eval_episodes=32,
                    dataset_size=50_000, device="auto",
                    hyperparameters={"hidden": [256, 256], "lr": 5e-4, "gamma": 0.99},
                    algo_hyperparameters=per_algo)
    if name == "paper-lite":
        return paper_lite_plan()[0]
    if name == "inspo-matrix":
        # steps and hyperparameters stay None / empty: every cell takes its algorithm's defaults on the game
        # (EnvSpec.algo_defaults), the settings that reproduce inspo.md's outcomes
        return Grid(tasks=list(INSPO_MATRIX_TASKS), algos=_inspo_table_algos(), seeds=[0, 1, 2, 3, 4], steps=None,
                    eval_every=0)
    if name == "inspo-bridge":
        return Grid(tasks=list(INSPO_BRIDGE_TASKS), algos=_inspo_table_algos(), seeds=[0, 1, 2, 3, 4], steps=None,
                    eval_every=0, eval_episodes=32, deterministic_eval=False)
    raise GridError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")

