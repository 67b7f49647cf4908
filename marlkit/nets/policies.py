"""Policy heads on top of :class:`~marlkit.nets.mlp.MultiAgentMLP`: categorical (with ``avail_actions``
masking) and tanh-Gaussian. Both take observations ``[B, N, obs_dim]`` and act for all agents at once.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from marlkit.nets.mlp import MultiAgentMLP

__all__ = ["CategoricalPolicy", "TanhGaussianPolicy", "masked_logits", "make_policy"]

_NEG = -1e9  # finite "minus infinity" for masked logits: keeps softmax/log_softmax NaN-free


def masked_logits(logits: torch.Tensor, avail: torch.Tensor | None) -> torch.Tensor:
    """Set logits of unavailable actions to a large negative number. ``avail`` is bool ``[..., A]`` or None."""
    if avail is None:
        return logits
    return logits.masked_fill(~avail.bool(), _NEG)


class CategoricalPolicy(nn.Module):
    """π_i(a_i | o_i) over ``n_actions`` discrete actions for every agent.

    Shapes: ``obs [B, N, obs_dim]``, ``avail [B, N, A]`` bool or None, ``actions [B, N]`` int64.
    """

    def __init__(self, n_agents: int, obs_dim: int, n_actions: int, hidden: Sequence[int] = (256, 256),
                 share_params: bool = False):
        super().__init__()
        self.n_actions = n_actions
        self.net = MultiAgentMLP(n_agents, obs_dim, n_actions, hidden, share_params)

    def logits(self, obs: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
        """Masked logits ``[B, N, A]``."""
        return masked_logits(self.net(obs), avail)

    def log_probs(self, obs: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
        """log π_i(· | o_i), shape ``[B, N, A]``."""
        return torch.log_softmax(self.logits(obs, avail), dim=-1)

    def probs(self, obs: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
        """π_i(· | o_i), shape ``[B, N, A]``."""
        return torch.softmax(self.logits(obs, avail), dim=-1)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
        """log π_i(a_i | o_i) of given actions, shape ``[B, N]``."""
        return self.log_probs(obs, avail).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, avail: torch.Tensor | None = None, deterministic: bool = False,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """Greedy (argmax) or sampled actions ``[B, N]``."""
        logits = self.logits(obs, avail)
        if deterministic:
            return logits.argmax(-1)
        p = torch.softmax(logits, -1)
        return torch.multinomial(p.reshape(-1, self.n_actions), 1, generator=generator).reshape(p.shape[:-1])


class TanhGaussianPolicy(nn.Module):
    """π_i(a_i | o_i) = tanh(N(μ_i(o_i), σ_i(o_i)²)) with actions in [-1, 1]^act_dim.

    ``log σ`` is clamped to ``[log_std_min, log_std_max]``; log-likelihoods of dataset actions use
    ``atanh`` of the action clipped to ``±(1 - 1e-6)``.
    """

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 share_params: bool = False, log_std_min: float = -5.0, log_std_max: float = 2.0):
        super().__init__()
        self.act_dim = act_dim
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.net = MultiAgentMLP(n_agents, obs_dim, 2 * act_dim, hidden, share_params)

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-std of the pre-tanh Gaussian, each ``[B, N, act_dim]``."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor, avail=None) -> torch.Tensor:
        """log π_i(a_i | o_i) summed over action dims, shape ``[B, N]``; ``actions [B, N, act_dim]`` in [-1, 1]."""
        mean, log_std = self.dist_params(obs)
        a = actions.clamp(-1 + 1e-6, 1 - 1e-6)
        u = torch.atanh(a)
        logp = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
        logp = logp - torch.log1p(-a.pow(2) + 1e-6)
        return logp.sum(-1)

    def rsample(self, obs: torch.Tensor, generator=None, eps: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample ``a [B, N, act_dim]`` and its log-prob ``[B, N]``.

        ``eps``: the standard-normal draw ``[..., N, act_dim]`` (same shape as the output) when the caller drew it
        (pure losses); otherwise drawn here from ``generator``.
        """
        mean, log_std = self.dist_params(obs)
        std = log_std.exp()
        if eps is None:
            eps = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
        u = mean + std * eps
        a = torch.tanh(u)
        logp = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)
        return a, logp

    @torch.no_grad()
    def act(self, obs: torch.Tensor, avail=None, deterministic: bool = False, generator=None) -> torch.Tensor:
        """tanh(mean) or a sample, ``[B, N, act_dim]``."""
        if deterministic:
            return torch.tanh(self.dist_params(obs)[0])
        return self.rsample(obs, generator)[0]


def make_policy(spec, hidden: Sequence[int] = (256, 256), share_params: bool = False) -> nn.Module:
    """The policy head matching an :class:`~marlkit.envs.base.EnvSpec` (categorical or tanh-Gaussian)."""
    if spec.discrete:
        return CategoricalPolicy(spec.n_agents, spec.obs_dim, spec.n_actions, hidden, share_params)
    return TanhGaussianPolicy(spec.n_agents, spec.obs_dim, spec.act_dim, hidden, share_params)
