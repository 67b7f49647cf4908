"""The offline decentralized MARL framework of Jiang & Lu (offline-decentralized-marl.md, Sec. 3).

Every agent i learns alone from its own dataset B_i = {(o_i, a_i, r, o_i', done)}: it never sees a teammate's
action. Its dataset's transition probabilities P_Bi(s'|s, a_i) were produced by the teammates' *behavior*
policies, not by their learned ones (the *transition bias*). Two loss weights modify them (Sec. 3.3):

- **value deviation** (Sec. 3.1, 3.4) ``λ_vd = 1 + (V*(s') − E[V*(s')]) / |E[V*(s')]|`` with
  ``V*(s') = Q̂_i(s', π̂_i(s'))`` and ``E[V*(s')] = (Q̂_i(s, a_i) − r) / γ`` from the target networks, clipped to
  ``[1 − ε, 1 + ε]`` (optimism level ε): next states better than expected become more likely.
- **transition normalization** (Sec. 3.2, 3.4) ``λ_tn = 1 / P_Bi(s'|s, a_i)`` (times the constant 1/z_tn): every
  observed next state becomes equally likely, which brings the agents' value estimates together. For
  continuous data it is estimated with two conditional VAEs, ``λ_tn = ρ_N(0,1)(μ¹) / ρ_N(0,1)(μ²)`` with μ¹ the
  mean encoding of G¹(a | s) and μ² that of G²(a | s, s'). For discrete (tabular) data marlkit uses the exact
  *empirical* ``1 / P̂(s'|s, a_i)`` from counts instead (:func:`empirical_lambda_tn`).

Both weights multiply the TD loss (Eq. 1) and the actor objective (Eq. 2), so they plug into any offline
single-agent learner: :mod:`marlkit.algos.mabcq`, :mod:`marlkit.algos.macql`, :mod:`marlkit.algos.matd3bc`
subclass :class:`DecentralizedLearner`, which draws every agent's minibatch independently
(:meth:`~marlkit.data.sampler.DeviceSampler.sample_decentralized`) and computes the weights. Switching both off
(``vd=False, tn=False``) gives the plain decentralized baselines (``bcq-dec``, ``cql-dec``, ``td3bc-dec``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from marlkit.algos.base import AlgoConfig, Algorithm, ConfigError, Stage, ranged
from marlkit.data.dataset import MultiAgentDataset
from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.nets.critics import LocalQ
from marlkit.nets.vae import ConditionalVAE

__all__ = [
    "VD_FORMS",
    "DecentralizedConfig",
    "DecentralizedLearner",
    "empirical_lambda_tn",
    "lambda_tn_vae",
    "lambda_vd",
    "value_consensus",
]

VD_FORMS = ("auto", "state", "outcome")


@dataclass
class DecentralizedConfig(AlgoConfig):
    """Hyperparameters of the framework shared by MABCQ, MACQL and MATD3+BC (offline-decentralized-marl.md).

    Attributes:
        vd: use value deviation λ_vd (Sec. 3.1). ``--no-vd`` switches it off.
        tn: use transition normalization λ_tn (Sec. 3.2). ``--no-tn`` switches it off.
        epsilon: optimism level ε > 0; λ_vd is clipped to [1 − ε, 1 + ε] (Sec. 3.4). App. B: 0.9 in MPE
            (the Differential Game), 0.99 in SMAC, 0.48–0.80 in multi-agent MuJoCo.
        vd_form: how E[V*(s')] is estimated. ``"state"``: the paper's Sec. 3.4 estimate (Q̂(s, a_i) − r)/γ, i.e.
            λ_vd = 1 + (γV*(s') + r − Q̂(s,a_i)) / |Q̂(s,a_i) − r|. ``"outcome"``: the convention of the matrix-game
            analysis (Sec. 5.1, Tables 3–4), where the next state is the payoff outcome and its value *includes* the
            reward: λ_vd = 1 + (y − Q̂(s,a_i)) / |Q̂(s,a_i)| with y = r + γV*(s'). ``"auto"``: ``"outcome"`` on
            one-step tasks (episode_limit 1, where every next state is terminal and the state form is 0/0),
            ``"state"`` otherwise.
        tau: Polyak rate of the target networks (0.005, as in BCQ/TD3).
        batch_size: minibatch size per agent (App. B: 100 in SMAC and the Differential Game).
        hidden: MLP sizes (App. B: (256, 256) in SMAC and the Differential Game).
        vae_latent: latent size of the conditional VAEs ("VAE hidden space" 10, App. B Table 12).
        vae_lr: learning rate of the generative models G (1e-4, Table 12).
        vae_pretrain_steps: updates of the VAEs before Q-learning starts (Algorithm 1, line 4: "fit the VAEs");
            they keep training alongside afterwards.
        tn_clip: the VAE estimate of λ_tn is clipped to [1/tn_clip, tn_clip] and divided by its minibatch mean
            (the paper's constant z_i); the paper reports λ_tn ∈ [0.2, 1.4] for almost all samples.
    """

    lr: float = 3e-4
    batch_size: int = 100
    vd: bool = True
    tn: bool = True
    epsilon: float = ranged(0.9, "(0, inf)")
    vd_form: str = "auto"
    tau: float = ranged(0.005, "(0, 1]")
    vae_latent: int = ranged(10, "[1, inf)")
    vae_lr: float = ranged(1e-4, "(0, inf)")
    vae_pretrain_steps: int = ranged(1000, "[0, inf)")
    tn_clip: float = ranged(5.0, "[1, inf)")

    def validate(self) -> None:
        super().validate()
        if self.vd_form not in VD_FORMS:
            raise ConfigError(f"vd_form must be one of {VD_FORMS}, got {self.vd_form!r}")


def lambda_vd(v_next: torch.Tensor, q_hat: torch.Tensor, rewards: torch.Tensor, terminals: torch.Tensor,
              gamma: float, epsilon: float, form: str = "state") -> torch.Tensor:
    """Value deviation λ_vd per sample, clipped to ``[1 − ε, 1 + ε]`` (offline-decentralized-marl.md Sec. 3.1, 3.4).

    Args:
        v_next: V*(s') = Q̂_i(s', π̂_i(s')) from the target networks, ``[B, N]`` (ignored where terminal).
        q_hat: Q̂_i(s, a_i) from the target networks, ``[B, N]``.
        rewards: r, ``[B, N]``.
        terminals: 1.0 where s' is terminal (V*(s') = 0), ``[B, N]``.
        gamma: discount γ.
        epsilon: optimism level ε.
        form: ``"state"``: E[V*(s')] = (Q̂ − r)/γ (Sec. 3.4); ``"outcome"``: the next-state value includes the
            reward, V(s') = y = r + γV*(s') and E[V(s')] = Q̂ (the matrix-game convention of Sec. 5.1).

    Returns:
        ``[B, N]`` weights in [1 − ε, 1 + ε]. A zero expected value (|E| < 1e-6) is treated as 1e-6, so the
        clipping decides.

    Raises:
        ValueError: for an unknown ``form``.
    """
    v_next = (1.0 - terminals) * v_next
    if form == "state":
        expected = (q_hat - rewards) / gamma
        value = v_next
    elif form == "outcome":
        expected = q_hat
        value = rewards + gamma * v_next
    else:
        raise ValueError(f"lambda_vd form must be 'state' or 'outcome', got {form!r}")
    lam = 1.0 + (value - expected) / expected.abs().clamp_min(1e-6)
    return lam.clamp(1.0 - epsilon, 1.0 + epsilon)


def lambda_tn_vae(vae1: ConditionalVAE, vae2: ConditionalVAE, obs: torch.Tensor, actions: torch.Tensor,
                  next_obs: torch.Tensor, clip: float = 5.0) -> torch.Tensor:
    """Transition normalization from two conditional VAEs (offline-decentralized-marl.md Sec. 3.4).

    ``λ_tn = ρ_N(0,1)(μ¹) / ρ_N(0,1)(μ²) = exp(½‖μ²‖² − ½‖μ¹‖²)``, where μ¹ is the mean encoding of (s, a_i) by
    G¹ = E¹(μ¹, σ¹ | s, a) and μ² that of (s, a_i, s') by G² = E²(μ², σ² | s, a, s') (condition ``[o_i, o_i']``):
    ρ(s, a, s') / ρ(s, a) ≈ P(s'|s, a_i)/‖δ_S‖, so the ratio is 1/P up to a constant. marlkit clips it to
    ``[1/clip, clip]`` and divides it by its minibatch mean per agent (the constant z_i of Sec. 3.3).

    Shapes: ``obs``, ``next_obs [B, N, obs_dim]``, ``actions [B, N, act_dim]`` → ``[B, N]`` (no gradient).
    """
    with torch.no_grad():
        mu1, _ = vae1.encode(obs, actions)
        mu2, _ = vae2.encode(torch.cat([obs, next_obs], -1), actions)
        log_ratio = 0.5 * (mu2.pow(2).sum(-1) - mu1.pow(2).sum(-1))
        lam = log_ratio.clamp(-np.log(clip), np.log(clip)).exp()
        return lam / lam.mean(0, keepdim=True)


def empirical_lambda_tn(dataset: MultiAgentDataset, decimals: int = 6) -> np.ndarray:
    """Exact transition normalization ``λ_tn = 1 / (z_tn · P̂(s'|s, a_i))`` for discrete (tabular) data.

    For every agent i, P̂ is the empirical frequency of the outcome (r, o_i', done) among the rows with the same
    (o_i, a_i) in B_i, and z_tn is the number of distinct outcomes of that (o_i, a_i) (Sec. 3.2), so that
    Σ_{s'} P̂ λ_tn = 1: every observed outcome gets the same total weight. The reward is part of the outcome
    because in a one-step game the payoff *is* the next state of the paper's analysis (Sec. 5.1). This replaces
    the VAE estimate of Sec. 3.4 (which targets continuous spaces) where counting is exact. With continuous
    observations nearly every row is unique and λ_tn ≈ 1.

    Args:
        dataset: discrete-action transitions.
        decimals: observations and rewards are rounded to this many decimals before matching.

    Returns:
        ``[T, N]`` float32 weights.

    Raises:
        ValueError: if the dataset's actions are continuous.
    """
    if not dataset.discrete:
        raise ValueError("empirical_lambda_tn needs discrete actions; continuous data uses lambda_tn_vae")
    T, N = dataset.size, dataset.n_agents
    out = np.empty((T, N), np.float32)
    shared = np.column_stack([dataset.rewards, dataset.terminals]).astype(np.float64)
    for i in range(N):  # dataset-level precomputation once in setup (not a training step)
        sa = np.column_stack([dataset.observations[:, i], dataset.actions[:, i]]).astype(np.float64).round(decimals)
        sas = np.column_stack([sa, dataset.next_observations[:, i], shared]).round(decimals)
        _, sa_id, sa_count = np.unique(sa, axis=0, return_inverse=True, return_counts=True)
        _, sas_id, sas_count = np.unique(sas, axis=0, return_inverse=True, return_counts=True)
        sa_id, sas_id = sa_id.reshape(-1), sas_id.reshape(-1)
        first = np.unique(sas_id, return_index=True)[1]  # one row per distinct outcome
        n_outcomes = np.bincount(sa_id[first], minlength=sa_count.size)
        out[:, i] = sa_count[sa_id] / (sas_count[sas_id] * n_outcomes[sa_id])
    return out


def value_consensus(values: torch.Tensor) -> torch.Tensor:
    """The disagreement ``max_i V_i(s) − min_i V_i(s)`` of the agents' value estimates at the same states
    (offline-decentralized-marl.md Sec. 5.2, Table 6): ``values [B, N]`` → ``[B]``."""
    return values.amax(-1) - values.amin(-1)


class DecentralizedLearner(Algorithm):
    """Base of the decentralized learners: independent per-agent minibatches, λ_vd·λ_tn loss weights, and the
    transition-normalization VAEs G¹, G² for continuous actions.

    Subclasses build their networks (the local critics ``q``/``q_target`` with :meth:`build_critic`), call
    :meth:`build_tn_models` (passing their own G¹ when they have one, as MABCQ does), then :meth:`finish_init`, and
    declare their stages after :meth:`vae_stages` (the critic regresses on :meth:`weighted_td_target`) and
    implement :meth:`state_values`.
    """

    name: ClassVar[str] = "decentralized"
    Config: ClassVar[type[DecentralizedConfig]] = DecentralizedConfig

    def __init__(self, spec, config: DecentralizedConfig | None = None, device="cpu"):
        super().__init__(spec, config, device)
        cfg = self.config
        self.vd_form = cfg.vd_form if cfg.vd_form != "auto" else ("outcome" if spec.episode_limit == 1 else "state")
        self.tn_vae1: ConditionalVAE | None = None
        self.tn_vae2: ConditionalVAE | None = None

    # ------------------------------------------------------------------ construction helpers
    def build_critic(self) -> None:
        """Create the local critics ``q`` (:class:`~marlkit.nets.critics.LocalQ`: heads ``Q_i(o_i, ·)`` for discrete
        actions, twin ``Q^1_i, Q^2_i(o_i, a_i)`` for continuous ones, as in BCQ/CQL-SAC/TD3) and their frozen
        copy ``q_target``."""
        cfg = self.config
        self.q = LocalQ.for_spec(self.spec, cfg.hidden, cfg.share_params, ensemble=1 if self.spec.discrete else 2)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)

    def build_tn_models(self, vae1: ConditionalVAE | None = None) -> None:
        """Create G¹ (condition o_i, target a_i) and G² (condition [o_i, o_i'], target a_i) when λ_tn is on and
        actions are continuous. ``vae1`` reuses an existing G¹ (MABCQ's generative model)."""
        spec, cfg = self.spec, self.config
        if spec.discrete or not cfg.tn:
            return
        self.tn_vae1 = vae1 if vae1 is not None else ConditionalVAE(
            spec.n_agents, spec.obs_dim, spec.act_dim, cfg.vae_latent, cfg.hidden, cfg.share_params)
        self.tn_vae2 = ConditionalVAE(spec.n_agents, 2 * spec.obs_dim, spec.act_dim, cfg.vae_latent, cfg.hidden,
                                      cfg.share_params)

    def generative_models(self) -> list[torch.nn.Module]:
        """The VAEs trained by :meth:`vae_loss`: G¹ (``tn_vae1``, or a subclass's own generative model in
        ``self.vae``) and G² (``tn_vae2``)."""
        g1 = self.tn_vae1 if self.tn_vae1 is not None else getattr(self, "vae", None)
        return [m for m in (g1, self.tn_vae2) if m is not None]

    def finish_init(self) -> None:
        """Move to the device and create the generative models' optimizer (``vae_opt``) if there are any."""
        self.to(self.device)
        models = self.generative_models()
        self.vae_opt = self.make_adam(*models, lr=self.config.vae_lr) if models else None

    # ------------------------------------------------------------------ data
    VAE_STAGE = Stage("vae", "vae_stage_loss", ("vae_opt",))
    """The generative models' update (G¹, G²), the first stage of every update when there are VAEs."""

    def prepare(self, sampler: DeviceSampler) -> None:
        """Attach the empirical λ_tn column (discrete data) or pre-fit the VAEs (Algorithm 1, line 4)."""
        if self.config.tn and self.spec.discrete and "lambda_tn" not in sampler.tensors:
            sampler.add_field("lambda_tn", torch.from_numpy(empirical_lambda_tn(sampler.dataset)), per_agent=True)
        if self.vae_opt is not None:
            plan = self.plan(self.VAE_STAGE)
            for _ in range(self.config.vae_pretrain_steps):
                self.step_stage(plan, self.vae_loss(sampler.sample_decentralized(self.config.batch_size)))

    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """Independently drawn per-agent minibatches (agent i sees only B_i), plus the VAEs' reparameterisation
        draws ``noise/g1``, ``noise/g2`` ``[B, N, latent]`` when there are VAEs."""
        batch = sampler.sample_decentralized(self.config.batch_size)
        rows = batch["actions"].shape[:2]
        return self.draw(batch, **{key: ("normal", (*rows, model.latent_dim))
                                   for key, model in zip(("g1", "g2"), self.generative_models())})

    def vae_stages(self) -> list[Stage]:
        """``[VAE_STAGE]`` when the algorithm has generative models, else ``[]``."""
        return [self.VAE_STAGE] if self.vae_opt is not None else []

    # ------------------------------------------------------------------ losses
    def vae_loss(self, batch: Batch) -> torch.Tensor:
        """Sum of the ELBO losses of the generative models on this batch (scalar); the reparameterisation draws are
        ``noise/g1``, ``noise/g2`` when the batch has them (else drawn from the global RNG: pre-training)."""
        obs, act = batch["observations"], batch["actions"]
        models = self.generative_models()
        loss = models[0].loss(obs, act, eps=batch.get("noise/g1"))
        if self.tn_vae2 is not None:
            loss = loss + self.tn_vae2.loss(torch.cat([obs, batch["next_observations"]], -1), act,
                                            eps=batch.get("noise/g2"))
        return loss

    def vae_stage_loss(self, batch: Batch, carry: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = self.vae_loss(batch)
        return loss, {"vae_loss": loss.detach()}

    def weighted_td_target(self, batch: Batch, v_next: torch.Tensor, q_hat: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Target and weights of the critic loss Eq. (1) ``E[λ_tn λ_vd (Q_i(s, a_i) − y_i)²]`` (no gradient).

        ``y_i = r + γ (1 − d) V*(s')``; the weights λ_tn·λ_vd and their metrics come from :meth:`loss_weights`.

        Args:
            batch: a decentralized batch (``rewards``/``terminals`` ``[B, N]``).
            v_next: V*(s') = Q̂_i(s', π̂_i(s')) of the algorithm's target policy, ``[B, N]``.
            q_hat: Q̂_i(s, a_i) from the target critics, ``[B, N]``.

        Returns:
            ``(y [B, N], weights [B, N], metrics)``.
        """
        with torch.no_grad():
            y = batch["rewards"] + self.config.gamma * (1.0 - batch["terminals"]) * v_next
            w, metrics = self.loss_weights(batch, v_next, q_hat)
        return y, w, metrics

    def loss_weights(self, batch: Batch, v_next: torch.Tensor, q_hat: torch.Tensor
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weights λ_tn·λ_vd of Eqs. (1)–(2), ``[B, N]`` without gradient, plus their batch means as metrics.

        Args:
            batch: a decentralized batch (``rewards``/``terminals`` ``[B, N]``).
            v_next: V*(s') = Q̂_i(s', π̂_i(s')), ``[B, N]``.
            q_hat: Q̂_i(s, a_i), ``[B, N]``.
        """
        cfg = self.config
        w = torch.ones_like(q_hat)
        metrics = {}
        with torch.no_grad():
            if cfg.vd:
                lvd = lambda_vd(v_next, q_hat, batch["rewards"], batch["terminals"], cfg.gamma, cfg.epsilon,
                                self.vd_form)
                w = w * lvd
                metrics["lambda_vd"] = lvd.mean()
            if cfg.tn:
                if self.spec.discrete:
                    ltn = batch["lambda_tn"]
                else:
                    ltn = lambda_tn_vae(self.tn_vae1, self.tn_vae2, batch["observations"], batch["actions"],
                                        batch["next_observations"], cfg.tn_clip)
                w = w * ltn
                metrics["lambda_tn_max"] = ltn.max()
        return w, metrics

    # ------------------------------------------------------------------ analysis
    def state_values(self, obs: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
        """Each agent's value of its learned action V_i(o_i) = Q_i(o_i, π_i(o_i)), ``[B, N]``."""
        raise NotImplementedError
