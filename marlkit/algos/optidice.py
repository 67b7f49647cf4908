"""OptiDICE: offline policy optimisation via stationary distribution correction estimation (Lee, Jeon, Lee,
Pineau & Kim, ICML 2021), extended to cooperative multi-agent tasks as comadice.md's baseline. Discrete and
continuous actions.

Which multi-agent extension: comadice.md (Sec. 6.2) evaluates "(vii) OptDICE - a naive extension of the OptDICE
algorithm [Lee et al. (2021)] to multi-agent settings where the global value function are directly learned
without value factorization", and contrasts it with ComaDICE, which mixes local values. marlkit therefore
implements the *centralised* DICE on the joint action: one ν(s) on the global state, one occupancy ratio
``w(s, a)`` of the joint action, and decentralised policies π_i(a_i|o_i) extracted from it (as the multi-agent
OptiDICE of the AlberDICE authors' code). A factorised variant would be ComaDICE (``marlkit.algos.comadice``).

Objective (Lee et al. 2021, Eq. 4–8): ``max_w E_{d^D}[w r] − α E_{d^D}[f(w)]`` under the Bellman flow
constraint; its dual in ν(s) is

    min_ν (1 − γ) E_{p₀}[ν(s₀)] + E_{d^D}[α f*(e_ν(s, a) / α)],      e_ν(s, a) = r(s, a) + γ (1 − d) ν(s') − ν(s)

(:meth:`OptiDICE.value_loss`, :func:`~marlkit.algos.fdiv.dual_loss`), with optimal ratios
``w*(s, a) = max(0, (f')⁻¹(e_ν / α))``. The paper adds the normalisation ``E_{d^D}[w] = 1`` with a multiplier λ
(the official ``gendice_v``) together with absorbing states after terminal transitions (``absorbing_state``);
without absorbing states that normalised dual is unbounded below on episodic data (one step of a matrix game:
``L = g(ν + λ) + (ν + λ) − γ ν``, which falls without bound as ν grows and λ falls), so marlkit solves the
unnormalised dual above, as ComaDICE's Eq. 11 does: the ratios then carry the flow's own mass (``E_D[w] = 1 − γ``
in one-step tasks). One-step tasks give the closed form :func:`marlkit.exact.optidice.optidice_solution`.

Policy extraction (Lee et al. 2021, Sec. 4.2), ``extraction``:

- ``"wbc"`` (weighted BC, default for discrete actions): ``max E_{d^D}[w* Σ_i log π_i(a_i|o_i)]``
  (:func:`~marlkit.algos.common.weighted_bc_loss`; the maximiser is ρ*'s per-agent marginal);
- ``"iproj"`` (information projection, the paper's default, continuous actions):
  ``min_π KL(d^D(s) π(a|s) ‖ d^D(s, a) w*(s, a))`` with π = Π_i π_i, i.e.
  ``max E_{s ~ D, a ~ π}[log w_ψ(s, a)] − Σ_i KL(π_i(·|o_i) ‖ μ_i(·|o_i))``, where ``w_ψ`` comes from an e-network
  ``e_ψ(s, a) ≈ e_ν(s, a)`` (mean-squared error, the official ``e_loss_type='mse'`` option) that evaluates the
  policy's own actions, and μ_i are behavior-cloned data policies. Reparameterised samples of π come from
  :meth:`OptiDICE.sample` (pure losses).

Work per update: value (ν, Eq. 8), then e-network and data policies (``iproj`` only), then the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from marlkit.algos.base import AlgoConfig, Algorithm, ConfigError, Stage, ranged
from marlkit.algos.common import require_initial_states, weighted_bc_loss
from marlkit.algos.fdiv import F_DIVERGENCES, dual_loss, get_fdiv, occupancy_ratio
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.critics import LocalQ, LocalV
from marlkit.nets.policies import make_policy

__all__ = ["OptiDICE", "OptiDICEConfig"]


@dataclass
class OptiDICEConfig(AlgoConfig):
    """OptiDICE hyperparameters (defaults: the official code's ``default_config.py``, github.com/secury/optidice,
    Lee et al. 2021 App.).

    Attributes:
        lr: Adam learning rate of every network (3e-4, official).
        batch_size: minibatch size (512, official).
        alpha: DICE regularisation weight α > 0 (1.0, official default; the paper tunes it per task).
        f: ``"soft-chi2"`` (official default, its ``elu`` divergence), ``"chi2"`` or ``"kl"``.
        extraction: ``"auto"`` (weighted BC for discrete actions, I-projection for continuous ones), ``"wbc"`` or
            ``"iproj"`` (continuous actions only: the I-projection needs ``log w`` of the policy's own joint
            actions, which the e-network gives for continuous actions; the official code is single-agent
            continuous, and the AlberDICE authors' multi-agent discrete OptiDICE extracts by weighted BC).
        normalize_weights: divide the weighted-BC loss by the minibatch mean of w* (same minimiser; marlkit).
    """

    lr: float = 3e-4
    batch_size: int = 512
    alpha: float = ranged(1.0, "(0, inf)")
    f: str = "soft-chi2"
    extraction: str = "auto"
    normalize_weights: bool = True

    def validate(self) -> None:
        super().validate()
        if self.f not in F_DIVERGENCES:
            raise ConfigError(f"f must be one of {list(F_DIVERGENCES)}, got {self.f!r}")
        if self.extraction not in ("auto", "wbc", "iproj"):
            raise ConfigError(f"extraction must be 'auto', 'wbc' or 'iproj', got {self.extraction!r}")


class OptiDICE(Algorithm):
    """OptiDICE (Lee et al. 2021), centralised on the joint action as comadice.md's multi-agent baseline."""

    name = "optidice"
    Config = OptiDICEConfig

    def __init__(self, spec, config: OptiDICEConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        c = self.config
        self.fdiv = get_fdiv(c.f)
        self.extraction = c.extraction if c.extraction != "auto" else ("wbc" if spec.discrete else "iproj")
        if self.extraction == "iproj" and spec.discrete:
            raise ConfigError("optidice: extraction='iproj' needs continuous actions (use 'wbc' for discrete ones)")
        self.nu = LocalV(1, spec.state_dim, c.hidden)  # ν(s), one network on the global state
        self.policy = make_policy(spec, c.hidden, c.share_params)
        if self.extraction == "iproj":
            n_act = spec.n_agents * spec.act_dim
            self.e_net = LocalQ(1, spec.state_dim, act_dim=n_act, hidden=c.hidden)  # e_ψ(s, a), joint action
            self.mu = make_policy(spec, c.hidden, c.share_params)  # data policies μ_i
        self.to(self.device)
        self.value_opt = self.make_adam(self.nu)
        self.actor_opt = self.make_adam(self.policy)
        if self.extraction == "iproj":
            self.critic_opt = self.make_adam(self.e_net)
            self.behavior_opt = self.make_adam(self.mu)

    # ------------------------------------------------------------------ training
    def prepare(self, sampler: DeviceSampler) -> None:
        """Check that the dataset marks initial states (the (1 − γ) E[ν(s₀)] term).

        Raises:
            DatasetError: if ``episode_starts`` is never True.
        """
        require_initial_states(sampler, "OptiDICE", "(1-gamma) E[nu(s0)] term")

    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """Transitions, initial states (``init/states``) and, for the I-projection, the policy's standard-normal
        draws ``noise/policy [B, N, act_dim]``."""
        initial = sampler.sample_initial(self.config.batch_size)
        batch = sampler.sample(self.config.batch_size)
        batch["init/states"] = initial["states"]
        if self.extraction == "iproj":
            self.draw(batch, policy=("normal", batch["actions"].shape))
        return batch

    def stages(self) -> list[Stage]:
        """ν (Eq. 8); e-network and data policies (``iproj``); the policy."""
        stages = [Stage("value", "value_loss", ("value_opt",))]
        if self.extraction == "iproj":
            stages.append(Stage("critic", "critic_loss", ("critic_opt", "behavior_opt")))
        return stages + [Stage("actor", "actor_loss", ("actor_opt",))]

    def _nu(self, states: torch.Tensor) -> torch.Tensor:
        return self.nu(states.unsqueeze(-2)).squeeze(-1)

    def advantage(self, batch: Batch) -> torch.Tensor:
        """``e_ν(s, a) = r + γ (1 − d) ν(s') − ν(s)`` ``[B]`` and ``ν(s₀)`` ``[B0]``, one ν call (with gradient)."""
        b = batch["states"].shape[0]
        nus = self._nu(torch.cat([batch["states"], batch["next_states"], batch["init/states"]]))
        nu, nu_next, nu0 = nus.split([b, b, nus.shape[0] - 2 * b])
        e = batch["rewards"] + self.config.gamma * (1.0 - batch["terminals"]) * nu_next - nu
        return e, nu0

    def value_loss(self, batch: Batch, carry: dict):
        """``(1 − γ) E[ν(s₀)] + E_D[α f*(e_ν/α)]`` (Lee et al. 2021, Eq. 8, unnormalised; see the module
        docstring), over ν. Passes ``e_ν`` on (detached)."""
        c = self.config
        e, nu0 = self.advantage(batch)
        loss = dual_loss(nu0, e, c.alpha, self.fdiv, c.gamma)
        w = occupancy_ratio(e.detach(), c.alpha, self.fdiv)
        return loss, {"value_loss": loss.detach(), "w_mean": w.mean(), "w_max": w.max()}, {"a": e.detach()}

    def _joint(self, actions: torch.Tensor) -> torch.Tensor:
        return actions.reshape(actions.shape[0], 1, -1)

    def critic_loss(self, batch: Batch, carry: dict):
        """``iproj``: e_ψ(s, a) ≈ e_ν(s, a) (MSE) and BC of the data policies μ_i."""
        states = batch["states"].unsqueeze(-2)
        pred = self.e_net(states, self._joint(batch["actions"])).squeeze(-1)
        e_loss = (pred - carry["a"]).pow(2).mean()
        bc = -self.mu.log_prob(batch["observations"], batch["actions"]).mean()
        return e_loss + bc, {"critic_loss": e_loss.detach(), "behavior_loss": bc.detach()}

    def actor_loss(self, batch: Batch, carry: dict):
        """``wbc``: weighted BC with w*; ``iproj``: ``−E[log w_ψ(s, a) − Σ_i (log π_i − log μ_i)(a_i)]`` on
        reparameterised ``a ~ π``."""
        c = self.config
        if self.extraction == "wbc":
            w = occupancy_ratio(carry["a"], c.alpha, self.fdiv)
            loss = weighted_bc_loss(self.policy, batch, w, c.normalize_weights)
            return loss, {"actor_loss": loss.detach()}
        obs = batch["observations"]
        act, logp = self.policy.rsample(obs, eps=batch["noise/policy"])
        e = self.e_net(batch["states"].unsqueeze(-2), self._joint(act)).squeeze(-1)
        log_w = self.fdiv.log_ratio(e / c.alpha)
        kl = (logp - self.mu.log_prob(obs, act)).sum(-1)
        loss = -(log_w - kl).mean()
        return loss, {"actor_loss": loss.detach(), "kl": kl.detach().mean()}

    # ------------------------------------------------------------------ acting
    def action_probs(self, obs, avail=None):
        if not self.spec.discrete:
            raise NotImplementedError("action_probs is for discrete actions; use act")
        return self.policy.probs(obs, avail)

    @torch.no_grad()
    def act(self, obs, avail=None, deterministic=True, generator=None):
        return self.policy.act(obs, avail, deterministic, generator)
