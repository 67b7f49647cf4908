"""Named benchmark grids (``marlkit bench --preset NAME``): what each runs is listed in :data:`PRESETS`."""

from __future__ import annotations

from typing import Any

from marlkit.algos import ALGOS, get_algo
from marlkit.bench.grid import Grid, GridError

__all__ = ["MAMUJOCO_TABLE1_DATASETS", "MAMUJOCO_TABLE1_ENVS", "PRESETS", "QUICK_ALGO_HYPERPARAMETERS",
           "QUICK_ALGO_STEPS", "QUICK_ALGO_SWEEP", "SEED_PAPER_ALGOS", "SMAX_PAPER_DATASETS", "SMAX_PAPER_MAPS",
           "SMAX_PAPER_STEPS", "preset"]

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
    raise GridError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")

