"""ICQ: implicit constraint Q-learning (Yang et al. 2021, "Believe what you see: implicit constraint approach for
offline multi-agent reinforcement learning"), multi-agent version ICQ-MA.

Both the critic and the actors only ever evaluate actions that are in the dataset:

- critic (Eq. 8, in-sample SARSA target with importance weights): with the linear decomposition
  ``Q_tot = Σ_i w_i(s) Q_i(o_i, a_i) + b(s)``::

      y = r + γ (1 − d) · ρ(s', a') · Q̄_tot(s', a'),   ρ = exp(Q̄_tot(s', a') / α_Q) / Z

  where ``a'`` is the action the dataset took in ``s'`` and ``Z`` normalises ``ρ`` over the minibatch
  (``ρ = B · softmax_batch(Q̄_tot / α_Q)``, official ICQ-MA code; clipped at ``critic_weight_max`` when set, as
  the authors' continuous-action code clips it at 1).
- actors (Eq. 11, decomposed): ``min_π −E_D[ Σ_i w_i(s) · exp(A_i(o_i, a_i) / α) / Z_i · log π_i(a_i|o_i) ]`` with
  the counterfactual advantage ``A_i = Q_i(o_i, a_i) − Σ_a π_i(a|o_i) Q_i(o_i, a)`` and ``Z_i`` the batch
  normaliser; α is the Lagrangian coefficient (10, omiga.md Tables 5–6).

Differences from the official code (kept simple, documented): one-step targets instead of TD(λ) over whole
episodes (our sampler gives transitions), Polyak target updates (τ = 0.005, omiga.md Table 5) instead of hard
copies, local ``Q_i(o_i, ·)`` critics instead of a state-conditioned COMA critic. Continuous actions (used by
omiga.md's MaMuJoCo comparison) estimate the baseline ``V_i(o_i) = E_{a~π_i} Q_i(o_i, a)`` with
``n_action_samples`` policy samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from marlkit.algos.base import Stage, ranged
from marlkit.algos.common import (
    MixedCriticConfig,
    MixedCriticLearner,
    attach_next_actions,
    batch_softmax_weights,
)
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.policies import make_policy

__all__ = ["ICQ", "ICQConfig"]


@dataclass
class ICQConfig(MixedCriticConfig):
    """ICQ hyperparameters (``tau``, ``mixer_hidden``: see :class:`~marlkit.algos.common.MixedCriticConfig`).

    Attributes:
        alpha: Lagrangian coefficient α of the actor's implicit constraint (10, omiga.md Tables 5–6).
        critic_alpha: temperature α_Q of the critic's importance weights (1000, official ICQ-MA code).
        n_action_samples: policy samples for the continuous baseline V_i (10, marlkit choice).
        critic_weight_max: if set, the critic's importance weights ρ are clipped to ``[0, critic_weight_max]``. None
            (default) is the official ICQ-MA (SMAC) code, which does not clip. The authors' continuous-action code
            (github.com/YiqinYang/ICQ, ``ICQ_softmax/ICQ/icq.py``, ``compute_loss_q``, for D4RL) clips at 1. Without
            a clip, ρ = B·softmax_batch(Q̄_tot/α_Q) tilts the target toward the minibatch's high-value states, and
            on a task whose Q_tot spreads over hundreds (HalfCheetah-6x1) that feedback diverges (``docs/benchmarks.md``).
            MaMuJoCo's per-algorithm defaults set 1.
    """

    alpha: float = ranged(10.0, "(0, inf)")
    critic_alpha: float = ranged(1000.0, "(0, inf)")
    n_action_samples: int = ranged(10, "[1, inf)")
    critic_weight_max: float | None = ranged(None, "(0, inf)")


class ICQ(MixedCriticLearner):
    """ICQ-MA: in-sample importance-weighted critic and advantage-weighted actors (discrete and continuous)."""

    name = "icq"
    Config = ICQConfig

    def __init__(self, spec, config: ICQConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c = self.config
        self.policy = make_policy(spec, c.hidden, c.share_params)
        self.build_mixed_critic()
        self.to(self.device)
        self.critic_opt = self.make_adam(self.q, self.mixer)
        self.actor_opt = self.make_adam(self.policy)

    def prepare(self, sampler: DeviceSampler) -> None:
        """Attach the dataset's next actions ``a'`` (in-sample targets need them)."""
        attach_next_actions(sampler)

    def td_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """MSE of ``Q_tot(s, a)`` against the importance-weighted in-sample target (Yang et al. 2021, Eq. 8)."""
        c = self.config
        with torch.no_grad():
            q_next = self.q_target.taken(batch["next_observations"], batch["next_actions"])
            q_tot_next = self.mixer_target(q_next, batch["next_states"])
            boot = (1 - batch["terminals"]) * batch["has_next_action"]
            y = batch["rewards"] + c.gamma * boot * self.critic_weights(q_tot_next, boot) * q_tot_next
        q_tot = self.mixer(self.q.taken(batch["observations"], batch["actions"]), batch["states"])
        return F.mse_loss(q_tot, y), q_tot.mean()

    def critic_weights(self, q_tot_next: torch.Tensor, boot: torch.Tensor) -> torch.Tensor:
        """The in-sample target's importance weights ``ρ = B · softmax_batch(Q̄_tot(s', a') / α_Q)`` over the rows
        that bootstrap (``boot [B]`` > 0; the others get 0), clipped at ``critic_weight_max`` when set; ``[B]``."""
        logits = torch.where(boot > 0, q_tot_next, torch.full_like(q_tot_next, -torch.inf))
        rho = batch_softmax_weights(logits, self.config.critic_alpha) * boot.mean().clamp_min(1e-8)
        rho = torch.nan_to_num(rho, nan=0.0)
        if self.config.critic_weight_max is not None:
            rho = rho.clamp(max=self.config.critic_weight_max)
        return rho

    def advantages(self, batch: Batch) -> torch.Tensor:
        """Counterfactual advantages ``A_i = Q_i(o_i, a_i) − E_{π_i} Q_i(o_i, ·)``, ``[B, N]`` (no gradient)."""
        obs = batch["observations"]
        with torch.no_grad():
            if self.spec.discrete:
                q_all = self.q(obs)
                q_data = q_all.gather(-1, batch["actions"].long().unsqueeze(-1)).squeeze(-1)
                baseline = (self.policy.probs(obs, batch.get("avail_actions")) * q_all).sum(-1)
            else:
                K, (B, N, D) = self.config.n_action_samples, obs.shape
                o = obs.unsqueeze(0).expand(K, B, N, D).reshape(K * B, N, D)
                a, _ = self.policy.rsample(o, eps=batch["noise/baseline"].reshape(K * B, N, -1))
                baseline = self.q(o, a).reshape(K, B, N).mean(0)
                q_data = self.q(obs, batch["actions"])
        return q_data - baseline

    def weighted_bc_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``−E[Σ_i w_i(s) · B·softmax_batch(A_i/α) · log π_i(a_i|o_i)] / N`` (Yang et al. 2021, Eq. 11)."""
        adv = self.advantages(batch)
        weights = batch_softmax_weights(adv, self.config.alpha, dim=0)  # [B, N], per agent over the batch
        with torch.no_grad():
            coe = self.mixer.weights(batch["states"])
        logp = self.policy.log_prob(batch["observations"], batch["actions"], batch.get("avail_actions"))
        return -(coe * weights * logp).mean(), adv.mean()

    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """Uniform transitions; continuous actions add the policy draws of the baseline V_i
        (``noise/baseline [K, B, N, d]``)."""
        batch = sampler.sample(self.config.batch_size)
        if not self.spec.discrete:
            self.draw(batch, baseline=("normal", (self.config.n_action_samples, *batch["actions"].shape)))
        return batch

    def stages(self) -> list[Stage]:
        """The in-sample critic (Eq. 8), then the advantage-weighted actors (Eq. 11) with the updated critic."""
        return [Stage("critic", "critic_loss", ("critic_opt",)), Stage("actor", "actor_loss", ("actor_opt",))]

    def critic_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, q_mean = self.td_loss(batch)
        return loss, {"critic_loss": loss.detach(), "q_tot": q_mean.detach()}

    def actor_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, adv = self.weighted_bc_loss(batch)
        return loss, {"actor_loss": loss.detach(), "advantage": adv.detach()}

    def after_step(self) -> None:
        self.update_targets()

    def action_probs(self, obs, avail=None):
        return self.policy.probs(obs, avail)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        return self.policy.act(obs, avail, deterministic, generator)
