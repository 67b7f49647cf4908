"""OMAR: offline multi-agent RL with actor rectification (Pan et al. 2022, "Plan better amid conservatism").

Independent learners: every agent i has its own conservative critic ``Q_i(o_i, a_i)`` trained on the team reward
with the CQL(H) regularizer (trade-off α = 1, omiga.md Tables 5–6), treating teammates as part of the
environment, and its own actor ``π_i(o_i)``. The actor is *rectified* by a zeroth-order optimiser (Pan et al.
2022, Sec. 4.2, Eq. 5): a cross-entropy-method search over actions finds ``â_i`` with high ``Q_i``, and::

    L(π_i) = c · E‖π_i(o_i) − â_i‖² − (1 − c) · E Q_i(o_i, π_i(o_i))

with trade-off c (``omar_coe``). ``â_i`` is the best of the policy's own action and the elite CEM samples.

- continuous (official code, multi-agent MuJoCo branch): TD3-style deterministic tanh actors, twin critics
  (target ``min_k Q̄^k_i(o', π̄_i(o'))``), CEM with Gaussian proposals starting at N(μ₀, σ₀²) (μ₀ = 0, σ₀ = 2;
  ``center_on_policy=True`` starts at the policy's action instead), ``omar_iters`` rounds of
  ``omar_num_samples`` samples, the top ``omar_num_elites`` (carried over between rounds) refit μ, σ; the CQL
  log-sum-exp uses 10 uniform actions and 10 noisy (σ = 0.2) policy actions at o and at o'; gradients clipped
  to norm 0.5; actor L2 penalty 1e-3 on the action.
- discrete (marlkit's analogue; the original defines continuous actions): categorical actors, twin Q heads with
  the exact discrete CQL(H) penalty, target ``Σ_a π̄_i(a|o') min_k Q̄^k_i(o', a)``, and the same CEM over the
  finite action set with categorical proposals (uniform at first, elite frequencies after); the imitation term
  is the cross-entropy ``−log π_i(â_i|o_i)`` and the value term ``Σ_a π_i(a|o_i) Q_i(o_i, a)``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from marlkit.algos.base import AlgoConfig, Algorithm, ConfigError, Stage, ranged
from marlkit.algos.common import (
    candidate_values,
    categorical_inverse_cdf,
    cql_logsumexp_continuous,
    cql_logsumexp_discrete,
    gaussian_log_density,
)
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.critics import LocalQ
from marlkit.nets.mlp import MultiAgentMLP
from marlkit.nets.policies import CategoricalPolicy, masked_logits

__all__ = ["OMAR", "DeterministicActor", "OMARConfig"]


@dataclass
class OMARConfig(AlgoConfig):
    """OMAR hyperparameters.

    Attributes:
        alpha: CQL trade-off α of every local critic (1, omiga.md Tables 5–6 "Tradeoff factor α (OMAR)").
        omar_coe: rectification trade-off c between imitating â and maximising Q (0.7; the official code picks
            it per dataset from {0.1, …, 1.0}, 0.7 for HalfCheetah medium).
        omar_iters: CEM rounds (3, official code default).
        omar_num_samples: CEM samples per round (10, official code default).
        omar_num_elites: CEM elites kept per round (10, official code default).
        omar_mu: initial CEM mean μ₀ (0, official code).
        omar_sigma: initial CEM std σ₀ (2, official code).
        center_on_policy: start the CEM at the policy's action instead of μ₀ (off: official code).
        tau: target-network Polyak rate (0.005, omiga.md Tables 5–6).
        n_action_samples: proposal actions per distribution in the continuous CQL log-sum-exp (10, official code).
        cql_sigma: std of the noise around policy actions in the CQL proposals (0.2, official code).
        grad_clip: gradient-norm clip of critics and actors (0.5, official code; 0 disables).
    """

    alpha: float = ranged(1.0, "(0, inf)")
    omar_coe: float = ranged(0.7, "[0, 1]")
    omar_iters: int = ranged(3, "[1, inf)")
    omar_num_samples: int = ranged(10, "[1, inf)")
    omar_num_elites: int = ranged(10, "[1, inf)")
    omar_mu: float = 0.0
    omar_sigma: float = ranged(2.0, "(0, inf)")
    center_on_policy: bool = False
    tau: float = ranged(0.005, "(0, 1]")
    n_action_samples: int = ranged(10, "[1, inf)")
    cql_sigma: float = ranged(0.2, "(0, inf)")
    grad_clip: float = ranged(0.5, "[0, inf)")

    def validate(self) -> None:
        super().validate()
        if self.omar_num_elites > 2 * self.omar_num_samples:
            raise ConfigError(f"omar_num_elites ({self.omar_num_elites}) cannot exceed the candidates per round "
                              f"(2 × omar_num_samples = {2 * self.omar_num_samples})")


class DeterministicActor(torch.nn.Module):
    """``π_i(o_i) = tanh(f_i(o_i))`` for every agent, ``[B, N, obs_dim] → [B, N, act_dim]`` (TD3 actor)."""

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, hidden=(256, 256), share_params: bool = False):
        super().__init__()
        self.net = MultiAgentMLP(n_agents, obs_dim, act_dim, hidden, share_params)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))


class OMAR(Algorithm):
    """OMAR: independent CQL actor-critics with zeroth-order (CEM) actor rectification (discrete and continuous)."""

    name = "omar"
    Config = OMARConfig

    def __init__(self, spec, config: OMARConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c, n = self.config, spec.n_agents
        self.q = LocalQ.for_spec(spec, c.hidden, c.share_params, ensemble=2)  # twin critics
        if spec.discrete:
            self.policy = CategoricalPolicy(n, spec.obs_dim, spec.n_actions, c.hidden, c.share_params)
        else:
            self.policy = DeterministicActor(n, spec.obs_dim, spec.act_dim, c.hidden, c.share_params)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.policy_target = copy.deepcopy(self.policy).requires_grad_(False)
        self.to(self.device)
        self.critic_opt = self.make_adam(self.q)
        self.actor_opt = self.make_adam(self.policy)

    # ------------------------------------------------------------------ critics
    def discrete_critic_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-agent twin TD losses on the team reward + α × discrete CQL(H) (Pan et al. 2022, Eq. 3)."""
        c = self.config
        with torch.no_grad():
            nobs, navail = batch["next_observations"], batch.get("next_avail_actions")
            v_next = (self.policy_target.probs(nobs, navail) * self.q_target(nobs).min(0).values).sum(-1)  # [B, N]
            y = batch["rewards"].unsqueeze(-1) + c.gamma * (1 - batch["terminals"]).unsqueeze(-1) * v_next
        q_all = self.q(batch["observations"])  # [2, B, N, A]
        idx = batch["actions"].long().unsqueeze(-1).expand(2, *batch["actions"].shape, 1)
        q_data = q_all.gather(-1, idx).squeeze(-1)  # [2, B, N]
        td = (q_data - y).pow(2).mean(dim=(1, 2)).sum()
        cql = cql_logsumexp_discrete(q_all, q_data, batch.get("avail_actions")).mean(dim=(1, 2)).sum()
        return {"td_loss": td, "cql_penalty": cql, "critic_loss": td + c.alpha * cql, "q": q_data.mean()}

    def continuous_critic_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-agent twin TD losses + α × importance-sampled CQL(H) (official OMAR code, MaMuJoCo branch)."""
        c = self.config
        obs, nobs, acts = batch["observations"], batch["next_observations"], batch["actions"]
        with torch.no_grad():
            q_next = self.q_target(nobs, self.policy_target(nobs)).min(0).values  # [B, N]
            y = batch["rewards"].unsqueeze(-1) + c.gamma * (1 - batch["terminals"]).unsqueeze(-1) * q_next
        q_data = self.q(obs, acts)  # [2, B, N]
        td = (q_data - y).pow(2).mean(dim=(1, 2)).sum()
        K, (B, N, d) = c.n_action_samples, acts.shape
        with torch.no_grad():
            rand = batch["noise/uniform"] * 2 - 1  # uniform proposals on [-1, 1]^d, density 2^-d
            props, logps = [rand], [torch.full((K, B, N), -d * math.log(2.0), device=obs.device)]
            for o, eps in ((obs, batch["noise/proposals"]), (nobs, batch["noise/next_proposals"])):
                noise = eps * c.cql_sigma
                props.append((self.policy(o).unsqueeze(0) + noise).clamp(-1, 1))
                logps.append(gaussian_log_density(noise, c.cql_sigma))
            props_t = torch.cat(props, 0)  # [3K, B, N, d]
        q_s = candidate_values(self.q, obs, props_t)  # [2, 3K, B, N]
        cql = cql_logsumexp_continuous(q_s.transpose(0, 1), torch.cat(logps, 0).unsqueeze(1), q_data)
        cql = cql.mean(dim=(1, 2)).sum()
        return {"td_loss": td, "cql_penalty": cql, "critic_loss": td + c.alpha * cql, "q": q_data.mean()}

    # ------------------------------------------------------------------ actor rectification
    @torch.no_grad()
    def cem_continuous(self, obs: torch.Tensor, pol_act: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Zeroth-order search for ``â_i = argmax Q^1_i(o_i, ·)``: ``obs [B, N, o]``, policy actions ``[B, N, d]``,
        standard-normal draws ``eps [iters, K, B, N, d]``.

        Gaussian CEM with elite carry-over (official code); the policy's own action competes at the end. Only Q¹
        is evaluated (all K samples × agents × rows in one batched call per round). Returns ``â [B, N, d]``.
        """
        c = self.config
        B, N, d = pol_act.shape
        E = c.omar_num_elites
        mu = pol_act.clone() if c.center_on_policy else torch.full_like(pol_act, c.omar_mu)
        sigma = torch.full_like(pol_act, c.omar_sigma)
        elite_a = elite_q = None
        for it in range(c.omar_iters):
            samples = (mu + sigma * eps[it]).clamp(-1, 1)
            q = candidate_values(self.q, obs, samples, member=0)  # Q^1, [K, B, N]
            if elite_a is not None:
                samples, q = torch.cat([samples, elite_a], 0), torch.cat([q, elite_q], 0)
            top_q, top_i = q.topk(min(E, q.shape[0]), dim=0)
            elite_a = samples.gather(0, top_i.unsqueeze(-1).expand(-1, B, N, d))
            elite_q = top_q
            mu, sigma = elite_a.mean(0), elite_a.std(0, unbiased=elite_a.shape[0] > 1)
        best_q, best_a = elite_q[0], elite_a[0]  # top-1 of the last round
        pol_q = self.q.member(0, obs, pol_act)
        return torch.where((pol_q >= best_q).unsqueeze(-1), pol_act, best_a)

    @torch.no_grad()
    def cem_discrete(self, obs: torch.Tensor, avail: torch.Tensor | None, u: torch.Tensor) -> torch.Tensor:
        """The CEM over a finite action set: categorical proposals (uniform or π_i at first, elite frequencies
        after) sampled from the uniforms ``u [iters, B·N, K]`` by the inverse CDF; returns ``â [B, N]`` (the
        policy's greedy action competes at the end)."""
        c = self.config
        q1 = masked_logits(self.q.member(0, obs), avail)  # [B, N, A]
        B, N, A = q1.shape
        probs = self.policy.probs(obs, avail) if c.center_on_policy else masked_logits(
            torch.zeros_like(q1), avail).softmax(-1)
        elite_a = elite_q = None
        for it in range(c.omar_iters):
            samples = categorical_inverse_cdf(probs.reshape(B * N, A), u[it])
            samples = samples.reshape(B, N, -1).permute(2, 0, 1)  # [K, B, N]
            q = q1.unsqueeze(0).expand(samples.shape[0], B, N, A).gather(-1, samples.unsqueeze(-1)).squeeze(-1)
            if elite_a is not None:
                samples, q = torch.cat([samples, elite_a], 0), torch.cat([q, elite_q], 0)
            top_q, top_i = q.topk(min(c.omar_num_elites, q.shape[0]), dim=0)
            elite_a, elite_q = samples.gather(0, top_i), top_q
            counts = F.one_hot(elite_a, A).float().sum(0) + 1e-3 * (probs > 0)  # keep support, avoid zeros
            probs = counts / counts.sum(-1, keepdim=True)
        pol_a = self.policy.logits(obs, avail).argmax(-1)
        pol_q = q1.gather(-1, pol_a.unsqueeze(-1)).squeeze(-1)
        return torch.where(pol_q >= elite_q[0], pol_a, elite_a[0])

    def rectified_actor_loss(self, batch: Batch) -> torch.Tensor:
        """``c · imitation(π_i, â_i) − (1 − c) · Q^1_i(o_i, π_i)`` averaged over batch and agents (Pan et al.
        2022, Eq. 5); continuous adds the official 1e-3 L2 penalty on actions."""
        c = self.config
        obs = batch["observations"]
        if self.spec.discrete:
            avail = batch.get("avail_actions")
            target = self.cem_discrete(obs, avail, batch["noise/cem"])
            logp = self.policy.log_probs(obs, avail)
            imitation = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).mean()
            value = (logp.exp() * self.q.member(0, obs).detach()).sum(-1).mean()
            return c.omar_coe * imitation - (1 - c.omar_coe) * value
        pol = self.policy(obs)
        target = self.cem_continuous(obs, pol.detach(), batch["noise/cem"])
        value = self.q.member(0, obs, pol).mean()
        return (c.omar_coe * (pol - target).pow(2).mean() - (1 - c.omar_coe) * value + 1e-3 * pol.pow(2).mean())

    # ------------------------------------------------------------------ update
    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """Uniform transitions plus the update's draws: the CEM's (``noise/cem``: standard normals
        ``[iters, K, B, N, d]``, or float64 uniforms ``[iters, B·N, K]`` for discrete actions) and, for continuous
        actions, the CQL proposals' (uniform ``noise/uniform``, ``noise/proposals`` at o and
        ``noise/next_proposals`` at o', each ``[K, B, N, d]``)."""
        c, g, dev = self.config, self.generator, self.device
        batch = sampler.sample(c.batch_size)
        B, N = batch["actions"].shape[:2]
        if self.spec.discrete:
            shape = (B * N, c.omar_num_samples)
            batch["noise/cem"] = torch.stack([torch.rand(shape, dtype=torch.float64, device=dev, generator=g)
                                              for _ in range(c.omar_iters)])
            return batch
        many = (c.n_action_samples, *batch["actions"].shape)
        self.draw(batch, uniform=("uniform", many), proposals=("normal", many), next_proposals=("normal", many))
        shape = (c.omar_num_samples, *batch["actions"].shape)
        batch["noise/cem"] = torch.stack([torch.randn(shape, device=dev, generator=g) for _ in range(c.omar_iters)])
        return batch

    def stages(self) -> list[Stage]:
        """The conservative critics, then the rectified actors (each clipped on its own, official code)."""
        clip = self.config.grad_clip
        return [Stage("critic", "critic_loss", ("critic_opt",), clip=(("q",),), max_norm=clip),
                Stage("actor", "actor_loss", ("actor_opt",), clip=(("policy",),), max_norm=clip)]

    def critic_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.discrete_critic_loss(batch) if self.spec.discrete else self.continuous_critic_loss(batch)
        return out["critic_loss"], {k: v.detach() for k, v in out.items()}

    def actor_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = self.rectified_actor_loss(batch)
        return loss, {"actor_loss": loss.detach()}

    def after_step(self) -> None:
        self.soft_update(self.q_target, self.q, self.config.tau)
        self.soft_update(self.policy_target, self.policy, self.config.tau)

    # ------------------------------------------------------------------ acting
    def action_probs(self, obs, avail=None):
        if not self.spec.discrete:
            raise NotImplementedError("omar on continuous actions has a deterministic actor; use act()")
        return self.policy.probs(obs, avail)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        if self.spec.discrete:
            return self.policy.act(obs, avail, deterministic, generator)
        return self.policy(obs)
