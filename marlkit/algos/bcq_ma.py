"""BCQ-MA: batch-constrained Q-learning (Fujimoto et al. 2019) per agent with the linear value decomposition
``Q_tot(s, a) = Σ_i w_i(s) Q_i(o_i, a_i) + b(s)``, ``w_i ≥ 0`` (omiga.md Sec. 5.2 and App. C.2: "the policy
constraint of BCQ-MA [is] imposed on the local Q-value").

Because ``w_i ≥ 0``, maximising ``Q_tot`` over a joint action factorises into each agent maximising its own
``Q_i`` over its own *constrained* candidate set, so both the TD target and the decentralised policies use
per-agent maxima:

- discrete (Fujimoto et al. 2019b, "Benchmarking batch deep RL algorithms", Eq. 9): an imitation model
  ``G_ω(a_i|o_i)`` restricts agent i to actions with ``G_ω(a|o)/max_a' G_ω(a'|o) > τ`` (τ = 0.3, omiga.md
  Table 6); ``π_i(o_i) = argmax`` of ``Q_i`` over those actions;
- continuous (Fujimoto et al. 2019, Alg. 1): a conditional VAE ``G_ω(a_i|o_i)`` (64 wide, as comadice.md's BCQ
  baseline) proposes n = 10 actions, a
  perturbation model ξ_φ shifts each by at most Φ = 0.05, and the best under ``Q_i`` is taken; twin critics
  with soft clipped double-Q (λ = 0.75) give the target.

Training targets: ``y = r + γ (1 − d) Q̄_tot(s', a'*)`` with ``a'*_i`` the constrained per-agent maximiser and
``Q̄`` target networks (Polyak τ = 0.005, omiga.md Table 5).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from marlkit.algos.base import Stage, ranged
from marlkit.algos.common import (
    MixedCriticConfig,
    MixedCriticLearner,
    PerturbationActor,
    bcq_allowed_actions,
    bcq_greedy_discrete,
    bcq_select_continuous,
    candidate_values,
    twin_soft_min,
)
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.policies import CategoricalPolicy, masked_logits
from marlkit.nets.vae import ConditionalVAE

__all__ = ["BCQMA", "BCQMAConfig"]


@dataclass
class BCQMAConfig(MixedCriticConfig):
    """BCQ-MA hyperparameters (``tau``, ``mixer_hidden``: see :class:`~marlkit.algos.common.MixedCriticConfig`).

    Attributes:
        threshold: discrete action filter τ (0.3, omiga.md Table 6 "Threshold (BCQ-MA)").
        logit_reg: weight of the L2 penalty on the imitation logits (0.01, discrete BCQ official code).
        phi: continuous perturbation bound Φ (0.05, Fujimoto et al. 2019, Sec. 6).
        lmbda: soft clipped double-Q weight λ on the min of the twin critics (0.75, Fujimoto et al. 2019).
        n_candidates: actions sampled from the VAE per state for the max (10, Fujimoto et al. 2019).
        vae_hidden: VAE hidden sizes ((64, 64): the BCQ baseline of comadice.md's code, ``runner/bcq/continuous.py``
            of the ComaDICE repository; single-agent BCQ's official code uses (750, 750), which makes the VAE about
            three quarters of an update's arithmetic at multi-agent MuJoCo shapes).
        huber: Huber instead of squared TD error for discrete actions (off; discrete BCQ's official code uses
            Huber, but on payoffs of ±20 (M-NE) Huber turns the mixer's regression into a median fit whose
            local utilities tie, so the default is the squared error of the value-decomposition TD loss).
    """

    threshold: float = ranged(0.3, "[0, 1)")
    logit_reg: float = ranged(0.01, "[0, inf)")
    phi: float = ranged(0.05, "[0, inf)")
    lmbda: float = ranged(0.75, "[0, 1]")
    n_candidates: int = ranged(10, "[1, inf)")
    vae_hidden: tuple[int, ...] = (64, 64)
    huber: bool = False


class BCQMA(MixedCriticLearner):
    """BCQ-MA: per-agent BCQ policy constraint on local Q_i, linear mixer for Q_tot (discrete and continuous)."""

    name = "bcq-ma"
    Config = BCQMAConfig

    def __init__(self, spec, config: BCQMAConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c, n = self.config, spec.n_agents
        self.build_mixed_critic(ensemble=1 if spec.discrete else 2)  # twin critics for continuous actions
        if spec.discrete:
            self.imitation = CategoricalPolicy(n, spec.obs_dim, spec.n_actions, c.hidden, c.share_params)
        else:
            self.vae = ConditionalVAE(n, spec.obs_dim, spec.act_dim, hidden=c.vae_hidden,
                                      share_params=c.share_params)
            self.actor = PerturbationActor(n, spec.obs_dim, spec.act_dim, c.phi, c.hidden, c.share_params)
            self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.to(self.device)
        if spec.discrete:
            self.opt = self.make_adam(self.q, self.mixer, self.imitation)
        else:
            self.critic_opt = self.make_adam(self.q, self.mixer)
            self.actor_opt = self.make_adam(self.actor)
            self.vae_opt = self.make_adam(self.vae)

    # ------------------------------------------------------------------ discrete
    def allowed(self, obs: torch.Tensor, avail: torch.Tensor | None) -> torch.Tensor:
        """BCQ's candidate set per agent: bool ``[B, N, A]`` (threshold on G_ω(a|o)/max G_ω)."""
        return bcq_allowed_actions(self.imitation.probs(obs, avail), self.config.threshold, avail)

    def discrete_td_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared (or Huber, ``huber=True``) error of ``Q_tot(s, a)`` against ``r + γ(1−d) Q̄_tot(s', a'*)``.

        ``a'*_i = argmax`` of the online ``Q_i(o'_i, ·)`` over the allowed set (double-DQN style, as in discrete
        BCQ), valued by the target network. Returns the loss and mean ``Q_tot``.
        """
        with torch.no_grad():
            nobs, navail = batch["next_observations"], batch.get("next_avail_actions")
            a_next = bcq_greedy_discrete(self.q(nobs), self.allowed(nobs, navail))  # [B, N]
            y = self.mixed_td_target(batch, self.q_target.taken(nobs, a_next))
        q_tot = self.mixer(self.q.taken(batch["observations"], batch["actions"]), batch["states"])
        loss = F.smooth_l1_loss(q_tot, y) if self.config.huber else F.mse_loss(q_tot, y)
        return loss, q_tot.mean()

    def imitation_loss(self, batch: Batch) -> torch.Tensor:
        """``−E log G_ω(a_i|o_i) + reg·E[logits²]`` (discrete BCQ's imitation network)."""
        logits = self.imitation.net(batch["observations"])
        logp = torch.log_softmax(masked_logits(logits, batch.get("avail_actions")), -1)
        nll = -logp.gather(-1, batch["actions"].long().unsqueeze(-1)).mean()
        return nll + self.config.logit_reg * logits.pow(2).mean()

    # ------------------------------------------------------------------ continuous
    def select(self, obs: torch.Tensor, actor, critic, noise: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """BCQ's constrained per-agent maximum: ``(actions [B, N, d], values [B, N])``.

        ``n_candidates`` VAE proposals (prior draws ``noise [n, B, N, latent]``, or from ``generator``) are
        perturbed by ``actor`` and valued by ``critic``'s soft clipped double-Q ``λ min_k Q^k + (1 − λ) max_k Q^k``
        (Fujimoto et al. 2019, Eq. 13).
        """
        def q_fn(o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # [K, B, N, ·] -> [K, B, N]
            return twin_soft_min(candidate_values(critic, o, a), self.config.lmbda)

        return bcq_select_continuous(obs, self.vae, actor, q_fn, self.config.n_candidates, generator, noise)

    def continuous_td_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Σ over the twins of MSE(Q^k_tot(s, a), y), ``y = r + γ(1−d) Q̄_tot(s', a'*)`` (BCQ Alg. 1, mixed)."""
        with torch.no_grad():
            _, v_next = self.select(batch["next_observations"], self.actor_target, self.q_target,
                                    batch["noise/candidates"])  # [B, N]
            y = self.mixed_td_target(batch, v_next)
        q = self.q(batch["observations"], batch["actions"])  # [2, B, N]
        td, q_tot = self.twin_mixed_td_loss(q, y, batch["states"])
        return td, q_tot.mean()

    def perturbation_loss(self, batch: Batch) -> torch.Tensor:
        """``−E[Σ_i w_i(s) Q^1_i(o_i, ξ_φ(o_i, a_i ~ G_ω))]`` (BCQ's actor objective through the mixer weights)."""
        obs = batch["observations"]
        with torch.no_grad():
            proposal = self.vae.decode(obs, noise=batch["noise/proposal"])
            w = self.mixer.weights(batch["states"])
        q1 = self.q(obs, self.actor(obs, proposal))[0]
        return -(w * q1).sum(-1).mean()

    # ------------------------------------------------------------------ update
    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """Uniform transitions; continuous actions add the draws of the VAE's reparameterisation
        (``noise/vae [B, N, L]``), the target's candidate proposals (``noise/candidates [n, B, N, L]``) and the
        actor's proposals (``noise/proposal [B, N, L]``)."""
        batch = sampler.sample(self.config.batch_size)
        if not self.spec.discrete:
            B, N, L = self.config.batch_size, self.spec.n_agents, self.vae.latent_dim
            self.draw(batch, vae=("normal", (B, N, L)), candidates=("normal", (self.config.n_candidates, B, N, L)),
                      proposal=("normal", (B, N, L)))
        return batch

    def stages(self) -> list[Stage]:
        """Discrete: TD and imitation in one loss. Continuous (BCQ Alg. 1): VAE, twin critics, perturbation actor."""
        if self.spec.discrete:
            return [Stage("critic", "discrete_loss", ("opt",))]
        return [Stage("vae", "vae_loss", ("vae_opt",)), Stage("critic", "critic_loss", ("critic_opt",)),
                Stage("actor", "actor_loss", ("actor_opt",))]

    def discrete_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        td, q_mean = self.discrete_td_loss(batch)
        il = self.imitation_loss(batch)
        return td + il, {"critic_loss": td.detach(), "behavior_loss": il.detach(), "q_tot": q_mean.detach()}

    def vae_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = self.vae.loss(batch["observations"], batch["actions"], eps=batch["noise/vae"])
        return loss, {"vae_loss": loss.detach()}

    def critic_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        td, q_mean = self.continuous_td_loss(batch)
        return td, {"critic_loss": td.detach(), "q_tot": q_mean.detach()}

    def actor_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = self.perturbation_loss(batch)
        return loss, {"actor_loss": loss.detach()}

    def after_step(self) -> None:
        """Polyak updates of the mixed critic's targets (and of the perturbation actor's)."""
        self.update_targets()
        if not self.spec.discrete:
            self.soft_update(self.actor_target, self.actor, self.config.tau)

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def action_probs(self, obs, avail=None):
        """One-hot of the constrained greedy action ``argmax_{a: G(a|o)/max G > τ} Q_i(o_i, a)``, ``[B, N, A]``."""
        if not self.spec.discrete:
            raise NotImplementedError("bcq-ma on continuous actions has no action probabilities; use act()")
        a = bcq_greedy_discrete(self.q(obs), self.allowed(obs, avail))
        return F.one_hot(a, self.spec.n_actions).to(obs.dtype)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        """Greedy constrained actions (BCQ acts greedily in both modes): ``[B, N]`` or ``[B, N, act_dim]``."""
        if self.spec.discrete:
            return bcq_greedy_discrete(self.q(obs), self.allowed(obs, avail))
        return self.select(obs, self.actor, self.q, generator=generator)[0]
