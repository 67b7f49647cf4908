"""MACQL: CQL with value deviation and transition normalization, every agent learning from its own data
(offline-decentralized-marl.md Sec. 5.3, Table 8). With ``vd=False, tn=False`` it is plain decentralized CQL
(registered as ``cql-dec``).

Per agent, the TD loss is weighted by λ_tn·λ_vd (Eq. 1) and the CQL(H) regularizer (Kumar et al. 2020, Eq. 4)
``α E[log Σ_a exp Q_i(o_i, a) − Q_i(o_i, a_i)]`` pushes down values of actions outside B_i (unweighted: it is
not an expectation over next states).

- Discrete actions: Q_i(o_i, ·) heads; the target and the policy are greedy over available actions.
- Continuous actions: SAC-style CQL with a tanh-Gaussian policy π_i and twin critics; the logsumexp is estimated
  with ``cql_samples`` uniform actions plus as many policy actions (importance sampling, CQL App. F); the actor
  maximises ``E[λ_tn λ_vd (min_j Q_j(o_i, π_i(o_i)) − α_H log π_i)]`` (Eq. 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from marlkit.algos.base import Stage, ranged
from marlkit.algos.common import (
    candidate_values,
    cql_logsumexp_continuous,
    cql_logsumexp_discrete,
    weighted_mse,
)
from marlkit.algos.decentralized import DecentralizedConfig, DecentralizedLearner
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.policies import TanhGaussianPolicy, masked_logits

__all__ = ["MACQL", "CQLDec", "CQLDecConfig", "MACQLConfig"]


@dataclass
class MACQLConfig(DecentralizedConfig):
    """MACQL hyperparameters (offline-decentralized-marl.md App. B Table 12, "CQL" column).

    Attributes:
        lr: learning rate of Q (1e-4).
        actor_lr: learning rate of π (1e-4; continuous actions).
        alpha: α, the weight of the CQL regularizer (0.2).
        entropy_alpha: SAC temperature α_H of the continuous policy (fixed; 0.2, the common SAC value).
        cql_samples: uniform and policy actions each per state in the continuous logsumexp estimate (10).
    """

    lr: float = 1e-4
    actor_lr: float = ranged(1e-4, "(0, inf)")
    alpha: float = ranged(0.2, "(0, inf)")
    entropy_alpha: float = ranged(0.2, "[0, inf)")
    cql_samples: int = ranged(10, "[1, inf)")


class MACQL(DecentralizedLearner):
    """MACQL: decentralized CQL × λ_vd·λ_tn (switches --no-vd/--no-tn, optimism --epsilon).

    offline-decentralized-marl.md Sec. 5.3; all agents batched on the agent axis."""

    name = "macql"
    Config = MACQLConfig

    def __init__(self, spec, config: MACQLConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        cfg, N = self.config, spec.n_agents
        self.build_critic()
        if not spec.discrete:
            self.policy = TanhGaussianPolicy(N, spec.obs_dim, spec.act_dim, cfg.hidden, cfg.share_params)
        self.build_tn_models()
        self.finish_init()
        self.critic_opt = self.make_adam(self.q, lr=cfg.lr)
        if not spec.discrete:
            self.actor_opt = self.make_adam(self.policy, lr=cfg.actor_lr)

    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """Per-agent minibatches and VAE draws; continuous actions add the target action's draw
        (``noise/next_action``), the CQL proposals' (uniform ``noise/uniform`` and policy ``noise/proposals``,
        ``[M, B, N, d]``) and the actor's (``noise/actor``)."""
        batch = super().sample(sampler, step)
        if not self.spec.discrete:
            one, many = batch["actions"].shape, (self.config.cql_samples, *batch["actions"].shape)
            self.draw(batch, next_action=("normal", one), uniform=("uniform", many), proposals=("normal", many),
                      actor=("normal", one))
        return batch

    def stages(self) -> list[Stage]:
        """Discrete: the CQL critic. Continuous: the VAEs, the CQL critic (Eq. 1), the SAC actor (Eq. 2)."""
        if self.spec.discrete:
            return [Stage("critic", "discrete_critic_loss", ("critic_opt",))]
        return [*self.vae_stages(), Stage("critic", "continuous_critic_loss", ("critic_opt",)),
                Stage("actor", "actor_loss", ("actor_opt",))]

    def discrete_critic_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        obs, act, nobs = batch["observations"], batch["actions"], batch["next_observations"]
        avail, navail = batch.get("avail_actions"), batch.get("next_avail_actions")
        with torch.no_grad():
            v_next = masked_logits(self.q_target(nobs), navail).amax(-1)  # V*(s') = max_a Q̂(s', a)
            y, w, metrics = self.weighted_td_target(batch, v_next, q_hat=self.q_target.taken(obs, act))
        q_all = self.q(obs)
        q = q_all.gather(-1, act.long().unsqueeze(-1)).squeeze(-1)
        td_loss = weighted_mse(q, y, w)  # Eq. (1)
        cql = cql_logsumexp_discrete(q_all, q, avail).mean()
        loss = td_loss + self.config.alpha * cql
        return loss, {"critic_loss": loss.detach(), "td_loss": td_loss.detach(), "cql_penalty": cql.detach(),
                      "q": q.detach().mean(), **metrics}

    def continuous_critic_loss(self, batch: Batch, carry: dict):
        cfg = self.config
        obs, act, nobs = batch["observations"], batch["actions"], batch["next_observations"]
        with torch.no_grad():
            a_next, _ = self.policy.rsample(nobs, eps=batch["noise/next_action"])
            v_next = self.q_target(nobs, a_next).amin(0)  # V*(s') = Q̂(s', π̂(s'))
            y, w, metrics = self.weighted_td_target(batch, v_next, q_hat=self.q_target(obs, act).amin(0))
        q = self.q(obs, act)  # [2, B, N]
        td_loss = weighted_mse(q, y, w)  # Eq. (1)
        # CQL(H) logsumexp by importance sampling over uniform and current-policy actions
        M, (B, N, D) = cfg.cql_samples, act.shape
        with torch.no_grad():
            a_rand = batch["noise/uniform"] * 2 - 1  # uniform on [-1, 1]^d, density 2^-d
            a_pi, logp_pi = self.policy.rsample(obs.unsqueeze(0).expand(M, B, N, obs.shape[-1]),
                                                eps=batch["noise/proposals"])
        cand = torch.cat([a_rand, a_pi])  # [2M, B, N, D]
        log_density = torch.cat([torch.full((M, B, N), -D * math.log(2.0), device=act.device), logp_pi])
        q_cand = candidate_values(self.q, obs, cand)  # [2, 2M, B, N]
        cql = cql_logsumexp_continuous(q_cand.transpose(0, 1), log_density.unsqueeze(1), q).mean() * 2
        loss = td_loss + cfg.alpha * cql
        return loss, {"critic_loss": loss.detach(), "td_loss": td_loss.detach(), "cql_penalty": cql.detach(),
                      "q": q.detach().mean(), **metrics}, {"w": w}

    def actor_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. (2): ``E[λ_tn λ_vd (α_H log π_i − min_j Q_j(o_i, ã_i))]`` with the critic's weights."""
        obs = batch["observations"]
        a_new, logp = self.policy.rsample(obs, eps=batch["noise/actor"])
        q_new = self.q(obs, a_new).amin(0)
        loss = (carry["w"] * (self.config.entropy_alpha * logp - q_new)).mean()
        return loss, {"actor_loss": loss.detach()}

    def after_step(self) -> None:
        self.soft_update(self.q_target, self.q, self.config.tau)

    def action_probs(self, obs, avail=None):
        """One-hot of the greedy available action, ``[B, N, A]`` (discrete only)."""
        if not self.spec.discrete:
            raise NotImplementedError("continuous MACQL has no action probabilities; use act()")
        a = masked_logits(self.q(obs), avail).argmax(-1)
        return torch.nn.functional.one_hot(a, self.spec.n_actions).float()

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        if self.spec.discrete:
            return masked_logits(self.q(obs), avail).argmax(-1)
        return self.policy.act(obs, None, deterministic, generator)

    @torch.no_grad()
    def state_values(self, obs, avail=None):
        if self.spec.discrete:
            return masked_logits(self.q(obs), avail).amax(-1)
        return self.q(obs, self.policy.act(obs, None, True)).amin(0)


@dataclass
class CQLDecConfig(MACQLConfig):
    """Plain decentralized CQL: MACQL without λ_vd and λ_tn (the "CQL" column of Table 8)."""

    vd: bool = False
    tn: bool = False


class CQLDec(MACQL):
    """Decentralized CQL baseline: MACQL with vd=tn=False by default (offline-decentralized-marl.md Table 8)."""

    name = "cql-dec"
    Config = CQLDecConfig
