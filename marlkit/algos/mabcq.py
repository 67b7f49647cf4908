"""MABCQ: BCQ with value deviation and transition normalization, every agent learning from its own data
(offline-decentralized-marl.md Sec. 3.4, Algorithm 1). With ``vd=False, tn=False`` it is plain decentralized
BCQ (registered as ``bcq-dec``).

Continuous actions (BCQ, Fujimoto et al. 2019): per agent a conditional VAE G¹_i(a | s), a perturbation network
ξ_i ∈ [−Φ, Φ] and twin critics Q_i with targets. The policy samples n actions from G¹_i, perturbs them and takes
the best by Q_i. Critic loss (Eq. 1) ``E[λ_tn λ_vd |Q_i(s, a_i) − y_i|²]`` with ``y_i = r + γ Q̂_i(s', π̂_i(s'))``;
actor objective (Eq. 2) ``max E[λ_tn λ_vd Q_i(s, a_i + ξ_i(s, a_i))]`` on the dataset actions a_i, as the paper
writes it (original BCQ perturbs VAE samples instead).

Discrete actions (discrete BCQ, Fujimoto et al. 2019b): per agent Q_i(o_i, ·) and a behavior model G_i(a | o_i)
trained by maximum likelihood; only actions with ``G_i(a|o)/max_a G_i(a|o) > τ`` are considered in the target
and by the policy. λ_tn is the empirical 1/P̂(s'|s, a_i) (see :func:`~marlkit.algos.decentralized.empirical_lambda_tn`).

On the paper's matrix game (``jiang-lu``, Sec. 5.1) the analysis is unconstrained: agent 1's a2 has behavior
ratio 0.2/0.8 = 0.25, so Table 12's τ = 0.6 forbids it; run with ``--threshold 0.2`` to reproduce Tables 2–4.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from marlkit.algos.base import Stage, ranged
from marlkit.algos.common import (
    PerturbationActor,
    bcq_allowed_actions,
    bcq_greedy_discrete,
    bcq_select_continuous,
    candidate_values,
    twin_soft_min,
    weighted_mse,
)
from marlkit.algos.decentralized import DecentralizedConfig, DecentralizedLearner
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.critics import LocalQ
from marlkit.nets.policies import CategoricalPolicy
from marlkit.nets.vae import ConditionalVAE

__all__ = ["MABCQ", "BCQDec", "BCQDecConfig", "MABCQConfig"]


@dataclass
class MABCQConfig(DecentralizedConfig):
    """MABCQ hyperparameters (offline-decentralized-marl.md App. B Table 12, "continuous BCQ"/"discrete BCQ").

    Attributes:
        lr: learning rate of Q for continuous actions (1e-3).
        discrete_lr: learning rate of Q and of the behavior model G for discrete actions (1e-4).
        actor_lr: learning rate of the perturbation network ξ (1e-4).
        phi: Φ, the perturbation range (0.05).
        n_candidates: n, actions sampled from G¹ per state (10).
        threshold: τ of discrete BCQ, relative to the most likely action (0.6).
        lmbda: weight of the min in BCQ's soft clipped double-Q target (0.75, Fujimoto et al. 2019).
    """

    lr: float = 1e-3
    discrete_lr: float = ranged(1e-4, "(0, inf)")
    actor_lr: float = ranged(1e-4, "(0, inf)")
    phi: float = ranged(0.05, "[0, inf)")
    n_candidates: int = ranged(10, "[1, inf)")
    threshold: float = ranged(0.6, "[0, 1)")
    lmbda: float = ranged(0.75, "[0, 1]")


class MABCQ(DecentralizedLearner):
    """MABCQ: decentralized BCQ × λ_vd·λ_tn (switches --no-vd/--no-tn; matrix game: --threshold 0.2 --discrete-lr 3e-3).

    offline-decentralized-marl.md Sec. 3.4, Algorithm 1; all agents batched on the agent axis."""

    name = "mabcq"
    Config = MABCQConfig

    def __init__(self, spec, config: MABCQConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        cfg, N = self.config, spec.n_agents
        self.build_critic()
        if spec.discrete:
            self.behavior = CategoricalPolicy(N, spec.obs_dim, spec.n_actions, cfg.hidden, cfg.share_params)
        else:
            self.vae = ConditionalVAE(N, spec.obs_dim, spec.act_dim, cfg.vae_latent, cfg.hidden, cfg.share_params)
            self.perturb = PerturbationActor(N, spec.obs_dim, spec.act_dim, cfg.phi, cfg.hidden, cfg.share_params)
            self.perturb_target = copy.deepcopy(self.perturb).requires_grad_(False)
        self.build_tn_models(None if spec.discrete else self.vae)
        self.finish_init()
        if spec.discrete:
            self.critic_opt = self.make_adam(self.q, self.behavior, lr=cfg.discrete_lr)
        else:
            self.critic_opt = self.make_adam(self.q, lr=cfg.lr)
            self.actor_opt = self.make_adam(self.perturb, lr=cfg.actor_lr)

    # ------------------------------------------------------------------ continuous helpers
    def _candidate_values(self, q_net: LocalQ, soft: bool):
        """``(obs [n, B, N, o], act [n, B, N, a]) -> [n, B, N]`` (twin soft-min for targets, Q_1 for acting)."""
        def fn(obs, act):
            q = candidate_values(q_net, obs, act)  # [2, n, B, N]
            return twin_soft_min(q, self.config.lmbda) if soft else q[0]
        return fn

    def _policy_continuous(self, obs, target: bool, generator=None, noise=None):
        perturb = self.perturb_target if target else self.perturb
        q_net = self.q_target if target else self.q
        return bcq_select_continuous(obs, self.vae, perturb, self._candidate_values(q_net, soft=target),
                                     self.config.n_candidates, generator, noise)

    # ------------------------------------------------------------------ discrete helpers
    def _allowed(self, obs, avail):
        return bcq_allowed_actions(self.behavior.probs(obs, avail), self.config.threshold, avail)

    # ------------------------------------------------------------------ update
    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """Per-agent minibatches and VAE draws; continuous actions add the target policy's candidate draws
        ``noise/candidates [n, B, N, latent]``."""
        batch = super().sample(sampler, step)
        if not self.spec.discrete:
            shape = (self.config.n_candidates, *batch["actions"].shape[:2], self.vae.latent_dim)
            self.draw(batch, candidates=("normal", shape))
        return batch

    def stages(self) -> list[Stage]:
        """Discrete: critic (Eq. 1) and behavior model G in one loss. Continuous: the VAEs, the critic (Eq. 1),
        the perturbation actor (Eq. 2)."""
        if self.spec.discrete:
            return [Stage("critic", "discrete_critic_loss", ("critic_opt",))]
        return [*self.vae_stages(), Stage("critic", "continuous_critic_loss", ("critic_opt",)),
                Stage("actor", "actor_loss", ("actor_opt",))]

    def discrete_critic_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        obs, act, nobs = batch["observations"], batch["actions"], batch["next_observations"]
        avail, navail = batch.get("avail_actions"), batch.get("next_avail_actions")
        behavior_loss = -self.behavior.log_prob(obs, act, avail).mean()
        with torch.no_grad():
            q_next = self.q_target(nobs)  # [B, N, A]
            a_next = bcq_greedy_discrete(q_next, self._allowed(nobs, navail))
            v_next = q_next.gather(-1, a_next.unsqueeze(-1)).squeeze(-1)  # V*(s') = Q̂(s', π̂(s'))
            y, w, metrics = self.weighted_td_target(batch, v_next, q_hat=self.q_target.taken(obs, act))
        q = self.q.taken(obs, act)
        critic_loss = weighted_mse(q, y, w)  # Eq. (1)
        return critic_loss + behavior_loss, {"critic_loss": critic_loss.detach(),
                                             "behavior_loss": behavior_loss.detach(), "q": q.detach().mean(),
                                             **metrics}

    def continuous_critic_loss(self, batch: Batch, carry: dict):
        obs, act, nobs = batch["observations"], batch["actions"], batch["next_observations"]
        with torch.no_grad():
            _, v_next = self._policy_continuous(nobs, target=True, noise=batch["noise/candidates"])  # V*(s')
            q_hat = twin_soft_min(self.q_target(obs, act), self.config.lmbda)
            y, w, metrics = self.weighted_td_target(batch, v_next, q_hat)
        q = self.q(obs, act)  # [2, B, N]
        critic_loss = weighted_mse(q, y, w)  # Eq. (1)
        return critic_loss, {"critic_loss": critic_loss.detach(), "q": q.detach().mean(), **metrics}, {"w": w}

    def actor_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. (2): ``−E[λ_tn λ_vd Q¹_i(s, a_i + ξ_i(s, a_i))]`` on the dataset actions (weights from the critic)."""
        obs, act = batch["observations"], batch["actions"]
        loss = -(carry["w"] * self.q.member(0, obs, self.perturb(obs, act))).mean()
        return loss, {"actor_loss": loss.detach()}

    def after_step(self) -> None:
        self.soft_update(self.q_target, self.q, self.config.tau)
        if not self.spec.discrete:
            self.soft_update(self.perturb_target, self.perturb, self.config.tau)

    # ------------------------------------------------------------------ acting
    def action_probs(self, obs, avail=None):
        """One-hot of the greedy allowed action, ``[B, N, A]`` (discrete only)."""
        if not self.spec.discrete:
            raise NotImplementedError("continuous MABCQ has no action probabilities; use act()")
        a = bcq_greedy_discrete(self.q(obs), self._allowed(obs, avail))
        return torch.nn.functional.one_hot(a, self.spec.n_actions).float()

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        if self.spec.discrete:
            return bcq_greedy_discrete(self.q(obs), self._allowed(obs, avail))
        return self._policy_continuous(obs, target=False, generator=generator)[0]

    @torch.no_grad()
    def state_values(self, obs, avail=None):
        if self.spec.discrete:
            q = self.q(obs)
            return q.gather(-1, bcq_greedy_discrete(q, self._allowed(obs, avail)).unsqueeze(-1)).squeeze(-1)
        return self._policy_continuous(obs, target=False)[1]


@dataclass
class BCQDecConfig(MABCQConfig):
    """Plain decentralized BCQ: MABCQ without λ_vd and λ_tn (the "BCQ" column of Tables 5 and 8)."""

    vd: bool = False
    tn: bool = False


class BCQDec(MABCQ):
    """Decentralized BCQ baseline: MABCQ with vd=tn=False by default (offline-decentralized-marl.md Tables 5, 8)."""

    name = "bcq-dec"
    Config = BCQDecConfig
