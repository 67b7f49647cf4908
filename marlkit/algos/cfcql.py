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

Continuous actions (the paper's MPE and MaMuJoCo learner, Shao et al. 2023, App. B; the authors'
``continuous/algorithms/maddpg_cc.py`` run as ``--cql --cf_cql --central_critic``): MATD3 with deterministic actors
``π_i(o_i) = tanh(f_i(o_i))`` and twin centralised critics ``Q^e(s, a_1, ..., a_N)`` (:class:`~marlkit.nets.critics.
JointQ`). Critic objective, for each critic e::

    L(Q^e) = E_D[(Q^e(s, a) − y)²] + α E_D[ Σ_i λ_i log E_{a'_i ~ ρ_i}[exp Q^e(s, (a'_i, a_{−i})) / ρ_i(a'_i)]
                                             − Q^e(s, a) ]

the counterfactual CQL(H) penalty with the inner log-sum-exp estimated by importance sampling over K proposals
of agent i's action from each of ρ_i = uniform on [−1, 1]^d, ``π_i(o_i) + N(0, σ²)`` and ``π_i(o'_i) + N(0, σ²)``
(σ = 0.2; Kumar et al. 2020, App. F), the other agents at the data's actions. ``y = r + γ (1 − d) min_e
Q̄^e(s', π̄(o') + ε)`` with TD3's target-policy noise ε. λ_i = 1/N: the authors' τ = 0 command (τ > 0 weights the
agents by a pretrained VAE density of the behavior policy, not implemented). The actors follow the counterfactual
policy gradient, ``max E_D[(1/N) Σ_i Q¹(s, (π_i(o_i), a_{−i}))] − 10⁻³ Σ_i E[π_i(o_i)²]``, every
``policy_freq`` critic updates, and the targets follow after each actor step.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from marlkit.algos.base import AlgoConfig, Algorithm, ConfigError, Stage, ranged
from marlkit.algos.common import cql_logsumexp_continuous, gaussian_log_density
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.critics import JointQ, LocalQ
from marlkit.nets.mixers import MonotonicMixer
from marlkit.nets.mlp import MultiAgentMLP
from marlkit.nets.policies import CategoricalPolicy, masked_logits

__all__ = ["CFCQL", "CFCQLConfig", "counterfactual_joint_actions", "counterfactual_penalty",
           "counterfactual_penalty_continuous", "counterfactual_values", "counterfactual_weights"]


@dataclass
class CFCQLConfig(AlgoConfig):
    """CFCQL hyperparameters (the authors' code: ``discrete/.../cql_qmix.yaml`` for discrete actions, the defaults
    of ``continuous/main.py`` for continuous ones).

    Attributes:
        lr: Adam learning rate of Q_i and the mixer, or of the critics and actors (1e-3, both of the authors'
            codes; their MaMuJoCo runs use 3e-4 with 256-unit networks and batch 256).
        hidden: hidden sizes of the local Q_i and of β_i, or of the actors and critics ((64, 64): the 64-unit
            agents of the authors' pymarl code, as MLPs instead of their GRU; the continuous code's
            ``hidden_dim``).
        alpha: α, the weight of the counterfactual CQL penalty (Eq. 5). None: 50 for discrete actions (the
            authors' ``global_cql_alpha`` for SMAC, against the ½-scaled TD loss), 1.0 for continuous ones (the
            continuous code's ``cql_alpha``; its per-dataset HalfCheetah values are 0.1 random, 0.4 medium-replay,
            1.0 medium, 1.7 expert).
        temperature: τ of the softmax over agents that gives λ_i. None: 5 for discrete actions (the authors'
            ``softmax_temp``), 0 (the uniform λ_i = 1/N) for continuous ones, which accept only 0.
        tau: Polyak rate of the targets (0.005, omiga.md Tables 5–6 and the continuous code's MaMuJoCo value; the
            discrete code copies them every 200 episodes instead).
        mixer_embed: width of the mixing layer (32, ``mixing_embed_dim``; discrete).
        mixer_hidden: hidden sizes of the mixer's hypernetworks ((64,), ``hypernet_embed``; discrete).
        behavior_lr: Adam learning rate of the behavior model β_i (1e-3, the authors' ``lr``; discrete).
        n_action_samples: K, proposals per distribution and agent for the continuous penalty (10,
            ``num_sampled_actions``).
        proposal_noise: σ of the Gaussian noise on the policy proposals (0.2, ``cql_sample_noise_level``).
        target_noise: σ of TD3's target-policy noise (0.05, ``action_noise_scale``).
        policy_freq: critic updates per actor update (5, ``ca_ratio``).
        action_reg: weight of the actors' ``E[π_i(o_i)²]`` penalty (1e-3, the continuous code's action
            regulariser).
        grad_clip: gradient-norm clip of the critics and of the actors (0.5, the continuous code; 0 disables).
    """

    lr: float = 1e-3
    hidden: tuple[int, ...] = (64, 64)
    alpha: float | None = ranged(None, "[0, inf)")
    temperature: float | None = ranged(None, "[0, inf)")
    tau: float = ranged(0.005, "(0, 1]")
    mixer_embed: int = ranged(32, "[1, inf)")
    mixer_hidden: tuple[int, ...] = (64,)
    behavior_lr: float = ranged(1e-3, "(0, inf)")
    n_action_samples: int = ranged(10, "[1, inf)")
    proposal_noise: float = ranged(0.2, "(0, inf)")
    target_noise: float = ranged(0.05, "[0, inf)")
    policy_freq: int = ranged(5, "[1, inf)")
    action_reg: float = ranged(1e-3, "[0, inf)")
    grad_clip: float = ranged(0.5, "[0, inf)")


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


def counterfactual_joint_actions(actions: torch.Tensor, proposals: torch.Tensor) -> torch.Tensor:
    """Joint actions with one agent's action replaced: entry ``[i, k, b]`` is the data's joint action of row b with
    agent i's action replaced by its proposal k.

    Shapes: ``actions`` (the data's) ``[B, N, d]``, ``proposals [M, B, N, d]`` (entry ``[k, b, i]``: agent i's
    proposal k) → ``[N, M, B, N, d]``.
    """
    N = actions.shape[1]
    eye = torch.eye(N, dtype=actions.dtype, device=actions.device).view(N, 1, 1, N, 1)  # [N(i), 1, 1, N(j), 1]
    return actions * (1 - eye) + proposals.unsqueeze(0) * eye


def counterfactual_penalty_continuous(q_cf: torch.Tensor, log_density: torch.Tensor, q_data: torch.Tensor,
                                      weights: torch.Tensor) -> torch.Tensor:
    """The continuous counterfactual CQL(H) penalty per sample and critic: ``Σ_i λ_i (log-sum-exp over agent i's
    importance-weighted proposals) − Q(s, a)`` (Shao et al. 2023, Eq. 5; the log-sum-exp of Kumar et al. 2020,
    App. F, :func:`~marlkit.algos.common.cql_logsumexp_continuous`).

    Shapes: ``q_cf [E, N, M, B]`` values of the counterfactual joint actions (:func:`counterfactual_joint_actions`),
    ``log_density [M, B, N]`` each proposal's log-density (the layout of the proposals), ``q_data [E, B]``,
    ``weights`` λ ``[N]`` or ``[N, B]`` → ``[E, B]``.
    """
    lse = cql_logsumexp_continuous(q_cf.permute(2, 0, 1, 3), log_density.transpose(1, 2).unsqueeze(1),
                                   q_data.unsqueeze(1))  # [E, N, B]: log E_ρ[exp Q / ρ] − Q(s, a) per agent
    w = weights if weights.dim() == 2 else weights.unsqueeze(-1)  # [N, B] or [N, 1]
    return (w * lse).sum(1)


class CFCQL(Algorithm):
    """CFCQL: counterfactual per-agent CQL penalties, λ-weighted; QMIX mixer or twin centralised critics + MATD3.

    Discrete actions: the penalty on a QMIX-mixed Q_tot; continuous actions: on twin centralised critics, with
    MATD3 actors.

    Discrete stages: ``behavior`` (BC of β_i, for λ) then ``critic`` (TD + α × the counterfactual penalty); Polyak
    targets after every update. Networks: ``q``, ``mixer``, ``q_target``, ``mixer_target``, ``behavior``.
    Continuous stages: ``critic`` every update, ``actor`` every ``policy_freq`` updates followed by the Polyak
    targets. Networks: ``critic``, ``critic_target``, ``actor``, ``actor_target``.
    """

    name = "cfcql"
    Config = CFCQLConfig
    population_fields = ("alpha",)

    def __init__(self, spec, config: CFCQLConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c, n = self.config, spec.n_agents
        if c.alpha is None or c.temperature is None:  # the per-action-space defaults (CFCQLConfig)
            self.config = c = dataclasses.replace(
                c, alpha=c.alpha if c.alpha is not None else (50.0 if spec.discrete else 1.0),
                temperature=c.temperature if c.temperature is not None else (5.0 if spec.discrete else 0.0))
        if spec.discrete:
            self.q = LocalQ.for_spec(spec, c.hidden, c.share_params)
            self.mixer = MonotonicMixer(spec.state_dim, n, c.mixer_embed, c.mixer_hidden)
            self.q_target = copy.deepcopy(self.q).requires_grad_(False)
            self.mixer_target = copy.deepcopy(self.mixer).requires_grad_(False)
            self.behavior = CategoricalPolicy(n, spec.obs_dim, spec.n_actions, c.hidden, c.share_params)
        else:
            if c.temperature != 0:
                raise ConfigError(f"cfcql on continuous actions supports only temperature=0 (uniform λ_i = 1/N), "
                                  f"got {c.temperature}: τ > 0 needs a behavior density model")
            self.critic = JointQ(spec.state_dim, n, spec.act_dim, c.hidden, ensemble=2)
            self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
            self.actor = MultiAgentMLP(n, spec.obs_dim, spec.act_dim, c.hidden, c.share_params)
            self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.to(self.device)
        if spec.discrete:
            self.critic_opt = self.make_adam(self.q, self.mixer)
            self.behavior_opt = self.make_adam(self.behavior, lr=c.behavior_lr)
        else:
            self.critic_opt = self.make_adam(self.critic)
            self.actor_opt = self.make_adam(self.actor)

    def stages(self) -> list[Stage]:
        """Discrete: the behavior model β_i (BC), then the critic (Q_i and the mixer). Continuous: the critics every
        update, the actors (then the targets) every ``policy_freq`` updates."""
        c = self.config
        if self.spec.discrete:
            return [Stage("behavior", "behavior_loss", ("behavior_opt",)),
                    Stage("critic", "critic_loss", ("critic_opt",))]
        return [Stage("critic", "continuous_critic_loss", ("critic_opt",), clip=(("critic",),), max_norm=c.grad_clip),
                Stage("actor", "actor_loss", ("actor_opt",), clip=(("actor",),), max_norm=c.grad_clip,
                      every=c.policy_freq, metrics=("actor_loss",), after="update_targets")]

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
        if self.spec.discrete:
            self.soft_update(self.q_target, self.q, self.config.tau)
            self.soft_update(self.mixer_target, self.mixer, self.config.tau)

    # ------------------------------------------------------------------ continuous actions
    def pi(self, obs: torch.Tensor, target: bool = False) -> torch.Tensor:
        """π_i(o_i) = tanh(f_i(o_i)) for all agents, ``[B, N, act_dim]``."""
        return torch.tanh((self.actor_target if target else self.actor)(obs))

    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """Uniform transitions; continuous actions add TD3's target noise (``noise/smoothing [B, N, d]``) and the
        penalty's proposal draws (``noise/uniform``, ``noise/proposals`` at o, ``noise/next_proposals`` at o',
        each ``[K, B, N, d]``)."""
        batch = sampler.sample(self.config.batch_size)
        if not self.spec.discrete:
            one, many = batch["actions"].shape, (self.config.n_action_samples, *batch["actions"].shape)
            self.draw(batch, smoothing=("normal", one), uniform=("uniform", many), proposals=("normal", many),
                      next_proposals=("normal", many))
        return batch

    def proposals(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Every agent's 3K proposal actions and their log-densities: K uniform on [−1, 1]^d, K of
        ``π_i(o_i) + N(0, σ²)`` and K of ``π_i(o'_i) + N(0, σ²)``, clipped to [−1, 1] (the density is the unclipped
        Gaussian's, as in the authors' code). Returns ``[3K, B, N, d]`` and ``[3K, B, N]`` (no gradient)."""
        sigma = self.config.proposal_noise
        with torch.no_grad():
            rand = batch["noise/uniform"] * 2 - 1
            rand_logp = torch.full(rand.shape[:-1], -rand.shape[-1] * math.log(2.0), device=rand.device)
            eps_o, eps_n = sigma * batch["noise/proposals"], sigma * batch["noise/next_proposals"]
            cur = (self.pi(batch["observations"]) + eps_o).clamp(-1.0, 1.0)
            nxt = (self.pi(batch["next_observations"]) + eps_n).clamp(-1.0, 1.0)
            logp = torch.cat([rand_logp, gaussian_log_density(eps_o, sigma), gaussian_log_density(eps_n, sigma)])
            return torch.cat([rand, cur, nxt]), logp

    def continuous_critic_loss(self, batch: Batch, carry: dict):
        """Twin TD losses plus α × the counterfactual CQL(H) penalty with uniform λ_i (Eq. 5, continuous form)."""
        c = self.config
        states, actions = batch["states"], batch["actions"]
        with torch.no_grad():  # y = r + γ (1 − d) min_e Q̄^e(s', clip(π̄(o') + ε))
            a_next = (self.pi(batch["next_observations"], target=True)
                      + c.target_noise * batch["noise/smoothing"]).clamp(-1.0, 1.0)
            v_next = self.critic_target(batch["next_states"], a_next).amin(0)
            y = batch["rewards"] + c.gamma * (1 - batch["terminals"]) * v_next
        q_data = self.critic(states, actions)  # [2, B]
        td = (q_data - y).pow(2).mean(-1).sum()
        props, logp = self.proposals(batch)  # [3K, B, N, d], [3K, B, N]
        q_cf = self.critic(states, counterfactual_joint_actions(actions, props))  # [2, N, 3K, B]
        lam = torch.full((self.spec.n_agents,), 1.0 / self.spec.n_agents, device=states.device)
        penalty = counterfactual_penalty_continuous(q_cf, logp, q_data, lam).mean(-1).sum()
        loss = td + c.alpha * penalty
        return loss, {"critic_loss": loss.detach(), "td_loss": td.detach(), "cql_penalty": penalty.detach(),
                      "q": q_data.detach().mean()}

    def actor_loss(self, batch: Batch, carry: dict):
        """The counterfactual deterministic policy gradient: ``−(1/N) Σ_i Q¹(s, (π_i(o_i), a_{−i}))`` plus the action
        penalty ``action_reg · Σ_i E[π_i(o_i)²]`` (mean over the action dims)."""
        pi = self.pi(batch["observations"])  # [B, N, d]
        joint = counterfactual_joint_actions(batch["actions"], pi.unsqueeze(0))  # [N, 1, B, N, d]
        q = self.critic.member(0, batch["states"], joint)  # [N, 1, B]
        loss = -q.mean() + self.config.action_reg * pi.pow(2).mean(dim=(0, 2)).sum()
        return loss, {"actor_loss": loss.detach()}

    def update_targets(self) -> None:
        """Polyak updates of the critics' and actors' targets (after each delayed actor step)."""
        self.soft_update(self.critic_target, self.critic, self.config.tau)
        self.soft_update(self.actor_target, self.actor, self.config.tau)

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def action_probs(self, obs, avail=None):
        """One-hot of ``argmax_a Q_i(o_i, a)`` over available actions, ``[B, N, A]`` (discrete)."""
        if not self.spec.discrete:
            raise NotImplementedError("cfcql on continuous actions has no action probabilities; use act()")
        return F.one_hot(masked_logits(self.q(obs), avail).argmax(-1), self.spec.n_actions).to(obs.dtype)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        """Greedy ``argmax_a Q_i(o_i, a)`` (discrete) or ``π_i(o_i)`` (continuous), in both modes."""
        if not self.spec.discrete:
            return self.pi(obs)
        return masked_logits(self.q(obs), avail).argmax(-1)
