"""Local value networks batched over agents (and, optionally, over an ensemble of twins).

- :class:`LocalQ`: ``Q_i(o_i, ·)`` heads ``[B, N, A]`` for discrete actions, or ``Q_i(o_i, a_i)`` ``[B, N]`` for
  continuous ones (action concatenated to the observation).
- :class:`LocalV`: ``V_i(o_i)`` ``[B, N]``.
- :class:`JointQ`: centralised critics ``Q^e(s, a_1, ..., a_N)`` of the joint continuous action ``[E, B]`` (the
  MATD3-style critic of CFCQL's and OMAR's MaMuJoCo code).

``ensemble=E > 1`` (e.g. twin critics of TD3/BCQ/CQL) adds a leading axis: outputs ``[E, B, N(, A)]``, computed
by one batched matmul over ``E·N`` members.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from marlkit.nets.mlp import MultiAgentMLP, batched_mlp, mlp_layers

__all__ = ["JointQ", "LocalQ", "LocalV"]


class _Ensemble(nn.Module):
    """``E`` copies of a per-agent MLP as one module: ``[B, N, in] -> [E, B, N, out]``."""

    def __init__(self, n_agents: int, in_dim: int, out_dim: int, hidden: Sequence[int], share_params: bool,
                 ensemble: int):
        super().__init__()
        self.ensemble, self.n_agents, self.share_params = ensemble, n_agents, share_params
        if ensemble == 1:
            self.net = MultiAgentMLP(n_agents, in_dim, out_dim, hidden, share_params)
        else:
            # members = E (shared across agents, agent id appended) or E * N (separate per agent)
            members = ensemble if share_params else ensemble * n_agents
            first = in_dim + (n_agents if share_params else 0)
            self.net = mlp_layers([first, *hidden, out_dim], members)
            if share_params:
                self.register_buffer("agent_ids", torch.eye(n_agents), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ensemble == 1:
            return self.net(x)
        B, N, D = x.shape
        if self.share_params:
            x = torch.cat([x, self.agent_ids.expand(B, N, N)], -1)  # [B, N, D+N]
            h = x.unsqueeze(-2).expand(B, N, self.ensemble, x.shape[-1]).reshape(B * N, self.ensemble, -1)
            y = self.net(h)  # [B*N, E, out]
            return y.reshape(B, N, self.ensemble, -1).permute(2, 0, 1, 3)
        h = x.unsqueeze(1).expand(B, self.ensemble, N, D).reshape(B, self.ensemble * N, D)
        y = self.net(h)  # [B, E*N, out]
        return y.reshape(B, self.ensemble, N, -1).transpose(0, 1)


    def member(self, x: torch.Tensor, e: int) -> torch.Tensor:
        """Ensemble member ``e`` alone, ``[B, N, in] -> [B, N, out]`` (equals ``forward(x)[e]`` at 1/E of the cost;
        e.g. the Q¹ that TD3-style actors and OMAR's CEM use)."""
        if self.ensemble == 1:
            return self.net(x)
        B, N, D = x.shape
        if self.share_params:
            x = torch.cat([x, self.agent_ids.expand(B, N, N)], -1)
            h, sl = x.reshape(1, B * N, -1), slice(e, e + 1)  # [1, B·N, D+N]
        else:
            h, sl = x.reshape(B, N, D).transpose(0, 1), slice(e * N, (e + 1) * N)  # [N, B, D]
        h = batched_mlp(self.net, h, sl)
        return h.reshape(B, N, -1) if self.share_params else h.transpose(0, 1)


class LocalQ(nn.Module):
    """Local action values for every agent.

    Args:
        n_agents, obs_dim: shapes of ``obs [B, N, obs_dim]``.
        n_actions: discrete head size (0 for continuous).
        act_dim: continuous action size (0 for discrete).
        hidden, share_params: see :class:`~marlkit.nets.mlp.MultiAgentMLP`.
        ensemble: number of independent critics E (outputs gain a leading ``[E]`` axis when E > 1).

    ``forward(obs)`` → ``[(E,) B, N, A]`` (discrete); ``forward(obs, actions)`` → ``[(E,) B, N]`` (continuous).
    """

    def __init__(self, n_agents: int, obs_dim: int, n_actions: int = 0, act_dim: int = 0,
                 hidden: Sequence[int] = (256, 256), share_params: bool = False, ensemble: int = 1):
        super().__init__()
        if (n_actions > 0) == (act_dim > 0):
            raise ValueError("LocalQ needs exactly one of n_actions (discrete) or act_dim (continuous)")
        self.discrete = n_actions > 0
        in_dim = obs_dim + (0 if self.discrete else act_dim)
        out_dim = n_actions if self.discrete else 1
        self.net = _Ensemble(n_agents, in_dim, out_dim, hidden, share_params, ensemble)

    @classmethod
    def for_spec(cls, spec, hidden: Sequence[int] = (256, 256), share_params: bool = False,
                 ensemble: int = 1) -> LocalQ:
        """``Q_i`` for the action space of ``spec`` (an :class:`~marlkit.envs.base.EnvSpec`): heads
        ``Q_i(o_i, ·)`` over ``spec.n_actions`` discrete actions, or ``Q_i(o_i, a_i)`` for ``spec.act_dim``
        continuous ones."""
        return cls(spec.n_agents, spec.obs_dim, n_actions=spec.n_actions, act_dim=spec.act_dim, hidden=hidden,
                   share_params=share_params, ensemble=ensemble)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        if self.discrete:
            return self.net(obs)
        if actions is None:
            raise ValueError("continuous LocalQ needs actions [B, N, act_dim]")
        return self.net(torch.cat([obs, actions], -1)).squeeze(-1)

    def member(self, e: int, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """Critic ``e`` of the ensemble alone: ``forward(obs, actions)[e]`` without computing the others."""
        if self.discrete:
            return self.net.member(obs, e)
        return self.net.member(torch.cat([obs, actions], -1), e).squeeze(-1)

    def taken(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q_i(o_i, a_i)`` of the given actions: ``[(E,) B, N]`` (discrete: gathers the head)."""
        if not self.discrete:
            return self(obs, actions)
        q = self(obs)
        idx = actions.long().unsqueeze(-1).expand(*q.shape[:-1], 1)
        return q.gather(-1, idx).squeeze(-1)


class LocalV(nn.Module):
    """``V_i(o_i)`` for every agent: ``[B, N, obs_dim] -> [(E,) B, N]``."""

    def __init__(self, n_agents: int, obs_dim: int, hidden: Sequence[int] = (256, 256), share_params: bool = False,
                 ensemble: int = 1):
        super().__init__()
        self.net = _Ensemble(n_agents, obs_dim, 1, hidden, share_params, ensemble)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


class JointQ(nn.Module):
    """E centralised critics of the state and the joint continuous action, batched over the ensemble.

    ``Q^e(s, a) = f_e([s, a_1, ..., a_N])`` with one MLP per member e (twin critics: E = 2), all members in one
    batched product per layer.

    Args:
        state_dim: size of the global state s.
        n_agents, act_dim: shapes of the joint action ``[..., N, act_dim]``.
        hidden: hidden sizes of each member's MLP.
        ensemble: number of critics E.

    ``forward(states [*R, state_dim], actions [*R, N, act_dim])`` → ``[E, *R]`` for any leading row shape R (e.g.
    ``[B]`` or ``[N, K, B]`` counterfactual candidates); :meth:`member` gives critic e alone, ``[*R]``.

    Example::

        >>> q = JointQ(state_dim=10, n_agents=3, act_dim=2, hidden=(64, 64))
        >>> q(torch.zeros(128, 10), torch.zeros(128, 3, 2)).shape
        torch.Size([2, 128])
    """

    def __init__(self, state_dim: int, n_agents: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 ensemble: int = 2):
        super().__init__()
        self.ensemble, self.n_agents, self.act_dim = ensemble, n_agents, act_dim
        self.in_dim = state_dim + n_agents * act_dim
        self.net = mlp_layers([self.in_dim, *hidden, 1], ensemble)

    def _inputs(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
        lead = actions.shape[:-2]
        x = torch.cat([states.expand(*lead, states.shape[-1]), actions.flatten(-2)], -1)
        return x.reshape(1, -1, self.in_dim), lead  # [1, R, in]

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x, lead = self._inputs(states, actions)
        y = batched_mlp(self.net, x.expand(self.ensemble, -1, -1))  # [E, R, 1]
        return y.reshape(self.ensemble, *lead)

    def member(self, e: int, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Critic ``e`` alone: ``forward(states, actions)[e]`` at 1/E of the cost (the Q¹ of TD3-style actors)."""
        x, lead = self._inputs(states, actions)
        return batched_mlp(self.net, x, slice(e, e + 1)).reshape(*lead)
