"""Conditional VAE batched over agents: G(a_i | o_i) of BCQ (Fujimoto et al. 2019) and the transition-
normalisation VAEs of offline decentralised MARL. One module serves all agents (weights ``[N, in, out]``).

Shapes: condition ``c [B, N, cond_dim]``, target ``x [B, N, x_dim]``; latent size ``latent_dim``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from marlkit.nets.mlp import MultiAgentMLP

__all__ = ["ConditionalVAE"]


class ConditionalVAE(nn.Module):
    """q(z | x, c) = N(μ, σ²), p(x | z, c) with a tanh-bounded decoder (``max_x`` scales the output).

    ``forward`` returns the reconstruction, μ and log σ; :meth:`loss` is the ELBO used by BCQ
    (reconstruction MSE + 0.5·KL, summed over dims, averaged over batch and agents); :meth:`decode` with
    ``z=None`` samples z ~ N(0, 1) clipped to [-0.5, 0.5] as in BCQ.
    """

    def __init__(self, n_agents: int, cond_dim: int, x_dim: int, latent_dim: int | None = None,
                 hidden: Sequence[int] = (750, 750), share_params: bool = False, max_x: float = 1.0):
        super().__init__()
        self.latent_dim = latent_dim or 2 * x_dim
        self.max_x = max_x
        self.encoder = MultiAgentMLP(n_agents, cond_dim + x_dim, 2 * self.latent_dim, hidden, share_params)
        self.decoder = MultiAgentMLP(n_agents, cond_dim + self.latent_dim, x_dim, hidden, share_params)

    def encode(self, c: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ and log σ of q(z | x, c), each ``[B, N, latent_dim]`` (log σ clamped to [-4, 15] as in BCQ)."""
        mean, log_std = self.encoder(torch.cat([c, x], -1)).chunk(2, -1)
        return mean, log_std.clamp(-4, 15)

    def decode(self, c: torch.Tensor, z: torch.Tensor | None = None, generator=None,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """Decoded ``x [..., N, x_dim]`` (bounded by ``max_x``) of latents ``z``; without ``z``, of prior samples
        ``z = clip(ε, −0.5, 0.5)``, ``ε ~ N(0, 1)`` (BCQ) with ``ε = noise [..., N, latent_dim]`` if given."""
        if z is None:
            if noise is None:
                noise = torch.randn(*c.shape[:-1], self.latent_dim, device=c.device, generator=generator)
            z = noise.clamp(-0.5, 0.5)
        return self.max_x * torch.tanh(self.decoder(torch.cat([c, z], -1)))

    def forward(self, c: torch.Tensor, x: torch.Tensor, generator=None, eps: torch.Tensor | None = None):
        """Reconstruction, μ and log σ; ``eps [..., N, latent_dim]``: the reparameterisation draw, if given."""
        mean, log_std = self.encode(c, x)
        if eps is None:
            eps = torch.randn(mean.shape, device=mean.device, generator=generator)
        z = mean + log_std.exp() * eps
        return self.decode(c, z), mean, log_std

    def loss(self, c: torch.Tensor, x: torch.Tensor, reduce: bool = True, eps: torch.Tensor | None = None
             ) -> torch.Tensor:
        """ELBO loss; ``reduce=False`` gives per-sample ``[B, N]``; ``eps``: the reparameterisation draw."""
        recon, mean, log_std = self(c, x, eps=eps)
        rec = (recon - x).pow(2).sum(-1)
        kl = -0.5 * (1 + 2 * log_std - mean.pow(2) - (2 * log_std).exp()).sum(-1)
        per = rec + 0.5 * kl
        return per.mean() if reduce else per
