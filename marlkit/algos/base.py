"""What every algorithm shares: a validated config dataclass, the :class:`Algorithm` interface and the one update
contract, :class:`Stage`.

An algorithm is an ``nn.Module`` holding all its networks (targets and mixers included) built for one
:class:`~marlkit.envs.base.EnvSpec`, and declares its update as an ordered list of stages, each a pure loss of
the minibatch with the optimizers it steps (d3rlpy's per-phase updates; CORL's order of updates). The one training
loop (:mod:`marlkit.train`) calls :meth:`Algorithm.setup` once with the dataset, then
:meth:`Algorithm.train_step`: :meth:`Algorithm.sample` draws the minibatch and every random number the update
needs, :func:`run_stages` runs the stages. Evaluation calls :meth:`Algorithm.act` / :meth:`Algorithm.action_probs`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from marlkit.data.sampler import Batch, DeviceSampler
from marlkit.envs.base import EnvSpec

__all__ = ["AlgoConfig", "Algorithm", "ConfigError", "Interval", "Stage", "StagePlan", "clip_grad_norms_",
           "declared_range", "ranged", "run_stages", "set_grads"]


_COMPILED: dict[tuple, Any] = {}
"""torch.compile'd ``compute_loss`` functions by (class, backend, mode); kept outside instances so copies of an
algorithm (thread calibration, checkpoints) never share a compiled bound method."""


@torch.no_grad()
def clip_grad_norms_(groups: list[list[nn.Parameter]], max_norm: float) -> None:
    """``nn.utils.clip_grad_norm_(group, max_norm)`` for every group, with one ``_foreach_norm`` over all of them.

    Each group is clipped on its own (same per-tensor norms, total norm and coefficient
    ``min(1, max_norm / (‖g‖ + 1e-6))`` as ``clip_grad_norm_``); only the per-call overhead is shared.
    Parameters without a gradient are skipped.
    """
    grads = [[p.grad for p in group if p.grad is not None] for group in groups]
    flat = [g for gs in grads for g in gs]
    if not flat:
        return
    norms = torch._foreach_norm(flat)
    coefs: list[torch.Tensor] = []
    start = 0
    for gs in grads:
        if gs:
            total = torch.linalg.vector_norm(torch.stack(norms[start:start + len(gs)]))
            coefs += [torch.clamp(max_norm / (total + 1e-6), max=1.0)] * len(gs)
            start += len(gs)
    torch._foreach_mul_(flat, coefs)


class ConfigError(ValueError):
    """A hyperparameter out of its valid range or of the wrong type."""


@dataclass(frozen=True)
class Interval:
    """A valid range of a config field, written as in mathematics: ``"(0, 1]"``, ``"[0, 1)"``, ``"[1, inf)"``.

    Attributes:
        low, high: the bounds (``-inf``/``inf`` for none).
        low_closed, high_closed: whether a bound belongs to the range (``[``/``]``) or not (``(``/``)``).
    """

    low: float
    high: float
    low_closed: bool
    high_closed: bool

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Read ``"(low, high]"``-style text.

        Raises:
            ValueError: for text that is not an interval with ``low <= high``.
        """
        m = _INTERVAL.fullmatch(text) if isinstance(text, str) else None
        try:
            low, high = float(m.group(2)), float(m.group(3))
        except (AttributeError, ValueError):
            raise ValueError(f"cannot read the range {text!r}: write e.g. (0, 1] or [1, inf)") from None
        if math.isnan(low) or math.isnan(high) or low > high:
            raise ValueError(f"the range {text!r} is empty")
        return cls(low, high, m.group(1) == "[", m.group(4) == "]")

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below

    def __str__(self) -> str:
        def bound(v: float) -> str:
            return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}"

        return (f"{'[' if self.low_closed else '('}{bound(self.low)}, "
                f"{bound(self.high)}{']' if self.high_closed else ')'}")

    def describe(self, integer: bool = False) -> str:
        """What a value of the range is, in words where there are some: ``positive, in (0, inf)``, ``a
        non-negative integer, in [0, inf)``, ``in [0, 1)``."""
        words = ""
        if self.high == math.inf:
            if integer and ((self.low == 1 and self.low_closed) or (self.low == 0 and not self.low_closed)):
                words = "a positive integer"
            elif integer and self.low == 0 and self.low_closed:
                words = "a non-negative integer"
            elif self.low == 0:
                words = "non-negative" if self.low_closed else "positive"
        return f"{words}, in {self}" if words else f"in {self}"


_INTERVAL = re.compile(r"\s*([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])\s*")


def ranged(default: Any, interval: str) -> Any:
    """A config field with default ``default`` whose valid range is ``interval`` (e.g. ``"(0, 1]"``), checked by
    :meth:`AlgoConfig.validate`; a subclass that re-declares the field with a new default keeps the range.

    Raises:
        ValueError: for an ``interval`` that cannot be read (when the config class is defined).
    """
    Interval.parse(interval)
    return dataclasses.field(default=default, metadata={"range": interval})


def declared_range(cls: type, name: str) -> Interval | None:
    """The range of field ``name`` declared by ``cls`` or the nearest base class that declares one."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and "range" in f.metadata:
            return Interval.parse(f.metadata["range"])
    return None


@dataclass
class AlgoConfig:
    """Hyperparameters common to all algorithms (defaults: omiga.md App. C, Tables 5–6).

    A numeric field may declare its valid range with :func:`ranged` (``tau: float = ranged(0.005, "(0, 1]")``);
    :meth:`validate` checks every declared range with one message format, so a subclass's own ``validate`` keeps
    only what a range cannot say (names from a fixed set, relations between fields).

    Attributes:
        lr: Adam learning rate (5e-4).
        batch_size: minibatch size B (128).
        gamma: discount γ in [0, 1) (0.99).
        hidden: hidden layer sizes; ``(256, 256)`` is a 3-layer MLP.
        share_params: one network for all agents with one-hot agent ids (official OMIGA code) instead of
            separate per-agent parameters.
    """

    lr: float = ranged(5e-4, "(0, inf)")
    batch_size: int = ranged(128, "[1, inf)")
    gamma: float = ranged(0.99, "[0, 1)")
    hidden: tuple[int, ...] = (256, 256)
    share_params: bool = False

    def validate(self) -> None:
        """Check types, then declared ranges. Fields typed ``tuple[int, ...]`` (``hidden``, ``mixer_hidden``, ...)
        are layer sizes: non-empty, positive integers; ``float | None`` fields are finite numbers or None.

        Raises:
            ConfigError: naming the field, its value and the valid type or range, e.g. ``tau must be in (0, 1],
                got 2.0`` or ``batch_size must be a positive integer, in [1, inf), got 0``.
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = str(f.type)
            number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            if kind == "float" and not number:
                raise ConfigError(f"{f.name} must be a finite number, got {value!r}")
            if kind == "float | None" and value is not None and not number:
                raise ConfigError(f"{f.name} must be a finite number or None, got {value!r}")
            if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{f.name} must be an integer, got {value!r}")
            if kind == "bool" and not isinstance(value, bool):
                raise ConfigError(f"{f.name} must be true/false, got {value!r}")
            if kind == "tuple[int, ...]" and (not value or any((not isinstance(h, int)) or h <= 0 for h in value)):
                raise ConfigError(f"{f.name} must be a non-empty tuple of positive integers, got {value!r}")
            interval = declared_range(type(self), f.name)
            if interval is not None and value is not None and value not in interval:
                raise ConfigError(f"{f.name} must be {interval.describe(kind == 'int')}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of the fields (tuples such as ``hidden`` become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "AlgoConfig":
        """Build a config from a dict, converting lists to tuples; unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ConfigError(f"unknown hyperparameter(s) {sorted(unknown)} for {cls.__name__}; valid: {sorted(names)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        cfg = cls(**values)
        cfg.validate()
        return cfg


def set_grads(params: list[nn.Parameter], grads) -> None:
    """``p.grad = g`` in the parameter's memory layout (``torch.autograd.grad`` may return transposed strides, e.g.
    under ``vmap``, which the fused optimizers and in-place clipping must not see); ``None`` stays ``None``."""
    for p, g in zip(params, grads):
        p.grad = g if g is None or g.stride() == p.stride() else g.contiguous()


def run_stages(algo: "Algorithm", batch: Batch, loss_fn, step_fn) -> dict[str, torch.Tensor]:
    """The one update sequence of every algorithm (single runs and populations alike).

    ``before_update``; then for every stage that runs at this update: ``loss_fn(stage, batch, carry)`` →
    ``(loss, metrics, carry_out)``, ``step_fn(stage, loss)`` (gradients, clipping, optimizer step), the stage's
    ``after`` hook; finally ``after_step``. Detached ``carry_out`` tensors reach the later stages' losses.
    """
    step = algo._updates
    algo.before_update(step)
    carry: dict[str, torch.Tensor] = {}
    metrics: dict[str, torch.Tensor] = {}
    for stage in algo.update_stages:
        if not stage.runs_at(step):
            metrics.update(algo._stage_metrics.get(stage.name) or
                           {k: torch.zeros_like(algo.num_updates, dtype=torch.float32) for k in stage.metrics})
            continue
        loss, stage_metrics, out = loss_fn(stage, batch, carry)
        step_fn(stage, loss)
        carry.update({k: v.detach() for k, v in out.items()})
        metrics.update(stage_metrics)
        if stage.every > 1:
            algo._stage_metrics[stage.name] = {k: v.detach().clone() for k, v in stage_metrics.items()}
        if stage.after:
            getattr(algo, stage.after)()
    algo.after_step()
    algo._updates += 1
    return metrics


@dataclass(frozen=True)
class Stage:
    """One phase of an update: a pure loss, the optimizers it steps, its clip groups and how often it runs.

    The base :meth:`Algorithm.update` runs an algorithm's stages in order (the paper's order of updates); for each
    one: loss → gradients of the stepped parameters → per-group norm clipping → optimizer steps → ``after``.

    Attributes:
        name: the stage's name (``"critic"``, ``"actor"``, ...; the profiler reports it).
        loss: name of the loss method, ``loss(batch, carry) -> (loss, metrics)`` or ``(loss, metrics, carry_out)``:
            a pure function of the parameters, ``batch`` (random draws included, see :meth:`Algorithm.sample`) and
            ``carry`` (detached tensors that earlier stages of the same update returned, where that saves a
            forward pass). It must not change parameters, buffers or optimizer state, nor draw random numbers.
        optimizers: attribute names of the optimizers it steps (their parameters receive its gradients).
        clip: clip groups, each a tuple of module attribute names whose parameters are norm-clipped together.
        max_norm: the clip norm of every group (0 disables clipping).
        every: run on updates ``every, 2·every, ...`` only (TD3's delayed actor: ``every=policy_freq``); on the
            other updates its metrics keep their last values (0 before its first run).
        metrics: with ``every > 1``, the names of the metrics it reports.
        after: name of a method run after its optimizer step (e.g. the Polyak updates of TD3's targets, which
            follow the delayed actor).

    Raises:
        ConfigError: on ``every < 1``, a negative ``max_norm``, or ``every > 1`` without ``metrics``.
    """

    name: str
    loss: str
    optimizers: tuple[str, ...]
    clip: tuple[tuple[str, ...], ...] = ()
    max_norm: float = 0.0
    every: int = 1
    metrics: tuple[str, ...] = ()
    after: str | None = None

    def __post_init__(self):
        if self.every < 1:
            raise ConfigError(f"stage {self.name!r}: every must be a positive integer, got {self.every}")
        if self.max_norm < 0:
            raise ConfigError(f"stage {self.name!r}: max_norm must be >= 0, got {self.max_norm}")
        if self.every > 1 and not self.metrics:
            raise ConfigError(f"stage {self.name!r} runs every {self.every} updates and must name its metrics")

    def runs_at(self, step: int) -> bool:
        """Whether the stage runs in update ``step`` (0-based count of the updates done before it)."""
        return (step + 1) % self.every == 0


@dataclass
class StagePlan:
    """A stage resolved on one algorithm object: its optimizers, the parameters they step and the clip groups."""

    stage: Stage
    optimizers: list[torch.optim.Optimizer]
    params: list[nn.Parameter]
    clip_groups: list[list[nn.Parameter]]


class Algorithm(nn.Module):
    """Base class of every marlkit algorithm: networks, optimizers and an update declared as :class:`Stage` s.

    Subclasses define ``name``, ``Config``, build their networks and optimizers in ``__init__``, declare their
    update in :meth:`stages` (default: one stage ``compute_loss`` stepping every optimizer), and implement
    :meth:`action_probs` (discrete) or :meth:`act`. Optional hooks: :meth:`prepare` (dataset-level
    precomputation and pre-training), :meth:`sample` (what a minibatch holds, random draws included),
    :meth:`before_update` and :meth:`after_step`. Everything that consumes the contract — the training loop,
    vectorized populations (:mod:`marlkit.population`), ``torch.compile`` per stage, the phase profiler,
    checkpoints — then works for every algorithm.

    Randomness: the losses are pure; an algorithm draws what it needs in :meth:`sample` from ``self.generator``
    (on the training device), seeded in :meth:`setup` from the global torch RNG, so a run with a fixed seed draws
    the same numbers as before the draws moved out of the losses, and a population member draws what the single
    run with its seed draws.

    Args:
        spec: the task's shapes.
        config: hyperparameters (validated here).
        device: training device.

    Raises:
        ConfigError: for a config of the wrong class or an action space the algorithm does not support.
    """

    name: ClassVar[str] = "base"
    Config: ClassVar[type[AlgoConfig]] = AlgoConfig
    supports_discrete: ClassVar[bool] = True
    supports_continuous: ClassVar[bool] = True
    population_fields: ClassVar[tuple[str, ...]] = ()
    """Float config fields that may differ between members of a vectorized population (e.g. ``("alpha",)``):
    they must be used only inside the stage losses (see :mod:`marlkit.population`)."""

    def __init__(self, spec: EnvSpec, config: AlgoConfig | None = None, device: str | torch.device = "cpu"):
        super().__init__()
        config = config or self.Config()
        if not isinstance(config, self.Config):
            raise ConfigError(f"{type(self).__name__} needs a {self.Config.__name__}, got {type(config).__name__}")
        config.validate()
        if spec.discrete and not self.supports_discrete:
            raise ConfigError(f"{self.name} does not support discrete actions (env {spec.name!r})")
        if not spec.discrete and not self.supports_continuous:
            raise ConfigError(f"{self.name} does not support continuous actions (env {spec.name!r})")
        self.spec, self.config, self.device = spec, config, torch.device(device)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.generator = torch.Generator(device=self.device)
        # host-side draws (permutations): the same generator on CPU, so one stream serves both
        self.host_generator = self.generator if self.device.type == "cpu" else torch.Generator()
        self._updates = 0  # updates done (python int: stage schedules need no device sync)
        self._stage_metrics: dict[str, dict[str, torch.Tensor]] = {}
        self._plans: dict[str, StagePlan] | None = None
        self._compile_opts: tuple[str, str | None] | None = None

    # ------------------------------------------------------------------ the update contract
    def stages(self) -> list[Stage]:
        """The update's stages in order (default: ``compute_loss`` stepping every optimizer, no clipping)."""
        return [Stage("loss", "compute_loss", tuple(self.optimizers()))]

    def compute_loss(self, batch: Batch, carry: dict | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of a single-stage update and its metrics (scalar tensors, not synced to the host)."""
        raise NotImplementedError(f"{self.name} declares its update in stages(), not compute_loss()")

    def forward(self, batch: Batch, carry: dict | None = None, stage: str = "loss"):
        """A stage's loss (``stage``: its name; used by ``functional_call`` in populations and compilation)."""
        return getattr(self, self._stage(stage).loss)(batch, carry or {})

    def _stage(self, name: str) -> Stage:
        for st in self.update_stages:
            if st.name == name:
                return st
        raise KeyError(f"{self.name} has no stage {name!r}; stages: {[s.name for s in self.update_stages]}")

    @property
    def update_stages(self) -> list[Stage]:
        """:meth:`stages`, computed once per object."""
        if "_stage_list" not in self.__dict__:
            self.__dict__["_stage_list"] = self.stages()
        return self.__dict__["_stage_list"]

    def plan(self, stage: Stage) -> StagePlan:
        """The stage's optimizers, stepped parameters and clip groups on this object (cached; call
        :meth:`reset_plans` after replacing parameters, as :class:`~marlkit.population.Population` does)."""
        if self._plans is None:
            self._plans = {}
        if stage.name not in self._plans:
            opts = [getattr(self, n) for n in stage.optimizers]
            params = [p for opt in opts for g in opt.param_groups for p in g["params"] if p.requires_grad]
            groups = [[p for m in group for p in self.get_submodule(m).parameters() if p.requires_grad]
                      for group in stage.clip]
            self._plans[stage.name] = StagePlan(stage, opts, params, groups)
        return self._plans[stage.name]

    def reset_plans(self) -> None:
        """Forget the cached stage plans (after parameters were replaced)."""
        self._plans = None

    def stage_loss(self, stage: Stage, batch: Batch, carry: dict):
        """``(loss, metrics, carry_out)`` of ``stage`` (compiled when :meth:`enable_compile` was called)."""
        fn = getattr(type(self), stage.loss)
        if self._compile_opts is not None:
            fn = self._compiled(stage, fn)
        out = fn(self, batch, carry)
        return out if len(out) == 3 else (*out, {})

    @staticmethod
    def step_stage(plan: StagePlan, loss: torch.Tensor, clip=clip_grad_norms_) -> None:
        """Gradients of ``loss`` for the stage's parameters only, per-group clipping (``clip(groups, max_norm)``;
        a population clips every run's slice on its own), one step of its optimizers."""
        if not plan.params:  # a metrics-only stage (e.g. InSPO's temperature without auto-α)
            return
        set_grads(plan.params, torch.autograd.grad(loss, plan.params, allow_unused=True))
        if plan.stage.max_norm > 0 and plan.clip_groups:
            clip(plan.clip_groups, plan.stage.max_norm)
        for opt in plan.optimizers:
            opt.step()

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One update on ``batch`` (from :meth:`sample`): every stage in order, then :meth:`after_step`.

        Returns the stages' metrics (scalar tensors, not synced to the host).
        """
        return run_stages(self, batch, self.stage_loss, lambda st, loss: self.step_stage(self.plan(st), loss))

    # ------------------------------------------------------------------ hooks
    def setup(self, sampler: DeviceSampler) -> None:
        """Called once before training: :meth:`prepare`, then ``generator`` takes the global RNG's state."""
        self.prepare(sampler)
        if self.device.type == "cuda":
            self.generator.set_state(torch.cuda.get_rng_state(self.device))
            self.host_generator.set_state(torch.get_rng_state())
        else:
            self.generator.set_state(torch.get_rng_state())

    def prepare(self, sampler: DeviceSampler) -> None:
        """Dataset-level precomputation or pre-training before the first update (may use the global RNG)."""

    def sample(self, sampler: DeviceSampler, step: int) -> Batch:
        """The minibatch of update ``step``: ``batch_size`` uniform transitions, plus the update's random draws
        (from ``self.generator``) where an algorithm needs them."""
        return sampler.sample(self.config.batch_size)

    def draw(self, batch: Batch, **draws: tuple[str, tuple[int, ...]]) -> Batch:
        """Add the update's random draws to ``batch`` as ``noise/<name>`` tensors, drawn from ``self.generator`` in
        the order given: each value is ``(kind, shape)`` with kind ``"normal"`` (standard normal), ``"uniform"``
        ([0, 1)) or ``"uniform64"`` ([0, 1), float64: inverse-CDF sampling). Returns ``batch``."""
        for name, (kind, shape) in draws.items():
            if kind == "normal":
                value = torch.randn(shape, device=self.device, generator=self.generator)
            elif kind in ("uniform", "uniform64"):
                dtype = torch.float64 if kind == "uniform64" else torch.float32
                value = torch.rand(shape, dtype=dtype, device=self.device, generator=self.generator)
            else:
                raise ValueError(f"unknown kind of draw {kind!r} for noise/{name}")
            batch[f"noise/{name}"] = value
        return batch

    def before_update(self, step: int) -> None:
        """Called before the stages of update ``step`` (e.g. InSPO's π_old refresh). Must be elementwise over
        parameters (it runs on the stacked ``[K, ...]`` parameters of a population)."""

    def after_step(self) -> None:
        """Called after the last stage of every update (e.g. Polyak target updates). In a vectorized population it
        runs on the stacked ``[K, ...]`` parameters, so it must be elementwise (``torch._foreach_lerp_`` is)."""

    def train_step(self, sampler: DeviceSampler) -> dict[str, torch.Tensor]:
        """Sample update ``num_updates``' minibatch and update."""
        metrics = self.update(self.sample(sampler, self._updates))
        self.num_updates += 1
        return metrics

    def get_extra_state(self) -> dict:
        """Checkpointed python state: the update count and the last metrics of delayed stages."""
        return {"updates": self._updates, "stage_metrics": self._stage_metrics}

    def set_extra_state(self, state: dict) -> None:
        self._updates = int(state["updates"])
        self._stage_metrics = {k: dict(v) for k, v in state["stage_metrics"].items()}

    # ------------------------------------------------------------------ compilation
    def enable_compile(self, backend: str = "inductor", mode: str | None = None) -> None:
        """Run every stage's loss (forward and, through AOTAutograd, backward) through ``torch.compile``.

        On CUDA the default mode is ``"reduce-overhead"``: the compiled forward and backward are replayed as CUDA
        graphs, and the optimizers stay the fused Adam of :meth:`make_adam`. On CPU the default mode compiles
        fused C++ kernels (inductor needs a C++ compiler and takes a while to compile). Numbers match the eager
        update up to floating-point reordering; ``backend="eager"`` only traces (a cheap check of the path).

        Raises:
            ConfigError: if the algorithm overrides :meth:`update` or torch.compile is unavailable.
        """
        if type(self).update is not Algorithm.update:
            raise ConfigError(f"{self.name} overrides update(); compile needs the stage contract")
        if not hasattr(torch, "compile"):
            raise ConfigError("this torch build has no torch.compile")
        if mode is None and self.device.type == "cuda" and backend == "inductor":
            mode = "reduce-overhead"
        self._compile_opts = (backend, mode)

    def _compiled(self, stage: Stage, fn):
        key = (type(self), stage.loss, *self._compile_opts)
        if key not in _COMPILED:
            backend, mode = self._compile_opts
            _COMPILED[key] = torch.compile(fn, backend=backend, mode=mode, dynamic=False)
        if self.device.type == "cuda" and self._compile_opts[1] == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        return _COMPILED[key]

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """All optimizers by name (for checkpoints); default: attributes that are optimizers."""
        return {k: v for k, v in vars(self).items() if isinstance(v, torch.optim.Optimizer)}

    # ------------------------------------------------------------------ acting
    def action_probs(self, obs: torch.Tensor, avail: torch.Tensor | None = None) -> torch.Tensor:
        """Per-agent action distributions π_i(·|o_i), ``[B, N, A]`` (discrete algorithms)."""
        raise NotImplementedError(f"{self.name} does not expose action probabilities")

    @torch.no_grad()
    def act(self, obs: torch.Tensor, avail: torch.Tensor | None = None, deterministic: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """Decentralised actions for all agents: ``[B, N]`` (discrete) or ``[B, N, act_dim]`` in [-1, 1]."""
        p = self.action_probs(obs, avail)
        if deterministic:
            return p.argmax(-1)
        return torch.multinomial(p.reshape(-1, p.shape[-1]), 1, generator=generator).reshape(p.shape[:-1])

    # ------------------------------------------------------------------ helpers
    def make_adam(self, *modules: nn.Module, lr: float | None = None) -> torch.optim.Adam:
        """Adam over the parameters of ``modules`` with the fused kernel (one pass over each tensor, no host syncs).

        ``fused=True`` on CPU and CUDA: on CPU it is about 3× faster than ``foreach=True`` for the paper-size
        networks (``benchmarks/profile_update.py``); same update rule up to floating-point reordering.
        """
        params = [p for m in modules for p in m.parameters()]
        kw = {"fused": True} if self.device.type in ("cuda", "cpu") else {"foreach": True}
        return torch.optim.Adam(params, lr=lr or self.config.lr, **kw)

    @staticmethod
    @torch.no_grad()
    def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
        """Polyak averaging ``θ̄ ← (1 - τ) θ̄ + τ θ`` in one fused op over all tensors."""
        tp, sp = list(target.parameters()), list(source.parameters())
        torch._foreach_lerp_(tp, sp, tau)
