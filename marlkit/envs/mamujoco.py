"""Multi-agent MuJoCo (MaMuJoCo) from ``gymnasium-robotics`` (``mamujoco_v1``, Gymnasium v5 dynamics; the versions
of mujoco, gymnasium-robotics and gymnasium are pinned by the ``mujoco`` extra to the ones the shipped behavior
cards were measured with, see docs/datasets.md).

Tasks (omiga.md, App. B), all with ``agent_obsk = 1`` (each agent sees its own joints and their neighbours):

=================== ======= ================== ==================== ==========
registry name       agents  obs sizes          action size / agent  state size
=================== ======= ================== ==================== ==========
mamujoco:Hopper-3x1 3       8, 9, 8            1                    11
mamujoco:Ant-2x4    2       63, 63             4                    105
mamujoco:HalfCheetah-6x1 6  9, 9, 8, 9, 9, 8   1                    17
=================== ======= ================== ==================== ==========

Per-agent observations are zero-padded to the largest size; ``spec.obs_mask [N, obs_dim]`` marks the real
entries. The state is the underlying single-agent Gymnasium observation (``env.state()``). Actions are
``[E, N, act_dim]`` in [-1, 1] (the robots' action bounds). Episodes last at most 1000 steps; falling (Hopper,
Ant) terminates them.

Behavior policies are TD3 actors trained on the joint task (:mod:`marlkit.behavior.td3`) whose joint action is
split among the agents by the MaMuJoCo partition; their shipped weights define the dataset qualities
``random``, ``medium``, ``expert``, ``medium-expert`` and ``medium-replay``. The actors run in float64 and their
noisy actions are rounded to float32, so a dataset builds the same on every CPU: float32 products summed in another
order (AVX2 against AVX-512 kernels) change an action's last bits, and the simulator amplifies that into different
episodes, whereas a float64 result is ~1e-16 from any other order's and rounds to the same float32. MuJoCo
writes ``MUJOCO_LOG.TXT`` into the working directory on warnings (git-ignored).

Evaluation mode (``EnvSpec.deterministic_eval``): greedy (the policy's mean action). omiga.md (Sec. 5.3: 32
episodes, 5 seeds) does not say whether actions are sampled; greedy is the default where a paper says nothing
explicit.

Per-algorithm defaults (``EnvSpec.algo_defaults``, under the user's options): CFCQL at its authors' MaMuJoCo
settings (256-unit networks, lr 3e-4, batch 256); ICQ with its critic weights clipped at 1, as the authors'
continuous-action code clips them (without the clip its critic diverges on HalfCheetah-6x1:
:attr:`~marlkit.algos.icq.ICQConfig.critic_weight_max`); InSPO with omiga.md App. C's batch of 128 (its own 512
serves the matrix games' rare joint actions) and α = 10 (omiga.md's weight of the same behavior-KL term), each
teammate's factor of ρ clipped to [1/2, 2] (:attr:`~marlkit.algos.inspo.InSPOConfig.ratio_clip`: unclipped, the
resampling collapses onto one or two rows of the minibatch within a few hundred updates), μ cloned for 20,000 steps
(the matrix games' 1,000 leave μ far from the data's policy, and π = μ then starts near a zero return) and no entropy
term (β = 0, the paper's "w/o entropy" variant: an annealed β ≫ 1 puts β·H of a Gaussian policy into the soft
target and the critic's loss into the thousands). All three from the 3,000–6,000-update diagnostics in
docs/benchmarks.md. The other algorithms' defaults are already omiga.md App. C's.

Requires the optional extra ``marlkit[mujoco]``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from marlkit.behavior.weights import load_card, load_policies, weights_path
from marlkit.data.build import build_dataset
from marlkit.envs.base import AlgoDefaults, EnvSpec, MultiAgentEnv, StepResult

#: MaMuJoCo's per-algorithm defaults: CFCQL's ``continuous/main.py`` of the authors' code sets these for
#: HalfCheetah (its ``cql_alpha`` per dataset: medium-replay 0.4, medium 1.0, expert 1.7; marlkit keeps α = 1).
ALGO_DEFAULTS = {"cfcql": AlgoDefaults({"hidden": (256, 256), "lr": 3e-4, "batch_size": 256}, None,
                                       "CFCQL (Shao et al. 2023) code, continuous/main.py, MaMuJoCo settings"),
                 "icq": AlgoDefaults({"critic_weight_max": 1.0}, None,
                                     "ICQ (Yang et al. 2021) continuous-action code, ICQ_softmax/ICQ/icq.py, "
                                     "compute_loss_q: critic weights clamped to [0, 1]"),
                 "inspo": AlgoDefaults({"batch_size": 128, "ratio_clip": 2.0, "bc_steps": 20_000, "alpha": 10.0,
                                        "entropy": False}, None,
                                       "batch 128 and alpha 10 as omiga.md App. C (Table 5) for its behavior-KL "
                                       "weight on MaMuJoCo; ratio_clip, bc_steps and entropy off from the "
                                       "diagnostics of docs/benchmarks.md (inspo.md has no MaMuJoCo experiments)")}

__all__ = ["TASKS", "MaMuJoCoEnv", "JointPolicy", "make_task", "list_tasks", "make_mamujoco_parallel"]

TASKS = {
    "Hopper-3x1": ("Hopper", "3x1"),
    "Ant-2x4": ("Ant", "2x4"),
    "HalfCheetah-6x1": ("HalfCheetah", "6x1"),
}
BEHAVIOR_NOISE = 0.1
"""σ of the Gaussian noise added to the behavior actors' actions when datasets are rolled out."""
BEHAVIOR_DTYPE = "float64"
"""Precision the behavior actors run in when datasets are rolled out (part of ``behavior_fingerprint``)."""


def make_mamujoco_parallel(task: str, agent_obsk: int = 1):
    """The PettingZoo parallel env of ``task`` (e.g. ``"Hopper-3x1"``).

    Raises:
        KeyError: naming the valid tasks.
    """
    if task not in TASKS:
        raise KeyError(f"unknown multi-agent MuJoCo task {task!r}; valid: {', '.join(TASKS)}")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from gymnasium_robotics import mamujoco_v1

        scenario, conf = TASKS[task]
        return mamujoco_v1.parallel_env(scenario, conf, agent_obsk=agent_obsk)


def list_tasks() -> list[str]:
    """Task names of the ``mamujoco:`` family (raises ImportError when ``gymnasium-robotics`` is missing)."""
    import importlib.util

    for module in ("gymnasium_robotics", "mujoco"):
        if importlib.util.find_spec(module) is None:
            raise ImportError(f"{module} is not installed")
    return list(TASKS)


def make_task(task: str) -> "MaMuJoCoEnv":
    """Build ``mamujoco:<task>``."""
    return MaMuJoCoEnv(task)


class MaMuJoCoEnv(MultiAgentEnv):
    """``n_envs`` parallel MaMuJoCo episodes with padded per-agent observations (see the module docstring)."""

    def __init__(self, task: str):
        probe = make_mamujoco_parallel(task)
        self.task = task
        self._agents = list(probe.possible_agents)
        sizes = [probe.observation_space(a).shape[0] for a in self._agents]
        acts = [probe.action_space(a).shape[0] for a in self._agents]
        if len(set(acts)) != 1:
            raise ValueError(f"{task}: agents with different action sizes {acts} are not supported")
        for a in self._agents:
            sp = probe.action_space(a)
            if not (np.allclose(sp.low, -1) and np.allclose(sp.high, 1)):
                raise ValueError(f"{task}: expected action bounds [-1, 1], got [{sp.low}, {sp.high}]")
        obs_dim = max(sizes)
        mask = np.zeros((len(sizes), obs_dim), bool)
        for i, k in enumerate(sizes):
            mask[i, :k] = True
        self.obs_sizes = sizes
        # joint-action index of each agent's local action entries: [N, act_dim]
        self.action_index = np.array([[node.act_ids for node in part] for part in probe.agent_action_partitions])
        limit = probe.single_agent_env.spec.max_episode_steps or 1000
        self.spec = EnvSpec(name=f"mamujoco:{task}", n_agents=len(sizes), obs_dim=obs_dim,
                            state_dim=probe.state().shape[0], act_dim=acts[0], episode_limit=int(limit),
                            gamma=0.99, obs_mask=mask, default_steps=100_000, algo_defaults=ALGO_DEFAULTS)
        self._envs = [probe]
        self._active = []
        self.datasets = {"random": "randomly initialised TD3 actor", "medium": "early-stopped TD3 actor",
                         "expert": "best TD3 actor of the run", "medium-expert": "equal mix of medium and expert",
                         "medium-replay": "rollouts of every training checkpoint up to medium"}
        self.reference_returns = _reference_returns(task)

    def _pad(self, obs_dict) -> np.ndarray:
        out = np.zeros((self.spec.n_agents, self.spec.obs_dim), np.float32)
        for i, a in enumerate(self._agents):
            o = obs_dict[a]
            out[i, :len(o)] = o
        return out

    def reset(self, n_envs: int = 1, seed: int | None = None):
        if n_envs <= 0:
            raise ValueError(f"n_envs must be positive, got {n_envs}")
        while len(self._envs) < n_envs:
            self._envs.append(make_mamujoco_parallel(self.task))
        self._active = self._envs[:n_envs]
        obs, states = [], []
        for e, env in enumerate(self._active):
            o, _ = env.reset(seed=None if seed is None else int(seed) * 10_007 + e)
            obs.append(self._pad(o))
            states.append(env.state())
        self._done = np.zeros(n_envs, bool)
        self._last = (np.stack(obs), np.stack(states).astype(np.float32))
        return self._last[0], self._last[1], None

    def step(self, actions: np.ndarray) -> StepResult:
        """Step all episodes (finished ones stay frozen with zero reward).

        Raises:
            ValueError: on a wrong action shape or non-finite actions.
        """
        actions = np.asarray(actions, dtype=np.float64)
        E, N, A = len(self._active), self.spec.n_agents, self.spec.act_dim
        if actions.shape != (E, N, A):
            raise ValueError(f"actions must have shape [{E}, {N}, {A}], got {list(actions.shape)}")
        if not np.isfinite(actions).all():
            raise ValueError("actions contain NaN/inf")
        actions = np.clip(actions, -1.0, 1.0)
        obs, states = self._last[0].copy(), self._last[1].copy()
        rew = np.zeros(E, np.float32)
        term, trunc = np.zeros(E, bool), np.zeros(E, bool)
        for e, env in enumerate(self._active):
            if self._done[e]:
                trunc[e] = True
                continue
            o, r, te, tr, _ = env.step({a: actions[e, i] for i, a in enumerate(self._agents)})
            obs[e] = self._pad(o)
            states[e] = env.state()
            rew[e] = r[self._agents[0]]
            term[e], trunc[e] = te[self._agents[0]], tr[self._agents[0]] and not te[self._agents[0]]
        self._done |= term | trunc
        self._last = (obs, states)
        return StepResult(obs, states, None, rew, term, trunc)

    def close(self) -> None:
        for env in self._envs:
            env.close()

    # ------------------------------------------------------------------ behavior and datasets
    @property
    def behavior_fingerprint(self) -> str | None:
        """First 12 hex digits of the SHA-256 of the shipped behavior weights and the rollout arithmetic
        (:data:`BEHAVIOR_DTYPE`; None if no weights are shipped); part of the dataset cache key, so datasets are
        rebuilt when the weights or the way they are evaluated change."""
        path = weights_path(self.task, ".safetensors")
        if not path.exists():
            return None
        return hashlib.sha256(path.read_bytes() + f"|actor:{BEHAVIOR_DTYPE}".encode()).hexdigest()[:12]

    def behavior_policy(self, name: str, noise: float = BEHAVIOR_NOISE, directory=None) -> "JointPolicy":
        """The shipped behavior actor ``name`` (``random``, ``medium``, ``expert`` or ``replay_k``).

        ``directory`` reads the weights from elsewhere than the shipped ``marlkit/behavior_weights``
        (e.g. a fresh ``python -m marlkit.behavior.td3 --out DIR`` run).

        Raises:
            FileNotFoundError: if no weights are shipped for this task.
            KeyError: for an unknown actor name.
        """
        actors = load_policies(self.task, directory)
        if name not in actors:
            raise KeyError(f"no behavior actor {name!r} for {self.task}; valid: {sorted(actors)}")
        return JointPolicy(actors[name], self.action_index, noise, f"TD3 actor '{name}' of {self.task}")

    def make_dataset(self, name: str, size: int | None = None, seed: int = 0):
        """Build (or load from the cache) the named dataset; ``size`` = transitions."""
        return build_dataset(self, name, transitions=size, seed=seed)


class JointPolicy:
    """A joint actor ``a = π(s)`` on the global state, split among agents by the MaMuJoCo partition, with
    Gaussian noise σ = ``noise`` (clipped to [-1, 1]).

    The actor is evaluated in float64 (a copy; :data:`BEHAVIOR_DTYPE`) and the noisy action rounded to float32
    last, which makes rollouts independent of the CPU's summation order (see the module docstring).
    """

    def __init__(self, actor, action_index: np.ndarray, noise: float, description: str):
        import copy

        import torch

        self._torch = torch
        self.actor = copy.deepcopy(actor).to(getattr(torch, BEHAVIOR_DTYPE))
        self.action_index, self.noise = np.asarray(action_index), float(noise)
        self.description = f"{description} in {BEHAVIOR_DTYPE}, Gaussian action noise σ={noise}"

    def reset(self, n_envs: int, rng=None) -> None:
        pass

    def act(self, obs, state, avail, rng: np.random.Generator) -> np.ndarray:
        """``state [E, state_dim]`` → actions ``[E, N, act_dim]`` (float32, in [-1, 1])."""
        with self._torch.no_grad():
            joint = self.actor(self._torch.as_tensor(np.asarray(state, np.float64))).numpy()
        if self.noise > 0:
            joint = np.clip(joint + self.noise * rng.standard_normal(joint.shape), -1.0, 1.0)
        return joint[:, self.action_index].astype(np.float32)                # [E, N, act_dim]


def _reference_returns(task: str) -> dict | None:
    """``{"random": R0, "expert": R1}`` from the shipped behavior card (dataset-rollout returns), or None."""
    try:
        card = load_card(task)
    except FileNotFoundError:
        return None
    ref = card.get("measured_returns")
    if not ref:
        return None
    return {"random": ref["random"]["mean"], "expert": ref["expert"]["mean"]}
