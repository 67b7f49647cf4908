"""Loss pieces shared by the conservative / constrained value-based algorithms (BCQ, CQL, ICQ, OMAR and their
multi-agent versions). Every function works on agent-batched tensors ``[..., B, N(, A)]`` in one op.

- :func:`cql_discrete_penalty` — CQL(H) regularizer for discrete heads (Kumar et al. 2020, Eq. 4).
- :func:`cql_continuous_penalty` — its importance-sampled continuous estimate (Kumar et al. 2020, App. F).
- :func:`uniform_actions` / :func:`gaussian_log_density` — proposal actions and their log-densities for it.
- :func:`bcq_allowed_actions` — discrete BCQ's relative-probability threshold (Fujimoto et al. 2019b, Eq. 9).
- :class:`PerturbationActor` — continuous BCQ's perturbation model ξ_φ(o, a, Φ) (Fujimoto et al. 2019, Sec. 4).
- :func:`batch_softmax_weights` — ICQ's implicit-constraint weights normalised over the minibatch
  (Yang et al. 2021, Eq. 8/11: ``exp(x/α) / Z`` with ``Z`` estimated on the batch).
- :func:`attach_next_actions` — the dataset's next action ``a'`` for in-sample (SARSA-style) targets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from marlkit.data.dataset import DatasetError
from marlkit.data.sampler import DeviceSampler
from marlkit.nets.mlp import MultiAgentMLP
from marlkit.nets.policies import masked_logits

__all__ = [
    "PerturbationActor",
    "attach_next_actions",
    "batch_softmax_weights",
    "bcq_allowed_actions",
    "cql_continuous_penalty",
    "cql_discrete_penalty",
    "gaussian_log_density",
    "masked_argmax",
    "uniform_actions",
]


def masked_argmax(values: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """``argmax_a`` over allowed actions: ``values [..., A]``, ``allowed`` bool ``[..., A]`` or None → ``[...]``."""
    return masked_logits(values, allowed).argmax(-1)


def cql_discrete_penalty(q_all: torch.Tensor, q_data: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
    """CQL(H) regularizer per sample: ``log Σ_a exp Q(o, a) − Q(o, a_D)``.

    Args:
        q_all: ``Q_i(o_i, ·)`` of every action, ``[..., A]``.
        q_data: ``Q_i(o_i, a_i)`` of the dataset action, ``[...]``.
        avail: optional bool ``[..., A]``; unavailable actions are left out of the log-sum-exp.

    Returns:
        ``[...]`` (average it for the loss). Source: Kumar et al. 2020, Eq. 4 (the minimiser over μ of the
        entropy-regularised CQL(R) is the log-sum-exp).
    """
    return torch.logsumexp(masked_logits(q_all, avail), dim=-1) - q_data


def cql_continuous_penalty(q_samples: torch.Tensor, log_density: torch.Tensor, q_data: torch.Tensor,
                           temperature: float = 1.0) -> torch.Tensor:
    """Importance-sampled CQL(H) regularizer per sample: ``T·log Σ_k exp((Q(o, a_k) − log p(a_k)) / T) − Q(o, a_D)``.

    Args:
        q_samples: ``Q(o, a_k)`` of K proposal actions, ``[K, ...]``.
        log_density: ``log p(a_k)`` of each proposal under its sampling distribution, broadcastable to
            ``q_samples``.
        q_data: ``Q(o, a_D)`` of the dataset action, ``[...]``.
        temperature: log-sum-exp temperature T (1 in CQL and OMAR).

    Returns:
        ``[...]``. Source: Kumar et al. 2020, App. F (importance sampling with uniform and policy proposals), as
        in the official CQL and OMAR code.
    """
    stacked = (q_samples - log_density) / temperature
    return temperature * torch.logsumexp(stacked, dim=0) - q_data


def uniform_actions(shape: Sequence[int], device, generator: torch.Generator | None = None):
    """Uniform actions on [-1, 1]^d, ``shape = (..., d)``, with their log-density ``−d·log 2`` (a float)."""
    a = torch.rand(tuple(shape), device=device, generator=generator) * 2 - 1
    return a, -shape[-1] * math.log(2.0)


def gaussian_log_density(noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """``log N(noise; 0, σ² I)`` summed over the last dim: ``[..., d] → [...]``."""
    d = noise.shape[-1]
    return -0.5 * (noise / sigma).pow(2).sum(-1) - d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))


def bcq_allowed_actions(behavior_log_probs: torch.Tensor, threshold: float,
                        avail: torch.Tensor | None = None) -> torch.Tensor:
    """Discrete BCQ's action filter: ``G(a|o) / max_a' G(a'|o) > τ``.

    Args:
        behavior_log_probs: log of the imitation model G_ω(·|o), ``[..., A]``.
        threshold: τ in [0, 1) (0.3 in omiga.md Table 6; 0 allows every action, i.e. Q-learning).
        avail: optional bool ``[..., A]`` of legal actions.

    Returns:
        bool ``[..., A]`` (the most likely available action is always allowed). Source: Fujimoto et al. 2019b,
        "Benchmarking batch deep RL algorithms", Eq. 9.
    """
    logp = masked_logits(behavior_log_probs, avail)
    ratio = (logp - logp.max(-1, keepdim=True).values).exp()
    allowed = ratio > threshold
    allowed |= ratio >= 1.0  # keep the argmax even for τ close to 1
    if avail is not None:
        allowed &= avail.bool()
    return allowed


class PerturbationActor(nn.Module):
    """BCQ's perturbation model: ``ã_i = clip(a_i + Φ·tanh(f_φ(o_i, a_i)), −1, 1)`` for every agent at once.

    Args:
        n_agents, obs_dim, act_dim: shapes of ``obs [B, N, obs_dim]`` and ``a [B, N, act_dim]``.
        hidden, share_params: see :class:`~marlkit.nets.mlp.MultiAgentMLP`.
        phi: maximum perturbation Φ as a fraction of the action range (0.05 in BCQ).

    Source: Fujimoto et al. 2019, "Off-policy deep RL without exploration", Sec. 4 (ξ_φ(s, a, Φ) ∈ [−Φ, Φ]).
    """

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, hidden: Sequence[int] = (400, 300),
                 share_params: bool = False, phi: float = 0.05):
        super().__init__()
        self.phi = phi
        self.net = MultiAgentMLP(n_agents, obs_dim + act_dim, act_dim, hidden, share_params)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        xi = self.phi * torch.tanh(self.net(torch.cat([obs, actions], -1)))
        return (actions + xi).clamp(-1.0, 1.0)


def batch_softmax_weights(x: torch.Tensor, temperature: float, dim: int = 0) -> torch.Tensor:
    """ICQ's importance weights ``exp(x/α) / Z`` with ``Z`` the batch mean of ``exp(x/α)``: ``B·softmax(x/α)``.

    The weights average to 1 along ``dim`` (the batch axis) and are detached. Source: Yang et al. 2021, Eq. 8
    (critic) and Eq. 11 (actor); the batch normaliser follows the official ICQ-MA code.
    """
    return (x.shape[dim] * torch.softmax(x / temperature, dim=dim)).detach()


def attach_next_actions(sampler: DeviceSampler) -> None:
    """Add ``next_actions`` (the action the dataset took in s') and ``has_next_action`` to the sampler's tensors.

    Row t's successor is row t+1 when the transition is neither terminal nor a timeout and row t+1 starts where
    row t ends (``observations[t+1] == next_observations[t]``). Rows without a successor in the data (terminal
    rows, timeouts, the last row, shuffled data) get ``has_next_action = 0``; in-sample targets then cannot
    bootstrap from them (for terminals they must not anyway).

    Raises:
        DatasetError: if no non-terminal row has a successor although the dataset has non-terminal rows (the
            transitions are not stored in episode order).
    """
    t = sampler.tensors
    size = sampler.size
    actions = t["actions"]
    nxt = torch.zeros_like(actions)
    has = torch.zeros(size, device=actions.device)
    if size > 1:
        cont = (1 - t["terminals"][:-1]) * (1 - t["timeouts"][:-1])
        same = (t["observations"][1:] - t["next_observations"][:-1]).abs().flatten(1).amax(1) <= 1e-6
        ok = cont.bool() & same
        nxt[:-1] = torch.where(ok.view(-1, *[1] * (actions.dim() - 1)), actions[1:], nxt[:-1])
        has[:-1] = ok.float()
        nonterminal = int(cont.sum().item())
        if nonterminal > 0 and int(ok.sum().item()) == 0:
            raise DatasetError("next_actions: no non-terminal transition is followed by its successor row; "
                               "in-sample targets need transitions stored in episode order")
    t["next_actions"] = nxt
    t["has_next_action"] = has
