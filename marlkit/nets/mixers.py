"""Mixers: combine local values ``[B, N]`` into a team value ``[B]`` with state-conditioned weights.

:class:`LinearMixer` is the linear value decomposition of OMIGA (Wang et al. 2023, Eq. 8):
``Q_tot(s, a) = Σ_i w_i(s) Q_i(o_i, a_i) + b(s)`` with ``w_i(s) = |f_w(s)_i| ≥ 0`` from a weight network on the
global state and ``b(s)`` from a bias network (2 layers, 64 hidden units, as in the official code).
The same weights serve ``V_tot = Σ_i w_i V_i + b``. ComaDICE, BCQ-MA and CQL-MA reuse it.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from marlkit.nets.mlp import mlp_layers

__all__ = ["LinearMixer"]


class LinearMixer(nn.Module):
    """``Q_tot = Σ_i w_i(s) q_i + b(s)`` with ``w ≥ 0`` (abs of a 2-layer net on the state).

    Shapes: ``state [B, state_dim]``, ``q [B, N]`` → ``[B]``.
    """

    def __init__(self, state_dim: int, n_agents: int, hidden: Sequence[int] = (64,)):
        super().__init__()
        self.n_agents = n_agents
        self.weight_net = mlp_layers([state_dim, *hidden, n_agents], None)
        self.bias_net = mlp_layers([state_dim, *hidden, 1], None)

    def weights(self, state: torch.Tensor) -> torch.Tensor:
        """Non-negative mixing weights ``w(s)``, shape ``[B, N]``."""
        return self.weight_net(state).abs()

    def bias(self, state: torch.Tensor) -> torch.Tensor:
        """Offset ``b(s)``, shape ``[B]``."""
        return self.bias_net(state).squeeze(-1)

    def mix(self, q: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``Σ_i w_i q_i + b`` for precomputed ``w [B, N]`` and ``b [B]`` (saves recomputing the nets)."""
        return (w * q).sum(-1) + b

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.mix(q, self.weights(state), self.bias(state))
