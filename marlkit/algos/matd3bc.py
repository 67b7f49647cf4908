"""MATD3+BC: TD3+BC with value deviation and transition normalization, every agent learning from its own data
(offline-decentralized-marl.md Sec. 5.4–5.5, Tables 9–10). With ``vd=False, tn=False`` it is plain decentralized
TD3+BC (registered as ``td3bc-dec``). Continuous actions only.

Per agent i: a deterministic actor π_i(o_i) = tanh(f_i(o_i)), twin critics Q_i with targets (TD3, Fujimoto et al.
2018). Critic loss (Eq. 1) ``E[λ_tn λ_vd (Q_i(o_i, a_i) − y_i)²]`` with
``y_i = r + γ min_j Q̂_j(o_i', π̂_i(o_i') + clipped noise)``; every ``policy_freq`` updates the actor minimises the
TD3+BC loss (Fujimoto & Gu 2021, Eq. 3) with every sample's objective weighted by λ_tn·λ_vd (Eq. 2). V*(s') for
λ_vd is the target value min_j Q̂_j(s', π̂_i(s')) with TD3's smoothed target action (the target policy of TD3).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from marlkit.algos.base import Stage, ranged
from marlkit.algos.common import td3bc_actor_loss, weighted_mse
from marlkit.algos.decentralized import DecentralizedConfig, DecentralizedLearner
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.mlp import MultiAgentMLP

__all__ = ["MATD3BC", "MATD3BCConfig", "TD3BCDec", "TD3BCDecConfig"]


@dataclass
class MATD3BCConfig(DecentralizedConfig):
    """MATD3+BC hyperparameters (offline-decentralized-marl.md App. B Table 12, "TD3+BC" column; TD3 defaults).

    Attributes:
        lr: learning rate of Q (3e-4).
        actor_lr: learning rate of π (3e-4).
        alpha: TD3+BC's α (the λ of Table 12): 2.5.
        policy_noise: σ of the target policy smoothing noise (0.2).
        noise_clip: clip of that noise (0.5).
        policy_freq: critic updates per actor update (2).
    """

    lr: float = 3e-4
    actor_lr: float = ranged(3e-4, "(0, inf)")
    alpha: float = ranged(2.5, "(0, inf)")
    policy_noise: float = ranged(0.2, "[0, inf)")
    noise_clip: float = ranged(0.5, "[0, inf)")
    policy_freq: int = ranged(2, "[1, inf)")


class MATD3BC(DecentralizedLearner):
    """MATD3+BC: decentralized TD3+BC × λ_vd·λ_tn (switches --no-vd/--no-tn, optimism --epsilon; continuous).

    offline-decentralized-marl.md Sec. 5.4; every agent's actor and twin critics are one batched module."""

    name = "matd3bc"
    Config = MATD3BCConfig
    supports_discrete = False

    def __init__(self, spec, config: MATD3BCConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        cfg, N = self.config, spec.n_agents
        self.actor = MultiAgentMLP(N, spec.obs_dim, spec.act_dim, cfg.hidden, cfg.share_params)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.build_critic()  # twin critics
        self.build_tn_models()
        self.finish_init()
        self.critic_opt = self.make_adam(self.q, lr=cfg.lr)
        self.actor_opt = self.make_adam(self.actor, lr=cfg.actor_lr)

    def pi(self, obs: torch.Tensor, target: bool = False) -> torch.Tensor:
        """π_i(o_i) = tanh(f_i(o_i)) for all agents, ``[B, N, act_dim]``."""
        return torch.tanh((self.actor_target if target else self.actor)(obs))

    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """Per-agent minibatches and VAE draws, plus TD3's target-smoothing draw ``noise/smoothing [B, N, d]``."""
        batch = super().sample(sampler, step)
        return self.draw(batch, smoothing=("normal", batch["actions"].shape))

    def stages(self) -> list[Stage]:
        """The VAEs, the twin critics (Eq. 1) every update; the actor (Eq. 2 on TD3+BC) and then the Polyak target
        updates every ``policy_freq`` updates (TD3's delayed policy updates)."""
        return [*self.vae_stages(), Stage("critic", "critic_loss", ("critic_opt",)),
                Stage("actor", "actor_loss", ("actor_opt",), every=self.config.policy_freq, metrics=("actor_loss",),
                      after="update_targets")]

    def critic_loss(self, batch: Batch, carry: dict):
        cfg = self.config
        obs, act, nobs = batch["observations"], batch["actions"], batch["next_observations"]
        with torch.no_grad():  # TD3's target policy smoothing: clip(π̂(o') + clip(σε, −c, c), −1, 1)
            noise = (batch["noise/smoothing"] * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            a_next = (self.pi(nobs, target=True) + noise).clamp(-1.0, 1.0)
            v_next = self.q_target(nobs, a_next).amin(0)  # V*(s') = Q̂(s', π̂(s'))
            y, w, metrics = self.weighted_td_target(batch, v_next, q_hat=self.q_target(obs, act).amin(0))
        q = self.q(obs, act)  # [2, B, N]
        loss = weighted_mse(q, y, w)  # Eq. (1)
        return loss, {"critic_loss": loss.detach(), "q": q.detach().mean(), **metrics}, {"w": w}

    def actor_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. (2) on TD3+BC: every sample's ``−λ Q¹(o, π(o)) + (π(o) − a)²`` weighted by λ_tn·λ_vd."""
        obs, act = batch["observations"], batch["actions"]
        pi = self.pi(obs)
        loss = td3bc_actor_loss(self.q.member(0, obs, pi), pi, act, self.config.alpha, carry["w"])
        return loss, {"actor_loss": loss.detach()}

    def update_targets(self) -> None:
        """Polyak updates of the twin critics' and the actor's targets (after each delayed actor step)."""
        self.soft_update(self.q_target, self.q, self.config.tau)
        self.soft_update(self.actor_target, self.actor, self.config.tau)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        return self.pi(obs)

    @torch.no_grad()
    def state_values(self, obs, avail=None):
        return self.q(obs, self.pi(obs)).amin(0)


@dataclass
class TD3BCDecConfig(MATD3BCConfig):
    """Plain decentralized TD3+BC: MATD3+BC without λ_vd and λ_tn (the "TD3+BC" column of Tables 9–10)."""

    vd: bool = False
    tn: bool = False


class TD3BCDec(MATD3BC):
    """Decentralized TD3+BC baseline: MATD3+BC with vd=tn=False by default (offline-decentralized-marl.md Table 9)."""

    name = "td3bc-dec"
    Config = TD3BCDecConfig
