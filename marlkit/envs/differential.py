"""The Differential Game (offline-decentralized-marl.md Sec. 5.4, Fig. 2, Table 9).

Two agents move on a line each: positions x_1, x_2 ∈ [−1, 1], actions are velocities. marlkit actions live in
[−1, 1] and are scaled by 0.1, so the velocity is in [−0.1, 0.1] as in the paper; positions are clipped to
[−1, 1]. With l = sqrt(x_1² + x_2²) the shared reward is, exactly as printed,

    r(l) = 0.5 (cos(15 l) + 1)   if l < 0.2
           0                     if 0.2 ≤ l ≤ 0.6
           0.5 (l − 0.6)²        if l > 0.6,

evaluated at the positions *after* the move. The centre (r = 1) is the global optimum; the corners (r ≈ 0.33)
are local optima that uncoordinated agents drift to: from a random dataset, moving towards the centre looks
bad to agent i because its teammate usually does not.

Design choices (the paper does not print them):

- Start positions are uniform in [−1, 1]²; episodes last ``episode_limit`` = 25 steps (the MPE default; the
  episode ends by timeout, never by a terminal state). Table 9's returns (46.5) exceed 25, the largest return a
  25-step episode can have, so the paper's episodes must be longer; absolute returns are therefore not
  comparable with Table 9, only the ordering of methods is. ``DifferentialGame(episode_limit=...)`` changes it.
- Full observation (``differential``): each agent observes ``[x_1, x_2]``. Partial observation
  (``differential-partial``): agent i observes ``[x_i]``. The state is always ``[x_1, x_2]``.
- Evaluation mode (``EnvSpec.deterministic_eval``): greedy. The paper does not say how Table 9 evaluates its
  policies (MATD3+BC's actors are deterministic anyway); greedy is the default where a paper says nothing.
- Dataset ``random``: uniform random actions of both agents (the paper's "uniform random policies"), in whole
  episodes, ``size`` transitions (paper: 1e6; the default here is 1e5 to keep it quick on a CPU).
- Per-algorithm defaults (``EnvSpec.algo_defaults``, under the user's options) for Table 9's two columns,
  MATD3+BC (``matd3bc``) and decentralized TD3+BC (``td3bc-dec``): 64-unit networks, γ = 0.9, τ = 0.02, learning
  rates 1e-3 and 3,000 updates. The paper prints no Differential-Game hyperparameters; these are the small-scale
  settings of ``benchmarks/decentralized_dg.py`` under which marlkit reproduces Table 9's ordering (MATD3+BC
  above TD3+BC with full and with partial observation; docs/benchmarks.md has the measured table).
"""

from __future__ import annotations

import numpy as np

from marlkit.data.dataset import MultiAgentDataset
from marlkit.envs.base import AlgoDefaults, EnvSpec, MultiAgentEnv, StepResult

__all__ = ["DifferentialGame", "differential_reward", "make_full", "make_partial", "reward_grid", "trajectories"]

MAX_SPEED = 0.1

_TABLE9 = {"hidden": (64, 64), "gamma": 0.9, "tau": 0.02, "lr": 1e-3, "actor_lr": 1e-3, "vae_lr": 1e-3,
           "vae_pretrain_steps": 300}
_TABLE9_SOURCE = "offline-decentralized-marl.md Table 9 ordering; settings of benchmarks/decentralized_dg.py"
#: The Differential Game's per-algorithm defaults (module docstring).
ALGO_DEFAULTS = {algo: AlgoDefaults(_TABLE9, 3000, _TABLE9_SOURCE) for algo in ("matd3bc", "td3bc-dec")}


def differential_reward(x1, x2) -> np.ndarray:
    """The shared reward r(l), l = sqrt(x_1² + x_2²) (Sec. 5.4); array-like inputs broadcast."""
    l = np.sqrt(np.asarray(x1, dtype=np.float64) ** 2 + np.asarray(x2, dtype=np.float64) ** 2)
    return np.where(l < 0.2, 0.5 * (np.cos(15.0 * l) + 1.0), np.where(l <= 0.6, 0.0, 0.5 * (l - 0.6) ** 2))


def reward_grid(resolution: int = 201) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reward landscape on a ``resolution``² grid of [−1, 1]² (the paper's Fig. 2): ``(x1, x2, r)``, each
    ``[resolution, resolution]`` with x_1 varying along columns."""
    xs = np.linspace(-1.0, 1.0, resolution)
    x1, x2 = np.meshgrid(xs, xs)
    return x1, x2, differential_reward(x1, x2)


class DifferentialGame(MultiAgentEnv):
    """The two-agent Differential Game, vectorised over ``n_envs`` episodes.

    Args:
        partial: agent i observes only its own position (else both).
        episode_limit: steps per episode (25).

    Raises:
        ValueError: for a non-positive ``episode_limit`` or actions of the wrong shape.
    """

    datasets = ("random",)

    def __init__(self, partial: bool = False, episode_limit: int = 25):
        if not isinstance(episode_limit, int) or episode_limit <= 0:
            raise ValueError(f"episode_limit must be a positive integer, got {episode_limit!r}")
        self.partial = partial
        name = "differential-partial" if partial else "differential"
        self.spec = EnvSpec(name=name, n_agents=2, obs_dim=1 if partial else 2, state_dim=2, act_dim=1,
                            episode_limit=episode_limit, gamma=0.99, default_steps=20_000,
                            algo_defaults=ALGO_DEFAULTS)
        self._pos = np.zeros((1, 2))
        self._t = 0
        self._rng = np.random.default_rng(0)

    def observe(self, pos: np.ndarray) -> np.ndarray:
        """Observations ``[E, 2, obs_dim]`` of positions ``pos [E, 2]``."""
        pos = pos.astype(np.float32)
        if self.partial:
            return pos[:, :, None]
        return np.repeat(pos[:, None, :], 2, axis=1)

    def reset(self, n_envs: int = 1, seed: int | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._pos = self._rng.uniform(-1.0, 1.0, size=(n_envs, 2))
        self._t = 0
        return self.observe(self._pos), self._pos.astype(np.float32), None

    def transition(self, pos: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Next positions and rewards for positions ``[E, 2]`` and actions ``[E, 2, 1]`` (or ``[E, 2]``) in [−1, 1]."""
        actions = np.asarray(actions, dtype=np.float64).reshape(pos.shape[0], 2)
        new = np.clip(pos + MAX_SPEED * np.clip(actions, -1.0, 1.0), -1.0, 1.0)
        return new, differential_reward(new[:, 0], new[:, 1])

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.asarray(actions)
        E = self._pos.shape[0]
        if actions.shape not in ((E, 2, 1), (E, 2)):
            raise ValueError(f"actions must have shape [{E}, 2, 1], got {actions.shape}")
        self._pos, reward = self.transition(self._pos, actions)
        self._t += 1
        timeout = np.full(E, self._t >= self.spec.episode_limit)
        return StepResult(self.observe(self._pos), self._pos.astype(np.float32), None, reward.astype(np.float32),
                          np.zeros(E, bool), timeout)

    def make_dataset(self, name: str = "random", size: int = 100_000, seed: int = 0) -> MultiAgentDataset:
        """``size`` transitions of uniform random behavior in whole episodes (the last one cut at ``size``).

        Raises:
            KeyError: for an unknown dataset name.
            ValueError: if ``size`` is not a positive integer.
        """
        if name not in self.datasets:
            raise KeyError(f"unknown dataset {name!r} for env {self.spec.name!r}; valid: {list(self.datasets)}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"dataset size must be a positive integer, got {size!r}")
        H = self.spec.episode_limit
        n_eps = -(-int(size) // H)
        rng = np.random.default_rng(seed)
        pos = rng.uniform(-1.0, 1.0, size=(n_eps, 2))
        acts = rng.uniform(-1.0, 1.0, size=(H, n_eps, 2))
        states, next_states, rewards = [], [], []
        for t in range(H):  # vectorised over episodes; H steps
            new, r = self.transition(pos, acts[t])
            states.append(pos)
            next_states.append(new)
            rewards.append(r)
            pos = new
        # episode-major order: [n_eps, H, ...] flattened
        S = np.stack(states, 1).reshape(-1, 2)[:size]
        S2 = np.stack(next_states, 1).reshape(-1, 2)[:size]
        R = np.stack(rewards, 1).reshape(-1)[:size]
        A = acts.transpose(1, 0, 2).reshape(-1, 2)[:size]
        t_idx = np.tile(np.arange(H), n_eps)[:size]
        return MultiAgentDataset(
            observations=self.observe(S), states=S.astype(np.float32),
            actions=A[:, :, None].astype(np.float32), rewards=R.astype(np.float32),
            next_observations=self.observe(S2), next_states=S2.astype(np.float32),
            terminals=np.zeros(len(R), bool), timeouts=t_idx == H - 1, episode_starts=t_idx == 0,
            meta={"env": self.spec.name, "dataset": name, "behavior": "uniform random actions in [-1, 1]",
                  "seed": int(seed), "episode_limit": H},
        )


def make_full() -> DifferentialGame:
    """Registry factory: the full-observation Differential Game (``differential``)."""
    return DifferentialGame(partial=False)


def make_partial() -> DifferentialGame:
    """Registry factory: the partial-observation Differential Game (``differential-partial``)."""
    return DifferentialGame(partial=True)


def trajectories(algo, env: DifferentialGame, episodes: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Greedy rollouts of a trained algorithm: positions ``[episodes, T + 1, 2]`` (start included) and rewards
    ``[episodes, T]``, from the env's seeded random starts.

    Raises:
        ValueError: if ``episodes`` is not positive.
    """
    import torch

    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    obs, state, _ = env.reset(n_envs=episodes, seed=seed)
    path, rewards = [state.copy()], []
    for _ in range(env.spec.episode_limit):
        with torch.no_grad():
            act = algo.act(torch.as_tensor(obs, device=algo.device), None, deterministic=True).cpu().numpy()
        res = env.step(act)
        path.append(res.state.copy())
        rewards.append(res.reward)
        obs = res.obs
        if res.timeout.all():
            break
    return np.stack(path, 1), np.stack(rewards, 1)
