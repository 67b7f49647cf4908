"""Batched multi-agent MLPs: one tensor op for all agents, never a Python loop over them.

Layout: inputs ``[B, N, in]`` → outputs ``[B, N, out]``. With separate parameters each layer holds weights
``[N, in, out]`` and runs one batched matmul (``baddbmm``) over the agent axis (the ``VectorizedLinear`` trick of
CORL). With ``share_params=True`` one network serves all agents and a one-hot agent id is appended to the input
(as the official OMIGA code does). Extra leading dims (e.g. a population axis ``[K, B, N, in]``) are flattened
into the batch.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = ["BatchedLinear", "MultiAgentMLP", "mlp_layers"]


class BatchedLinear(nn.Module):
    """``members`` independent linear layers applied at once: ``[B, M, in] -> [B, M, out]``.

    Weights ``[M, in, out]`` and biases ``[M, out]`` are initialised like ``nn.Linear`` (Kaiming-uniform with
    ``a=sqrt(5)``), each member on its own.
    """

    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__()
        if members <= 0 or in_features <= 0 or out_features <= 0:
            raise ValueError(f"BatchedLinear sizes must be positive, got members={members}, in={in_features}, "
                             f"out={out_features}")
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))
        bound = 1.0 / math.sqrt(in_features)
        nn.init.uniform_(self.weight, -bound, bound)  # same range as nn.Linear's default for these shapes
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., M, in]`` → ``[..., M, out]``."""
        lead = x.shape[:-2]
        x2 = x.reshape(-1, self.members, self.in_features).transpose(0, 1)  # [M, B, in]
        y = torch.baddbmm(self.bias.unsqueeze(1), x2, self.weight)  # [M, B, out]
        return y.transpose(0, 1).reshape(*lead, self.members, self.out_features)

    def extra_repr(self) -> str:
        return f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}"


def mlp_layers(sizes: Sequence[int], members: int | None, activation=nn.ReLU) -> nn.Sequential:
    """Linear(+activation) stack over ``sizes``; ``members=None`` gives plain ``nn.Linear`` layers."""
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        lin = nn.Linear(sizes[k], sizes[k + 1]) if members is None else BatchedLinear(members, sizes[k], sizes[k + 1])
        layers.append(lin)
        if k < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class MultiAgentMLP(nn.Module):
    """An MLP per agent, batched: ``[..., N, in_dim] -> [..., N, out_dim]``.

    Args:
        n_agents: N.
        in_dim: per-agent input size.
        out_dim: per-agent output size.
        hidden: hidden layer sizes (``(256, 256)`` gives a 3-layer MLP, the papers' setting).
        share_params: one network for all agents with a one-hot agent id appended to the input.
        activation: hidden activation class.

    Raises:
        ValueError: if the input's last two dims are not ``[N, in_dim]``.
    """

    def __init__(self, n_agents: int, in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256),
                 share_params: bool = False, activation=nn.ReLU):
        super().__init__()
        self.n_agents, self.in_dim, self.out_dim, self.share_params = n_agents, in_dim, out_dim, share_params
        first = in_dim + (n_agents if share_params else 0)
        self.net = mlp_layers([first, *hidden, out_dim], None if share_params else n_agents, activation)
        if share_params:
            self.register_buffer("agent_ids", torch.eye(n_agents), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.n_agents, self.in_dim):
            raise ValueError(f"MultiAgentMLP expects input [..., N={self.n_agents}, in={self.in_dim}], got "
                             f"{tuple(x.shape)}")
        if self.share_params:
            ids = self.agent_ids.expand(*x.shape[:-1], self.n_agents)
            x = torch.cat([x, ids], dim=-1)
        return self.net(x)
