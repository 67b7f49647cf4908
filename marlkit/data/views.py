"""Dataset transformations: concatenation/mixing and the per-agent decentralized view."""

from __future__ import annotations

import numpy as np

from marlkit.data.dataset import DatasetError, MultiAgentDataset

__all__ = ["concat", "mix", "episode_slices"]


def episode_slices(dataset: MultiAgentDataset) -> list[slice]:
    """Row ranges of each episode (a trailing unfinished episode counts as one)."""
    starts = np.flatnonzero(dataset.episode_starts)
    ends = list(starts[1:]) + [dataset.size]
    return [slice(int(s), int(e)) for s, e in zip(starts, ends)]


def concat(datasets: list[MultiAgentDataset], name: str | None = None) -> MultiAgentDataset:
    """Concatenate datasets of the same task (episode boundaries are kept).

    Raises:
        DatasetError: if the datasets differ in agents, shapes or action space.
    """
    if not datasets:
        raise DatasetError("concat needs at least one dataset")
    first = datasets[0]
    for d in datasets[1:]:
        for k in first.fields():
            a, b = getattr(first, k), getattr(d, k, None)
            if b is None or a.shape[1:] != b.shape[1:]:
                raise DatasetError(f"cannot concatenate: field {k!r} differs ({a.shape[1:]} vs "
                                   f"{None if b is None else b.shape[1:]})")
    kw = {k: np.concatenate([getattr(d, k) for d in datasets]) for k in first.fields() if k != "obs_mask"}
    meta = dict(first.meta)
    if name:
        meta["dataset"] = name
    meta["behavior"] = " + ".join(str(d.meta.get("dataset", "?")) for d in datasets)
    return MultiAgentDataset(**kw, obs_mask=first.obs_mask, meta=meta)


def mix(datasets: list[MultiAgentDataset], fractions: list[float], size: int | None = None, seed: int = 0,
        name: str | None = None) -> MultiAgentDataset:
    """Mix whole episodes from several datasets in the given transition fractions (e.g. OMIGA App. D's 50/50
    "good-poor" mixtures).

    Args:
        datasets: sources of the same task.
        fractions: share of transitions from each source (non-negative, summing to 1).
        size: target number of transitions (default: the smallest source's size).
        seed: which episodes are picked.

    Raises:
        DatasetError: on mismatched lengths or fractions that are negative or do not sum to 1.
    """
    if len(datasets) != len(fractions):
        raise DatasetError(f"mix got {len(datasets)} datasets but {len(fractions)} fractions")
    fr = np.asarray(fractions, dtype=float)
    if (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
        raise DatasetError(f"mix fractions must be non-negative and sum to 1, got {fractions}")
    size = size or min(d.size for d in datasets)
    if size <= 0:
        raise DatasetError(f"mix size must be positive, got {size}")
    rng = np.random.default_rng(seed)
    parts = []
    for d, f in zip(datasets, fr):
        budget = int(round(f * size))
        if budget == 0:
            continue
        eps = episode_slices(d)
        order = rng.permutation(len(eps))
        rows, total = [], 0
        for j in order:
            if total >= budget:
                break
            s = eps[j]
            rows.append(np.arange(s.start, s.stop))
            total += s.stop - s.start
        parts.append(d.subset(np.concatenate(rows)))
    out = concat(parts, name=name)
    return out
