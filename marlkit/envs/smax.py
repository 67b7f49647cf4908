"""SMAX: the SMAC-family track without StarCraft II (``smax:<map>``).

SMAX is the JAX re-implementation of the StarCraft Multi-Agent Challenge in the ``jaxmarl`` package
(install with ``pip install marlkit[smax]``). The allies are the learning team; the enemies are driven by
jaxmarl's built-in heuristic (``HeuristicEnemySMAX``, attack mode ``"closest"``, enemy actions visible,
walls kill). One :class:`SMAXEnv` runs ``n_envs`` battles in lock-step: reset and step are ``jax.jit``-compiled
``jax.vmap`` s over the battles, and a finished battle is frozen until the next reset.

Per step (E battles, N allies, A = 5 + number of enemies):

- observations ``[E, N, obs_dim]``: SMAX's ``unit_list`` features of every other unit (relative position
  scaled by sight range, health, last action, cooldown, unit type) plus the agent's own features;
- state ``[E, state_dim]``: SMAX's global world state (every unit's health, absolute position, cooldown,
  type, team);
- avail ``[E, N, A]`` bool: actions 0-3 move (N, E, S, W), 4 is *stop* (always available, the only action of
  a dead unit), ``5 + j`` attacks enemy ``j`` (available when it is alive and in range);
- reward ``[E]``: the allies' team reward: the enemies' health lost this step as a fraction of their
  maximum, divided by the number of enemies, plus 1 when the battle is won. An episode's return therefore
  lies in [0, 2] (SMAC rescales its shaped reward to a maximum of 20; SMAX does not);
- terminal: a team was wiped out; timeout: ``episode_limit`` steps passed without a decision (a time-limit
  cut, so value targets may bootstrap through it); ``info["won"]`` ``[E]``: all enemies dead
  and at least one ally alive.

Behavior policies and datasets (``make_dataset``): ``good`` (alias ``expert``) is jaxmarl's heuristic
micro-management policy playing the allies: attack the enemy in range that is closest (and keep shooting it
until it dies), otherwise walk towards a visible enemy or across the map. ``medium`` and ``poor`` are
ε-mixtures: each ally, at each step, independently takes a uniformly random *available* action with
probability ε (see :data:`EPSILON`, :data:`MAP_EPSILON`) and the heuristic action otherwise. ``mixed`` is
the 50/50 mixture of ``medium`` and ``good`` (inspo.md §StarCraft II). The heuristic wins symmetric battles
(2s3z, 3m) about half the time but practically never the asymmetric 5m_vs_6m, 3s_vs_5z, 6h_vs_8z (measured
cards in docs/smax.md). Each step of 32 battles (behavior policy and SMAX
step, ``vmap``-ed over battles) is one compiled call, the same one evaluation uses, so one compilation per map
serves both; the loop over time stops as soon as every battle is over (battles last 12-70 steps of the 100
allowed). A 50,000-transition dataset takes seconds to a minute or two after compilation. Datasets are
deterministic functions of (map, quality, size, seed) and are cached as marlkit HDF5 files under
:func:`marlkit.data.build.data_dir` ``/smax``.

Names follow omiga.md Table 4 (good / medium / poor) and inspo.md Table 4 (expert / medium / mixed).
StarCraft II maps that SMAX does not reimplement (``2c_vs_64zg``, ``corridor``) are not available; SMAX's
SMACv2-style scenarios (``smacv2_5_units``, ``smacv2_10_units``, ``smacv2_20_units``: random unit types and
surrounded/reflected start positions) are.

Evaluation mode (``EnvSpec.deterministic_eval``): greedy. Neither omiga.md (32 episodes) nor inspo.md (Table 4)
says whether actions are sampled in SMAC evaluation; greedy is the default where a paper says nothing explicit.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import numpy as np

from marlkit.data.build import data_dir
from marlkit.data.card import attach_card
from marlkit.data.dataset import MultiAgentDataset
from marlkit.data.hdf5 import load_hdf5, save_hdf5
from marlkit.data.views import mix
from marlkit.envs.base import EnvSpec, MultiAgentEnv, StepResult
from marlkit.envs.registry import UnknownNameError

__all__ = ["DEFAULT_DATASET_SIZE", "EPSILON", "MAP_EPSILON", "QUALITIES", "SMAXEnv", "list_maps", "make_smax"]

#: ε of each behavior quality: probability that an ally replaces the heuristic action by a uniformly random
#: available action (independently per ally and step). medium/poor are set so that on 5m_vs_6m the ratios of
#: their mean return to good's (0.52, 0.40; measured, docs/smax.md) are close to omiga.md Table 4's SMAC
#: 5m_vs_6m datasets (11.03/20 = 0.55, 8.50/20 = 0.43).
EPSILON: dict[str, float] = {"good": 0.0, "expert": 0.0, "medium": 0.5, "poor": 0.7}
#: Per-map overrides. On 3s_vs_5z the heuristic (which never kites the zealots) is no better than its ε-mixtures
#: up to ε = 0.8, so medium and poor there are closer to uniform play to keep good > medium > poor.
MAP_EPSILON: dict[str, dict[str, float]] = {"3s_vs_5z": {"medium": 0.9, "poor": 1.0}}
#: Dataset names: the ε-levels plus ``mixed`` (50/50 of ``medium`` and ``good`` transitions).
QUALITIES: tuple[str, ...] = ("good", "expert", "medium", "poor", "mixed")
#: Transitions in a dataset when no size is given (OMIGA samples 1000 episodes per SMAC dataset; SMAX
#: battles last 20-100 steps).
DEFAULT_DATASET_SIZE = 50_000
#: Episodes simulated in parallel per compiled rollout chunk (fixed, so a smaller dataset is a prefix of a
#: larger one built with the same seed).
CHUNK_EPISODES = 32
#: Maps of the seed papers that SMAX does not reimplement.
UNAVAILABLE_MAPS = {"2c_vs_64zg": "not in SMAX, which has no colossus unit type",
                    "corridor": "not in SMAX, whose maps have no terrain to form the corridor's chokepoint"}


_JAX_CACHE_SET = False


def _import_jaxmarl():
    """Import jaxmarl's SMAX pieces.

    jaxmarl 0.2 prints on import and, while probing for brax, resets ``sys.stdout``/``sys.stderr`` to the
    interpreter's originals (which would detach Jupyter's and pytest's capture). The import therefore runs with
    file descriptors 1/2 pointed at ``os.devnull`` and the Python streams restored afterwards, which also keeps
    stdout clean for ``marlkit train --json``.

    Raises:
        ImportError: with the install hint when the ``smax`` extra is missing.
    """
    if "jaxmarl.environments.smax" not in sys.modules:
        saved = sys.stdout, sys.stderr
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()
        saved_fds = []
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            for fd in (1, 2):
                saved_fds.append((fd, os.dup(fd)))
                os.dup2(devnull, fd)
            os.close(devnull)
        except OSError:  # no usable descriptors (unusual embedding): just import
            pass
        try:
            sys.stdout = sys.stderr = io.StringIO()
            import jaxmarl.environments.smax  # noqa: F401
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise ImportError("smax environments need jaxmarl: pip install 'marlkit[smax]'") from e
        finally:
            for stream in (sys.__stdout__, sys.__stderr__):
                with contextlib.suppress(Exception):
                    stream.flush()
            for fd, copy in saved_fds:
                os.dup2(copy, fd)
                os.close(copy)
            sys.stdout, sys.stderr = saved
    import jax
    from jaxmarl.environments.smax import heuristic_enemy, heuristic_enemy_smax_env, smax_env
    global _JAX_CACHE_SET
    if not _JAX_CACHE_SET:
        _JAX_CACHE_SET = True
        if jax.config.jax_compilation_cache_dir is None and os.environ.get("MARLKIT_JAX_CACHE", "1") != "0":
            jax.config.update("jax_compilation_cache_dir", str(data_dir() / "jax-cache"))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return smax_env, heuristic_enemy_smax_env, heuristic_enemy


def list_maps() -> list[str]:
    """Map names SMAX provides (SMAC maps plus SMACv2-style ``smacv2_*_units``).

    Raises:
        ImportError: if jaxmarl is not installed.
    """
    smax_env, _, _ = _import_jaxmarl()
    return sorted(smax_env.MAP_NAME_TO_SCENARIO)


# compiled functions are shared by all env objects of one configuration: compile once per process
_CORE_CACHE: dict[str, _Core] = {}


class _Core:
    """The jit-compiled, vmapped SMAX functions for one map configuration (internal)."""

    def __init__(self, map_name: str):
        import jax
        import jax.numpy as jnp

        smax_env, hes, heur = _import_jaxmarl()
        env = hes.HeuristicEnemySMAX(scenario=smax_env.map_name_to_scenario(map_name), see_enemy_actions=True,
                                     walls_cause_death=True, attack_mode="closest",
                                     max_steps=2**30)  # the time limit is applied by step1
        self.env = env
        self.n_agents = env.num_allies
        self.n_enemies = env.num_enemies
        self.n_actions = env.num_ally_actions
        self.obs_dim = env.obs_size
        self.state_dim = env.state_size
        agents = env.agents
        N, n_move = self.n_agents, env.num_movement_actions
        stop = n_move - 1
        ally_policy = heur.create_heuristic_policy(env._env, 0, shoot=True, attack_mode="closest")

        def observe(st):
            obs = env.get_obs(st)
            o = jnp.stack([obs[a] for a in agents]).astype(jnp.float32)
            s = env.get_world_state(st).astype(jnp.float32)
            av = env.get_avail_actions(st)
            av = jnp.stack([av[a] for a in agents]).astype(bool)
            return o, s, av

        def reset1(key):
            _, st = env.reset(key)
            o, s, av = observe(st)
            return st, o, s, av

        def step1(key, st, actions, episode_limit):
            """One step of one battle; a battle already over stays frozen (zero reward)."""
            was_done = st.state.done
            _, nst, rew, _, _ = env.step_env(key, st, {a: actions[i] for i, a in enumerate(agents)})
            nst = jax.tree.map(lambda new, old: jnp.where(was_done, old, new), nst, st)
            alive = nst.state.unit_alive
            allies_dead = ~jnp.any(alive[:N])
            enemies_dead = ~jnp.any(alive[N:])
            # the episode_limit-th step of an undecided battle is a timeout (a traced value: no recompilation
            # per limit; SMAX's own limit would let a battle run episode_limit + 1 steps)
            battle_over = allies_dead | enemies_dead
            terminal = battle_over & ~was_done
            timeout = (nst.state.step >= episode_limit) & ~battle_over & ~was_done
            nst = nst.replace(state=nst.state.replace(done=was_done | terminal | timeout))
            won = enemies_dead & ~allies_dead
            r = jnp.where(was_done, 0.0, rew[agents[0]]).astype(jnp.float32)
            o, s, av = observe(nst)
            return nst, o, s, av, r, terminal, timeout, won

        def behavior1(key, pstate, o, av, eps):
            """ε-mixture of the heuristic ally policy with uniform-over-available actions, for N allies."""
            k_h, k_r, k_u = jax.random.split(key, 3)
            a_h, pstate = jax.vmap(ally_policy)(jax.random.split(k_h, N), pstate, o)
            a_h = jnp.where(av[jnp.arange(N), a_h], a_h, stop)  # dead allies (and rare illegal picks) stop
            logits = jnp.where(av, 0.0, -jnp.inf)
            a_r = jax.random.categorical(k_r, logits, axis=-1)
            explore = jax.random.uniform(k_u, (N,)) < eps
            return jnp.where(explore, a_r, a_h).astype(jnp.int32), pstate

        def init_pstate():
            s0 = heur.get_heuristic_policy_initial_state()
            return jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * N), s0)

        def strong(tree):  # drop weak types so that step's output types equal reset's (no recompilation)
            return jax.tree.map(lambda x: jnp.asarray(x, dtype=x.dtype), tree)

        def reset_b(key):
            st, o, s, av = reset1(key)
            return strong(st), o, s, av, strong(init_pstate())

        def step_b(key, st, ps, o, av, ext_actions, eps, use_ext, episode_limit):
            """Behavior action (or ``ext_actions`` when ``use_ext``) and one step, for one battle."""
            k_a, k_s = jax.random.split(key)
            act, ps = behavior1(k_a, ps, o, av, eps)
            act = jnp.where(use_ext, ext_actions.astype(jnp.int32), act)
            return (act, ps) + step1(k_s, st, act, episode_limit)

        # one compiled step serves rollouts of learned policies and behavior data alike
        self.reset = jax.jit(jax.vmap(reset_b))
        self.step = jax.jit(jax.vmap(step_b, in_axes=(0, 0, 0, 0, 0, 0, None, None, None)))
        self.key = jax.random.key
        self.split = jax.random.split
        self.fold_in = jax.random.fold_in


def _core(map_name: str) -> _Core:
    if map_name not in _CORE_CACHE:
        _CORE_CACHE[map_name] = _Core(map_name)
    return _CORE_CACHE[map_name]


class SMAXEnv(MultiAgentEnv):
    """A SMAX map as a marlkit :class:`~marlkit.envs.base.MultiAgentEnv` (see the module docstring).

    Args:
        map_name: a SMAX map (:func:`list_maps`), e.g. ``"5m_vs_6m"``.
        episode_limit: maximum steps per battle (SMAX's ``max_steps``; default 100).

    Raises:
        UnknownNameError: for a map SMAX does not have (the message lists the valid ones).
        ImportError: if jaxmarl is not installed.
    """

    datasets = QUALITIES

    def __init__(self, map_name: str, episode_limit: int = 100):
        maps = list_maps()
        if map_name not in maps:
            why = f" ({UNAVAILABLE_MAPS[map_name]})" if map_name in UNAVAILABLE_MAPS else ""
            raise UnknownNameError(f"unknown SMAX map {map_name!r}{why}; valid: {', '.join(maps)}")
        if isinstance(episode_limit, bool) or not isinstance(episode_limit, int) or episode_limit <= 0:
            raise ValueError(f"episode_limit must be a positive integer, got {episode_limit!r}")
        self.map_name = map_name
        self._core = _core(map_name)
        c = self._core
        self.spec = EnvSpec(name=f"smax:{map_name}", n_agents=c.n_agents, obs_dim=c.obs_dim,
                            state_dim=c.state_dim, n_actions=c.n_actions, episode_limit=episode_limit,
                            gamma=0.99, default_steps=50_000)
        self._state = self._key = self._pstate = self._obs = self._avail = None
        self._n = 0

    # ------------------------------------------------------------------ rollout API
    def reset(self, n_envs: int = 1, seed: int | None = None):
        """Start ``n_envs`` battles. Returns ``(obs [E,N,obs_dim], state [E,S], avail [E,N,A] bool)``.

        Raises:
            ValueError: if ``n_envs`` is not positive.
        """
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs <= 0:
            raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
        o, s, av = self._reset(self._core.key(0 if seed is None else int(seed)), int(n_envs))
        return np.array(o), np.array(s), np.array(av)  # writable host copies

    def _reset(self, key, n_envs: int):
        c = self._core
        self._key, k = c.split(key)
        self._state, o, s, av, self._pstate = c.reset(c.split(k, n_envs))
        self._obs, self._avail, self._n = o, av, n_envs
        return o, s, av

    def _step(self, actions, eps: float, use_ext: bool):
        c = self._core
        self._key, k = c.split(self._key)
        out = c.step(c.split(k, self._n), self._state, self._pstate, self._obs, self._avail, actions,
                     np.float32(eps), np.bool_(use_ext), np.int32(self.spec.episode_limit))
        act, self._pstate, self._state, o, s, av, r, term, tout, won = out
        self._obs, self._avail = o, av
        return act, o, s, av, r, term, tout, won

    def step(self, actions) -> StepResult:
        """Advance every battle by one step with ``actions [E, N]`` (ints in ``[0, A)``).

        A battle that is over stays frozen (zero reward, no further terminal/timeout flags). Unavailable actions
        are executed as SMAX defines them (an out-of-range attack does nothing, a dead unit does not move);
        policies are expected to respect ``avail``.

        Raises:
            RuntimeError: before :meth:`reset`.
            ValueError: on a wrong shape or an action outside ``[0, A)``.
        """
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(actions)
        if a.shape != (self._n, self.spec.n_agents):
            raise ValueError(f"actions must have shape {(self._n, self.spec.n_agents)}, got {a.shape}")
        if not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= self.spec.n_actions:
            raise ValueError(f"actions must be integers in [0, {self.spec.n_actions}), got {a.dtype} "
                             f"in [{a.min()}, {a.max()}]")
        _, o, s, av, r, term, tout, won = self._step(a.astype(np.int32), 0.0, True)
        return StepResult(obs=np.array(o), state=np.array(s), avail=np.array(av),
                          reward=np.array(r, dtype=np.float64), terminal=np.array(term),
                          timeout=np.array(tout), info={"won": np.array(won)})

    # ------------------------------------------------------------------ behavior data
    def _chunk(self, eps: float, key) -> dict[str, np.ndarray]:
        """Roll out CHUNK_EPISODES behavior episodes as ``[E, T, ...]`` host arrays (T = longest episode)."""
        E, N = CHUNK_EPISODES, self.spec.n_agents
        o, s, av = self._reset(key, E)
        o, s, av = np.asarray(o), np.asarray(s), np.asarray(av)
        dummy = np.zeros((E, N), np.int32)
        steps = []
        for _ in range(self.spec.episode_limit):
            active = ~np.asarray(self._state.state.done)
            if not active.any():
                break
            act, no, ns, nav, r, term, tout, won = (np.asarray(x) for x in self._step(dummy, eps, False))
            steps.append({"observations": o, "states": s, "avail_actions": av, "actions": act, "rewards": r,
                          "next_observations": no, "next_states": ns, "next_avail_actions": nav,
                          "terminals": term, "timeouts": tout, "won": won, "active": active})
            o, s, av = no, ns, nav
        return {k: np.stack([st[k] for st in steps], axis=1) for k in steps[0]}

    def _episodes(self, eps: float, n: int, seed: int, start: int = 0) -> list[dict[str, np.ndarray]]:
        """Episodes ``start .. start+n-1`` of behavior ε = ``eps`` with ``seed``: a list of per-episode dicts
        of ``[L, ...]`` arrays plus ``won`` (bool). Chunk ``i`` always uses key ``fold_in(key(seed), i)``."""
        c = self._core
        base = c.key(int(seed))
        out = []
        first, last = start // CHUNK_EPISODES, (start + n - 1) // CHUNK_EPISODES
        for i in range(first, last + 1):
            tr = self._chunk(eps, c.fold_in(base, i))
            act, won = tr.pop("active"), tr.pop("won")
            for e in range(CHUNK_EPISODES):
                L = int(act[e].sum())
                ep = {k: v[e, :L] for k, v in tr.items()}
                ep["won"] = bool(won[e, :L].any())
                out.append(ep)
        lo = start - first * CHUNK_EPISODES
        return out[lo:lo + n]

    def behavior_stats(self, quality: str, episodes: int = 256, seed: int = 0) -> dict:
        """Mean return (± std), win rate and mean length of behavior ``quality`` over ``episodes`` episodes.

        Raises:
            UnknownNameError: for an unknown quality.
        """
        eps = self.epsilon(quality)
        eps_list = self._episodes(eps, episodes, seed)
        rets = np.array([ep["rewards"].sum() for ep in eps_list])
        return {"epsilon": eps, "episodes": episodes, "return_mean": float(rets.mean()),
                "return_std": float(rets.std()), "win_rate": float(np.mean([ep["won"] for ep in eps_list])),
                "length_mean": float(np.mean([len(ep["rewards"]) for ep in eps_list]))}

    def epsilon(self, quality: str) -> float:
        """ε of behavior ``quality`` on this map (:data:`EPSILON` with :data:`MAP_EPSILON`'s overrides).

        Raises:
            UnknownNameError: for an unknown quality.
        """
        if quality not in EPSILON:
            raise UnknownNameError(f"unknown SMAX behavior {quality!r}; valid: {', '.join(sorted(EPSILON))}")
        return MAP_EPSILON.get(self.map_name, {}).get(quality, EPSILON[quality])

    def _build(self, quality: str, size: int | None, seed: int, episodes: int | None = None) -> MultiAgentDataset:
        eps = self.epsilon(quality)
        if episodes is not None:  # exactly that many whole episodes
            parts = self._episodes(eps, episodes, seed)
            size = sum(len(p["rewards"]) for p in parts)
        else:
            parts, total, start = [], 0, 0
            while total < size:
                for ep in self._episodes(eps, CHUNK_EPISODES, seed, start):
                    parts.append(ep)
                    total += len(ep["rewards"])
                    if total >= size:
                        break
                start += CHUNK_EPISODES
        keys = [k for k in parts[0] if k != "won"]
        data = {k: np.concatenate([p[k] for p in parts])[:size] for k in keys}
        starts = np.concatenate([np.arange(len(p["rewards"])) == 0 for p in parts])[:size]
        if not (data["terminals"][-1] or data["timeouts"][-1]):  # dataset cut inside the last episode
            data["timeouts"][-1] = True
        rets = np.array([p["rewards"].sum() for p in parts])
        wins = np.array([p["won"] for p in parts])
        meta = {"env": self.spec.name, "dataset": quality, "seed": int(seed), "n_actions": self.spec.n_actions,
                "behavior": (f"jaxmarl SMAX heuristic ally policy (attack the closest enemy in range, else "
                             f"advance); each ally takes a uniformly random available action with probability "
                             f"eps={eps}"),
                "epsilon": eps, "episodes": len(parts), "behavior_return_mean": float(rets.mean()),
                "behavior_return_std": float(rets.std()), "behavior_win_rate": float(wins.mean()),
                "source": "jaxmarl SMAX (HeuristicEnemySMAX, attack_mode=closest)"}
        return MultiAgentDataset(
            observations=data["observations"], states=data["states"], actions=data["actions"].astype(np.int64),
            rewards=data["rewards"], next_observations=data["next_observations"],
            next_states=data["next_states"], terminals=data["terminals"].astype(bool),
            timeouts=data["timeouts"].astype(bool), episode_starts=starts,
            avail_actions=data["avail_actions"].astype(bool),
            next_avail_actions=data["next_avail_actions"].astype(bool), meta=meta)

    def dataset_path(self, name: str, size: int | None = None, seed: int = 0, episodes: int | None = None) -> Path:
        """Cache file of a built dataset under :func:`marlkit.data.build.data_dir`."""
        n = f"ep{episodes}" if episodes is not None else f"n{size or DEFAULT_DATASET_SIZE}"
        return data_dir() / "smax" / f"{self.map_name}-{name}-{n}-s{seed}-T{self.spec.episode_limit}.h5"

    def make_dataset(self, name: str, size: int | None = None, seed: int = 0, episodes: int | None = None,
                     cache: bool = True) -> MultiAgentDataset:
        """Build (or load from the cache) behavior ``name``'s dataset (see :data:`QUALITIES`).

        Args:
            name: ``good``/``expert``, ``medium``, ``poor`` or ``mixed``.
            size: transitions (default :data:`DEFAULT_DATASET_SIZE`); whole episodes are laid out one after
                another and the last one is cut at ``size`` (marked as a timeout).
            seed: the dataset is a deterministic function of (map, name, size or episodes, seed, episode_limit).
            episodes: build exactly this many whole episodes instead (give at most one of size/episodes).
            cache: read/write the HDF5 file at :meth:`dataset_path`.

        ``mixed`` is :func:`marlkit.data.views.mix` of ``medium`` and ``good`` (half of the transitions each,
        whole episodes).

        Raises:
            UnknownNameError: for an unknown dataset name.
            ValueError: if ``size``/``episodes`` is not a positive integer or both are given.
        """
        if name not in QUALITIES:
            raise UnknownNameError(f"unknown dataset {name!r} for env {self.spec.name!r}; "
                                   f"valid: {', '.join(QUALITIES)}")
        if size is not None and episodes is not None:
            raise ValueError("give at most one of size= and episodes=")
        for what, v in (("size", size), ("episodes", episodes)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0):
                raise ValueError(f"{what} must be a positive integer, got {v!r}")
        if size is None and episodes is None:
            size = DEFAULT_DATASET_SIZE
        size = None if size is None else int(size)
        episodes = None if episodes is None else int(episodes)
        seed = int(seed)
        path = self.dataset_path(name, size, seed, episodes)
        if cache and path.exists():
            ds = load_hdf5(path)
            if "dataset_id" not in ds.meta:   # cached before datasets carried cards: versions unknown
                attach_card(ds, self.spec.name, name, seed=seed, versions={},
                            reference_returns=getattr(self, "reference_returns", None))
            return ds
        if name == "mixed":
            parts = [self.make_dataset(q, size, seed, episodes, cache) for q in ("medium", "good")]
            ds = mix(parts, [0.5, 0.5], size=size, seed=seed)
            ds.meta.update({"env": self.spec.name, "dataset": "mixed", "seed": seed,
                            "behavior": "50/50 mixture of the medium and good datasets"})
        else:
            ds = self._build(name, size, seed, episodes)
        attach_card(ds, self.spec.name, name, seed=seed, reference_returns=getattr(self, "reference_returns", None))
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_hdf5(ds, path, overwrite=True)
        return ds


def make_smax(task: str) -> SMAXEnv:
    """Registry factory for ``smax:<map>``."""
    return SMAXEnv(task)
