"""CFCQL: counterfactual conservative Q-learning (Shao et al., NeurIPS 2023, "Counterfactual Conservative Q Learning
for Offline Multi-agent Reinforcement Learning"), the discrete-action algorithm with a QMIX-style mixer.

Value decomposition: local heads ``Q_i(o_i, ·)`` mixed by the monotonic 2-layer mixer of QMIX (Rashid et al. 2020;
:class:`~marlkit.nets.mixers.MonotonicMixer`, embedding 32, hypernetworks of 64 units as in the authors'
``cql_qmix.yaml``): ``Q_tot(s, a) = M_s[Q_1(o_1, a_1), ..., Q_N(o_N, a_N)]``.

Critic objective (Shao et al. 2023, Eq. 5, with CQL(H)'s closed-form inner maximum, Kumar et al. 2020, Eq. 4)::

    L(Q) = ½ E_D[(Q_tot(s, a) − y)²]
           + α E_D[ Σ_i λ_i(s) log Σ_{a'_i} exp Q_tot(s, (a'_i, a_{−i})) − Q_tot(s, a) ]

The penalty is *counterfactual*: agent i's action is replaced by each of its actions ``a'_i`` while the other
agents keep the dataset's ``a_{−i}``; its log-sum-exp is agent i's CQL(H) term, and the per-agent terms are mixed
by the weights ``λ_i ≥ 0``, ``Σ_i λ_i = 1``. The weights are the softmax over agents, with temperature τ, of how far
agent i's counterfactual policy strays from its behavior policy (Shao et al. 2023, Sec. 4.3; the authors'
``cq_learner.py``)::

    λ_i(s) = exp(τ D_KL(π^i ‖ β^i)(s)) / Σ_j exp(τ D_KL(π^j ‖ β^j)(s)),
    π^i(a'_i | s) = softmax_{a'_i} Q_tot(s, (a'_i, a_{−i})),

so the agent whose counterfactual policy leaves the data most takes most of the penalty (τ → ∞: all of it;
τ = 0: the uniform ``λ_i = 1/N``). β^i is a behavior-cloning model ``β_i(a_i | o_i)`` trained alongside (its own
stage, loss ``behavior_loss``). The TD target is double-Q over the factorised greedy action:
``y = r + γ (1 − d) Q̄_tot(s', argmax_{a'} Q_i(o'_i, a'))`` (online argmax, target values and target mixer,
Polyak-averaged).

The decentralised policy is ``π_i(o_i) = argmax_a Q_i(o_i, a)`` (greedy, also under sampled evaluation: a
value-based method's learned policy is deterministic).

Continuous actions: the paper's MaMuJoCo variant is a MATD3 learner with a centralised joint critic ``Q(s, a)`` and an
importance-sampled counterfactual penalty; it is not implemented here (``supports_continuous = False``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from marlkit.algos.base import AlgoConfig, Algorithm, Stage, ranged
from marlkit.data.sampler import Batch
from marlkit.nets.critics import LocalQ
from marlkit.nets.mixers import MonotonicMixer
from marlkit.nets.policies import CategoricalPolicy, masked_logits

__all__ = ["CFCQL", "CFCQLConfig", "counterfactual_values", "counterfactual_weights", "counterfactual_penalty"]


@dataclass
class CFCQLConfig(AlgoConfig):
    """CFCQL hyperparameters.

    Attributes:
        lr: Adam learning rate of Q_i and the mixer (1e-3, the authors' ``cql_qmix.yaml``).
        hidden: hidden sizes of the local Q_i and of β_i ((64, 64): the 64-unit agents of the authors' pymarl code,
            as MLPs instead of their GRU).
        alpha: α, the weight of the counterfactual CQL penalty against the ½-scaled TD loss (Eq. 5; 50, the
            authors' ``global_cql_alpha`` for SMAC).
        temperature: τ of the softmax over agents that gives λ_i (5, the authors' ``softmax_temp``); 0 gives the
            uniform λ_i = 1/N.
        tau: Polyak rate of the target Q_i and mixer (0.005, omiga.md Tables 5–6; the authors copy them every 200
            episodes instead).
        mixer_embed: width of the mixing layer (32, ``mixing_embed_dim``).
        mixer_hidden: hidden sizes of the mixer's hypernetworks ((64,), ``hypernet_embed``).
        behavior_lr: Adam learning rate of the behavior model β_i (1e-3, the authors' ``lr``).
    """

    lr: float = 1e-3
    hidden: tuple[int, ...] = (64, 64)
    alpha: float = ranged(50.0, "[0, inf)")
    temperature: float = ranged(5.0, "[0, inf)")
    tau: float = ranged(0.005, "(0, 1]")
    mixer_embed: int = ranged(32, "[1, inf)")
    mixer_hidden: tuple[int, ...] = (64,)
    behavior_lr: float = ranged(1e-3, "(0, inf)")


def counterfactual_values(mixer: MonotonicMixer, params: tuple, q_all: torch.Tensor,
                          q_data: torch.Tensor) -> torch.Tensor:
    """``Q_tot(s, (a'_i, a_{−i}))`` for every agent i and every action a'_i of it, the others at the data's actions.

    One mixer call over all (i, a'_i): the local values ``q_data`` with entry i replaced by ``Q_i(o_i, a'_i)``.

    Args:
        mixer: the mixer; ``params`` its :meth:`~marlkit.nets.mixers.MonotonicMixer.mixing_params` of the states.
        q_all: ``Q_i(o_i, ·)``, ``[B, N, A]``.
        q_data: ``Q_i(o_i, a_i)`` of the dataset actions, ``[B, N]``.

    Returns:
        ``[B, N, A]``: entry ``[b, i, a']`` is the counterfactual team value of agent i playing a'.
    """
    B, N, A = q_all.shape
    eye = torch.eye(N, dtype=q_all.dtype, device=q_all.device).view(N, 1, 1, N)  # [N(i), 1, 1, N(k)]
    local = q_data.unsqueeze(0).unsqueeze(0) * (1 - eye) + q_all.permute(1, 2, 0).unsqueeze(-1) * eye  # [N, A, B, N]
    return mixer.mix(local, *params).permute(2, 0, 1)  # [N, A, B] -> [B, N, A]


def counterfactual_weights(cf_values: torch.Tensor, behavior_log_probs: torch.Tensor, temperature: float,
                           avail: torch.Tensor | None = None) -> torch.Tensor:
    """λ_i(s) = softmax_i(τ · D_KL(π^i ‖ β^i)(s)) with ``π^i = softmax_{a'} Q_tot(s, (a', a_{−i}))`` (Shao et al.
    2023, Sec. 4.3; detached).

    Shapes: ``cf_values [B, N, A]`` (:func:`counterfactual_values`), ``behavior_log_probs`` log β_i ``[B, N, A]``,
    ``avail`` bool ``[B, N, A]`` or None → ``[B, N]`` (rows sum to 1).
    """
    with torch.no_grad():
        logits = masked_logits(cf_values, avail)
        log_pi = torch.log_softmax(logits, -1)
        pi = log_pi.exp()
        terms = pi * (log_pi - behavior_log_probs)
        if avail is not None:
            terms = terms.masked_fill(~avail.bool(), 0.0)
        kl = terms.sum(-1)  # [B, N]
        return torch.softmax(temperature * kl, -1)


def counterfactual_penalty(cf_values: torch.Tensor, q_tot: torch.Tensor, weights: torch.Tensor,
                           avail: torch.Tensor | None = None) -> torch.Tensor:
    """The counterfactual CQL(H) penalty per sample, ``Σ_i λ_i log Σ_{a'} exp Q_tot(s, (a', a_{−i})) − Q_tot(s, a)``
    (Shao et al. 2023, Eq. 5 with the CQL(H) inner maximum).

    Shapes: ``cf_values [B, N, A]``, ``q_tot [B]``, ``weights`` λ ``[B, N]``, ``avail`` or None → ``[B]``.
    """
    lse = torch.logsumexp(masked_logits(cf_values, avail), -1)  # [B, N]
    return (weights * lse).sum(-1) - q_tot


class CFCQL(Algorithm):
    """CFCQL: counterfactual per-agent CQL penalties, λ-weighted, on a QMIX-mixed Q_tot (discrete actions).

    Stages: ``behavior`` (BC of β_i, for λ) then ``critic`` (TD + α × the counterfactual penalty); Polyak targets
    after every update. Networks: ``q``, ``mixer``, ``q_target``, ``mixer_target``, ``behavior``.
    """

    name = "cfcql"
    Config = CFCQLConfig
    supports_continuous = False
    population_fields = ("alpha",)

    def __init__(self, spec, config: CFCQLConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c, n = self.config, spec.n_agents
        self.q = LocalQ.for_spec(spec, c.hidden, c.share_params)
        self.mixer = MonotonicMixer(spec.state_dim, n, c.mixer_embed, c.mixer_hidden)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.mixer_target = copy.deepcopy(self.mixer).requires_grad_(False)
        self.behavior = CategoricalPolicy(n, spec.obs_dim, spec.n_actions, c.hidden, c.share_params)
        self.to(self.device)
        self.critic_opt = self.make_adam(self.q, self.mixer)
        self.behavior_opt = self.make_adam(self.behavior, lr=c.behavior_lr)

    def stages(self) -> list[Stage]:
        """The behavior model β_i (BC), then the critic (Q_i and the mixer)."""
        return [Stage("behavior", "behavior_loss", ("behavior_opt",)),
                Stage("critic", "critic_loss", ("critic_opt",))]

    def behavior_loss(self, batch: Batch, carry: dict):
        """``−E_D[Σ_i log β_i(a_i | o_i)] / N``; passes ``log β_i(· | o_i)`` (detached) to the critic stage."""
        log_b = self.behavior.log_probs(batch["observations"], batch.get("avail_actions"))
        loss = -log_b.gather(-1, batch["actions"].long().unsqueeze(-1)).mean()
        return loss, {"behavior_loss": loss.detach()}, {"behavior_log_probs": log_b}

    def td_target(self, batch: Batch) -> torch.Tensor:
        """``y = r + γ (1 − d) Q̄_tot(s', argmax_a Q_i(o'_i, a))`` (double Q; call without gradients), ``[B]``."""
        nobs, navail = batch["next_observations"], batch.get("next_avail_actions")
        greedy = masked_logits(self.q(nobs), navail).argmax(-1, keepdim=True)  # [B, N, 1]
        q_next = self.q_target(nobs).gather(-1, greedy).squeeze(-1)
        v_next = self.mixer_target(q_next, batch["next_states"])
        return batch["rewards"] + self.config.gamma * (1 - batch["terminals"]) * v_next

    def critic_loss(self, batch: Batch, carry: dict):
        """½ TD² on Q_tot + α × the λ-weighted counterfactual penalty (Eq. 5)."""
        c = self.config
        avail = batch.get("avail_actions")
        with torch.no_grad():
            y = self.td_target(batch)
        q_all = self.q(batch["observations"])  # [B, N, A]
        q_data = q_all.gather(-1, batch["actions"].long().unsqueeze(-1)).squeeze(-1)
        params = self.mixer.mixing_params(batch["states"])
        q_tot = self.mixer.mix(q_data, *params)
        td = 0.5 * (q_tot - y).pow(2).mean()
        cf = counterfactual_values(self.mixer, params, q_all, q_data)
        lam = counterfactual_weights(cf, carry["behavior_log_probs"], c.temperature, avail)
        penalty = counterfactual_penalty(cf, q_tot, lam, avail).mean()
        loss = td + c.alpha * penalty
        return loss, {"critic_loss": loss.detach(), "td_loss": td.detach(), "cql_penalty": penalty.detach(),
                      "q_tot": q_tot.detach().mean(), "lambda_max": lam.amax(-1).mean()}

    def after_step(self) -> None:
        self.soft_update(self.q_target, self.q, self.config.tau)
        self.soft_update(self.mixer_target, self.mixer, self.config.tau)

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def action_probs(self, obs, avail=None):
        """One-hot of ``argmax_a Q_i(o_i, a)`` over available actions, ``[B, N, A]``."""
        return F.one_hot(masked_logits(self.q(obs), avail).argmax(-1), self.spec.n_actions).to(obs.dtype)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        """Greedy ``argmax_a Q_i(o_i, a)`` in both modes (``[B, N]``)."""
        return masked_logits(self.q(obs), avail).argmax(-1)
