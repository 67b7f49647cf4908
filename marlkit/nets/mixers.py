"""Mixers: combine local values ``[B, N]`` into a team value ``[B]`` with state-conditioned weights.

:class:`LinearMixer` is the linear value decomposition of OMIGA (Wang et al. 2023, Eq. 8):
``Q_tot(s, a) = Σ_i w_i(s) Q_i(o_i, a_i) + b(s)`` with ``w_i(s) = |f_w(s)_i| ≥ 0`` from a weight network on the
global state and ``b(s)`` from a bias network (2 layers, 64 hidden units, as in the official code).
The same weights serve ``V_tot = Σ_i w_i V_i + b``. ComaDICE, BCQ-MA and CQL-MA reuse it.

:class:`MonotonicMixer` is the 2-layer alternative (QMIX-style hypernetworks, Rashid et al. 2020) with
non-negative weights and a convex, non-decreasing activation (ELU): the mixed value is then convex and
monotone in the local inputs, the condition of comadice.md Theorem 4.2.

Both expose ``mixing_params(state)`` (the state-generated weights, computed once) and ``mix(x, *params)``, so a
caller can mix several inputs with the same weights, or with detached weights; ``x`` may carry extra leading
dims (``[..., B, N]`` → ``[..., B]``).

With ``local_obs_dim`` set, the weights come from each agent's own observation instead, ``w_i(o_i) ≥ 0``
(:class:`LocalWeight`; the ``OMIGA-local-w`` ablation of omiga.md Sec. 5.4), while ``b(s)`` stays global.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from marlkit.nets.mlp import MultiAgentMLP, mlp_layers

__all__ = ["LinearMixer", "LocalWeight", "MonotonicMixer"]


class LocalWeight(nn.Module):
    """Per-agent non-negative weights from local observations only: ``w_i(o_i) = |f_i(o_i)|``.

    Batched over agents (one :class:`~marlkit.nets.mlp.MultiAgentMLP`). Shapes: ``obs [..., N, obs_dim]`` →
    ``[..., N]``. Source: the ``OMIGA-local-w`` ablation, omiga.md Sec. 5.4.
    """

    def __init__(self, n_agents: int, obs_dim: int, hidden: Sequence[int] = (64,), share_params: bool = False):
        super().__init__()
        self.net = MultiAgentMLP(n_agents, obs_dim, 1, hidden, share_params)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1).abs()


class LinearMixer(nn.Module):
    """``Q_tot = Σ_i w_i(s) q_i + b(s)`` with ``w ≥ 0`` (abs of a 2-layer net on the state).

    Shapes: ``state [B, state_dim]``, ``q [B, N]`` → ``[B]``.

    Args:
        state_dim: global state size.
        n_agents: N.
        hidden: hidden sizes of the weight and bias nets (``(64,)``: 2 layers, 64 units).
        local_obs_dim: if given, ``w_i(o_i)`` comes from a :class:`LocalWeight` on each agent's observation
            (``obs [B, N, local_obs_dim]`` must then be passed to :meth:`weights` / :meth:`forward`).
    """

    def __init__(self, state_dim: int, n_agents: int, hidden: Sequence[int] = (64,),
                 local_obs_dim: int | None = None):
        super().__init__()
        self.n_agents = n_agents
        self.local = local_obs_dim is not None
        if self.local:
            self.weight_net = LocalWeight(n_agents, local_obs_dim, hidden)
        else:
            self.weight_net = mlp_layers([state_dim, *hidden, n_agents], None)
        self.bias_net = mlp_layers([state_dim, *hidden, 1], None)

    def weights(self, state: torch.Tensor, obs: torch.Tensor | None = None) -> torch.Tensor:
        """Non-negative mixing weights ``w(s)`` (or ``w_i(o_i)`` for a local mixer), shape ``[B, N]``.

        Raises:
            ValueError: if the mixer is local and ``obs`` is missing.
        """
        if self.local:
            if obs is None:
                raise ValueError("a LinearMixer with local weights needs obs [B, N, obs_dim]")
            return self.weight_net(obs)
        return self.weight_net(state).abs()

    def bias(self, state: torch.Tensor) -> torch.Tensor:
        """Offset ``b(s)``, shape ``[B]``."""
        return self.bias_net(state).squeeze(-1)

    def mixing_params(self, state: torch.Tensor, obs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w [B, N], b(s) [B])`` for :meth:`mix` (``obs`` only for a local-weight mixer)."""
        return self.weights(state, obs), self.bias(state)

    def mix(self, q: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``Σ_i w_i q_i + b`` for precomputed ``w [B, N]`` and ``b [B]`` (saves recomputing the nets)."""
        return (w * q).sum(-1) + b

    def forward(self, q: torch.Tensor, state: torch.Tensor, obs: torch.Tensor | None = None) -> torch.Tensor:
        return self.mix(q, self.weights(state, obs), self.bias(state))


class MonotonicMixer(nn.Module):
    """2-layer mixer ``M_s[x] = W2(s)ᵀ σ(W1(s)ᵀ x + b1(s)) + b2(s)`` with ``W1, W2 ≥ 0`` and σ = ELU.

    Hypernetworks on the global state generate ``W1 [B, N, E] = |h1(s)|``, ``b1 [B, E]``,
    ``W2 [B, E] = |h2(s)|`` and ``b2 [B]`` (2-layer, as QMIX). Non-negative weights and a convex non-decreasing
    activation make ``M_s`` convex and non-decreasing in ``x`` (comadice.md Theorem 4.2's assumption).

    Shapes: ``state [B, state_dim]``, ``x [..., B, N]`` → ``[..., B]``.

    Args:
        state_dim, n_agents: input sizes.
        embed: width E of the mixing layer (QMIX: 32).
        hidden: hidden sizes of the hypernetworks (64 as the 1-layer mixer).
    """

    def __init__(self, state_dim: int, n_agents: int, embed: int = 32, hidden: Sequence[int] = (64,)):
        super().__init__()
        self.n_agents, self.embed = n_agents, embed
        self.w1_net = mlp_layers([state_dim, *hidden, n_agents * embed], None)
        self.b1_net = nn.Linear(state_dim, embed)
        self.w2_net = mlp_layers([state_dim, *hidden, embed], None)
        self.b2_net = mlp_layers([state_dim, *hidden, 1], None)

    def mixing_params(self, state: torch.Tensor):
        """``(W1 [B, N, E] ≥ 0, b1 [B, E], W2 [B, E] ≥ 0, b2 [B])`` for :meth:`mix`."""
        w1 = self.w1_net(state).abs().reshape(*state.shape[:-1], self.n_agents, self.embed)
        return w1, self.b1_net(state), self.w2_net(state).abs(), self.b2_net(state).squeeze(-1)

    def mix(self, x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
            b2: torch.Tensor) -> torch.Tensor:
        """Mix ``x [..., B, N]`` with precomputed parameters → ``[..., B]``."""
        h = nn.functional.elu((x.unsqueeze(-1) * w1).sum(-2) + b1)  # [..., B, E]
        return (h * w2).sum(-1) + b2

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.mix(x, *self.mixing_params(state))
