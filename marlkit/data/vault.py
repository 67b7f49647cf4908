"""flashbax Vaults (the storage of the OG-MARL datasets) in and out of :class:`MultiAgentDataset`.

A Vault is a directory ``<rel_dir>/<vault_name>/<vault_uid>/`` holding a ``metadata.json`` and one
tensorstore (zarr + OCDBT) array per leaf of a pytree whose leaves are all shaped ``[B, T, ...]``: B streams
of T consecutive environment steps, episodes back to back. OG-MARL's datasets (Formanek et al., 2023,
"Off-the-Grid MARL"; ``og_marl/vault_utils``) use the pytree

=========================== ========================= ===============================================
leaf                        shape                     meaning
=========================== ========================= ===============================================
``observations``            [B, T, N, obs_dim]        per-agent observations o_i (zero-padded to the largest)
``actions``                 [B, T, N] int             discrete actions, or
                            [B, T, N, act_dim] float  continuous actions
``rewards``                 [B, T, N] (or [B, T])     per-agent rewards after the step
``terminals``               [B, T, N] (or [B, T])     1 where the step ends the episode by termination
``truncations``             [B, T, N] (or [B, T])     1 where the step ends it by the time limit
``infos.state``             [B, T, state_dim]         optional: global state
``infos.legals``            [B, T, N, n_actions]      optional: legal actions (discrete)
=========================== ========================= ===============================================

Row t holds o_t, a_t and what stepping a_t gave (r_t, terminal_t, truncation_t); the next observation of row
t is row t+1's. The team reward is agent 0's reward, as OG-MARL's ``calculate_returns`` defines it (the
cooperative tasks give every agent the same reward; a Vault whose agents' rewards differ is read with agent
0's and a warning). An episode ends where every agent's terminal (or truncation) flag is set.

marlkit writes the same leaves, plus, by default, ``infos.next_observations``, ``infos.next_state`` (and
``infos.next_legals``): the successors that the layout cannot hold at episode ends (a terminal row's next
observation, the state after a timeout), so that a dataset written as a Vault and read back is field for
field identical. OG-MARL's readers ignore the extra leaves. The marlkit card (``meta``) and ``obs_mask`` go to
``metadata.json`` under ``marlkit_meta`` and ``marlkit_obs_mask``.

Reading a Vault without successor leaves: a terminal row's next observation is its own (it is never
bootstrapped from); a truncated row's true successor is not in the layout either, so its own observation is
stored there too (as :mod:`marlkit.data.omiga_format` does); a stream's last row is dropped unless it ends an
episode (it has no successor).

Storage is flashbax's own (:class:`flashbax.vault.Vault`); requires the optional extra ``marlkit[vault]``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from marlkit.data.card import check_simulator_versions
from marlkit.data.dataset import DatasetError, MultiAgentDataset

__all__ = ["is_vault", "read_vault", "read_vault_experience", "vault_uids", "write_vault"]

METADATA_FILE = "metadata.json"


def _flashbax():
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from flashbax.buffers.trajectory_buffer import TrajectoryBufferState
            from flashbax.vault import Vault
    except ImportError as exc:
        raise ImportError(f"flashbax Vaults need the optional extra: pip install 'marlkit[vault]' ({exc})") from exc
    return Vault, TrajectoryBufferState


def is_vault(path: str | os.PathLike) -> bool:
    """True if ``path`` is a Vault directory (has ``metadata.json``) or a directory of Vaults (its uids)."""
    path = Path(path)
    if not path.is_dir():
        return False
    return (path / METADATA_FILE).exists() or bool(vault_uids(path))


def vault_uids(path: str | os.PathLike) -> list[str]:
    """The uids (sub-directories with a ``metadata.json``) of a Vault directory such as ``3m.vlt`` (sorted)."""
    path = Path(path)
    if not path.is_dir():
        return []
    return sorted(d.name for d in path.iterdir() if d.is_dir() and (d / METADATA_FILE).exists())


def _resolve(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"Vault {path} does not exist")
    if not path.is_dir():
        raise DatasetError(f"{path} is not a flashbax Vault (a Vault is a directory with a {METADATA_FILE})")
    if (path / METADATA_FILE).exists():
        return path
    uids = vault_uids(path)
    if len(uids) == 1:
        return path / uids[0]
    if not uids:
        raise DatasetError(f"{path} is not a flashbax Vault (no {METADATA_FILE} in it or in its sub-directories)")
    raise DatasetError(f"{path} holds {len(uids)} Vaults ({', '.join(uids)}); give one, e.g. {path / uids[0]}")


def read_vault_experience(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """Read a Vault with flashbax: ``(experience pytree of NumPy arrays [B, T, ...], metadata.json, uid dir)``.

    ``path`` is a Vault uid directory (``.../3m.vlt/Good``) or a Vault directory with exactly one uid.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        DatasetError: if it is not a Vault, holds several (names them), or flashbax cannot read it.
        ImportError: without the ``vault`` extra.
    """
    uid = _resolve(Path(path)).resolve()
    Vault, _ = _flashbax()
    try:
        meta = json.loads((uid / METADATA_FILE).read_text())
        with contextlib.redirect_stdout(io.StringIO()):
            state = Vault(vault_name=uid.parent.name, rel_dir=str(uid.parent.parent), vault_uid=uid.name).read()
    except (OSError, ValueError, KeyError, AssertionError) as exc:
        raise DatasetError(f"{uid}: flashbax could not read the Vault (corrupt or unsupported version?): "
                           f"{type(exc).__name__}: {exc}") from None
    import jax

    return jax.tree_util.tree_map(np.asarray, state.experience), meta, uid


def _flag(arr: np.ndarray | None, name: str, B: int, T: int) -> np.ndarray:
    if arr is None:
        return np.zeros((B, T), bool)
    arr = np.asarray(arr)
    if arr.shape[:2] != (B, T) or arr.ndim > 3:
        raise DatasetError(f"Vault leaf {name!r} must have shape [B={B}, T={T}] or [B, T, N], got {arr.shape}")
    flag = arr != 0
    return flag.all(axis=-1) if flag.ndim == 3 else flag


def read_vault(path: str | os.PathLike, meta: dict | None = None) -> MultiAgentDataset:
    """Read a flashbax Vault (OG-MARL layout, module docstring) into a validated :class:`MultiAgentDataset`.

    Args:
        path: the Vault uid directory (``vaults/smac_v1/3m.vlt/Good``) or a Vault directory with one uid.
        meta: provenance merged into ``meta`` (e.g. ``{"env": "smax:3m", "dataset": "good"}``).

    Returns:
        The B streams of the Vault one after another: T' <= B·T transitions (see the module docstring for the
        rows that are dropped and for the successors at episode ends).

    Warns:
        SimulatorVersionWarning: if the Vault's marlkit card records other simulator versions than installed.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        DatasetError: for a missing leaf, inconsistent shapes or values the format rejects (names the leaf).
        ImportError: without the ``vault`` extra.
    """
    exp, vmeta, uid = read_vault_experience(path)
    infos = exp.get("infos") if isinstance(exp.get("infos"), dict) else {}
    missing = [k for k in ("observations", "actions", "rewards", "terminals") if k not in exp]
    if missing:
        raise DatasetError(f"{uid}: Vault lacks leaf/leaves {missing}; the OG-MARL layout needs observations, "
                           f"actions, rewards, terminals (truncations, infos.state, infos.legals optional); "
                           f"it has {sorted(exp)}")
    obs = np.asarray(exp["observations"])
    if obs.ndim != 4:
        raise DatasetError(f"{uid}: Vault leaf 'observations' must have shape [B, T, N, obs_dim], got {obs.shape}")
    B, T, N, _ = obs.shape
    a = np.asarray(exp["actions"])
    legals = infos.get("legals")
    if a.shape[:3] != (B, T, N):
        raise DatasetError(f"{uid}: Vault leaf 'actions' must start with [B={B}, T={T}, N={N}], got {a.shape}")
    if np.issubdtype(a.dtype, np.integer) or (np.issubdtype(a.dtype, np.floating) and a.ndim == 3
                                              and legals is not None):
        if a.ndim == 4 and a.shape[3] == 1:
            a = a[..., 0]
        if a.ndim != 3:
            raise DatasetError(f"{uid}: discrete Vault actions must be [B, T, N] or [B, T, N, 1], got {a.shape}")
        if np.issubdtype(a.dtype, np.floating) and not np.array_equal(a, np.round(a)):
            raise DatasetError(f"{uid}: Vault has legal actions but non-integer actions")
        a = a.astype(np.int64)
    elif a.ndim == 3:
        a = a[..., None].astype(np.float32)          # continuous, one action dimension per agent
    elif a.ndim != 4:
        raise DatasetError(f"{uid}: continuous Vault actions must be [B, T, N, act_dim], got {a.shape}")
    r = np.asarray(exp["rewards"], dtype=np.float32)
    if r.shape[:2] != (B, T) or r.ndim > 3:
        raise DatasetError(f"{uid}: Vault leaf 'rewards' must have shape [B, T, N] or [B, T], got {r.shape}")
    if r.ndim == 3:
        if r.shape[2] > 1 and not np.array_equal(r, np.broadcast_to(r[..., :1], r.shape)):
            warnings.warn(f"{uid}: the agents' rewards differ; the team reward is agent 0's (OG-MARL's "
                          f"definition)", stacklevel=2)
        r = r[..., 0]
    term = _flag(exp["terminals"], "terminals", B, T)
    trunc = _flag(exp.get("truncations"), "truncations", B, T) & ~term
    if "state" in infos:
        s = np.asarray(infos["state"], dtype=np.float32)
        if s.ndim != 3 or s.shape[:2] != (B, T):
            raise DatasetError(f"{uid}: Vault leaf 'infos.state' must have shape [B, T, state_dim], got {s.shape}")
    else:                                             # no global state: the joint observation stands in
        s = obs.reshape(B, T, -1).astype(np.float32)
    avail = None
    if legals is not None:
        avail = np.asarray(legals) != 0
        if avail.ndim != 4 or avail.shape[:3] != (B, T, N):
            raise DatasetError(f"{uid}: Vault leaf 'infos.legals' must have shape [B, T, N, n_actions], "
                               f"got {avail.shape}")
    succ = {k: infos.get(k) for k in ("next_observations", "next_state", "next_legals")}
    stored = succ["next_observations"] is not None and succ["next_state"] is not None
    fields: dict[str, list] = {k: [] for k in ("o", "s", "a", "r", "o2", "s2", "te", "tr", "st", "av", "av2")}
    ends = term | trunc
    for b in range(B):
        keep = np.arange(T)
        if not stored and not ends[b, -1]:
            keep = keep[:-1]                          # the stream's last row has no successor
        if keep.size == 0:
            continue
        nxt = np.where(ends[b, keep], keep, np.minimum(keep + 1, T - 1))
        fields["o"].append(obs[b, keep])
        fields["s"].append(s[b, keep])
        fields["a"].append(a[b, keep])
        fields["r"].append(r[b, keep])
        fields["te"].append(term[b, keep])
        fields["tr"].append(trunc[b, keep])
        fields["st"].append(np.concatenate([[True], ends[b, keep][:-1]]))
        if stored:
            fields["o2"].append(np.asarray(succ["next_observations"])[b, keep])
            fields["s2"].append(np.asarray(succ["next_state"], dtype=np.float32)[b, keep])
        else:
            fields["o2"].append(obs[b, nxt])
            fields["s2"].append(s[b, nxt])
        if avail is not None:
            fields["av"].append(avail[b, keep])
            nl = succ["next_legals"]
            fields["av2"].append((np.asarray(nl) != 0)[b, keep] if stored and nl is not None else avail[b, nxt])
    if not fields["o"]:
        raise DatasetError(f"{uid}: no usable transition in the Vault")
    cat = {k: np.concatenate(v) if v else None for k, v in fields.items()}
    if "marlkit_meta" in vmeta:                      # written by marlkit: its card comes back as it was
        try:
            info: dict[str, Any] = json.loads(vmeta["marlkit_meta"])
        except (TypeError, ValueError):
            raise DatasetError(f"{uid}: metadata.json has an unreadable marlkit_meta entry") from None
    else:
        info = {"source": f"flashbax Vault ({uid.parent.name}/{uid.name})", "dataset": uid.name}
    info.update(meta or {})
    obs_mask = None
    if "marlkit_obs_mask" in vmeta:
        obs_mask = np.asarray(vmeta["marlkit_obs_mask"], dtype=bool)
    ds = MultiAgentDataset(
        observations=cat["o"], states=cat["s"], actions=cat["a"], rewards=cat["r"], next_observations=cat["o2"],
        next_states=cat["s2"], terminals=cat["te"], timeouts=cat["tr"], episode_starts=cat["st"],
        avail_actions=cat["av"], next_avail_actions=cat["av2"], obs_mask=obs_mask, meta=info)
    check_simulator_versions(ds.meta, str(uid))
    return ds


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_vault(dataset: MultiAgentDataset, path: str | os.PathLike, overwrite: bool = False,
                successors: bool = True) -> Path:
    """Write ``dataset`` as a flashbax Vault (OG-MARL leaves, module docstring) that flashbax reads back.

    The dataset becomes one stream (B = 1, T = its size): per-agent rewards, terminals and truncations are the
    team values repeated for every agent; ``states`` go to ``infos.state`` and ``avail_actions`` to
    ``infos.legals``. The Vault is written to a temporary directory beside ``path`` and renamed into place, so
    a failed write never leaves a partial Vault and never touches an existing one.

    Args:
        dataset: the dataset.
        path: the Vault uid directory to create, e.g. ``vaults/hopper.vlt/medium`` (its parent is the Vault).
        overwrite: replace an existing ``path``.
        successors: also write ``infos.next_observations`` / ``next_state`` / ``next_legals`` (module
            docstring), so that reading back gives the identical dataset. Without them the Vault holds only
            OG-MARL's leaves, and the dataset must be laid out as consecutive steps.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.
        DatasetError: with ``successors=False``, if some row's next observation is not the following row's.
        ImportError: without the ``vault`` extra.
    """
    Vault, TrajectoryBufferState = _flashbax()
    import jax.numpy as jnp

    path = Path(path).absolute()
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    dataset.validate()
    ds, N = dataset, dataset.n_agents
    ends = ds.terminals | ds.timeouts
    if not successors:
        inner = ~ends[:-1]
        if not (np.array_equal(ds.next_observations[:-1][inner], ds.observations[1:][inner])
                and np.array_equal(ds.next_states[:-1][inner], ds.states[1:][inner])):
            raise DatasetError("the dataset's rows are not consecutive steps (a next observation differs from the "
                               "following row's); write it with successors=True")

    def per_agent(x):
        return np.repeat(x[:, None], N, axis=1)[None]

    infos = {"state": ds.states[None].astype(np.float32)}
    if ds.avail_actions is not None:
        infos["legals"] = ds.avail_actions[None]
    if successors:
        infos["next_observations"] = ds.next_observations[None].astype(np.float32)
        infos["next_state"] = ds.next_states[None].astype(np.float32)
        if ds.next_avail_actions is not None:
            infos["next_legals"] = ds.next_avail_actions[None]
    experience = {
        "observations": ds.observations[None].astype(np.float32),
        "actions": (ds.actions.astype(np.int32) if ds.discrete else ds.actions.astype(np.float32))[None],
        "rewards": per_agent(ds.rewards.astype(np.float32)),
        "terminals": per_agent(ds.terminals.astype(np.float32)),
        "truncations": per_agent(ds.timeouts.astype(np.float32)),
        "infos": infos,
    }
    metadata = {"marlkit_meta": json.dumps(ds.meta, default=_jsonable)}
    if ds.obs_mask is not None:
        metadata["marlkit_obs_mask"] = ds.obs_mask.astype(int).tolist()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            vault = Vault(vault_name=tmp.name, experience_structure=experience, rel_dir=str(tmp.parent),
                          vault_uid=path.name, metadata=metadata)
            state = TrajectoryBufferState(experience=experience, current_index=jnp.asarray(ds.size),
                                          is_full=jnp.asarray(False))
            written = vault.write(state, source_interval=(0, ds.size))
        if written != ds.size:
            raise OSError(f"flashbax wrote {written} of {ds.size} steps")
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp / path.name, path)
    except BaseException:
        if old is not None and not path.exists():
            os.replace(old, path)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and path.exists():
            shutil.rmtree(old, ignore_errors=True)
    return path
