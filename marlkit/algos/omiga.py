"""OMIGA: offline multi-agent RL with implicit global-to-local value regularization (Wang et al. 2023, omiga.md).

A reverse-KL behavior regularizer on the *global* policy, ``max E[Σ_t γ^t (r − α log π_tot/μ_tot)]``, becomes
*local* regularizers once Q and V share one linear value decomposition (Eq. 8):

    Q_tot(o, a) = Σ_i w_i(o) Q_i(o_i, a_i) + b(o),    V_tot(o) = Σ_i w_i(o) V_i(o_i) + b(o),    w_i ≥ 0.

The optimal global policy then factorises into local policies (Prop. 4.3, Eq. 9)
``π_i* ∝ μ_i exp(w_i(o)(Q_i − V_i)/α)``, and three in-sample supervised steps learn it (Algorithm 1):

1. ``V_i`` by the convex objective Eq. 12, whose minimizer normalises π_i* (Prop. 4.4, Eq. 10);
2. ``Q_i``, ``w``, ``b`` by the TD regression Eq. 13 onto ``r + γ V_tot(o')``;
3. ``π_i`` by the exp-weighted log-likelihood Eq. 14.

No step queries an action outside the dataset. Discrete actions use ``Q_i(o_i, ·)`` heads and a categorical
policy (``avail_actions`` masking); continuous actions use ``Q_i(o_i, a_i)`` and a tanh-Gaussian policy.

Numerical care follows the authors' code (github.com/ZhengYinan-AIR/OMIGA, ``algos/OMIGA.py`` and
``framework/trainer_omiga.py``): the exponent ``z = w_i(Q̄_i − V_i)/α`` is clamped to ``[−c, c]`` (c = 10), the V
loss is scaled by ``exp(−max(z))`` (max subtraction, floored at −1), ``w`` and ``Q̄_i`` in the exponent come from
the target networks, the mixer is soft-updated together with ``Q_i``, and gradients are norm-clipped per network
(1.0). Unlike the code, α is a real hyperparameter (the code hard-codes α = 10) and ``V_tot(o')`` uses the online
``V_i`` (Algorithm 1 keeps a target network for ``Q_i`` only).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from marlkit.algos.base import AlgoConfig, Algorithm, ConfigError, Stage, ranged
from marlkit.data.sampler import Batch
from marlkit.nets.critics import LocalQ, LocalV
from marlkit.nets.mixers import LinearMixer
from marlkit.nets.policies import make_policy

__all__ = ["OMIGA", "WEIGHT_MODES", "OMIGAConfig"]

WEIGHT_MODES = ("global", "none", "local")
"""``global``: OMIGA, w_i(o) from the global state; ``none``: OMIGA-w/o-w (no weight in the V/policy exponent);
``local``: OMIGA-local-w (w_i(o_i) from agent i's own observation). omiga.md Sec. 5.4."""


@dataclass
class OMIGAConfig(AlgoConfig):
    """OMIGA hyperparameters (defaults: omiga.md App. C, Tables 5–6, and the authors' code).

    Attributes:
        alpha: regularization weight α > 0 of the reverse-KL behavior regularizer (Eq. 5; App. C uses 10, or
            1–2 on some tasks). Higher stays closer to the behavior policy μ, lower is greedier.
        tau: soft-update rate τ of the target networks (0.005, Tables 5–6).
        weight_mode: ``"global"`` (OMIGA), ``"none"`` (OMIGA-w/o-w) or ``"local"`` (OMIGA-local-w), Sec. 5.4.
        mixer_hidden: hidden sizes of the weight/bias networks ((64,): 2 layers, 64 units; App. C.1).
        exp_clamp: clamp c of the exponent z to [−c, c] in Eqs. 12 and 14 (10, authors' code).
        grad_clip: max gradient norm per network (1.0, authors' code); 0 disables clipping.
    """

    alpha: float = ranged(10.0, "(0, inf)")
    tau: float = ranged(0.005, "(0, 1]")
    weight_mode: str = "global"
    mixer_hidden: tuple[int, ...] = (64,)
    exp_clamp: float = ranged(10.0, "(0, inf)")
    grad_clip: float = ranged(1.0, "[0, inf)")

    def validate(self) -> None:
        super().validate()
        if self.weight_mode not in WEIGHT_MODES:
            raise ConfigError(f"weight_mode must be one of {WEIGHT_MODES}, got {self.weight_mode!r}")


class OMIGA(Algorithm):
    """OMIGA (omiga.md Algorithm 1): linear Q/V decomposition, implicit local V_i, exp-weighted local policies.

    Networks (all batched over agents): ``q`` (:class:`LocalQ`) and its target ``q_target``; ``mixer``
    (:class:`LinearMixer`, w ≥ 0 and b) and its target ``mixer_target``; ``v`` (:class:`LocalV`); ``policy``
    (categorical or tanh-Gaussian). One Adam optimizer over all online networks (Adam is per-parameter, so this
    equals the authors' three optimizers at one learning rate); the three losses touch disjoint parameters.
    """

    name = "omiga"
    Config = OMIGAConfig
    population_fields = ("alpha",)

    def __init__(self, spec, config: OMIGAConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c = self.config
        n, hid, share = spec.n_agents, c.hidden, c.share_params
        self.q = LocalQ.for_spec(spec, hid, share)
        self.mixer = LinearMixer(spec.state_dim, n, c.mixer_hidden,
                                 local_obs_dim=spec.obs_dim if c.weight_mode == "local" else None)
        self.v = LocalV(n, spec.obs_dim, hid, share)
        self.policy = make_policy(spec, hid, share)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.mixer_target = copy.deepcopy(self.mixer).requires_grad_(False)
        self.to(self.device)
        self.opt = self.make_adam(self.q, self.mixer, self.v, self.policy)

    # ------------------------------------------------------------------ the paper's objectives
    def exponent(self, w: torch.Tensor, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``z_i = w_i (Q_i − V_i) / α`` clamped to ``[−c, c]`` (Eqs. 9, 12, 14; clamp from the authors' code).

        Shapes: all ``[B, N]``; in ``weight_mode="none"`` the weight is 1 (OMIGA-w/o-w).
        """
        a, clamp = self.config.alpha, self.config.exp_clamp
        z = (q - v) / a if self.config.weight_mode == "none" else w * (q - v) / a
        return z.clamp(-clamp, clamp)

    def v_loss_eq12(self, z: torch.Tensor, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Eq. 12: ``E_D[exp(z_i) + w_i V_i / α]`` averaged over agents, scaled by ``exp(−max z)``.

        The scale (``max z`` detached and floored at −1, as the authors' code) keeps ``exp`` finite and does not
        move the minimizer, which satisfies ``E_{a_i∼μ_i}[exp(z_i)] = 1`` (Eq. 10, Prop. 4.4).
        Shapes: ``z, w, v [B, N]`` (``w`` detached; 1 in ``weight_mode="none"``) → scalar.
        """
        if self.config.weight_mode == "none":
            w = torch.ones_like(w)
        m = z.max().detach().clamp(min=-1.0)
        return (torch.exp(z - m) + torch.exp(-m) * w * v / self.config.alpha).mean()

    @staticmethod
    def q_loss_eq13(q_tot: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Eq. 13: ``E_D[(r + γ V_tot(o') − Q_tot(o, a))²]`` with the target precomputed. Shapes ``[B]`` → scalar."""
        return (target - q_tot).pow(2).mean()

    @staticmethod
    def policy_loss_eq14(z: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
        """Eq. 14: ``−E_D[exp(z_i) log π_i(a_i|o_i)]`` with ``exp(z)`` detached. Shapes ``[B, N]`` → scalar."""
        return -(torch.exp(z).detach() * logp).mean()

    # ------------------------------------------------------------------ one update (Algorithm 1, lines 4–9)
    def compute_loss(self, batch: Batch, carry=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eqs. 12–14 on one minibatch: ``q_loss + v_loss + pi_loss`` (disjoint parameters, so one backward equals
        three) and the metrics."""
        cfg = self.config
        obs, nobs = batch["observations"], batch["next_observations"]
        state, nstate, actions = batch["states"], batch["next_states"], batch["actions"]
        B = obs.shape[0]
        local = cfg.weight_mode == "local"
        with torch.no_grad():  # targets, computed once: Q̄_i(o_i, a_i); w̄(o), w̄(o'), b̄(o') in one pass
            q_bar = self.q_target.taken(obs, actions)
            s2 = torch.cat([state, nstate], 0)
            o2 = torch.cat([obs, nobs], 0) if local else None
            w2, b2 = self.mixer_target.weights(s2, o2), self.mixer_target.bias(s2)
            w_bar, w_next, b_next = w2[:B], w2[B:], b2[B:]
        if obs.device.type == "cuda":  # launch-bound: V_i(o_i) and V_i(o'_i) in one pass
            v2 = self.v(torch.cat([obs, nobs], 0))
            v, v_next = v2[:B], v2[B:].detach()
        else:  # compute-bound: V_i(o'_i) without graph, so the backward pass skips the o' half
            v = self.v(obs)
            with torch.no_grad():
                v_next = self.v(nobs)
        # Eq. 13: Q_tot(o, a) regressed onto r + γ (1 − done) V_tot(o')
        target = batch["rewards"] + cfg.gamma * (1.0 - batch["terminals"]) * self.mixer.mix(v_next, w_next, b_next)
        q = self.q.taken(obs, actions)
        w = self.mixer.weights(state, obs if local else None)
        q_tot = self.mixer.mix(q, w, self.mixer.bias(state))
        q_loss = self.q_loss_eq13(q_tot, target)
        # Eq. 12 (V_i) and Eq. 14 (π_i) share the exponent z
        z = self.exponent(w_bar, q_bar, v)
        v_loss = self.v_loss_eq12(z, w_bar, v)
        logp = self.policy.log_prob(obs, actions, batch.get("avail_actions"))
        pi_loss = self.policy_loss_eq14(z, logp)

        metrics = {"critic_loss": q_loss.detach(), "value_loss": v_loss.detach(), "actor_loss": pi_loss.detach(),
                   "q_tot": q_tot.detach().mean(), "w_mean": w.detach().mean(),
                   "exp_z_mean": torch.exp(z).detach().mean()}
        return q_loss + v_loss + pi_loss, metrics

    def stages(self) -> list[Stage]:
        """One stage: Eqs. 12–14 in one loss, one step; Q_i with the mixer, V_i and π_i clipped each on its own
        (authors' code)."""
        return [Stage("loss", "compute_loss", ("opt",), clip=(("q", "mixer"), ("v",), ("policy",)),
                      max_norm=self.config.grad_clip)]

    def after_step(self) -> None:
        """Polyak updates of the Q_i and mixer targets (rate τ)."""
        self.soft_update(self.q_target, self.q, self.config.tau)
        self.soft_update(self.mixer_target, self.mixer, self.config.tau)

    # ------------------------------------------------------------------ acting
    def action_probs(self, obs, avail=None):
        if not self.spec.discrete:
            raise NotImplementedError("action_probs is for discrete actions; use act() for continuous ones")
        return self.policy.probs(obs, avail)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        return self.policy.act(obs, avail, deterministic, generator)
