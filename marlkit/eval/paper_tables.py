"""The seed papers' published results on the real tasks, to set beside marlkit's measured tables.

- :data:`OMIGA_TABLE1_MAMUJOCO`: omiga.md Table 1, multi-agent MuJoCo block (episode return, mean ± std over 5
  seeds): Wang et al., "Offline Multi-Agent Reinforcement Learning with Implicit Global-to-Local Value
  Regularization", NeurIPS 2023, arXiv:2307.11620.
- :data:`OMIGA_TABLE1_SMAC`: the same table's SMAC rows for the maps SMAX has (episode return).
- :data:`INSPO_TABLE4_SMAC`: inspo.md Table 4 (test win rate): Liu et al., "Offline Multi-Agent Reinforcement
  Learning via In-Sample Sequential Policy Optimization", AAAI 2025, arXiv:2412.07639; its BC, OMAR and CFCQL
  columns are taken by the authors from Shao et al. (2023).

:func:`paper_table` returns one of them as a long DataFrame ``task, dataset, algo, mean, std, source``, with
marlkit's task and algorithm names (``mamujoco:HalfCheetah-6x1``, ``bcq-ma``).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["INSPO_TABLE4_SMAC", "OMIGA_TABLE1_MAMUJOCO", "OMIGA_TABLE1_SMAC", "paper_ordering", "paper_table"]

_MUJOCO_ALGOS = ("bcq-ma", "cql-ma", "icq", "omar", "omiga")
#: (task, dataset) → ((mean, std) per algorithm of ``_MUJOCO_ALGOS``).
OMIGA_TABLE1_MAMUJOCO: dict[tuple[str, str], tuple[tuple[float, float], ...]] = {
    ("mamujoco:Hopper-3x1", "expert"): ((77.85, 58.04), (159.14, 313.83), (754.74, 806.28), (2.36, 1.46),
                                        (859.63, 709.47)),
    ("mamujoco:Hopper-3x1", "medium"): ((44.58, 20.62), (401.27, 199.88), (501.79, 14.03), (21.34, 24.90),
                                        (1189.26, 544.30)),
    ("mamujoco:Hopper-3x1", "medium-replay"): ((26.53, 24.04), (31.37, 15.16), (195.39, 103.61), (3.30, 3.22),
                                               (774.18, 494.27)),
    ("mamujoco:Hopper-3x1", "medium-expert"): ((54.31, 23.66), (64.82, 123.31), (355.44, 373.86), (1.44, 0.86),
                                               (709.00, 595.66)),
    ("mamujoco:Ant-2x4", "expert"): ((1317.73, 286.28), (1042.39, 2021.65), (2050.00, 11.86), (312.54, 297.48),
                                     (2055.46, 1.58)),
    ("mamujoco:Ant-2x4", "medium"): ((1059.60, 91.22), (533.90, 1766.42), (1412.41, 10.93), (-1710.04, 1588.98),
                                     (1418.44, 5.36)),
    ("mamujoco:Ant-2x4", "medium-replay"): ((950.77, 48.76), (234.62, 1618.28), (1016.68, 53.51),
                                            (-2014.20, 844.68), (1105.13, 88.87)),
    ("mamujoco:Ant-2x4", "medium-expert"): ((1020.89, 242.74), (800.22, 1621.52), (1590.18, 85.61),
                                            (-2992.80, 6.95), (1720.33, 110.63)),
    ("mamujoco:HalfCheetah-6x1", "expert"): ((2992.71, 629.65), (1189.54, 1034.49), (2955.94, 459.19),
                                             (-206.73, 161.12), (3383.61, 552.67)),
    ("mamujoco:HalfCheetah-6x1", "medium"): ((2590.47, 1110.35), (1011.35, 1016.94), (2549.27, 96.34),
                                             (-265.68, 146.98), (3608.13, 237.37)),
    ("mamujoco:HalfCheetah-6x1", "medium-replay"): ((-333.64, 152.06), (1998.67, 693.92), (1922.42, 612.87),
                                                    (-235.42, 154.89), (2504.70, 83.47)),
    ("mamujoco:HalfCheetah-6x1", "medium-expert"): ((3543.70, 780.89), (1194.23, 1081.06), (2833.99, 420.32),
                                                    (-253.84, 63.94), (2948.46, 518.89)),
}
#: omiga.md Table 1, SMAC rows of 5m_vs_6m (episode return; same columns as the MuJoCo block).
OMIGA_TABLE1_SMAC: dict[tuple[str, str], tuple[tuple[float, float], ...]] = {
    ("smax:5m_vs_6m", "good"): ((7.76, 0.15), (8.08, 0.21), (7.87, 0.30), (7.40, 0.63), (8.25, 0.37)),
    ("smax:5m_vs_6m", "medium"): ((7.58, 0.10), (7.78, 0.10), (7.77, 0.30), (7.08, 0.51), (7.92, 0.57)),
    ("smax:5m_vs_6m", "poor"): ((7.61, 0.36), (7.43, 0.10), (7.26, 0.19), (7.27, 0.42), (7.52, 0.21)),
}
_INSPO_ALGOS = ("bc", "omar", "cfcql", "omiga", "inspo")
#: inspo.md Table 4, medium datasets of the maps SMAX has (test win rate).
INSPO_TABLE4_SMAC: dict[tuple[str, str], tuple[tuple[float, float], ...]] = {
    ("smax:2s3z", "medium"): ((0.16, 0.07), (0.15, 0.04), (0.40, 0.10), (0.23, 0.01), (0.23, 0.06)),
    ("smax:5m_vs_6m", "medium"): ((0.28, 0.37), (0.19, 0.06), (0.29, 0.05), (0.25, 0.08), (0.28, 0.06)),
}

_TABLES = {
    "omiga-table1-mamujoco": (OMIGA_TABLE1_MAMUJOCO, _MUJOCO_ALGOS, "omiga.md Table 1", "return"),
    "omiga-table1-smac": (OMIGA_TABLE1_SMAC, _MUJOCO_ALGOS, "omiga.md Table 1", "return"),
    "inspo-table4-smac": (INSPO_TABLE4_SMAC, _INSPO_ALGOS, "inspo.md Table 4", "win_rate"),
}


def paper_table(name: str) -> pd.DataFrame:
    """One published table in long form: ``task, dataset, algo, mean, std, metric, source``.

    ``name``: ``omiga-table1-mamujoco``, ``omiga-table1-smac`` or ``inspo-table4-smac``.

    Raises:
        KeyError: naming the valid tables.
    """
    if name not in _TABLES:
        raise KeyError(f"unknown paper table {name!r}; valid: {', '.join(_TABLES)}")
    rows, algos, source, metric = _TABLES[name]
    return pd.DataFrame([{"task": t, "dataset": d, "algo": a, "mean": m, "std": s, "metric": metric,
                          "source": source}
                         for (t, d), cells in rows.items() for a, (m, s) in zip(algos, cells)])


def paper_ordering(name: str, task: str, dataset: str, algos: list[str] | None = None) -> list[str]:
    """The algorithms of one row of a published table, best mean first (restricted to ``algos`` if given).

    Raises:
        KeyError: for an unknown table or a row the table does not have.
    """
    df = paper_table(name)
    row = df[(df.task == task) & (df.dataset == dataset)]
    if row.empty:
        raise KeyError(f"{name} has no row {task} {dataset}")
    if algos is not None:
        row = row[row.algo.isin(algos)]
    return list(row.sort_values("mean", ascending=False).algo)
