"""CQL-MA: conservative Q-learning (Kumar et al. 2020) with the CQL regularizer on the *local* Q_i and the linear
value decomposition ``Q_tot(s, a) = Σ_i w_i(s) Q_i(o_i, a_i) + b(s)``, ``w_i ≥ 0`` (omiga.md Sec. 5.2, App. C.2).

Critic loss (Kumar et al. 2020, Eq. 4 with the TD term on the mixed value)::

    L(Q) = E_D[(Q_tot(s, a) − y)²] + α · E_D[ Σ_i ( log Σ_{a_i} exp Q_i(o_i, a_i) − Q_i(o_i, a_i^D) ) ] / N

with α = 1 (omiga.md Tables 5–6, "Tradeoff factor α (CQL-MA)"). Since ``w_i ≥ 0`` the greedy joint action
factorises, so ``y = r + γ(1−d) Q̄_tot(s', argmax_i Q̄_i(o'_i, ·))``.

- discrete: CQL-DQN; the decentralised policy is ``π_i(o_i) = argmax_a Q_i(o_i, a)``.
- continuous: CQL-SAC; tanh-Gaussian actors maximise ``Σ_i w_i(s) min_k Q^k_i(o_i, ã_i) − β log π_i`` with
  automatic entropy tuning (target entropy −act_dim) and the importance-sampled log-sum-exp over 10 uniform +
  10 current-policy + 10 next-state-policy actions (Kumar et al. 2020, App. F; official code). One local critic
  per agent by default, as the CQL baseline of comadice.md's code (``agents/continuous/cql.py`` of the ComaDICE
  repository); ``twin_critics=True`` gives CQL-SAC's clipped double Q (twice the critic arithmetic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from marlkit.algos.base import Stage, ranged
from marlkit.algos.common import (
    MixedCriticConfig,
    MixedCriticLearner,
    candidate_values,
    cql_logsumexp_continuous,
    cql_logsumexp_discrete,
)
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.policies import TanhGaussianPolicy, masked_logits

__all__ = ["CQLMA", "CQLMAConfig"]


@dataclass
class CQLMAConfig(MixedCriticConfig):
    """CQL-MA hyperparameters (``tau``, ``mixer_hidden``: see :class:`~marlkit.algos.common.MixedCriticConfig`).

    Attributes:
        alpha: CQL trade-off α on the local regularizer (1, omiga.md Tables 5–6).
        n_action_samples: proposal actions per distribution for the continuous log-sum-exp (10, CQL official code).
        target_entropy: SAC target entropy per agent; None → −act_dim (CQL official code).
        twin_critics: continuous actions: twin local critics Q¹, Q² (CQL-SAC) instead of one (comadice.md's CQL
            baseline, the default).
    """

    alpha: float = ranged(1.0, "(0, inf)")
    n_action_samples: int = ranged(10, "[1, inf)")
    target_entropy: float | None = None
    twin_critics: bool = False


class CQLMA(MixedCriticLearner):
    """CQL-MA: CQL regularizer on each local Q_i, linear mixer for Q_tot (discrete and continuous)."""

    name = "cql-ma"
    Config = CQLMAConfig

    def __init__(self, spec, config: CQLMAConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c, n = self.config, spec.n_agents
        self.build_mixed_critic(ensemble=2 if c.twin_critics and not spec.discrete else 1)
        if not spec.discrete:
            self.policy = TanhGaussianPolicy(n, spec.obs_dim, spec.act_dim, c.hidden, c.share_params)
            self.log_ent_coef = torch.nn.Parameter(torch.zeros(()))
        self.to(self.device)
        self.critic_opt = self.make_adam(self.q, self.mixer)
        if not spec.discrete:
            self.actor_opt = self.make_adam(self.policy)
            self.ent_opt = torch.optim.Adam([self.log_ent_coef], lr=c.lr)
            self.target_entropy = float(-spec.act_dim if c.target_entropy is None else c.target_entropy)

    # ------------------------------------------------------------------ discrete
    def discrete_critic_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        """TD loss on Q_tot plus α × the local CQL(H) penalty (Kumar et al. 2020, Eq. 4)."""
        c = self.config
        with torch.no_grad():
            q_next = masked_logits(self.q_target(batch["next_observations"]), batch.get("next_avail_actions"))
            y = self.mixed_td_target(batch, q_next.max(-1).values)
        q_all = self.q(batch["observations"])  # [B, N, A]
        q_data = q_all.gather(-1, batch["actions"].long().unsqueeze(-1)).squeeze(-1)
        q_tot = self.mixer(q_data, batch["states"])
        td = F.mse_loss(q_tot, y)
        cql = cql_logsumexp_discrete(q_all, q_data, batch.get("avail_actions")).mean()
        return {"td_loss": td, "cql_penalty": cql, "critic_loss": td + c.alpha * cql, "q_tot": q_tot.mean()}

    # ------------------------------------------------------------------ continuous
    @staticmethod
    def critics(q, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Local values of every critic, ``[E, B, N]`` (E = 1 or 2)."""
        values = q(obs, actions)
        return values if values.dim() == 3 else values.unsqueeze(0)

    def _policy_samples(self, obs: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K actions per state from π (no gradient) for the draws ``eps [K, B, N, d]``: ``[K, B, N, d]`` and
        log-probs ``[K, B, N]``."""
        K, (B, N, _) = eps.shape[0], obs.shape
        a, logp = self.policy.rsample(obs.unsqueeze(0).expand(K, *obs.shape).reshape(K * B, N, -1),
                                      eps=eps.reshape(K * B, N, -1))
        return a.reshape(K, B, N, -1).detach(), logp.reshape(K, B, N).detach()

    def continuous_critic_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Twin TD losses on Q_tot plus α × the importance-sampled local CQL(H) penalty (Kumar et al. 2020, App. F)."""
        c = self.config
        obs, nobs = batch["observations"], batch["next_observations"]
        with torch.no_grad():
            a_next, _ = self.policy.rsample(nobs, eps=batch["noise/next_action"])
            y = self.mixed_td_target(batch, self.critics(self.q_target, nobs, a_next).min(0).values)
        q_data = self.critics(self.q, obs, batch["actions"])  # [E, B, N]
        td, q_tot = self.twin_mixed_td_loss(q_data, y, batch["states"])  # q_tot [E, B]
        rand = batch["noise/uniform"] * 2 - 1  # uniform proposals on [-1, 1]^d, density 2^-d
        rand_logp = -rand.shape[-1] * math.log(2.0)
        cur, cur_logp = self._policy_samples(obs, batch["noise/proposals"])
        nxt, nxt_logp = self._policy_samples(nobs, batch["noise/next_proposals"])
        q_samples = candidate_values(self.q, obs, torch.cat([rand, cur, nxt], 0))  # [(E,) 3K, B, N]
        q_samples = q_samples if q_samples.dim() == 4 else q_samples.unsqueeze(0)
        logp = torch.cat([torch.full_like(cur_logp, rand_logp), cur_logp, nxt_logp], 0)
        cql = cql_logsumexp_continuous(q_samples.transpose(0, 1), logp.unsqueeze(1), q_data)
        cql = cql.mean(dim=(1, 2)).sum()  # summed over the critics like the TD term
        return {"td_loss": td, "cql_penalty": cql, "critic_loss": td + c.alpha * cql, "q_tot": q_tot.mean()}

    def sac_actor_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """SAC actor loss through the mixer: ``E[β log π − Σ_i w_i(s) min_k Q^k_i(o_i, ã_i)]`` and ``log π``."""
        a, logp = self.policy.rsample(batch["observations"], eps=batch["noise/actor"])
        with torch.no_grad():
            w = self.mixer.weights(batch["states"])
        q = self.critics(self.q, batch["observations"], a).min(0).values
        beta = self.log_ent_coef.exp().detach()
        return (beta * logp.sum(-1) - (w * q).sum(-1)).mean(), logp

    # ------------------------------------------------------------------ update
    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """Uniform transitions; continuous actions add the draws of the target action (``noise/next_action``), the
        CQL proposals (uniform ``noise/uniform``, policy ``noise/proposals`` at o and ``noise/next_proposals`` at
        o', each ``[K, B, N, d]``) and the actor's sample (``noise/actor``)."""
        batch = sampler.sample(self.config.batch_size)
        if not self.spec.discrete:
            one, many = batch["actions"].shape, (self.config.n_action_samples, *batch["actions"].shape)
            self.draw(batch, next_action=("normal", one), uniform=("uniform", many), proposals=("normal", many),
                      next_proposals=("normal", many), actor=("normal", one))
        return batch

    def stages(self) -> list[Stage]:
        """The CQL critic; for continuous actions then the SAC actor and its entropy coefficient."""
        stages = [Stage("critic", "critic_loss", ("critic_opt",))]
        if not self.spec.discrete:
            stages += [Stage("actor", "actor_loss", ("actor_opt",)), Stage("entropy", "entropy_loss", ("ent_opt",))]
        return stages

    def critic_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.discrete_critic_loss(batch) if self.spec.discrete else self.continuous_critic_loss(batch)
        return out["critic_loss"], {k: v.detach() for k, v in out.items()}

    def actor_loss(self, batch: Batch, carry: dict):
        loss, logp = self.sac_actor_loss(batch)
        return loss, {"actor_loss": loss.detach()}, {"logp": logp}

    def entropy_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """SAC's temperature loss ``−log β · (log π + H̄)`` with the actor stage's ``log π`` (automatic tuning)."""
        loss = -(self.log_ent_coef * (carry["logp"] + self.target_entropy)).mean()
        return loss, {"ent_coef": self.log_ent_coef.detach().exp()}

    def after_step(self) -> None:
        self.update_targets()

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def action_probs(self, obs, avail=None):
        """One-hot of ``argmax_a Q_i(o_i, a)`` over available actions, ``[B, N, A]`` (discrete)."""
        if not self.spec.discrete:
            raise NotImplementedError("cql-ma on continuous actions has no action probabilities; use act()")
        return F.one_hot(masked_logits(self.q(obs), avail).argmax(-1), self.spec.n_actions).to(obs.dtype)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        if self.spec.discrete:
            return masked_logits(self.q(obs), avail).argmax(-1)
        return self.policy.act(obs, avail, deterministic, generator)
