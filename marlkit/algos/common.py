"""Reusable per-agent pieces of the offline single-agent learners BCQ, CQL and TD3+BC, batched over agents.

Every function works on the agent-batched layout of marlkit (``[B, N, ...]``, or ``[E, B, N]`` for twin critics)
and never loops over agents. Decentralized learners (:mod:`marlkit.algos.mabcq`, :mod:`marlkit.algos.macql`,
:mod:`marlkit.algos.matd3bc`) and centralized ones with a mixer reuse them.

Contents:

- :class:`PerturbationActor` and :func:`bcq_select_continuous`: continuous BCQ (Fujimoto et al. 2019, Sec. 4):
  ``π(s) = argmax_{a^j + ξ(s, a^j)} Q(s, a^j + ξ(s, a^j))`` with ``a^j ~ G(s)``, ``ξ ∈ [-Φ, Φ]``.
- :func:`bcq_allowed_actions` and :func:`bcq_greedy_discrete`: discrete BCQ (Fujimoto et al. 2019b):
  actions with ``G(a|s) / max_a G(a|s) > τ`` are allowed, the greedy action is the best allowed one.
- :func:`cql_logsumexp_discrete` and :func:`cql_logsumexp_continuous`: the CQL(H) regularizer
  ``log Σ_a exp Q(s, a) − Q(s, a_data)`` (Kumar et al. 2020, Eq. 4), exact for discrete actions and by importance
  sampling for continuous ones.
- :func:`td3bc_actor_loss`: ``−λ Q(s, π(s)) / mean|Q| + (π(s) − a)²`` (Fujimoto & Gu 2021, Eq. 3).
- :func:`weighted_mse`: the (λ-weighted) TD loss.
- :func:`gaussian_log_density`: log-densities of the noisy policy proposals of the continuous CQL(H) estimate
  (Kumar et al. 2020, App. F; OMAR).
- :func:`candidate_values`: local values of K candidate actions per state in one critic call (BCQ's candidates,
  CQL's proposals, OMAR's CEM samples).
- :func:`categorical_inverse_cdf`: categorical samples from pre-drawn uniforms (InSPO's resampling, OMAR's
  discrete CEM), so losses stay free of random draws.
- :func:`importance_resample`: importance resampling of a minibatch ∝ per-agent ratios (inspo.md Eq. 15;
  AlberDICE's resampling by the teammates' policy ratio), from pre-drawn uniforms.
- :func:`weighted_bc_loss`: weighted behavior cloning of the agents' product policy, ``−E_D[w Σ_i log π_i]``
  (ComaDICE Eq. 12; OptiDICE's weighted-BC policy extraction).
- :func:`batch_softmax_weights`: ICQ's implicit-constraint weights ``exp(x/α)/Z`` with ``Z`` estimated on the
  minibatch (Yang et al. 2021, Eq. 8 and 11).
- :func:`attach_next_actions`: the dataset's next action ``a'`` for in-sample (SARSA-style) targets.
- :class:`MixedCriticConfig` and :class:`MixedCriticLearner`: local critics ``Q_i`` under the linear value
  decomposition ``Q_tot = Σ_i w_i(s) Q_i + b(s)`` with Polyak targets, the critic skeleton of the centralized
  baselines BCQ-MA, CQL-MA and ICQ (omiga.md Sec. 5.2, App. C.2).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from marlkit.algos.base import AlgoConfig, Algorithm, ranged
from marlkit.data.dataset import DatasetError
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.critics import LocalQ
from marlkit.nets.mixers import LinearMixer
from marlkit.nets.mlp import MultiAgentMLP
from marlkit.nets.policies import masked_logits

__all__ = [
    "MixedCriticConfig",
    "MixedCriticLearner",
    "PerturbationActor",
    "attach_next_actions",
    "batch_softmax_weights",
    "bcq_allowed_actions",
    "bcq_greedy_discrete",
    "bcq_select_continuous",
    "candidate_values",
    "categorical_inverse_cdf",
    "cql_logsumexp_continuous",
    "cql_logsumexp_discrete",
    "gaussian_log_density",
    "td3bc_actor_loss",
    "twin_soft_min",
    "weighted_mse",
]


class PerturbationActor(nn.Module):
    """BCQ's perturbation model ξ_φ(s, a) ∈ [−Φ, Φ], batched over agents (Fujimoto et al. 2019, Sec. 4.1).

    ``forward(obs, actions)`` returns the perturbed action ``clip(a + Φ·tanh(f_φ(o_i, a_i)), −1, 1)``.

    Shapes: ``obs [..., N, obs_dim]``, ``actions [..., N, act_dim]`` in [-1, 1] → ``[..., N, act_dim]``
    (extra leading dims such as a candidate axis are flattened into the batch).

    Args:
        n_agents, obs_dim, act_dim: shapes.
        phi: Φ, the largest perturbation (0.05 in offline-decentralized-marl.md App. B Table 12).
        hidden, share_params: see :class:`~marlkit.nets.mlp.MultiAgentMLP`.

    Raises:
        ValueError: if ``phi`` is negative.
    """

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, phi: float = 0.05,
                 hidden: Sequence[int] = (256, 256), share_params: bool = False):
        super().__init__()
        if phi < 0:
            raise ValueError(f"perturbation range phi must be >= 0, got {phi}")
        self.phi = float(phi)
        self.net = MultiAgentMLP(n_agents, obs_dim + act_dim, act_dim, hidden, share_params)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        xi = self.phi * torch.tanh(self.net(torch.cat([obs, actions], -1)))
        return (actions + xi).clamp(-1.0, 1.0)


def bcq_select_continuous(obs: torch.Tensor, vae, perturb: PerturbationActor,
                          q_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n: int = 10,
                          generator: torch.Generator | None = None,
                          noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BCQ's policy: sample ``n`` actions from the generative model, perturb them, keep the best by Q.

    ``π_i(s) = argmax_{a^j + ξ_i(s, a^j)} Q_i(s, a^j + ξ_i(s, a^j))``, ``a^j ~ G_i(s)``, j = 1..n
    (offline-decentralized-marl.md Sec. 3.4; BCQ, Fujimoto et al. 2019, Alg. 1).

    Args:
        obs: ``[B, N, obs_dim]``.
        vae: a :class:`~marlkit.nets.vae.ConditionalVAE` with condition = observation, target = action.
        perturb: ξ (target ξ̂ for bootstrapping).
        q_fn: ``(obs [n, B, N, o], actions [n, B, N, a]) -> [n, B, N]`` value of each candidate.
        n: number of candidates (10 in Table 12).
        generator: where the decoder's prior samples come from (acting), unless ``noise`` is given.
        noise: the prior draws ``[n, B, N, latent_dim]`` (pure losses draw them in advance).

    Returns:
        ``(actions [B, N, act_dim], values [B, N])``: the chosen action of every agent and its value.

    Raises:
        ValueError: if ``n`` is not positive.
    """
    if n <= 0:
        raise ValueError(f"number of BCQ candidates n must be positive, got {n}")
    rep = obs.unsqueeze(0).expand(n, *obs.shape)  # [n, B, N, o]
    cand = perturb(rep, vae.decode(rep, generator=generator, noise=noise))  # [n, B, N, a]
    values = q_fn(rep, cand)  # [n, B, N]
    best = values.argmax(0)  # [B, N]
    idx = best.unsqueeze(0).unsqueeze(-1).expand(1, *cand.shape[1:])
    return cand.gather(0, idx).squeeze(0), values.gather(0, best.unsqueeze(0)).squeeze(0)


def candidate_values(q: LocalQ, obs: torch.Tensor, actions: torch.Tensor, member: int | None = None) -> torch.Tensor:
    """Local values ``Q_i(o_i, a^k_i)`` of K candidate actions per state, the candidate axis folded into the batch
    so that every candidate is valued in one batched call of the continuous critic ``q``.

    Shapes: ``obs [B, N, o]`` (shared by the candidates) or ``[K, B, N, o]``, ``actions [K, B, N, d]`` →
    ``[E, K, B, N]`` for an ensemble of E critics (``[K, B, N]`` for one, or for ``member=e``: critic e alone).
    """
    K, B, N = actions.shape[:3]
    obs = obs.expand(K, B, N, obs.shape[-1]).reshape(K * B, N, -1)
    actions = actions.reshape(K * B, N, -1)
    values = q(obs, actions) if member is None else q.member(member, obs, actions)  # [(E,) K·B, N]
    return values.reshape(*values.shape[:-2], K, B, N)


def categorical_inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Categorical samples from pre-drawn uniforms by the inverse CDF: the category whose CDF interval holds u.

    The rule of ``torch.multinomial(..., replacement=True)`` on CPU (float64 uniforms against the normalised
    cumulative probabilities), so the same uniforms give the same samples; pure, hence usable under ``vmap``.

    Shapes: ``probs [..., A]`` (non-negative, not necessarily normalised), ``u [..., S]`` float64 in [0, 1) →
    int64 ``[..., S]``.
    """
    cdf = probs.cumsum(-1)
    cdf = (cdf / cdf[..., -1:]).double()
    idx = (cdf.unsqueeze(-2) < u.unsqueeze(-1)).sum(-1)
    return idx.clamp(max=probs.shape[-1] - 1)


def importance_resample(log_rho: torch.Tensor, u: torch.Tensor | None = None,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Importance resampling (Schlegel et al. 2019; inspo.md Eq. 15): row indices drawn ∝ ρ, per agent.

    Args:
        log_rho: ``[B, N]`` log importance ratios of every row for every agent.
        u: float64 uniforms ``[N, B]`` (one per draw); drawn from ``generator`` when None. The draws are the
            inverse CDF of ρ at ``u`` (:func:`categorical_inverse_cdf`: the samples ``torch.multinomial`` gives for
            the same uniforms), so the function is pure given ``u``.

    Returns:
        ``[B, N]`` int64: column i holds B indices drawn with replacement with probabilities ∝ ρ^i.
    """
    probs = torch.softmax(log_rho.transpose(0, 1), dim=-1)  # [N, B]
    if u is None:
        u = torch.rand(probs.shape, dtype=torch.float64, device=probs.device, generator=generator)
    return categorical_inverse_cdf(probs, u).transpose(0, 1)


def weighted_bc_loss(policy: nn.Module, batch: dict, w: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Weighted BC of the product policy: ``−E_D[w Σ_i log π_i(a_i|o_i)] / N`` (comadice.md Eq. 12; OptiDICE's
    weighted-BC extraction, Lee et al. 2021 Sec. 4.2, with the joint ratio shared by all agents).

    Args:
        policy: a marlkit policy head (``log_prob(obs, actions, avail) -> [B, N]``).
        batch: the minibatch (``observations``, ``actions``, optional ``avail_actions``).
        w: occupancy ratios ``[B]`` (detached, ≥ 0).
        normalize: divide by the minibatch mean of w (same minimiser; step size independent of E[w]).

    Returns:
        scalar loss.
    """
    logp = policy.log_prob(batch["observations"], batch["actions"], batch.get("avail_actions"))
    loss = -(w.unsqueeze(-1) * logp).mean()
    return loss / w.mean().clamp_min(1e-8) if normalize else loss


def bcq_allowed_actions(behavior_probs: torch.Tensor, threshold: float,
                        avail: torch.Tensor | None = None) -> torch.Tensor:
    """Discrete BCQ's action filter: ``G(a|s) / max_a G(a|s) > τ`` (Fujimoto et al. 2019b, Eq. 8).

    Args:
        behavior_probs: the learned behavior model G_ω(·|o_i), ``[..., A]``.
        threshold: τ in [0, 1); τ = 0 allows every action the model gives positive mass (plain Q-learning on the
            support), τ → 1 approaches behavior cloning.
        avail: optional bool ``[..., A]`` of legal actions.

    Returns:
        bool ``[..., A]``; the behavior model's most likely (legal) action is always allowed.
    """
    p = behavior_probs if avail is None else behavior_probs * avail
    ratio = p / p.amax(-1, keepdim=True).clamp_min(1e-12)
    allowed = ratio > threshold
    return allowed | (ratio >= 1.0)


def bcq_greedy_discrete(q: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """``argmax_{a allowed} Q(s, a)``: ``q [..., A]``, ``allowed`` bool ``[..., A]`` → int64 ``[...]``."""
    return masked_logits(q, allowed).argmax(-1)


def cql_logsumexp_discrete(q_all: torch.Tensor, q_data: torch.Tensor,
                           avail: torch.Tensor | None = None) -> torch.Tensor:
    """CQL(H) regularizer for discrete actions, per sample: ``log Σ_a exp Q(s, a) − Q(s, a_data)``.

    Kumar et al. 2020, Eq. 4 (the inner maximisation over μ with an entropy regularizer gives the logsumexp).

    Shapes: ``q_all [..., A]``, ``q_data [...]``, ``avail`` bool ``[..., A]`` or None → ``[...]``.
    """
    return torch.logsumexp(masked_logits(q_all, avail), -1) - q_data


def cql_logsumexp_continuous(q_samples: torch.Tensor, log_density: torch.Tensor,
                             q_data: torch.Tensor) -> torch.Tensor:
    """CQL(H) regularizer for continuous actions by importance sampling, per sample.

    ``log E_{a~ρ}[exp(Q(s,a)) / ρ(a)] − Q(s, a_data) ≈ logsumexp_j(Q(s, a^j) − log ρ(a^j)) − log M − Q(s, a_data)``
    (Kumar et al. 2020, App. F: the proposal ρ mixes uniform actions and the current policy's actions).

    Shapes: ``q_samples [M, ...]`` values of M sampled actions, ``log_density [M, ...]`` their log-density under
    the proposal they came from, ``q_data [...]`` → ``[...]``.
    """
    m = q_samples.shape[0]
    return torch.logsumexp(q_samples - log_density, 0) - math.log(m) - q_data


def td3bc_actor_loss(q_pi: torch.Tensor, pi_actions: torch.Tensor, data_actions: torch.Tensor,
                     alpha: float = 2.5, weights: torch.Tensor | None = None) -> torch.Tensor:
    """TD3+BC actor loss ``E[w · (−λ Q(s, π(s)) + ‖π(s) − a‖²)]`` with ``λ = α / mean|Q(s, π(s))|`` (detached).

    Fujimoto & Gu 2021, Eq. 3 (α = 2.5). ``weights`` (e.g. λ_tn·λ_vd of offline-decentralized-marl.md Eq. 2)
    multiply each sample's whole objective; None means 1.

    Shapes: ``q_pi [B, N]``, ``pi_actions`` and ``data_actions [B, N, act_dim]``, ``weights [B, N]`` → scalar.
    """
    lam = alpha / q_pi.abs().mean().detach().clamp_min(1e-6)
    per = -lam * q_pi + (pi_actions - data_actions).pow(2).sum(-1)
    if weights is not None:
        per = weights * per
    return per.mean()


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``E[w · (pred − target)²]`` over all entries; ``weights`` broadcast to ``pred`` (None means 1).

    With twin critics ``pred [E, B, N]`` and ``target``/``weights [B, N]`` each critic's loss is summed over E
    (the TD3/BCQ convention) and averaged over samples and agents.
    """
    err = (pred - target).pow(2)
    if weights is not None:
        err = weights * err
    return err.mean() * (pred.shape[0] if pred.dim() > target.dim() else 1)


def twin_soft_min(q: torch.Tensor, lmbda: float = 0.75) -> torch.Tensor:
    """BCQ's soft clipped double-Q ``λ min_j Q_j + (1 − λ) max_j Q_j`` over the twin axis ``q [2, ...]``
    (Fujimoto et al. 2019, Eq. 13; λ = 1 gives TD3's clipped double-Q)."""
    return lmbda * q.amin(0) + (1.0 - lmbda) * q.amax(0)


def gaussian_log_density(noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """``log N(noise; 0, σ² I)`` summed over the last dim: ``[..., d] → [...]``."""
    d = noise.shape[-1]
    return -0.5 * (noise / sigma).pow(2).sum(-1) - d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))


def batch_softmax_weights(x: torch.Tensor, temperature: float, dim: int = 0) -> torch.Tensor:
    """ICQ's importance weights ``exp(x/α) / Z`` with ``Z`` the batch mean of ``exp(x/α)``: ``B·softmax(x/α)``.

    The weights average to 1 along ``dim`` (the batch axis) and are detached. Source: Yang et al. 2021, Eq. 8
    (critic) and Eq. 11 (actor); the batch normaliser follows the official ICQ-MA code.
    """
    return (x.shape[dim] * torch.softmax(x / temperature, dim=dim)).detach()


def attach_next_actions(sampler: DeviceSampler) -> None:
    """Add ``next_actions`` (the action the dataset took in s') and ``has_next_action`` to the sampler's tensors.

    Row t's successor is row t+1 when the transition is neither terminal nor a timeout and row t+1 starts where
    row t ends (``observations[t+1] == next_observations[t]``). Rows without a successor in the data (terminal
    rows, timeouts, the last row, shuffled data) get ``has_next_action = 0``; in-sample targets then cannot
    bootstrap from them (for terminals they must not anyway).

    Raises:
        DatasetError: if no non-terminal row has a successor although the dataset has non-terminal rows (the
            transitions are not stored in episode order).
    """
    t = sampler.tensors
    size = sampler.size
    actions = t["actions"]
    nxt = torch.zeros_like(actions)
    has = torch.zeros(size, device=actions.device)
    if size > 1:
        cont = (1 - t["terminals"][:-1]) * (1 - t["timeouts"][:-1])
        same = (t["observations"][1:] - t["next_observations"][:-1]).abs().flatten(1).amax(1) <= 1e-6
        ok = cont.bool() & same
        nxt[:-1] = torch.where(ok.view(-1, *[1] * (actions.dim() - 1)), actions[1:], nxt[:-1])
        has[:-1] = ok.float()
        nonterminal = int(cont.sum().item())
        if nonterminal > 0 and int(ok.sum().item()) == 0:
            raise DatasetError("next_actions: no non-terminal transition is followed by its successor row; "
                               "in-sample targets need transitions stored in episode order")
    t["next_actions"] = nxt
    t["has_next_action"] = has


@dataclass
class MixedCriticConfig(AlgoConfig):
    """Hyperparameters of the mixed critic shared by BCQ-MA, CQL-MA and ICQ.

    Attributes:
        tau: target-network Polyak rate (0.005, omiga.md Tables 5–6).
        mixer_hidden: hidden sizes of the mixer's weight/bias nets (64, omiga.md Tables 5–6).
    """

    tau: float = ranged(0.005, "(0, 1]")
    mixer_hidden: tuple[int, ...] = (64,)


class MixedCriticLearner(Algorithm):
    """Local critics ``Q_i`` mixed by the linear value decomposition ``Q_tot(s, a) = Σ_i w_i(s) Q_i(o_i, a_i) + b(s)``,
    ``w_i(s) ≥ 0`` (omiga.md Sec. 5.2 and App. C.2), with Polyak target copies ``Q̄_i`` and ``Q̄_tot``'s mixer.

    The critic skeleton of the centralized baselines :mod:`~marlkit.algos.bcq_ma`, :mod:`~marlkit.algos.cql_ma`
    and :mod:`~marlkit.algos.icq`: a subclass calls :meth:`build_mixed_critic` in ``__init__``, builds its losses
    with :meth:`mixed_td_target` / :meth:`twin_mixed_td_loss`, and ends every update with :meth:`update_targets`.
    Networks (state-dict names): ``mixer``, ``q``, ``q_target``, ``mixer_target``.
    """

    config: MixedCriticConfig

    def build_mixed_critic(self, ensemble: int = 1) -> None:
        """Create ``mixer`` (:class:`~marlkit.nets.mixers.LinearMixer` on the state, ``mixer_hidden``), ``q``
        (:class:`~marlkit.nets.critics.LocalQ` for the spec's action space, ``ensemble`` critics per agent) and their
        frozen copies ``q_target``, ``mixer_target`` (in that order of random initialisation)."""
        c, spec = self.config, self.spec
        self.mixer = LinearMixer(spec.state_dim, spec.n_agents, c.mixer_hidden)
        self.q = LocalQ.for_spec(spec, c.hidden, c.share_params, ensemble)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.mixer_target = copy.deepcopy(self.mixer).requires_grad_(False)

    def mixed_td_target(self, batch: Batch, v_next: torch.Tensor) -> torch.Tensor:
        """``y = r + γ (1 − d) Q̄_tot(s', a')`` with ``Q̄_tot(s', a') = Σ_i w̄_i(s') v_next_i + b̄(s')``.

        ``v_next [B, N]`` holds the local target values of the next joint action (each algorithm's own choice of
        ``a'``); call under ``torch.no_grad()``. Returns ``[B]``.
        """
        return batch["rewards"] + self.config.gamma * (1 - batch["terminals"]) * self.mixer_target(
            v_next, batch["next_states"])

    def twin_mixed_td_loss(self, q: torch.Tensor, y: torch.Tensor,
                           states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``Σ_k E[(Q^k_tot(s, a) − y)²]`` for the local values of E critics ``q [E, B, N]`` (each mixed by the online
        mixer), target ``y [B]``, ``states [B, state_dim]``. Returns the loss and ``Q_tot [E, B]``."""
        q_tot = self.mixer(q, states)
        return (q_tot - y).pow(2).mean(-1).sum(), q_tot

    def update_targets(self) -> None:
        """Polyak step ``θ̄ ← (1 − τ) θ̄ + τ θ`` of ``q_target`` and ``mixer_target``."""
        self.soft_update(self.q_target, self.q, self.config.tau)
        self.soft_update(self.mixer_target, self.mixer, self.config.tau)


def require_initial_states(sampler: DeviceSampler, algo: str, term: str) -> None:
    """Check that the dataset marks initial states s₀, which DICE objectives need for their (1 − γ) E[ν(s₀)] term.

    Args:
        algo: the algorithm's name, for the message; term: the term that needs s₀ (e.g. "E[nu_tot(s0)] of Eq. 11").

    Raises:
        DatasetError: if ``episode_starts`` is never True.
    """
    if sampler.initial_index.numel() == 0:
        raise DatasetError(f"episode_starts: {algo} needs initial states s0 (the {term}), but the dataset "
                           f"marks none")
