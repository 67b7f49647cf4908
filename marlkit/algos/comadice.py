"""ComaDICE: offline cooperative MARL with stationary-distribution (DICE) regularisation (Bui, Nguyen & Mai,
ICLR 2025; ``comadice.md`` Sec. 4–5). Discrete and continuous actions.

The team solves ``max_π E_{ρ^π}[r] − α D_f(ρ^π ‖ ρ^μ)`` (Eq. 1) through its Lagrange dual in the multiplier
ν_tot(s) (Prop. 4.1). Value factorisation (Sec. 4.2, 5):

- local ``ν_i(o_i)`` (:class:`~marlkit.nets.critics.LocalV`) and ``q_i(o_i, a_i)``
  (:class:`~marlkit.nets.critics.LocalQ`) networks, batched over agents;
- one mixer ``M_s`` with non-negative, state-generated weights for both
  ``ν_tot(s) = M_s[ν(s)]`` and ``A_tot(s, a) = M_s[q(s, a) − ν(s)]``: the 1-layer
  :class:`~marlkit.nets.mixers.LinearMixer` (paper's choice, default) or the 2-layer
  :class:`~marlkit.nets.mixers.MonotonicMixer` (ELU, convex) — with either, the loss is convex in ν (Thm. 4.2).

Each update runs three steps on one minibatch of transitions and one of initial states s₀ (``episode_starts``):

1. **q-fitting** (:meth:`ComaDICE.q_fitting_loss`) — A_tot ≈ r + γ ν_tot(s') − ν_tot(s), derived from Eq. 5.
   The printed Eq. 10 reads ``(A_tot − r + γ ν_tot(s') − ν_tot(s))²``, whose signs make A_tot fit
   ``r − γ ν_tot(s') + ν_tot(s)``; Eq. 5 (``A_tot = q_tot − ν_tot`` with ``q_tot = r + γ E[ν_tot(s')]``) and the
   sentence before Eq. 10 give the residual ``A_tot − (r + γ ν_tot(s') − ν_tot(s))`` used here. Trains the q_i
   and the mixer θ; ν_tot(s') comes from target copies (τ = 0.005) and is zero after terminal transitions.
2. **ν-loss, Eq. 11** (:func:`eq11_loss`) — ``(1−γ) E_{s₀}[ν_tot(s₀)] + E_D[α f*(A_tot/α)]``, minimised over
   the ν_i with q and θ held fixed. The paper also lists θ among Eq. 11's variables; with q held fixed Eq. 11
   has no stationary point in the mixer bias b (``∂L/∂b = (1−γ) + E[w*] > 0``), so, as the official code does,
   θ is trained by the q-fitting loss only. With ``full_gradient`` (default) the gradient also flows through
   ``γ ν_tot(s')`` — the gradient of Prop. 4.1, where A depends on ν at s and at s'; the official code omits
   that path (``full_gradient=False``). In one-step tasks (every transition terminal) both coincide; on a
   2-step chain the full gradient satisfies the Bellman flow constraint (Eq. 3) while the semi-gradient drives
   the ratios of non-initial states to zero (``tests/test_comadice.py``).
3. **local weighted BC, Eq. 12** (:meth:`ComaDICE.weighted_bc_loss`) —
   ``max E_D[w*(s, a) Σ_i log π_i(a_i|o_i)]`` with the occupancy ratio
   ``w* = max(0, (f')⁻¹(A_tot/α))`` (Prop. 4.1 / Sec. 4.3).

f-divergences (``f`` field): ``chi2``, ``kl``, ``soft-chi2`` (:mod:`marlkit.algos.fdiv`).

Occupancy mass: Eq. 11's stationarity gives ``E_D[w*] = 1 − γ`` in one-step tasks such as matrix games (the
episode ends after one step, so the discounted occupancy of its states is 1 − γ); use ``gamma=0`` there to get
the normalised one-step occupancy that :func:`marlkit.exact.dice.comadice_solution` computes with ``gamma=0``.

Work per update (two stages, :meth:`ComaDICE.stages`): step 1 needs ν_i(o_i) without gradient only; steps 2 and 3
train disjoint parameters (w* is detached), so one loss and one backward pass give both their gradients, clipped
per network as in the official code; ν_i is evaluated on o, o₀ and o' in one batched pass.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from marlkit.algos.base import AlgoConfig, Algorithm, ConfigError, Stage, ranged
from marlkit.algos.common import require_initial_states, weighted_bc_loss
from marlkit.algos.fdiv import F_DIVERGENCES, get_fdiv, occupancy_ratio
from marlkit.algos.fdiv import dual_loss as eq11_loss  # Eq. 11 is the DICE dual with mixed ν_tot, A_tot
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.critics import LocalQ, LocalV
from marlkit.nets.mixers import LinearMixer, MonotonicMixer
from marlkit.nets.policies import make_policy

__all__ = ["ComaDICE", "ComaDICEConfig", "eq11_loss", "occupancy_ratio"]


@dataclass
class ComaDICEConfig(AlgoConfig):
    """ComaDICE hyperparameters.

    Inherited defaults match the official code (lr 5e-4, batch 128, γ = 0.99, 3-layer 256-unit local nets).

    Attributes:
        alpha: DICE regularisation weight α > 0 (Eq. 1). 10: the official code's value and the best of the
            paper's α sweep (Sec. 6.4, Fig. 1).
        f: f-divergence, ``"soft-chi2"`` (official default), ``"chi2"`` or ``"kl"`` (App. ablation).
        mixer: ``"linear"`` (1-layer, the paper's choice, Sec. 5 footnote 1) or ``"monotonic"`` (2-layer, ELU).
        mixer_hidden: hidden sizes of the mixer's hypernetworks ((64,), official ``MixNet``).
        mixer_embed: width of the 2-layer mixer's mixing layer (32, as QMIX).
        tau: Polyak rate of the target ν and mixer used for ν_tot(s') (0.005, official code).
        grad_clip: gradient-norm clip of every network (1.0, official code; 0 disables).
        full_gradient: let Eq. 11's gradient flow through γ ν_tot(s') (Prop. 4.1's gradient). False: the
            official code's semi-gradient.
        normalize_weights: divide the weighted-BC loss by the minibatch mean of w* (the optimum of Eq. 12 does
            not depend on the scale of w*; this keeps the step size independent of E[w*] = 1 − γ in short
            episodes). A marlkit choice, not in the paper.
    """

    alpha: float = ranged(10.0, "(0, inf)")
    f: str = "soft-chi2"
    mixer: str = "linear"
    mixer_hidden: tuple[int, ...] = (64,)
    mixer_embed: int = ranged(32, "[1, inf)")
    tau: float = ranged(0.005, "(0, 1]")
    grad_clip: float = ranged(1.0, "[0, inf)")
    full_gradient: bool = True
    normalize_weights: bool = True

    def validate(self) -> None:
        super().validate()
        if self.f not in F_DIVERGENCES:
            raise ConfigError(f"f must be one of {list(F_DIVERGENCES)}, got {self.f!r}")
        if self.mixer not in ("linear", "monotonic"):
            raise ConfigError(f"mixer must be 'linear' or 'monotonic', got {self.mixer!r}")


class ComaDICE(Algorithm):
    """ComaDICE: factorised DICE values (ν_i, q_i, non-negative mixer) and local weighted BC."""

    name = "comadice"
    Config = ComaDICEConfig

    def __init__(self, spec, config: ComaDICEConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c = self.config
        self.fdiv = get_fdiv(c.f)
        n = spec.n_agents
        self.nu = LocalV(n, spec.obs_dim, c.hidden, c.share_params)
        self.q = LocalQ.for_spec(spec, c.hidden, c.share_params)
        if c.mixer == "linear":
            self.mixer = LinearMixer(spec.state_dim, n, c.mixer_hidden)
        else:
            self.mixer = MonotonicMixer(spec.state_dim, n, c.mixer_embed, c.mixer_hidden)
        self.policy = make_policy(spec, c.hidden, c.share_params)
        self.nu_target = copy.deepcopy(self.nu).requires_grad_(False)
        self.mixer_target = copy.deepcopy(self.mixer).requires_grad_(False)
        self.to(self.device)
        self.critic_opt = self.make_adam(self.q, self.mixer)
        self.value_opt = self.make_adam(self.nu)
        self.actor_opt = self.make_adam(self.policy)

    # ------------------------------------------------------------------ training
    def prepare(self, sampler: DeviceSampler) -> None:
        """Check that the dataset marks initial states (needed by Eq. 11's (1−γ) E[ν_tot(s₀)] term).

        Raises:
            DatasetError: if ``episode_starts`` is never True.
        """
        require_initial_states(sampler, "ComaDICE", "(1-gamma) E[nu_tot(s0)] term of Eq. 11")

    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """A minibatch of transitions plus one of initial states s₀ under ``init/`` keys (both ``batch_size``)."""
        initial = sampler.sample_initial(self.config.batch_size)
        batch = sampler.sample(self.config.batch_size)
        batch.update({f"init/{k}": initial[k] for k in ("observations", "states")})
        return batch

    def stages(self) -> list[Stage]:
        """q-fitting (q_i and the mixer), then Eq. 11 (ν_i) with Eq. 12 (π_i) in one loss: disjoint parameters,
        w* detached. Every network is clipped on its own (official code)."""
        clip = self.config.grad_clip
        return [Stage("q_fitting", "q_stage_loss", ("critic_opt",), clip=(("q", "mixer"),), max_norm=clip),
                Stage("nu_policy", "nu_policy_loss", ("value_opt", "actor_opt"), clip=(("nu",), ("policy",)),
                      max_norm=clip)]

    def mixed(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Local values and mixing parameters of a minibatch (all with gradients).

        Returns:
            dict with ``nu [B, N]``, ``q [B, N]`` (taken actions), ``params`` (mixer parameters at s),
            ``nu_tot [B]`` and ``a_tot [B]`` (= M_s[q − ν]).
        """
        nu = self.nu(batch["observations"])
        q = self.q.taken(batch["observations"], batch["actions"])
        params = self.mixer.mixing_params(batch["states"])
        nu_tot, a_tot = self.mixer.mix(torch.stack([nu, q - nu]), *params)
        return {"nu": nu, "q": q, "params": params, "nu_tot": nu_tot, "a_tot": a_tot}

    def q_fitting_loss(self, batch: Batch, nu: torch.Tensor | None = None) -> torch.Tensor:
        """MSE making ``A_tot(s, a) = M_s[q − ν]`` match ``r + γ (1 − done) ν̄_tot(s') − ν_tot(s)`` (from Eq. 5;
        see the module docstring for the sign fix of the printed Eq. 10). Gradients reach q and θ only.

        ``nu``: ``ν_i(o_i)`` of the batch ``[B, N]`` if already computed (treated as a constant); else computed."""
        c = self.config
        q = self.q.taken(batch["observations"], batch["actions"])
        params = self.mixer.mixing_params(batch["states"])
        with torch.no_grad():
            nu = self.nu(batch["observations"]) if nu is None else nu.detach()
            target = batch["rewards"] - self.mixer.mix(nu, *(p.detach() for p in params))
            if c.gamma > 0:
                nu_next = self.mixer_target(self.nu_target(batch["next_observations"]), batch["next_states"])
                target = target + c.gamma * (1.0 - batch["terminals"]) * nu_next
        a_tot = self.mixer.mix(q - nu, *params)
        return (a_tot - target).pow(2).mean()

    def nu_values(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """``ν_i`` at the transitions' o, the initial o₀ (``init/observations``; and o' for the full gradient) in one
        batched forward pass: a tuple of ``[B, N]``, ``[B0, N]`` (, ``[B, N]``), with gradients."""
        obs = [batch["observations"], batch["init/observations"]]
        if self.config.full_gradient and self.config.gamma > 0:
            obs.append(batch["next_observations"])
        return self.nu(torch.cat(obs)).split([o.shape[0] for o in obs])

    def nu_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 11 as a function of the ν_i (q and mixer fixed). Returns ``(loss, A_tot [B] detached)``.

        ν (:meth:`nu_values`) and the mixer weights are evaluated on the transitions' s, the initial states s₀
        (``init/states``; and s' for the full gradient) in one batched call each.
        """
        c = self.config
        full = c.full_gradient and c.gamma > 0
        nus = self.nu_values(batch)
        states = [batch["states"], batch["init/states"]] + ([batch["next_states"]] if full else [])
        sizes = [st.shape[0] for st in states]
        with torch.no_grad():
            q = self.q.taken(batch["observations"], batch["actions"])
            params = [p.split(sizes) for p in self.mixer.mixing_params(torch.cat(states))]
        a_tot = self.mixer.mix(q - nus[0], *(p[0] for p in params))
        nu_tot0 = self.mixer.mix(nus[1], *(p[1] for p in params))
        if full:
            nu_next = self.mixer.mix(nus[2], *(p[2] for p in params))
            path = c.gamma * (1.0 - batch["terminals"]) * nu_next
            a_tot = a_tot + (path - path.detach())  # same value, adds the γ ∇ν_tot(s') term of Prop. 4.1
        return eq11_loss(nu_tot0, a_tot, c.alpha, self.fdiv, c.gamma), a_tot.detach()

    def weighted_bc_loss(self, batch: Batch, w: torch.Tensor) -> torch.Tensor:
        """Local weighted BC, Eq. 12 (:func:`~marlkit.algos.common.weighted_bc_loss`)."""
        return weighted_bc_loss(self.policy, batch, w, self.config.normalize_weights)

    def q_stage_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stage 1: the q-fitting loss (ν_i(o_i) without gradient: this stage does not train ν)."""
        loss = self.q_fitting_loss(batch)
        return loss, {"critic_loss": loss.detach()}

    def nu_policy_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stage 2: Eq. 11 (trains ν only) + Eq. 12 (trains π only; w* detached), with the q just fitted."""
        nu_loss, a_tot = self.nu_loss(batch)
        w = occupancy_ratio(a_tot, self.config.alpha, self.fdiv)
        pi_loss = self.weighted_bc_loss(batch, w)
        return nu_loss + pi_loss, {"value_loss": nu_loss.detach(), "actor_loss": pi_loss.detach(),
                                   "a_tot": a_tot.mean(), "w_mean": w.mean(), "w_max": w.max()}

    def after_step(self) -> None:
        """Polyak updates of the target ν and mixer (rate τ)."""
        self.soft_update(self.nu_target, self.nu, self.config.tau)
        self.soft_update(self.mixer_target, self.mixer, self.config.tau)

    # ------------------------------------------------------------------ analysis
    @torch.no_grad()
    def ratios(self, batch: Batch) -> torch.Tensor:
        """Learned occupancy ratios ``w*(s, a)`` of the transitions in ``batch``, ``[B]``."""
        return occupancy_ratio(self.mixed(batch)["a_tot"], self.config.alpha, self.fdiv)

    # ------------------------------------------------------------------ acting
    def action_probs(self, obs, avail=None):
        if not self.spec.discrete:
            raise NotImplementedError("action_probs is for discrete actions; use act")
        return self.policy.probs(obs, avail)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        return self.policy.act(obs, avail, deterministic, generator)
