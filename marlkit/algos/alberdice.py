"""AlberDICE: alternating stationary-distribution correction estimation (Matsunaga, Lee, Yoon, Leonardos,
Abbeel & Kim, NeurIPS 2023, "AlberDICE: Addressing Out-Of-Distribution Joint Actions in Offline Multi-Agent RL via
Alternating Stationary Distribution Correction Estimation"). Discrete actions.

The agents take turns computing a best response (paper Sec. 3, Algorithm 1): agent i, with the other agents'
current policies π_{-i} fixed, solves

    max_{d_i ≥ 0} E_{d_i π_{-i}}[r] − α D_KL(d_i(s, a_i) π_{-i}(a_{-i}|s) ‖ d^D(s, a_i, a_{-i}))     (Eq. 3–4)

under the Bellman flow constraint. With ``D_KL(d_i π_{-i} ‖ d^D) = D_KL(d_i ‖ d^D(s, a_i)) +
E_{d_i}[KL(π_{-i}(·|s) ‖ d^D(a_{-i}|s, a_i))]`` (Eq. 5) the teammates enter only through the ratio of their
policies to the *conditional* data policy ``μ(a_{-i}|s, a_i)``. The normalised KL dual in agent i's multiplier
ν_i(s) is (Eq. 8–10, unnormalised; the paper normalises, see :func:`nu_loss`)

    min_{ν_i} (1 − γ) E_{p₀}[ν_i(s₀)] + α E_{d^D}[ρ_{-i} exp(e_{ν_i}(s, a) / α − 1)],
    e_{ν_i}(s, a) = r(s, a) − α KL(π_{-i}(·|s) ‖ μ(·|s, a_i)) + γ ν_i(s') − ν_i(s),
    ρ_{-i}(s, a) = π_{-i}(a_{-i}|s) / μ(a_{-i}|s, a_i),

(:func:`nu_loss`), and the optimal ``d_i*(s, a_i) / d^D(s, a_i) ∝ E_{π_{-i}}[exp(e_{ν_i}/α)]``. Policy extraction is
the I-projection (Sec. 4.2) ``min_{π_i} KL(d^D(s) π_i(a_i|s) ‖ d_i*(s, a_i))``, i.e.

    max_{π_i} E_{s ~ D_ρ}[Σ_{a_i} π_i(a_i|s) e_ψ(s, a_i) − α KL(π_i(·|s) ‖ μ_i(·|s))]          (:func:`iprojection_loss`)

with ``e_ψ(s, a_i)`` a network regressed on e_{ν_i} (so that every action a_i, not only the data's, has a value)
and a conservative penalty on unseen actions. Expectations under ``d^D(s, a_i) π_{-i}`` are taken on the minibatch
resampled ∝ ρ_{-i} (clipped at ``ratio_max``), as in the official code.

Networks, all batched over agents: π_i(a_i|o_i) and μ_i(a_i|o_i) (BC) on local observations; ν_i(s) and
``e_ψ,i(s, ·)`` on the global state (centralised training); the autoregressive conditional data policy
``μ(a_{-i}|s, a_i) = Π_{j≠i} μ_{ij}(a_j | s, a_i, a_{k<j, k≠i})`` as one batched MLP with one member per ordered
pair (i, j) (official "autoregressive data policy").

Update contract: update t is agent ``i = ⌊t / agent_steps⌋ mod N``'s turn (fixed order 0, ..., N−1, as the official
code), drawn into the batch by :meth:`AlberDICE.sample` as ``agent_mask`` together with the annealed α and the
resampling uniforms; the stages are behavior (μ_i and μ_ij, every update), value (ν_i), critic (e_ψ,i) and actor
(π_i), each masked to agent i. The ν, e and π optimizers run Adam with β1 = 0, so agents out of their turn (zero
gradient) do not move: the batched equivalent of the official code's per-agent optimizers.

Continuous actions are not supported (``supports_continuous = False``): the paper's method and the official code
(PyMARL, categorical policies and an autoregressive categorical data policy) are defined for discrete actions
only — the KL to ``μ(a_{-i}|s, a_i)`` is computed from its categorical heads — and comadice.md's MaMuJoCo
AlberDICE numbers (its Table 3) come from baseline code contributed by the OMIGA authors, which comadice.md does not
describe (no conditional continuous data policy or continuous I-projection is specified anywhere we can read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from marlkit.algos.base import AlgoConfig, Algorithm, ConfigError, Stage, ranged
from marlkit.algos.common import importance_resample, require_initial_states
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.critics import LocalQ, LocalV
from marlkit.nets.mlp import MultiAgentMLP
from marlkit.nets.policies import make_policy, masked_logits

__all__ = ["AlberDICE", "AlberDICEConfig", "iprojection_loss", "nu_loss"]


INITIAL_STATES = ("episode", "data")
"""Choices of :attr:`AlberDICEConfig.initial_states`."""


@dataclass
class AlberDICEConfig(AlgoConfig):
    """AlberDICE hyperparameters.

    Sources: the paper's App. (hyperparameters) as set in the official code's ``config/algs/alberdice.yaml`` and
    ``config/default.yaml`` (github.com/dematsunaga/alberdice): lr = ν-lr = 1e-4, α annealed 5 → 0.001,
    ``other_policy_ratio_max`` 100, ``cql_coeff`` 0.1, ``num_iter_inner_loop`` 1, γ = 0.99. Where marlkit differs it
    says so below.

    Attributes:
        lr: Adam learning rate of every network. 1e-3 (marlkit): the official 1e-4 is paired with about 10⁶
            updates on the matrix games. Measured at these defaults with 3000 updates, seeds 0–4: XOR (b)
            1.000 ± 0.000, XOR (a) 0.427 ± 0.523 (two seeds end at the OOD (A, A)); the matrix games' own
            AlberDICE defaults (``marlkit.envs.matrix``) reach inspo.md Tables 1–2 on all 25 runs.
        alpha: α at the first update (5.0, official ``alpha_start``).
        alpha_final: α after ``alpha_decay_steps`` (0.001, official ``alpha_end``), reached geometrically; None
            keeps α constant.
        alpha_decay_steps: updates of the geometric decay. The official schedule spans the whole run (``t_max``);
            the default 3000 is the matrix games' run length: set it to ``--steps`` for other tasks.
        ratio_max: clip of the teammates' ratio ρ_{-i} (100, official ``other_policy_ratio_max``).
        cql_coeff: weight of the conservative penalty ``logsumexp_a e_ψ(s, a) − E_{μ_i}[e_ψ(s, ·)]`` of the e-network
            (0.1, official ``cql_coeff``).
        agent_steps: consecutive updates of one agent before the next one's turn (1, official
            ``num_iter_inner_loop``; XOR's game default is 50, docs/benchmarks.md says why).
        initial_states: the states of the ``(1 − γ) E[ν_i(s₀)]`` term: ``"episode"`` (the paper's p₀: a minibatch
            of the episodes' first states) or ``"data"`` (the official code's: the minibatch's own states, every
            dataset state treated as a start). Bridge's episodes all start in one state, so there ``"episode"``
            anchors ν_i at a single state; at 6,000 updates ``"data"`` ended nearer the optimum (seeds 0–2), but
            at Bridge's 20,000 updates four of five seeds with ``"data"`` end in the deadlock once α is small,
            as ``"episode"`` does (docs/benchmarks.md), so the default is the paper's.
        nu_grad_penalty: weight of the ν gradient penalty ``E[‖∇_s ν_i(s̃)‖²]`` added to agent i's ν loss, at
            states s̃ interpolated between two halves of the minibatch (official ``nu_grad_penalty_coeff``, 0.1 in
            its ``config/default.yaml``; see :meth:`AlberDICE.nu_gradient_penalty`). It keeps ν smooth between the
            dataset's states. Default 0 (off): the matrix-game results of docs/benchmarks.md were measured
            without it, and on Bridge (20,000 updates, five seeds, with ``initial_states="data"``) it kept four of
            five runs of ``optimal`` at the optimum but three of five runs of ``mixed`` ended in the deadlock.

    Not implemented: the absorbing-state augmentation.
    """

    lr: float = 1e-3
    alpha: float = ranged(5.0, "(0, inf)")
    alpha_final: float | None = ranged(1e-3, "(0, inf)")
    alpha_decay_steps: int = ranged(3000, "[1, inf)")
    ratio_max: float = ranged(100.0, "[1, inf)")
    cql_coeff: float = ranged(0.1, "[0, inf)")
    agent_steps: int = ranged(1, "[1, inf)")
    initial_states: str = "episode"
    nu_grad_penalty: float = ranged(0.0, "[0, inf)")

    def validate(self) -> None:
        super().validate()
        if self.share_params:
            raise ConfigError("share_params=True is incompatible with AlberDICE's alternating updates: one agent's "
                              "best-response step of a shared network would move every agent's policy")
        if self.initial_states not in INITIAL_STATES:
            raise ConfigError(f"initial_states must be one of {INITIAL_STATES}, got {self.initial_states!r}")


def nu_loss(nu0: torch.Tensor, e: torch.Tensor, log_rho: torch.Tensor, alpha, gamma: float) -> torch.Tensor:
    """Agent-wise ν loss: the KL dual of agent i's problem (AlberDICE Eq. 8–10) with the teammates' ratio,

    ``(1 − γ) E_{s₀}[ν_i(s₀)] + α E_D[ρ_{-i} exp(e_{ν_i} / α − 1)]``  (f(x) = x log x, f*(y) = exp(y − 1)).

    The paper and the official code minimise the normalised form ``α log E_D[ρ_{-i} exp(e/α)]``, which needs
    absorbing states after terminal transitions (without them it is unbounded below in ν on episodic data: one
    step of a matrix game gives ``∂L/∂ν = (1 − γ) − 1``). marlkit keeps the unnormalised dual, whose optimum
    gives the same ratios up to one constant per state (the I-projection does not depend on it), as ComaDICE's
    Eq. 11 does. For finite values at any α the loss is divided by the detached factor ``max(1, E_D[ρ exp(e/α −
    1)])`` (same descent direction; Adam is insensitive to a common gradient scale).

    Args:
        nu0: ``ν_i(s₀)`` ``[B0, N]``.
        e: ``e_{ν_i}(s, a)`` on dataset transitions ``[B, N]`` (with gradient through ν).
        log_rho: ``log ρ_{-i}`` ``[B, N]`` (detached, clipped).
        alpha: α > 0 (float or scalar tensor).
        gamma: γ.

    Returns:
        ``[N]``: the (scaled) loss of every agent.
    """
    lse = torch.logsumexp(log_rho + e / alpha - 1.0, dim=0) - math.log(e.shape[0])  # log E[ρ exp(e/α − 1)]
    shift = lse.detach().clamp_min(0.0)
    return (1.0 - gamma) * nu0.mean(0) * torch.exp(-shift) + alpha * torch.exp(lse - shift)


def iprojection_loss(probs: torch.Tensor, log_probs: torch.Tensor, e_all: torch.Tensor, log_mu: torch.Tensor,
                     alpha) -> torch.Tensor:
    """I-projection policy extraction (AlberDICE Sec. 4.2), per row and agent:

    ``−Σ_a π_i(a|o_i) e_ψ(s, a) + α KL(π_i(·|o_i) ‖ μ_i(·|o_i))``, minimised by ``π_i ∝ μ_i exp(e_ψ / α)``.

    Args:
        probs, log_probs: π_i(·|o_i) and its log ``[B, N, A]``.
        e_all: ``e_ψ,i(s, ·)`` ``[B, N, A]`` (detached).
        log_mu: ``log μ_i(·|o_i)`` ``[B, N, A]`` (detached).
        alpha: α > 0.

    Returns:
        ``[B, N]``.
    """
    kl = (probs * (log_probs - log_mu)).masked_fill(probs == 0, 0.0).sum(-1)
    return -(probs * e_all).masked_fill(probs == 0, 0.0).sum(-1) + alpha * kl


class AlberDICE(Algorithm):
    """AlberDICE (Matsunaga et al. 2023): alternating per-agent DICE best responses with I-projection."""

    name = "alberdice"
    Config = AlberDICEConfig
    supports_continuous = False

    def __init__(self, spec, config: AlberDICEConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c = self.config
        n, a = spec.n_agents, spec.n_actions
        self.policy = make_policy(spec, c.hidden)  # π_i(a_i | o_i)
        self.mu = make_policy(spec, c.hidden)  # data policy μ_i(a_i | o_i), BC
        self.nu = LocalV(n, spec.state_dim, c.hidden)  # ν_i(s)
        self.e_net = LocalQ(n, spec.state_dim, n_actions=a, hidden=c.hidden)  # e_ψ,i(s, ·)
        pairs = [(i, j) for i in range(n) for j in range(n) if j != i]
        # μ_ij(a_j | s, a_i, a_{k<j, k≠i}): one member per ordered pair, input [s, masked one-hot joint action]
        self.cond = MultiAgentMLP(max(len(pairs), 1), spec.state_dim + n * a, a, c.hidden)
        pi = torch.tensor([p[0] for p in pairs] or [0])
        pj = torch.tensor([p[1] for p in pairs] or [0])
        ctx = torch.zeros(max(len(pairs), 1), n)
        for k, (i, j) in enumerate(pairs):
            ctx[k, i] = 1.0
            ctx[k, [m for m in range(n) if m != i and m < j]] = 1.0
        self.register_buffer("pair_j", pj, persistent=False)
        self.register_buffer("pair_context", ctx, persistent=False)  # [P, N]: conditioned-on agents of pair k
        # [P, N] one-hot of the pair's agent i (sums pair terms into agent i's); all zeros for a single agent
        self.register_buffer("pair_owner", torch.nn.functional.one_hot(pi, n).float() * float(bool(pairs)),
                             persistent=False)
        self.register_buffer("agent_index", torch.arange(n), persistent=False)
        self.register_buffer("agent_masks", torch.eye(n), persistent=False)
        self.to(self.device)
        self.behavior_opt = self.make_adam(self.mu, self.cond)
        self.value_opt = self.make_adam(self.nu)
        self.critic_opt = self.make_adam(self.e_net)
        self.actor_opt = self.make_adam(self.policy)
        for opt in (self.value_opt, self.critic_opt, self.actor_opt):  # out-of-turn agents (zero grad) stay put
            for group in opt.param_groups:
                group["betas"] = (0.0, 0.999)

    # ------------------------------------------------------------------ schedule
    def alpha_at(self, step: int) -> float:
        """α of update ``step``: ``α₀ (α_final / α₀)^{min(step / alpha_decay_steps, 1)}`` (official schedule)."""
        c = self.config
        if c.alpha_final is None:
            return c.alpha
        return c.alpha * (c.alpha_final / c.alpha) ** min(step / c.alpha_decay_steps, 1.0)

    def agent_at(self, step: int) -> int:
        """The agent whose turn update ``step`` is: ``⌊step / agent_steps⌋ mod N``."""
        return (step // self.config.agent_steps) % self.spec.n_agents

    # ------------------------------------------------------------------ training
    def prepare(self, sampler: DeviceSampler) -> None:
        """Check that the dataset marks initial states (the (1 − γ) E[ν_i(s₀)] term; ``initial_states="episode"``).

        Raises:
            DatasetError: if ``episode_starts`` is never True.
        """
        if self.config.initial_states == "episode":
            require_initial_states(sampler, "AlberDICE", "(1-gamma) E[nu_i(s0)] term")

    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """Transitions, initial states (``init/states``), the turn (``agent_mask [N]``), α (``alpha``), the
        resampling uniforms ``noise/resample [N, B]`` (float64) and, with ``nu_grad_penalty``, the interpolation
        weights ``noise/interpolation [B // 2, 1]``."""
        c = self.config
        initial = sampler.sample_initial(c.batch_size) if c.initial_states == "episode" else None
        batch = sampler.sample(c.batch_size)
        # "data": every dataset state a start (official code), so the minibatch's own states
        batch["init/states"] = batch["states"] if initial is None else initial["states"]
        batch["agent_mask"] = self.agent_masks[self.agent_at(step)]
        batch["alpha"] = torch.full((), self.alpha_at(step), device=self.device)
        draws = {"resample": ("uniform64", (self.spec.n_agents, batch["rewards"].shape[0]))}
        if c.nu_grad_penalty > 0:
            draws["interpolation"] = ("uniform", (batch["rewards"].shape[0] // 2, 1))
        return self.draw(batch, **draws)

    def stages(self) -> list[Stage]:
        """Data policies (all agents), then agent i's ν (Eq. 10), its e-network and its I-projection."""
        return [Stage("behavior", "behavior_loss", ("behavior_opt",)),
                Stage("value", "value_loss", ("value_opt",)),
                Stage("critic", "critic_loss", ("critic_opt",)),
                Stage("actor", "actor_loss", ("actor_opt",))]

    def _per_agent_states(self, states: torch.Tensor) -> torch.Tensor:
        return states.unsqueeze(-2).expand(*states.shape[:-1], self.spec.n_agents, states.shape[-1])

    def cond_log_probs(self, batch: Batch) -> torch.Tensor:
        """``log μ_ij(· | s, a_i, a_{k<j, k≠i})`` for every ordered pair, ``[B, P, A]`` (dataset context)."""
        states, act = batch["states"], batch["actions"]
        onehot = torch.nn.functional.one_hot(act.long(), self.spec.n_actions).float()  # [B, N, A]
        ctx = (self.pair_context.unsqueeze(-1) * onehot.unsqueeze(1)).flatten(2)  # [B, P, N*A]
        x = torch.cat([states.unsqueeze(1).expand(-1, ctx.shape[1], -1), ctx], -1)
        avail = batch.get("avail_actions")
        logits = masked_logits(self.cond(x), None if avail is None else avail[:, self.pair_j])
        return torch.log_softmax(logits, -1)

    def behavior_loss(self, batch: Batch, carry: dict):
        """BC of μ_i and of the conditional data policy μ_ij (negative log-likelihoods, all agents and pairs)."""
        obs, act, avail = batch["observations"], batch["actions"], batch.get("avail_actions")
        bc = -self.mu.log_prob(obs, act, avail).mean()
        a_j = act[:, self.pair_j].long().unsqueeze(-1)
        cond = -self.cond_log_probs(batch).gather(-1, a_j).mean() if self.spec.n_agents > 1 else bc * 0
        loss = bc + cond
        return loss, {"behavior_loss": bc.detach(), "cond_behavior_loss": cond.detach()}

    @torch.no_grad()
    def teammate_terms(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log ρ_{-i}, KL_{-i})``, each ``[B, N]``: the clipped log ratio ``Σ_{j≠i} log π_j(a_j|o_j) −
        log μ_ij(a_j|·)`` at the dataset actions, and ``Σ_{j≠i} KL(π_j(·|o_j) ‖ μ_ij(·|s, a_i, a_{<j}))`` (exact over
        a_j; with the dataset's a_{<j} as context, as the official code's estimate, which it averages over 16
        samples of a_j)."""
        obs, act, avail = batch["observations"], batch["actions"], batch.get("avail_actions")
        logp_all = self.policy.log_probs(obs, avail)[:, self.pair_j]  # [B, P, A]: π_j(·|o_j)
        logc = self.cond_log_probs(batch)
        a_j = act[:, self.pair_j].long().unsqueeze(-1)
        log_ratio = (logp_all.gather(-1, a_j) - logc.gather(-1, a_j)).squeeze(-1)  # [B, P]
        p = logp_all.exp()
        kl = (p * (logp_all - logc)).masked_fill(p == 0, 0.0).sum(-1)
        log_rho = (log_ratio @ self.pair_owner).clamp(max=math.log(self.config.ratio_max))
        return log_rho, kl @ self.pair_owner

    def value_loss(self, batch: Batch, carry: dict):
        """ν_i of the turn's agent: Eq. 10 (:func:`nu_loss`). Passes e_{ν_i} and the resampled rows on."""
        c, mask, alpha = self.config, batch["agent_mask"], batch["alpha"]
        log_rho, kl = self.teammate_terms(batch)
        s = self._per_agent_states
        b, b0 = batch["states"].shape[0], batch["init/states"].shape[0]
        nus = self.nu(s(torch.cat([batch["states"], batch["next_states"], batch["init/states"]])))
        nu, nu_next, nu0 = nus.split([b, b, b0])
        e = (batch["rewards"].unsqueeze(1) - alpha * kl +
             c.gamma * (1.0 - batch["terminals"]).unsqueeze(1) * nu_next - nu)
        per_agent = nu_loss(nu0, e, log_rho, alpha, c.gamma)
        penalty = None
        if c.nu_grad_penalty > 0:
            penalty = self.nu_gradient_penalty(batch["states"], batch["noise/interpolation"])
            per_agent = per_agent + c.nu_grad_penalty * penalty
        loss = (per_agent * mask).sum()
        idx = importance_resample(log_rho, batch["noise/resample"])  # [B, N]
        rho = log_rho.exp()
        ess = rho.sum(0) ** 2 / (rho ** 2).sum(0) / b
        metrics = {"value_loss": loss.detach(), "kl_others": (kl.mean(0) * mask).sum(),
                   "ess": (ess * mask).sum(), "alpha": alpha}
        if penalty is not None:
            metrics["nu_grad_penalty"] = (penalty.detach() * mask).sum()
        return loss, metrics, {"e": e.detach(), "idx": idx}

    def nu_gradient_penalty(self, states: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``E[‖∇_s ν_i(s̃)‖²]`` per agent, ``[N]``, at ``s̃ = ε s_k + (1 − ε) s_{k + B/2}``: the minibatch's first
        half mixed with its second (``states [B, S]``, ``eps [B // 2, 1]`` uniform). The official code's penalty
        (``alberdice_learner.py``; its batches are whole episodes, so it also shuffles the second half across time
        steps; rows of a marlkit minibatch are already independent). The input gradient comes from
        ``torch.func.vjp``, so the loss stays differentiable in ν's parameters and vectorizes over a population.
        """
        half = eps.shape[0]
        mixed = eps * states[:half] + (1.0 - eps) * states[half:2 * half]
        out, pullback = torch.func.vjp(self.nu, self._per_agent_states(mixed).contiguous())
        (grad,) = pullback(torch.ones_like(out))  # [B/2, N, S]: agent i's output depends on its own copy only
        return grad.pow(2).sum(-1).mean(0)

    def critic_loss(self, batch: Batch, carry: dict):
        """e_ψ,i(s, a_i) ≈ e_{ν_i} on the resampled rows, plus ``cql_coeff`` × the conservative penalty
        ``logsumexp_a e_ψ(s, a) − E_{μ_i}[e_ψ(s, ·)]`` there (official code)."""
        mask, idx = batch["agent_mask"], carry["idx"]
        agent = self.agent_index.expand(idx.shape[0], -1)
        e_all = self.e_net(self._per_agent_states(batch["states"]))  # [B, N, A]
        avail = batch.get("avail_actions")
        pred = e_all.gather(-1, batch["actions"].long().unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            mu = self.mu.probs(batch["observations"], avail)
        penalty = torch.logsumexp(masked_logits(e_all, avail), -1) - (mu * e_all).sum(-1)
        per_row = (pred - carry["e"]) ** 2 + self.config.cql_coeff * penalty
        loss = (per_row[idx, agent].mean(0) * mask).sum()
        return loss, {"critic_loss": loss.detach()}, {"e_all": e_all.detach()}

    def actor_loss(self, batch: Batch, carry: dict):
        """I-projection of agent i on its resampled rows (:func:`iprojection_loss`) with the e-network's values."""
        obs, avail, mask, idx = batch["observations"], batch.get("avail_actions"), batch["agent_mask"], carry["idx"]
        agent = self.agent_index.expand(idx.shape[0], -1)
        log_probs = self.policy.log_probs(obs, avail)
        with torch.no_grad():
            log_mu = self.mu.log_probs(obs, avail)
        per_row = iprojection_loss(log_probs.exp(), log_probs, carry["e_all"], log_mu, batch["alpha"])
        loss = (per_row[idx, agent].mean(0) * mask).sum()
        return loss, {"actor_loss": loss.detach()}

    # ------------------------------------------------------------------ acting
    def action_probs(self, obs, avail=None):
        return self.policy.probs(obs, avail)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        return self.policy.act(obs, avail, deterministic, generator)
