"""Single-step cooperative matrix games and their datasets.

A matrix game is a one-step Dec-POMDP: every agent observes the constant observation ``[1.0]``, picks an
action, receives the team payoff ``R[a_1, ..., a_N]`` and the episode ends. Because there is one step,
a learned product policy is evaluated *exactly* by enumeration (:func:`expected_return`): the numbers carry
no sampling noise.

The games printed in the seed papers:

- ``xor`` (InSPO, Fig. 1): ``R = [[0, 1], [1, -2]]``; datasets ``a`` = {(A,B),(B,A)}, ``b`` = {(A,A),(A,B),(B,A)},
  ``c`` = all four joint actions, each uniform over its support.
- ``mne`` (InSPO, Fig. 2): three pure Nash equilibria (A,A)=5, (B,B)=10, (C,C)=20, every mismatch -20;
  datasets ``balanced`` (μ^i uniform) and ``imbalanced`` (μ^i = [0.8, 0.1, 0.1]). The figure's matrix is not in
  the text; this one is the only symmetric 5/10/20-diagonal game consistent with the paper's BC column
  (E_μ[R] = -85/9 ≈ -9.44 balanced and -3.30 imbalanced; the paper reports -9.79 ± 0.41 and -3.47 ± 0.17).
- ``jiang-lu`` (offline decentralized MARL, Table 1): ``R = [[1, 5], [6, 1]]``; dataset ``behavior`` with
  agent 1 ~ [0.8, 0.2] and agent 2 ~ [0.4, 0.6] independently.

Per-algorithm defaults (``EnvSpec.algo_defaults``, applied under the user's options; a bare ``marlkit train
--env GAME --dataset D --algo A`` reproduces the paper's outcome with them). None of the papers prints network
sizes or update counts for its matrix games, so those are the smallest settings measured to reach the papers'
fixed points (``tests/test_env_defaults.py`` checks the outcomes; the algorithm tests use the same settings):

- ``xor`` and ``mne`` (inspo.md Tables 1–2): OMIGA 32-unit MLPs, batch 1024, lr 3e-3, τ 0.05, 300 updates, with
  α = 10 on XOR (omiga.md App. C's α, the paper's XOR column) and α = 0.1 on M-NE (the paper's 20.00 / 5.00 need a
  near-greedy policy on the decomposed Q; at α = 10 the balanced policy keeps mass off (C, C)); OMAR 16-unit
  MLPs, lr 1e-2, batch 64, 300 updates; CFCQL 32-unit MLPs, 1000 updates; AlberDICE 64-unit MLPs, lr 3e-3, α
  annealed 5 → 0.001 over 800 of 1000 updates, and on XOR ``agent_steps`` = 50 (one agent keeps its turn for 50
  updates: on XOR (a) both of an agent's actions have the same in-data value and only the teammate's committed
  choice separates them; with turns of one update both agents can drift to A together, the OOD (A, A), as at the
  command-line defaults on 2 of 5 seeds; on M-NE turns of 50 updates escape the imbalanced data's (A, A), which the
  paper's AlberDICE keeps, so M-NE keeps turns of one update). BC (which learns the behavior marginals)
  and InSPO (its defaults reproduce the tables, docs/benchmarks.md) have no game defaults.
- ``jiang-lu`` (offline-decentralized-marl.md Sec. 5.1, Tables 2–4): MABCQ and BCQ-dec with BCQ threshold
  τ = 0.2 (agent 1's a2 has behavior ratio 0.2 / 0.8 = 0.25, which App. B Table 12's τ = 0.6 forbids, while the
  paper's analysis keeps it), discrete lr 3e-3, 32-unit MLPs, 1200 updates: bcq-dec → (a1, a2) (Table 2),
  mabcq → (a2, a1) (Table 4), mabcq ``--no-tn`` → (a2, a2) (Table 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from marlkit.data.dataset import MultiAgentDataset
from marlkit.envs.base import AlgoDefaults, EnvSpec, MultiAgentEnv, StepResult

__all__ = ["MatrixGame", "MatrixDataset", "GAMES", "make_game", "sample_dataset", "expected_return",
           "joint_from_product"]


@dataclass
class MatrixDataset:
    """A dataset distribution of a matrix game: a joint table ``d [A_1, ..., A_N]`` (sums to 1).

    Build it from a joint table, a support list (uniform over it) or per-agent behavior policies μ^i.
    """

    name: str
    joint: np.ndarray
    description: str = ""
    per_agent: list[np.ndarray] | None = field(default=None)

    @classmethod
    def uniform_over(cls, name: str, support: list[tuple[int, ...]], shape: tuple[int, ...], description: str = ""):
        d = np.zeros(shape)
        for a in support:
            d[a] = 1.0
        return cls(name, d / d.sum(), description or f"uniform over {support}")

    @classmethod
    def product(cls, name: str, policies: list, description: str = ""):
        pols = [np.asarray(p, dtype=float) for p in policies]
        for i, p in enumerate(pols):
            if p.ndim != 1 or (p < 0).any() or not np.isclose(p.sum(), 1.0):
                raise ValueError(f"behavior policy of agent {i} must be a probability vector, got {p}")
        return cls(name, joint_from_product(pols), description or f"product of μ^i = {[p.tolist() for p in pols]}",
                   per_agent=pols)


def joint_from_product(policies: list[np.ndarray]) -> np.ndarray:
    """Joint table π_tot = ⊗_i π^i of per-agent distributions; shape ``[A_1, ..., A_N]``."""
    joint = np.asarray(policies[0], dtype=float)
    for p in policies[1:]:
        joint = np.multiply.outer(joint, np.asarray(p, dtype=float))
    return joint


class MatrixGame(MultiAgentEnv):
    """A cooperative N-agent matrix game with payoff tensor ``payoff [A_1, ..., A_N]``.

    All agents must have the same number of actions (the batched networks need one head size); the observation
    and state are the constant ``[1.0]``. The game is evaluated exactly (``spec.deterministic_eval = None``: no
    evaluation mode applies); ``algo_defaults`` are the per-algorithm defaults of its paper (``EnvSpec``).

    Raises:
        ValueError: if the payoff is not finite or agents have different action counts.
    """

    def __init__(self, name: str, payoff, datasets: dict[str, MatrixDataset] | None = None,
                 action_names: list[str] | None = None, algo_defaults: dict[str, AlgoDefaults] | None = None):
        payoff = np.asarray(payoff, dtype=float)
        if payoff.ndim < 1 or not np.isfinite(payoff).all():
            raise ValueError(f"payoff must be a finite tensor with one axis per agent, got shape {payoff.shape}")
        if len(set(payoff.shape)) != 1:
            raise ValueError(f"all agents need the same number of actions, got payoff shape {payoff.shape}")
        self.payoff = payoff
        self.datasets = dict(datasets or {})
        for d in self.datasets.values():
            if d.joint.shape != payoff.shape:
                raise ValueError(f"dataset {d.name!r} table shape {d.joint.shape} != payoff shape {payoff.shape}")
        n_actions = payoff.shape[0]
        self.action_names = action_names or [chr(ord("A") + k) for k in range(n_actions)]
        self.spec = EnvSpec(name=name, n_agents=payoff.ndim, obs_dim=1, state_dim=1, n_actions=n_actions,
                            episode_limit=1, gamma=0.99, default_steps=3000, deterministic_eval=None,
                            algo_defaults=dict(algo_defaults or {}))
        self._n_envs = 1

    @property
    def n_agents(self) -> int:
        return self.spec.n_agents

    def reset(self, n_envs: int = 1, seed: int | None = None):
        self._n_envs = n_envs
        n = self.spec.n_agents
        return (np.ones((n_envs, n, 1), np.float32), np.ones((n_envs, 1), np.float32),
                np.ones((n_envs, n, self.spec.n_actions), bool))

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.asarray(actions)
        if actions.shape != (self._n_envs, self.spec.n_agents):
            raise ValueError(f"actions must have shape [{self._n_envs}, {self.spec.n_agents}], got {actions.shape}")
        reward = self.payoff[tuple(actions.T)]
        obs, state, avail = self.reset(self._n_envs)
        done = np.ones(self._n_envs, bool)
        return StepResult(obs, state, avail, reward.astype(np.float32), done, np.zeros_like(done))

    # ------------------------------------------------------------------ datasets
    def dataset_distribution(self, name: str) -> MatrixDataset:
        """The named dataset distribution.

        Raises:
            KeyError: naming the valid dataset names.
        """
        if name not in self.datasets:
            raise KeyError(f"unknown dataset {name!r} for env {self.spec.name!r}; valid: {sorted(self.datasets)}")
        return self.datasets[name]

    def make_dataset(self, name: str, size: int = 10_000, seed: int = 0) -> MultiAgentDataset:
        """Sample ``size`` one-step transitions of the named dataset distribution."""
        return sample_dataset(self, self.dataset_distribution(name), size=size, seed=seed)


def sample_dataset(game: MatrixGame, dist: MatrixDataset, size: int = 10_000, seed: int = 0) -> MultiAgentDataset:
    """Draw ``size`` i.i.d. joint actions from ``dist.joint`` and return them as one-step episodes.

    Raises:
        ValueError: if ``size`` is not positive.
    """
    if not isinstance(size, (int, np.integer)) or size <= 0:
        raise ValueError(f"dataset size must be a positive integer, got {size!r}")
    rng = np.random.default_rng(seed)
    flat = rng.choice(dist.joint.size, size=size, p=dist.joint.ravel())
    actions = np.stack(np.unravel_index(flat, dist.joint.shape), axis=1).astype(np.int64)
    n, A = game.spec.n_agents, game.spec.n_actions
    ones_obs = np.ones((size, n, 1), np.float32)
    ones_state = np.ones((size, 1), np.float32)
    true = np.ones(size, bool)
    avail = np.ones((size, n, A), bool)
    return MultiAgentDataset(
        observations=ones_obs, states=ones_state, actions=actions,
        rewards=game.payoff[tuple(actions.T)].astype(np.float32),
        next_observations=ones_obs.copy(), next_states=ones_state.copy(),
        terminals=true, timeouts=~true, episode_starts=true.copy(), avail_actions=avail, next_avail_actions=avail,
        meta={"env": game.spec.name, "dataset": dist.name, "behavior": dist.description, "seed": int(seed),
              "n_actions": A},
    )


def expected_return(payoff: np.ndarray, policies: list[np.ndarray] | np.ndarray) -> float:
    """Exact expected payoff of a product policy (list of per-agent distributions) or of a joint table."""
    if isinstance(policies, np.ndarray) and policies.shape == payoff.shape:
        return float((policies * payoff).sum())
    return float((joint_from_product(list(policies)) * payoff).sum())


_INSPO_TABLES = "inspo.md Tables 1-2"
_XOR_MNE_DEFAULTS = {
    "omar": AlgoDefaults({"hidden": (16, 16), "lr": 1e-2, "batch_size": 64}, 300, _INSPO_TABLES),
    "cfcql": AlgoDefaults({"hidden": (32, 32)}, 1000, _INSPO_TABLES),
}
_OMIGA_FAST = {"hidden": (32,), "batch_size": 1024, "lr": 3e-3, "tau": 0.05}
#: AlberDICE on the matrix games: the official α schedule (5 → 0.001) compressed into 800 of 1000 updates of
#: 64-unit networks at lr 3e-3; on XOR each agent keeps its turn for 50 updates (the alternating best response).
_ALBERDICE_FAST = {"hidden": (64, 64), "lr": 3e-3, "alpha_decay_steps": 800}


def _xor() -> MatrixGame:
    R = np.array([[0.0, 1.0], [1.0, -2.0]])
    shape = R.shape
    return MatrixGame("xor", R, {
        "a": MatrixDataset.uniform_over("a", [(0, 1), (1, 0)], shape),
        "b": MatrixDataset.uniform_over("b", [(0, 0), (0, 1), (1, 0)], shape),
        "c": MatrixDataset.uniform_over("c", [(0, 0), (0, 1), (1, 0), (1, 1)], shape),
    }, algo_defaults={**_XOR_MNE_DEFAULTS,
                      "omiga": AlgoDefaults({**_OMIGA_FAST, "alpha": 10.0}, 300, _INSPO_TABLES),
                      "alberdice": AlgoDefaults({**_ALBERDICE_FAST, "agent_steps": 50}, 1000, _INSPO_TABLES)})


def _mne() -> MatrixGame:
    R = np.full((3, 3), -20.0)
    R[0, 0], R[1, 1], R[2, 2] = 5.0, 10.0, 20.0
    u, imb = np.full(3, 1 / 3), np.array([0.8, 0.1, 0.1])
    return MatrixGame("mne", R, {
        "balanced": MatrixDataset.product("balanced", [u, u]),
        "imbalanced": MatrixDataset.product("imbalanced", [imb, imb]),
    }, algo_defaults={**_XOR_MNE_DEFAULTS,
                      "omiga": AlgoDefaults({**_OMIGA_FAST, "alpha": 0.1}, 300, _INSPO_TABLES),
                      "alberdice": AlgoDefaults(dict(_ALBERDICE_FAST), 1000, _INSPO_TABLES)})


def _jiang_lu() -> MatrixGame:
    R = np.array([[1.0, 5.0], [6.0, 1.0]])
    return MatrixGame("jiang-lu", R, {
        "behavior": MatrixDataset.product("behavior", [np.array([0.8, 0.2]), np.array([0.4, 0.6])]),
    }, action_names=["a1", "a2"], algo_defaults={
        name: AlgoDefaults({"threshold": 0.2, "discrete_lr": 3e-3, "hidden": (32, 32)}, 1200,
                           "offline-decentralized-marl.md Sec. 5.1, Tables 2-4")
        for name in ("mabcq", "bcq-dec")})


GAMES = {"xor": _xor, "mne": _mne, "jiang-lu": _jiang_lu}
"""Built-in matrix games by name."""


def make_game(name: str) -> MatrixGame:
    """A fresh built-in matrix game.

    Raises:
        KeyError: naming the valid games.
    """
    if name not in GAMES:
        raise KeyError(f"unknown matrix game {name!r}; valid: {sorted(GAMES)}")
    return GAMES[name]()
