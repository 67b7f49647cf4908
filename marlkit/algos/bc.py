"""Behavior cloning (BC): each agent's policy maximises the log-likelihood of its dataset actions,
``max_π E_D[Σ_i log π_i(a_i | o_i)]``. Discrete: categorical with ``avail_actions`` masking; continuous:
tanh-Gaussian. On a dataset drawn from a product behavior policy μ = ⊗ μ^i, BC recovers μ^i (the marginal
of agent i's actions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from marlkit.algos.base import AlgoConfig, Algorithm
from marlkit.data.sampler import Batch
from marlkit.nets.policies import make_policy

__all__ = ["BC", "BCConfig"]


@dataclass
class BCConfig(AlgoConfig):
    """BC hyperparameters (defaults from omiga.md App. C: lr 5e-4, batch 128, 3-layer 256-unit MLPs)."""


class BC(Algorithm):
    """Behavior cloning of every agent's local policy, batched over agents."""

    name = "bc"
    Config = BCConfig

    def __init__(self, spec, config: BCConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        self.policy = make_policy(spec, self.config.hidden, self.config.share_params)
        self.to(self.device)
        self.opt = self.make_adam(self.policy)

    def bc_loss(self, batch: Batch) -> torch.Tensor:
        """Negative log-likelihood ``-E_D[Σ_i log π_i(a_i|o_i)] / N`` (scalar)."""
        logp = self.policy.log_prob(batch["observations"], batch["actions"], batch.get("avail_actions"))
        return -logp.mean()

    def compute_loss(self, batch: Batch, carry=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = self.bc_loss(batch)
        return loss, {"actor_loss": loss.detach()}

    def action_probs(self, obs, avail=None):
        return self.policy.probs(obs, avail)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        return self.policy.act(obs, avail, deterministic, generator)
