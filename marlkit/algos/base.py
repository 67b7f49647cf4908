"""What every algorithm shares: a validated config dataclass and the :class:`Algorithm` interface.

An algorithm is an ``nn.Module`` holding all its networks (targets and mixers included) built for one
:class:`~marlkit.envs.base.EnvSpec`. The one training loop (:mod:`marlkit.train`) calls
:meth:`Algorithm.setup` once with the dataset, then :meth:`Algorithm.update` with on-device minibatches;
evaluation calls :meth:`Algorithm.act` / :meth:`Algorithm.action_probs`.
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

__all__ = ["AlgoConfig", "Algorithm", "ConfigError", "Interval", "clip_grad_norms_", "declared_range", "ranged"]


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


class Algorithm(nn.Module):
    """Base class of every marlkit algorithm.

    Subclasses define ``name``, ``Config``, build their networks in ``__init__``, and implement
    :meth:`update` plus either :meth:`action_probs` (discrete) or :meth:`act`.

    Args:
        spec: the task's shapes.
        config: hyperparameters (validated here).
        device: training device.
    """

    name: ClassVar[str] = "base"
    Config: ClassVar[type[AlgoConfig]] = AlgoConfig
    supports_discrete: ClassVar[bool] = True
    supports_continuous: ClassVar[bool] = True
    population_fields: ClassVar[tuple[str, ...]] = ()
    """Float config fields that may differ between members of a vectorized population (e.g. ``("alpha",)``):
    they must be used only inside :meth:`compute_loss` (see :mod:`marlkit.population`)."""

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
        self._compile_opts: tuple[str, str | None] | None = None

    # ------------------------------------------------------------------ compilation
    def enable_compile(self, backend: str = "inductor", mode: str | None = None) -> None:
        """Run :meth:`compute_loss` (forward and, through AOTAutograd, backward) through ``torch.compile``.

        On CUDA the default mode is ``"reduce-overhead"``: the compiled forward and backward are replayed as CUDA
        graphs, and the optimizers stay the fused Adam of :meth:`make_adam`. On CPU the default mode compiles
        fused C++ kernels (inductor needs a C++ compiler and takes a while to compile). Numbers match the eager
        update up to floating-point reordering; ``backend="eager"`` only traces (a cheap check of the path).

        Raises:
            ConfigError: if the algorithm overrides :meth:`update` (nothing to compile) or torch.compile is
                unavailable.
        """
        if type(self).compute_loss is Algorithm.compute_loss or type(self).update is not Algorithm.update:
            raise ConfigError(f"{self.name} overrides update(); compile needs the compute_loss() contract")
        if not hasattr(torch, "compile"):
            raise ConfigError("this torch build has no torch.compile")
        if mode is None and self.device.type == "cuda" and backend == "inductor":
            mode = "reduce-overhead"
        self._compile_opts = (backend, mode)

    def _compiled_loss(self):
        key = (type(self), *self._compile_opts)
        if key not in _COMPILED:
            backend, mode = self._compile_opts
            _COMPILED[key] = torch.compile(type(self).compute_loss, backend=backend, mode=mode, dynamic=False)
        if self.device.type == "cuda" and self._compile_opts[1] == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        return _COMPILED[key]

    # ------------------------------------------------------------------ training
    def setup(self, sampler: DeviceSampler) -> None:
        """Called once before training with the on-device sampler (dataset-level precomputation)."""

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss of one update and its metrics, as a pure function of parameters and ``batch``.

        Algorithms whose update is "one loss (a sum of losses over disjoint parameter sets), one backward, per-group
        gradient clipping, one step of every optimizer, then :meth:`after_step`" implement this instead of
        :meth:`update`; they then also train as vectorized populations (:mod:`marlkit.population`). The function
        must not modify parameters, buffers or optimizer state and must not draw random numbers.

        Returns:
            ``(loss, metrics)``: a scalar tensor and a dict of scalar metric tensors (not synced to the host).
        """
        raise NotImplementedError(f"{self.name} implements update() directly, not compute_loss()")

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """An algorithm's forward pass is its training loss: :meth:`compute_loss` (used by ``functional_call``)."""
        return self.compute_loss(batch)

    def grad_clip_groups(self) -> list[list[nn.Parameter]]:
        """Parameter groups whose gradients are norm-clipped each on its own to :meth:`grad_clip_norm` (default none)."""
        return []

    def grad_clip_norm(self) -> float:
        """Max gradient norm per group of :meth:`grad_clip_groups` (0 disables clipping)."""
        return 0.0

    def after_step(self) -> None:
        """Called after every optimizer step (e.g. Polyak target updates). In a vectorized population it runs on the
        stacked ``[K, ...]`` parameters, so it must be elementwise over parameters (``torch._foreach_lerp_`` is)."""

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch``; returns scalar metric tensors (not synced to the host).

        Default: :meth:`compute_loss`, backward, per-group clipping, a step of every optimizer, :meth:`after_step`.
        """
        if self._compile_opts is not None:
            loss, metrics = self._compiled_loss()(self, batch)
        else:
            loss, metrics = self.compute_loss(batch)
        max_norm = self.grad_clip_norm()
        self.backward_and_step(loss, list(self.optimizers().values()),
                               self.grad_clip_groups() if max_norm > 0 else (), max_norm)
        self.after_step()
        return metrics

    @staticmethod
    def backward_and_step(loss: torch.Tensor, opts, clip_groups=(), max_norm: float = 0.0) -> None:
        """Zero the gradients of ``opts``, back-propagate ``loss``, clip each of ``clip_groups`` (lists of parameters)
        to ``max_norm`` on its own (:func:`clip_grad_norms_`; skipped when ``max_norm`` is 0) and step every
        optimizer. ``loss`` may be a sum of losses over the optimizers' disjoint parameters."""
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if max_norm > 0 and clip_groups:
            clip_grad_norms_(clip_groups, max_norm)
        for opt in opts:
            opt.step()

    def train_step(self, sampler: DeviceSampler) -> dict[str, torch.Tensor]:
        """Sample a minibatch and update (algorithms with special sampling override this)."""
        metrics = self.update(sampler.sample(self.config.batch_size))
        self.num_updates += 1
        return metrics

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
