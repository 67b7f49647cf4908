"""InSPO: In-Sample Sequential Policy Optimization (inspo.md, Algorithm 1, Eqs. 10–15).

Behavior-regularized *and* entropy-regularized offline MARL (the MEBR Markov game, Eq. 9) solved by
sequential, in-sample policy updates:

1. Behavior cloning of every agent's behavior policy μ^i (Algorithm 1 line 1; batched over agents, done in
   :meth:`InSPO.setup`). The policies π^i start from μ^i, and the local Qs are first fitted to π_0
   (``q_warmup_steps``).
2. Every iteration k: π_old ← π, draw a random permutation ``i_1, ..., i_N`` of the agents and, for
   ``n = 1..N`` in that order, take ``agent_steps`` gradient steps (one :meth:`InSPO.update` each, on a
   uniform minibatch of the dataset) of agent i_n:

   a. importance ratios ``ρ^{i_n} = Π_{j≠i_n} π^j(a^j|o^j) / μ^j(a^j|o^j)`` (Eq. 14): π^j is already the
      *new* policy for ``j ∈ i_{1:n-1}`` and still the old one for the others;
   b. importance **resampling** of the minibatch with probabilities ∝ ρ^{i_n} (Eq. 15);
   c. policy evaluation of agent i_n's local ``Q^{i_n}(s, a^{i_n})`` on the resampled batch toward
      ``y = r + γ (1-d) [E_{a'~π_old^{i_n}} Q̄^{i_n}(s', a') − α KL(π_old^{i_n} ‖ μ^{i_n})(s') + β H(π_old^{i_n})(s')]``
      (Eqs. 10, 14–15; Q̄ is a Polyak-averaged target);
   d. policy improvement Eq. 13 on the resampled batch:
      ``min −E_{D_ρ}[exp((A^{i_n}(s,a) − β log μ^{i_n}(a|s)) / (α+β)) · log π^{i_n}(a|s)]`` with
      ``A^{i_n} = Q^{i_n}(s, a) − E_{π_old^{i_n}}[Q^{i_n}(s, ·)]``.

   Only agent i_n's parameters move in its step (its loss alone is back-propagated, and Adam runs with
   β1 = 0 so zero-gradient agents stay put), so agent i_{n+1}'s ρ sees i_n's new policy. Every network
   forward runs all agents in one batched op on the uniform minibatch; agent i's resampled batch is a gather
   of its own outputs at the resampled rows.

Options: ``sequential=False`` is "InSPO w/o SPO" (Fig. 5b): the iterations are the same (same length
``N · agent_steps``, same per-agent blocks, π_old held fixed for the whole iteration), but every ρ^i is computed
from the *old* policies of all teammates, so no agent reacts to another's update within an iteration;
``entropy=False`` sets β = 0 ("InSPO w/o entropy", Fig. 5a); ``auto_alpha`` tunes α toward a target KL
(Table 5's "auto-α").

Why w/o SPO fails on XOR (b), and when the neural run shows it: in-sample, Q^i(B) is fitted on (B, A) rows only
(Q = 1) while Q^i(A) mixes (A, A) = 0 and (A, B) = 1, so with the old teammate in ρ *both* agents are pushed
toward B (the paper's "conflicting update directions"). When every iteration moves each policy (nearly) all the
way to its Eq. 13 optimum, as Algorithm 1 does and the exact oracle :func:`marlkit.exact.inspo.exact_inspo` does,
the simultaneous agents stay symmetric (a symmetric product policy earns at most 1/4) while the sequential second
mover sees the first one's new policy and takes the other action. With one gradient step per turn
(``agent_steps=1``) both schemes follow the same gradient flow ``dπ^i/dt ∝ target(π^{-i}) − π^i``, whose symmetric
state is a saddle: minibatch noise decides whether the agents separate, for either scheme (measured numbers in
:attr:`InSPOConfig.agent_steps`).

Where marlkit goes beyond the paper's text (the authors released no code and our copy of the paper has no
App. B/C), each choice is named in :class:`InSPOConfig`: β is annealed linearly (a homotopy along the
QRE path; ``beta_final=None`` gives the paper's constant β), the weights of Eq. 13 are self-normalised over
the minibatch (same minimiser, no overflow for small α+β), the sign of the auto-α loss is the one that
makes the KL track its target, and ``ratio_clip`` (off by default; on for MaMuJoCo) truncates each teammate's
factor of ρ, which on six-agent continuous tasks otherwise puts the whole resampling on one or two rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from marlkit.algos.base import AlgoConfig, Algorithm, ConfigError, Stage, ranged
from marlkit.algos.common import importance_resample
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.critics import LocalQ
from marlkit.nets.policies import make_policy

__all__ = ["InSPO", "InSPOConfig", "importance_resample"]


@dataclass
class InSPOConfig(AlgoConfig):
    """InSPO hyperparameters. Common fields (lr, batch_size, gamma, hidden) as in :class:`AlgoConfig`.

    The paper's App. C (per-task hyperparameters) is not part of the text we have; the defaults below are
    marlkit's, chosen with the exact oracle :mod:`marlkit.exact.inspo` on the seed matrix games (notebook 04
    shows the sweep) and checked with the neural runs in ``tests/test_inspo.py``.

    Attributes:
        batch_size: minibatch size B = 512 (marlkit's choice, larger than the common 128): resampling draws from
            the minibatch, and a 128-row batch of M-NE's imbalanced data holds no (C, C) row with probability
            0.99^128 ≈ 0.28, which stalls the second agent of a sequential update.
        alpha: behavior-KL temperature α > 0 (Eq. 9; initial value when ``auto_alpha``). Default 0.01: small
            enough that the reweighted data marginal, not μ, decides between in-sample actions. Bridge uses 0.1
            (:data:`marlkit.envs.bridge.ALGO_DEFAULTS`): with α + β = 0.02 a local Q that over-values an
            out-of-data action at one state gives the data's action a weight near e^{−13} there, and the policy
            leaves the data (docs/benchmarks.md, Bridge).
        beta: entropy temperature β ≥ 0 (Eq. 9), the starting value when annealed. Default 10: above the
            temperature at which the QRE at the behavior policy's local optimum of M-NE (A, A) disappears
            (≈ 8 for the imbalanced dataset, by the exact oracle).
        beta_final: if set, β decays linearly from ``beta`` to ``beta_final`` over ``beta_decay_steps``
            gradient steps and then stays there (marlkit's addition: follows the QRE path to a near-deterministic
            policy). None keeps β constant, as in the paper's text. Default 0.01. Meant for one-step games: on a
            multi-step game the soft target's β·H(π_old) of the early, large β is bootstrapped into the local Qs
            and outlives the decay (on Bridge the Qs were near +68 at 3,000 updates where every return is
            negative), so Bridge's default is a constant β = 0.01 (:data:`marlkit.envs.bridge.ALGO_DEFAULTS`).
        beta_decay_steps: gradient steps of the linear β decay, read at each iteration's first step. Default 1500,
            half of the matrix games' 3000 updates: on XOR (b) the agents separate only once β is small, and the
            agent that moves second then needs updates at the low temperature to converge (with a 2000-step decay,
            seed 1 ended with π^1(A) = 0.79 still rising, return 0.36). Measured at the command-line defaults,
            seeds 0–4: XOR (b) and (c) 1.000 and M-NE balanced 20.00 on every seed, imbalanced 19.63–19.89;
            XOR (a) 0.999–1.000 on seeds 0, 2, 3 and 4, and −0.01 on seed 1, which stays near the centre of that
            game's line of fixed points (``docs/benchmarks.md``).
        entropy: False gives the "w/o entropy" ablation (β = 0 everywhere).
        sequential: False gives the "w/o SPO" ablation: the same iterations and per-agent blocks, but every ρ^i
            computed from the teammates' *old* policies (π_old, fixed for the iteration). It fails on XOR (b) when
            the blocks solve each agent's subproblem (see ``agent_steps``).
        auto_alpha: tune α by ``min_α α (D̄_KL − KL(π‖μ))`` (paper Sec. "Ablation": "auto-α"; the paper prints
            ``α KL − α D̄``, whose gradient would move α the wrong way for a KL target; we use the dual of
            the constraint KL ≤ D̄).
        target_kl: D̄_KL, per agent, for ``auto_alpha`` (nats).
        alpha_lr: Adam learning rate of log α.
        tau: Polyak rate of the target local Q (0.005, as omiga.md App. C).
        bc_steps: gradient steps of behavior cloning of μ before the first iteration (Algorithm 1 line 1), with the
            learning rate decayed linearly to 0 (see :meth:`InSPO.setup`).
        q_warmup_steps: gradient steps of policy evaluation of π_0 (Eq. 15, all agents) before the first
            policy improvement, so that the first Eq. 13 steps follow a fitted Q rather than its initialisation.
        agent_steps: gradient steps each agent takes in its turn (its block of Eq. 15 and Eq. 13 steps) before
            the next agent of the permutation moves; an iteration of Algorithm 1 is ``N · agent_steps``
            updates in both variants. Algorithm 1 solves each agent's subproblem in its turn; a block approximates
            that when it is long enough for the policy to converge. Measured on XOR (b): with blocks that nearly
            solve it (hidden (32, 32), lr 1e-2, ``agent_steps=200``, 4800 steps = 12 iterations,
            ``beta_decay_steps=2880``), seeds 0–4, sequential returns 0.982–0.990 and simultaneous 0.207–0.226
            (symmetric agents, Fig. 5b). With one step per turn (the default) the two schemes share one gradient
            flow, whose symmetric state is a saddle that minibatch noise leaves: at the command-line defaults the
            sequential runs reach the optimum on XOR (b), and so do 4 of 5 simultaneous runs (seeds 0–4: 1.000,
            except 0.463 on seed 3, not converged: π^1(A) = 0.82; ``docs/benchmarks.md``): Fig. 5b needs the long
            blocks above.
        init_from_bc: start π from the cloned μ (π_0 = μ, so the first ρ are 1).
        ratio_clip: if set, each teammate's factor π^j/μ^j of ρ^{i_n} (Eq. 14) is clipped to
            ``[1/ratio_clip, ratio_clip]`` before the product (truncated importance sampling, as IMPALA's V-trace
            truncates its ratios; AlberDICE's official code clips its teammates' ratio at ``ratio_max``).
            marlkit's addition for continuous actions: there a tanh-Gaussian's log-ratio at a dataset action moves
            by a nat or more within tens of Adam steps of minibatch noise, and the product over N − 1 teammates
            then puts all the resampling mass on one or two rows. None (default) is the paper's unclipped ρ.
    """

    batch_size: int = 512
    alpha: float = ranged(0.01, "(0, inf)")
    beta: float = ranged(10.0, "[0, inf)")
    beta_final: float | None = ranged(0.01, "(0, inf)")
    beta_decay_steps: int = ranged(1500, "[1, inf)")
    entropy: bool = True
    sequential: bool = True
    auto_alpha: bool = False
    target_kl: float = ranged(1.0, "(0, inf)")
    alpha_lr: float = ranged(1e-3, "(0, inf)")
    tau: float = ranged(0.005, "(0, 1]")
    bc_steps: int = ranged(1000, "[0, inf)")
    q_warmup_steps: int = ranged(500, "[0, inf)")
    agent_steps: int = ranged(1, "[1, inf)")
    init_from_bc: bool = True
    ratio_clip: float | None = ranged(None, "(1, inf)")

    def validate(self) -> None:
        super().validate()
        if self.beta_final is not None and self.entropy and self.beta <= 0:
            raise ConfigError(f"an annealed beta (beta_final={self.beta_final}) needs beta > 0, got {self.beta}")
        if self.share_params and self.sequential:
            raise ConfigError("share_params=True is incompatible with sequential=True: a per-agent update of a "
                              "shared network would move every agent's policy")


class InSPO(Algorithm):
    """InSPO (inspo.md Algorithm 1): in-sample sequential policy optimisation with behavior KL and entropy."""

    name = "inspo"
    Config = InSPOConfig

    PER_AGENT = ("observations", "next_observations", "actions", "avail_actions", "next_avail_actions")

    def __init__(self, spec, config: InSPOConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c = self.config
        n = spec.n_agents
        self.mu = make_policy(spec, c.hidden, c.share_params)  # behavior policies μ^i (BC)
        self.policy = make_policy(spec, c.hidden, c.share_params)  # π^i
        self.policy_old = make_policy(spec, c.hidden, c.share_params)  # π_old^i: π at the start of the iteration
        self.policy_old.requires_grad_(False)
        q_in = spec.obs_dim + spec.state_dim  # Q^i(s, a^i): agent's observation and the global state
        kw = {"n_actions": spec.n_actions} if spec.discrete else {"act_dim": spec.act_dim}
        self.q = LocalQ(n, q_in, hidden=c.hidden, share_params=c.share_params, **kw)
        self.q_target = LocalQ(n, q_in, hidden=c.hidden, share_params=c.share_params, **kw)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(c.alpha)), requires_grad=c.auto_alpha)
        self.register_buffer("agent_index", torch.arange(n), persistent=False)
        self.register_buffer("agent_masks", torch.eye(n, dtype=torch.bool), persistent=False)
        self._order: list[int] = []  # the current iteration's permutation i_1, ..., i_N
        self.to(self.device)
        self.behavior_opt = self.make_adam(self.mu)
        # β1 = 0: an agent whose loss is masked out has zero gradient and then moves exactly 0 (with momentum
        # it would keep drifting during its teammates' sequential steps)
        self.critic_opt = self.make_adam(self.q)
        self.actor_opt = self.make_adam(self.policy)
        for opt in (self.critic_opt, self.actor_opt):
            for group in opt.param_groups:
                group["betas"] = (0.0, 0.999)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=c.alpha_lr)

    # ------------------------------------------------------------------ temperatures
    def alpha(self) -> torch.Tensor:
        """α (scalar tensor; constant unless ``auto_alpha``)."""
        return self.log_alpha.exp().detach()

    def beta(self, start: int | None = None) -> torch.Tensor:
        """β of the iteration that started at update ``start`` (default: the current one), a scalar tensor.

        The schedule is read at the iteration's first update, so every agent of an iteration optimises the same
        objective (Eq. 9 at one temperature), as in Algorithm 1; a per-update β would give the agents of one
        iteration different temperatures, an asymmetry that alone can separate symmetric agents.
        """
        c = self.config
        if not c.entropy or c.beta == 0:
            return torch.zeros((), device=self.device)
        if c.beta_final is None:
            return torch.full((), c.beta, device=self.device)
        start = self._updates - self.position if start is None else start
        frac = (torch.tensor(start, device=self.device).float() / c.beta_decay_steps).clamp(max=1.0)
        return c.beta + (c.beta_final - c.beta) * frac

    @property
    def iteration_length(self) -> int:
        """Updates per iteration of Algorithm 1: ``N · agent_steps``."""
        return self.config.agent_steps * self.spec.n_agents

    @property
    def position(self) -> int:
        """The next update's position within its iteration (0 starts a new iteration)."""
        return self._updates % self.iteration_length

    # ------------------------------------------------------------------ Algorithm 1 line 1
    def behavior_cloning_loss(self, batch: Batch) -> torch.Tensor:
        """``-E_D[Σ_i log μ^i(a^i|o^i)] / N`` (scalar)."""
        return -self.mu.log_prob(batch["observations"], batch["actions"], batch.get("avail_actions")).mean()

    def prepare(self, sampler: DeviceSampler) -> None:
        """Clone μ^i from the dataset (``bc_steps`` Adam steps, learning rate decayed linearly to 0), start π^i at
        μ^i (``init_from_bc``) and fit the local Qs to π_0 (``q_warmup_steps``, all agents).

        Why the decay: with β ≫ α the weight of Eq. 13 is ≈ exp(A/(α+β)) / μ^i(a), so a relative error of μ̂ is a bias
        of the policy target as large as the advantage term. At a constant rate, μ̂ tracks the last few minibatches
        (μ̂/frequency of 0.89–0.94 for the 10 % actions of M-NE's imbalanced data, B = 512, which sent seeds 4 and 7
        to (B, B)); the decay averages over all of them (0.98–1.04 on seeds 0, 1, 4 and 7).
        """
        c = self.config
        behavior = self.plan(Stage("behavior", "behavior_cloning_loss", ("behavior_opt",)))
        schedule = torch.optim.lr_scheduler.LinearLR(self.behavior_opt, 1.0, 0.0, max(c.bc_steps, 1))
        for _ in range(c.bc_steps):
            self.step_stage(behavior, self.behavior_cloning_loss(sampler.sample(c.batch_size)))
            schedule.step()
        self.mu.requires_grad_(False)
        if c.init_from_bc:
            self.policy.load_state_dict(self.mu.state_dict())
        self.policy_old.load_state_dict(self.policy.state_dict())
        critic = self.plan(Stage("q_warmup", "local_q_loss", ("critic_opt",)))
        all_agents = self.agent_masks.any(0)
        for _ in range(c.q_warmup_steps):  # policy evaluation of π_0 before the first improvement
            batch = sampler.sample(c.batch_size)
            with torch.no_grad():
                y = self.td_target(batch, self.soft_value_next(batch, self.alpha(), self.beta(0)))
                log_ratio = self.policy_old.log_prob(batch["observations"], batch["actions"],
                                                     batch.get("avail_actions")) - \
                    self.mu.log_prob(batch["observations"], batch["actions"], batch.get("avail_actions"))
                idx = importance_resample(self.teammates_log_rho(log_ratio))
                agent = self.agent_index.expand_as(idx)
            q = self.q.taken(self._q_input(batch["observations"], batch["states"]), batch["actions"])
            self.step_stage(critic, self.local_q_loss(q[idx, agent], y[idx, agent], all_agents))
            self.soft_update(self.q_target, self.q, c.tau)

    # ------------------------------------------------------------------ pieces of one agent step
    def teammates_log_rho(self, log_ratio: torch.Tensor) -> torch.Tensor:
        """``log ρ^i = Σ_{j≠i} log(π^j/μ^j)(a^j|o^j)`` (Eq. 14), ``[B, N]`` from the per-agent ``log_ratio [B, N]``;
        each factor clipped to ``[1/ratio_clip, ratio_clip]`` when :attr:`InSPOConfig.ratio_clip` is set."""
        if self.config.ratio_clip is not None:
            bound = math.log(self.config.ratio_clip)
            log_ratio = log_ratio.clamp(-bound, bound)
        return log_ratio.sum(1, keepdim=True) - log_ratio

    def _q_input(self, obs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``[B, N, obs_dim + state_dim]``: each agent's observation with the global state (``state`` is
        ``[B, S]``, or ``[B, N, S]`` after an agent-wise resampling)."""
        if state.dim() == 2:
            state = state.unsqueeze(1).expand(-1, obs.shape[1], -1)
        return torch.cat([obs, state], -1)

    @torch.no_grad()
    def soft_value_next(self, batch: Batch, alpha, beta) -> torch.Tensor:
        """``V^i(s') = E_{a'~π_old^i}[Q̄^i(s',a') − α log(π_old^i/μ^i)(a'|s') − β log π_old^i(a'|s')]``,
        ``[B, N]`` (Eq. 10, per agent as in Eq. 14's y; exact sum over discrete actions, one sample a' for
        continuous ones)."""
        nobs, navail = batch["next_observations"], batch.get("next_avail_actions")
        x = self._q_input(nobs, batch["next_states"])
        if self.spec.discrete:
            logp = self.policy_old.log_probs(nobs, navail)
            p = logp.exp()
            inner = self.q_target(x) - alpha * (logp - self.mu.log_probs(nobs, navail)) - beta * logp
            return (p * inner).masked_fill(p == 0, 0.0).sum(-1)
        a, logp = self.policy_old.rsample(nobs, eps=batch.get("noise/next_action"))
        return self.q_target(x, a) - alpha * (logp - self.mu.log_prob(nobs, a)) - beta * logp

    @torch.no_grad()
    def advantage(self, batch: Batch, probs_old: torch.Tensor | None = None) -> torch.Tensor:
        """``A^i(s, a^i) = Q^i(s, a^i) − E_{π_old^i}[Q^i(s, ·)]`` for every row and agent, ``[B, N]``
        (``probs_old [B, N, A]``: π_old at the batch's observations, discrete actions)."""
        obs, act = batch["observations"], batch["actions"]
        x = self._q_input(obs, batch["states"])
        if self.spec.discrete:
            qa = self.q(x)
            v = (probs_old * qa).masked_fill(probs_old == 0, 0.0).sum(-1)
            return qa.gather(-1, act.long().unsqueeze(-1)).squeeze(-1) - v
        a_old, _ = self.policy_old.rsample(obs, eps=batch["noise/advantage"])
        return self.q(x, act) - self.q(x, a_old)

    @torch.no_grad()
    def precompute(self, batch: Batch, alpha, beta) -> dict[str, torch.Tensor]:
        """What stays fixed during one gradient step: log μ^i(a^i), log π_old^i(a^i), π_old^i(·|o^i) and the
        soft value of the next state under π_old with the target Q (all ``[B, N(, A)]``)."""
        obs, act, avail = batch["observations"], batch["actions"], batch.get("avail_actions")
        pre = {"logmu": self.mu.log_prob(obs, act, avail), "v_next": self.soft_value_next(batch, alpha, beta)}
        if self.spec.discrete:
            logp_old = self.policy_old.log_probs(obs, avail)
            pre["probs_old"] = logp_old.exp()
            pre["logp_old"] = logp_old.gather(-1, act.long().unsqueeze(-1)).squeeze(-1)
        else:
            pre["logp_old"] = self.policy_old.log_prob(obs, act)
        return pre

    def td_target(self, batch: Batch, v_next: torch.Tensor) -> torch.Tensor:
        """``y = r + γ (1 − d) V^i(s')`` per agent, ``[B, N]`` (Eq. 14's target)."""
        return batch["rewards"].unsqueeze(1) + self.config.gamma * (1 - batch["terminals"]).unsqueeze(1) * v_next

    # ------------------------------------------------------------------ Algorithm 1, one gradient step per update
    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """A uniform minibatch with the update's turn and draws: ``agent_mask [N]`` (the agent of this block; all
        agents with ``share_params``), ``beta`` (the iteration's β), float64 uniforms ``noise/resample [N, B]``
        for the importance resampling and, for continuous actions, the policy draws ``noise/next_action``,
        ``noise/advantage`` and ``noise/kl`` ``[B, N, d]``. A new iteration (position 0) draws its permutation
        of the agents first."""
        c, n = self.config, self.spec.n_agents
        pos = step % self.iteration_length
        if pos == 0:  # Algorithm 1 line 3: a new random order of the agents (host generator: no device sync)
            self._order = torch.randperm(n, generator=self.host_generator).tolist()
        batch = sampler.sample(c.batch_size)
        batch["agent_mask"] = self.agent_masks.any(0) if c.share_params else \
            self.agent_masks[self._order[pos // c.agent_steps]]
        batch["beta"] = self.beta(step - pos)
        resample, act = ("uniform64", (n, batch["rewards"].shape[0])), ("normal", batch["actions"].shape)
        if self.spec.discrete:
            return self.draw(batch, resample=resample)
        return self.draw(batch, next_action=act, resample=resample, advantage=act, kl=act)

    def stages(self) -> list[Stage]:
        """Policy evaluation (Eq. 15) of the block's agent on its resampled batch, then its policy improvement
        (Eq. 13) with the fresh Q, then the temperature (auto-α; otherwise only the KL metric)."""
        return [Stage("critic", "critic_loss", ("critic_opt",)), Stage("actor", "actor_loss", ("actor_opt",)),
                Stage("temperature", "temperature_loss", ("alpha_opt",) if self.config.auto_alpha else ())]

    def before_update(self, step: int) -> None:
        """Algorithm 1 line 4: π_old ← π when a new iteration starts."""
        if step % self.iteration_length == 0:
            with torch.no_grad():
                torch._foreach_copy_(list(self.policy_old.parameters()), list(self.policy.parameters()))

    def critic_loss(self, batch: Batch, carry: dict):
        """Steps a–c: ρ of the block's agent (Eq. 14; sequential: the teammates' current policies, new for
        ``i_{1:n-1}``; simultaneous: the old ones), importance resampling (Eq. 15), the local Q regression onto
        the soft target. Networks run on the whole minibatch for all agents at once; the resampled batch of agent
        i is a gather of row ``idx[:, i]`` of agent i's outputs (the networks are row- and agent-wise, so this
        equals running them on the resampled rows)."""
        obs, act, avail, mask = batch["observations"], batch["actions"], batch.get("avail_actions"), batch["agent_mask"]
        alpha, beta = self.alpha(), batch["beta"]
        pre = self.precompute(batch, alpha, beta)
        agent = self.agent_index.expand(act.shape[0], -1)
        with torch.no_grad():
            log_pi = self.policy.log_prob(obs, act, avail) if self.config.sequential else pre["logp_old"]
            log_rho = self.teammates_log_rho(log_pi - pre["logmu"])
            idx = importance_resample(log_rho, batch["noise/resample"])  # [B, N]
            y = self.td_target(batch, pre["v_next"])[idx, agent]
        q = self.q.taken(self._q_input(obs, batch["states"]), act)[idx, agent]
        loss = self.local_q_loss(q, y, mask)
        ess = (2 * log_rho.logsumexp(0) - (2 * log_rho).logsumexp(0)).exp() / log_rho.shape[0]
        carry = {"idx": idx, "logmu": pre["logmu"], **({"probs_old": pre["probs_old"]} if "probs_old" in pre else {})}
        return loss, {"critic_loss": loss.detach(), "ess": (ess * mask).sum() / mask.sum()}, carry

    def actor_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Step d: policy improvement Eq. 13 on the block agent's resampled batch with the freshly evaluated Q."""
        obs, act, avail, mask = batch["observations"], batch["actions"], batch.get("avail_actions"), batch["agent_mask"]
        idx = carry["idx"]
        agent = self.agent_index.expand(act.shape[0], -1)
        logp = self.policy.log_prob(obs, act, avail)
        z = ((self.advantage(batch, carry.get("probs_old")) - batch["beta"] * carry["logmu"]) /
             (self.alpha() + batch["beta"]))[idx, agent]
        loss = self.policy_loss(logp[idx, agent], z, mask)
        return loss, {"actor_loss": loss.detach()}

    def temperature_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """auto-α: ``α (D̄_KL − KL(π‖μ))`` (see :attr:`InSPOConfig.auto_alpha`); the KL is reported either way."""
        kl = self.behavior_kl(batch)
        return self.log_alpha.exp() * (self.config.target_kl - kl), {"kl": kl, "alpha": self.alpha(),
                                                                    "beta": batch["beta"]}

    def after_step(self) -> None:
        self.soft_update(self.q_target, self.q, self.config.tau)

    @staticmethod
    def local_q_loss(q: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 15: ``E_{D_ρ}[(Q^i(s, a^i) − y)^2]`` on resampled ``q, y [B, N]``, summed over agents in ``mask``."""
        return (((q - y) ** 2) * mask).sum(1).mean()

    @staticmethod
    def policy_loss(logp: torch.Tensor, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 13 on the resampled batch: ``−E[w · log π^i(a^i|s)]`` with ``w ∝ exp(z)``,
        ``z = (A^i − β log μ^i) / (α + β)``; ``logp, z [B, N]``, summed over agents in ``mask``.

        The weights are normalised over the minibatch per agent (``softmax`` over rows: a positive constant
        per batch, so the same minimiser as Eq. 13, and finite for any α + β > 0).
        """
        w = torch.softmax(z, dim=0)
        return -((w * logp).sum(0) * mask).sum()

    def get_extra_state(self) -> dict:
        """The current iteration's permutation (for exact resume from checkpoints), with the base state."""
        return {**super().get_extra_state(), "order": list(self._order)}

    def set_extra_state(self, state: dict) -> None:
        super().set_extra_state(state)
        self._order = [int(v) for v in state["order"]]

    @torch.no_grad()
    def behavior_kl(self, batch: Batch) -> torch.Tensor:
        """Mean over agents and rows of KL(π^i ‖ μ^i)(o^i) (exact for discrete, one sample for continuous)."""
        obs, avail = batch["observations"], batch.get("avail_actions")
        if self.spec.discrete:
            logp, logmu = self.policy.log_probs(obs, avail), self.mu.log_probs(obs, avail)
            p = logp.exp()
            return (p * (logp - logmu)).masked_fill(p == 0, 0.0).sum(-1).mean()
        a, logp = self.policy.rsample(obs, eps=batch.get("noise/kl"))
        return (logp - self.mu.log_prob(obs, a)).mean()

    # ------------------------------------------------------------------ acting
    def action_probs(self, obs, avail=None):
        if not self.spec.discrete:
            raise NotImplementedError("inspo: action_probs is for discrete actions")
        return self.policy.probs(obs, avail)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        return self.policy.act(obs, avail, deterministic, generator)
