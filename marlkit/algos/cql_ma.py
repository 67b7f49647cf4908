"""CQL-MA: conservative Q-learning (Kumar et al. 2020) with the CQL regularizer on the *local* Q_i and the linear
value decomposition ``Q_tot(s, a) = Σ_i w_i(s) Q_i(o_i, a_i) + b(s)``, ``w_i ≥ 0`` (omiga.md Sec. 5.2, App. C.2).

Critic loss (Kumar et al. 2020, Eq. 4 with the TD term on the mixed value)::

    L(Q) = E_D[(Q_tot(s, a) − y)²] + α · E_D[ Σ_i ( log Σ_{a_i} exp Q_i(o_i, a_i) − Q_i(o_i, a_i^D) ) ] / N

with α = 1 (omiga.md Tables 5–6, "Tradeoff factor α (CQL-MA)"). Since ``w_i ≥ 0`` the greedy joint action
factorises, so ``y = r + γ(1−d) Q̄_tot(s', argmax_i Q̄_i(o'_i, ·))``.

- discrete: CQL-DQN; the decentralised policy is ``π_i(o_i) = argmax_a Q_i(o_i, a)``.
- continuous: CQL-SAC; tanh-Gaussian actors maximise ``Σ_i w_i(s) min_k Q^k_i(o_i, ã_i) − β log π_i`` with
  automatic entropy tuning (target entropy −act_dim), twin critics, and the importance-sampled log-sum-exp over
  10 uniform + 10 current-policy + 10 next-state-policy actions (Kumar et al. 2020, App. F; official code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from marlkit.algos.base import ranged
from marlkit.algos.common import (
    MixedCriticConfig,
    MixedCriticLearner,
    candidate_values,
    cql_logsumexp_continuous,
    cql_logsumexp_discrete,
    uniform_actions,
)
from marlkit.data.sampler import Batch
from marlkit.nets.policies import TanhGaussianPolicy, masked_logits

__all__ = ["CQLMA", "CQLMAConfig"]


@dataclass
class CQLMAConfig(MixedCriticConfig):
    """CQL-MA hyperparameters (``tau``, ``mixer_hidden``: see :class:`~marlkit.algos.common.MixedCriticConfig`).

    Attributes:
        alpha: CQL trade-off α on the local regularizer (1, omiga.md Tables 5–6).
        n_action_samples: proposal actions per distribution for the continuous log-sum-exp (10, CQL official code).
        target_entropy: SAC target entropy per agent; None → −act_dim (CQL official code).
    """

    alpha: float = ranged(1.0, "(0, inf)")
    n_action_samples: int = ranged(10, "[1, inf)")
    target_entropy: float | None = None


class CQLMA(MixedCriticLearner):
    """CQL-MA: CQL regularizer on each local Q_i, linear mixer for Q_tot (discrete and continuous)."""

    name = "cql-ma"
    Config = CQLMAConfig

    def __init__(self, spec, config: CQLMAConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c, n = self.config, spec.n_agents
        self.build_mixed_critic(ensemble=1 if spec.discrete else 2)  # twin critics for continuous actions
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
    def _policy_samples(self, obs: torch.Tensor, K: int) -> tuple[torch.Tensor, torch.Tensor]:
        """K actions per state from π (no gradient): ``[K, B, N, d]`` and log-probs ``[K, B, N]``."""
        B, N, _ = obs.shape
        a, logp = self.policy.rsample(obs.unsqueeze(0).expand(K, *obs.shape).reshape(K * B, N, -1))
        return a.reshape(K, B, N, -1).detach(), logp.reshape(K, B, N).detach()

    def continuous_critic_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Twin TD losses on Q_tot plus α × the importance-sampled local CQL(H) penalty (Kumar et al. 2020, App. F)."""
        c = self.config
        obs, nobs = batch["observations"], batch["next_observations"]
        with torch.no_grad():
            a_next, _ = self.policy.rsample(nobs)
            y = self.mixed_td_target(batch, self.q_target(nobs, a_next).min(0).values)
        q_data = self.q(obs, batch["actions"])  # [2, B, N]
        td, q_tot = self.twin_mixed_td_loss(q_data, y, batch["states"])  # q_tot [2, B]
        K = c.n_action_samples
        rand, rand_logp = uniform_actions((K, *batch["actions"].shape), obs.device)
        cur, cur_logp = self._policy_samples(obs, K)
        nxt, nxt_logp = self._policy_samples(nobs, K)
        q_samples = candidate_values(self.q, obs, torch.cat([rand, cur, nxt], 0))  # [2, 3K, B, N]
        logp = torch.cat([torch.full_like(cur_logp, rand_logp), cur_logp, nxt_logp], 0)
        cql = cql_logsumexp_continuous(q_samples.transpose(0, 1), logp.unsqueeze(1), q_data)
        cql = cql.mean(dim=(1, 2)).sum()  # summed over the twins like the TD term
        return {"td_loss": td, "cql_penalty": cql, "critic_loss": td + c.alpha * cql, "q_tot": q_tot.mean()}

    def actor_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """SAC actor loss through the mixer: ``E[β log π − Σ_i w_i(s) min_k Q^k_i(o_i, ã_i)]`` and ``log π``."""
        a, logp = self.policy.rsample(batch["observations"])
        with torch.no_grad():
            w = self.mixer.weights(batch["states"])
        q = self.q(batch["observations"], a).min(0).values
        beta = self.log_ent_coef.exp().detach()
        return (beta * logp.sum(-1) - (w * q).sum(-1)).mean(), logp

    # ------------------------------------------------------------------ update
    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.spec.discrete:
            out = self.discrete_critic_loss(batch)
        else:
            out = self.continuous_critic_loss(batch)
        self.critic_opt.zero_grad(set_to_none=True)
        out["critic_loss"].backward()
        self.critic_opt.step()
        metrics = {k: v.detach() for k, v in out.items()}
        if not self.spec.discrete:
            loss_pi, logp = self.actor_loss(batch)
            self.actor_opt.zero_grad(set_to_none=True)
            loss_pi.backward()
            self.actor_opt.step()
            ent_loss = -(self.log_ent_coef * (logp.detach() + self.target_entropy)).mean()
            self.ent_opt.zero_grad(set_to_none=True)
            ent_loss.backward()
            self.ent_opt.step()
            metrics.update(actor_loss=loss_pi.detach(), ent_coef=self.log_ent_coef.detach().exp())
        self.update_targets()
        return metrics

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
