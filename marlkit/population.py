"""Vectorized populations: K independent training runs of one algorithm in lockstep, as one set of tensors.

Every parameter and buffer of the K member algorithms is stacked along a new leading *population* axis
(``[K, ...]``), the per-member loss is evaluated for all members at once with ``torch.func.vmap`` over
``torch.func.functional_call``, and one optimizer steps the stacked parameters. This is the batched-weights trick
of the agent dimension once more, one level up: a small-network update becomes K times larger, so per-op overhead
is paid once for K runs.

Why it equals K separate runs:

- the backward pass of ``Σ_k loss_k`` gives member k's parameters exactly the gradient of ``loss_k``
  (members share no parameter);
- Adam (and every ``torch.optim`` rule without cross-parameter coupling) is elementwise, so one optimizer over the
  stacked tensors performs K independent optimizers' steps;
- gradient-norm clipping is *not* elementwise: :meth:`Population.clip_grads` computes the norm of every member's
  slice on its own, as ``clip_grad_norm_`` would in a single run;
- Polyak target updates (:meth:`Algorithm.after_step`) are elementwise and run on the stacked tensors directly.

Minibatches are drawn by one :class:`~marlkit.data.sampler.DeviceSampler` per member (each with its own seeded
generator and, if wanted, its own dataset) and stacked, so member k sees the same minibatches as a single run with
its seed (samplers sharing one tensor store, ``DeviceSampler.share``, are gathered in one op). Member k's numbers then match the single run up to floating-point reduction order.

Contract for an algorithm (``Algorithm`` subclass) to be vectorizable — every registered algorithm meets it:

1. its update is the stage sequence of :func:`~marlkit.algos.base.run_stages` (it does not override ``update``):
   each :class:`~marlkit.algos.base.Stage`'s loss is pure (no in-place change of parameters or buffers, no
   random numbers: those come in the batch from :meth:`~marlkit.algos.base.Algorithm.sample`, drawn by each
   member from its own generator), and each stage is evaluated for all members in one ``vmap`` call, its
   gradients clipped per member and its optimizers stepped once for all;
2. :meth:`before_update`, the stages' ``after`` hooks and :meth:`after_step` are elementwise over parameters
   (e.g. :meth:`Algorithm.soft_update`);
3. members may differ only in seeds and in the float config fields named in ``population_fields``
   (e.g. OMIGA's ``alpha``), which the losses must use only as numbers in tensor arithmetic
   (inside the vmapped loss they are 0-d tensors).

Cost: the vmap and parameter-swapping bookkeeping is paid once per update for all K runs. With paper-size
networks or K of about 8, the population is faster per run than sequential runs even on one CPU thread; with
tiny networks and K = 2 the bookkeeping can outweigh the saving (``benchmarks/update_speed.py`` measures it).

A class that overrides ``update`` breaks 1 and is refused with :class:`~marlkit.algos.base.ConfigError`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from marlkit.algos.base import Algorithm, ConfigError, Stage, run_stages
from marlkit.data.sampler import Batch, DeviceSampler

__all__ = ["Population", "stack_batches", "supports_population"]


def supports_population(cls: type[Algorithm]) -> bool:
    """Whether an algorithm class follows the population contract (its update is its stages: no ``update``
    override)."""
    return cls.update is Algorithm.update


def stack_batches(batches: Sequence[Batch]) -> Batch:
    """Stack K minibatches with equal keys and shapes into one with a leading population axis ``[K, B, ...]``."""
    keys = batches[0].keys()
    return {k: torch.stack([b[k] for b in batches]) for k in keys}


def _set_tensor(module: nn.Module, name: str, value: torch.Tensor, is_param: bool) -> None:
    path, _, attr = name.rpartition(".")
    owner = module.get_submodule(path) if path else module
    if is_param:
        owner._parameters[attr] = value
    else:
        owner._buffers[attr] = value


def _stack_state(states: list[dict], name: str) -> dict:
    """One optimizer state entry of K members as the state of the stacked parameter: per-element tensors (Adam's
    moments) stacked on a new leading axis; counters (Adam's ``step``) shared, so they must agree."""
    out = {}
    for key, v in states[0].items():
        if torch.is_tensor(v) and v.dim() > 0:
            out[key] = torch.stack([st[key] for st in states])
        else:
            if any(not torch.equal(torch.as_tensor(st[key]), torch.as_tensor(v)) for st in states[1:]):
                raise ConfigError(f"population members' optimizer {name!r} differ in {key!r}; build every member "
                                  f"the same way (same pre-training steps)")
            out[key] = v.clone() if torch.is_tensor(v) else v
    return out


class Population(nn.Module):
    """K member algorithms trained as one: stacked ``[K, ...]`` parameters, a vmapped loss, one optimizer.

    Args:
        members: K >= 1 freshly built algorithms of one class (initialise each with its own seed, e.g.
            ``seed_everything(s); build_algo(...)``, to reproduce single runs), already ``setup()``.
            Their configs must agree except in the class's ``population_fields``.

    Attributes:
        stacked: a copy of member 0 whose every parameter and buffer is the stack of the members' ones;
            its optimizers are rebuilt over the stacked parameters with the members' settings.
        size: K.

    Raises:
        ConfigError: if the members' class does not follow the contract, if the classes differ, or if their
            configs differ in a field not listed in ``population_fields``.

    The members themselves are not updated during training; :meth:`write_back` copies member k's slice (and
    its ``num_updates``) into ``members[k]`` for evaluation, acting or saving.
    """

    def __init__(self, members: Sequence[Algorithm]):
        super().__init__()
        if not members:
            raise ConfigError("a population needs at least one member")
        cls = type(members[0])
        if any(type(m) is not cls for m in members):
            raise ConfigError(f"population members must share one algorithm class, got "
                              f"{sorted({type(m).__name__ for m in members})}")
        if not supports_population(cls):
            raise ConfigError(f"algorithm {cls.name!r} does not support vectorized populations (it overrides "
                              f"update() instead of declaring stages()); run its seeds sequentially")
        devices = {m.device for m in members}
        if len(devices) != 1:
            raise ConfigError(f"population members must share one device, got {sorted(map(str, devices))}")
        self.members = list(members)
        self.size = len(members)
        self.device = members[0].device
        self.hp_fields = self._check_configs(cls)
        self.stacked = self._stack(members)

    # ------------------------------------------------------------------ construction
    def _check_configs(self, cls) -> tuple[str, ...]:
        base = self.members[0].config
        for m in self.members[1:]:
            for f in dataclasses.fields(base):
                a, b = getattr(base, f.name), getattr(m.config, f.name)
                if a != b and f.name not in cls.population_fields:
                    raise ConfigError(f"population members of {cls.name!r} may differ only in "
                                      f"{list(cls.population_fields) or 'their seeds'}, but {f.name} is {a!r} vs {b!r}")
        return tuple(f for f in cls.population_fields
                     if len({getattr(m.config, f) for m in self.members}) > 1)

    def _stack(self, members: Sequence[Algorithm]) -> Algorithm:
        first = members[0]
        stacked = copy.deepcopy(first)
        owners = {id(p): n for n, p in first.named_parameters()}
        for name, p in first.named_parameters():
            value = torch.stack([m.get_parameter(name).detach() for m in members])
            _set_tensor(stacked, name, nn.Parameter(value, requires_grad=p.requires_grad), True)
        for name, _ in first.named_buffers():
            _set_tensor(stacked, name, torch.stack([m.get_buffer(name) for m in members]), False)
        # rebuild every optimizer over the stacked parameters, same class, groups and settings, with the members'
        # state stacked (pre-training in setup, e.g. InSPO's Q warm-up or the VAEs of the decentralized learners,
        # leaves Adam moments behind)
        for attr, opt in first.optimizers().items():
            groups = []
            for g in opt.param_groups:
                params = [stacked.get_parameter(owners[id(p)]) for p in g["params"]]
                groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": params})
            new = type(opt)(groups, **opt.defaults)
            member_opts = [m.optimizers()[attr] for m in members]
            member_params = [[q for g in mo.param_groups for q in g["params"]] for mo in member_opts]
            for j, p in enumerate(p for g in opt.param_groups for p in g["params"]):
                states = [mo.state.get(mp[j]) for mo, mp in zip(member_opts, member_params)]
                if states[0]:
                    new.state[stacked.get_parameter(owners[id(p)])] = _stack_state(states, attr)
            setattr(stacked, attr, new)
        stacked.reset_plans()
        self._params = dict(stacked.named_parameters())  # updated in place from here on: cache the dicts
        self._buffers_ = dict(stacked.named_buffers())
        self._pnames, self._pvals = tuple(self._params), tuple(self._params.values())
        self._bnames, self._bvals = tuple(self._buffers_), tuple(self._buffers_.values())
        if self.hp_fields:
            values = {f: torch.tensor([float(getattr(m.config, f)) for m in members], device=self.device)
                      for f in self.hp_fields}
        else:
            values = {}
        self._hp = values
        return stacked

    # ------------------------------------------------------------------ the vectorized update
    def _member_loss(self, keys: tuple, *flat: torch.Tensor):
        """One member's stage loss from a flat tuple of its tensors (a flat tuple keeps vmap's input handling
        cheap): ``keys = (stage name, #params, #buffers, batch keys, carry keys)``."""
        stage, n_p, n_b, batch_keys, carry_keys = keys
        params = dict(zip(self._pnames, flat[:n_p]))
        params.update(zip(self._bnames, flat[n_p:n_p + n_b]))
        i = n_p + n_b
        batch = dict(zip(batch_keys, flat[i:i + len(batch_keys)]))
        i += len(batch_keys)
        carry = dict(zip(carry_keys, flat[i:i + len(carry_keys)]))
        hp = dict(zip(self.hp_fields, flat[i + len(carry_keys):]))
        algo = self.stacked
        saved = algo.config
        if hp:
            algo.config = dataclasses.replace(saved, **hp)  # 0-d (batched) tensors in place of the floats
        try:
            out = functional_call(algo, params, (batch, carry), {"stage": stage}, strict=False)
        finally:
            algo.config = saved
        return out if len(out) == 3 else (*out, {})

    def stage_loss(self, stage: Stage, batch: Batch, carry: dict | None = None):
        """Every member's loss of ``stage`` on its own minibatch: ``batch`` fields ``[K, B, ...]`` → loss ``[K]``,
        metrics ``[K]``, carry ``[K, ...]``."""
        carry = carry or {}
        keys = (stage.name, len(self._pvals), len(self._bvals), tuple(batch), tuple(carry))
        flat = (*self._pvals, *self._bvals, *batch.values(), *carry.values(), *(self._hp[f] for f in self.hp_fields))
        return vmap(functools.partial(self._member_loss, keys), in_dims=0, randomness="error")(*flat)

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The first stage's loss of every member (single-stage algorithms: their whole loss), ``[K]``."""
        return self.stage_loss(self.stacked.update_stages[0], batch)[:2]

    @torch.no_grad()
    def clip_grads(self, groups: list[list[nn.Parameter]], max_norm: float) -> None:
        """Per-member, per-group gradient-norm clipping (the member's ``clip_grad_norm_`` on its own slice)."""
        if max_norm <= 0:
            return
        K = self.size
        for group in groups:
            grads = [p.grad for p in group if p.grad is not None]
            if not grads:
                continue
            norms = torch.stack([torch.linalg.vector_norm(g.reshape(K, -1), dim=1) for g in grads])  # [P, K]
            total = torch.linalg.vector_norm(norms, dim=0)  # [K]
            coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
            torch._foreach_mul_(grads, [coef.view(K, *([1] * (g.dim() - 1))) for g in grads])

    def _step(self, stage: Stage, loss: torch.Tensor) -> None:
        # members share no parameter: the gradient of the sum gives each slice its own loss's gradient
        Algorithm.step_stage(self.stacked.plan(stage), loss.sum(), clip=self.clip_grads)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One update of every member on its minibatch (``[K, B, ...]``); returns metrics of shape ``[K]``."""
        return run_stages(self.stacked, batch, self.stage_loss, self._step)

    def train_step(self, samplers: Sequence[DeviceSampler]) -> dict[str, torch.Tensor]:
        """Draw member k's minibatch (and random draws) as its single run would, stack, update all members."""
        if len(samplers) != self.size:
            raise ValueError(f"need one sampler per member ({self.size}), got {len(samplers)}")
        B = self.stacked.config.batch_size
        tensors = samplers[0].tensors
        step = self.stacked._updates
        if type(self.stacked).sample is Algorithm.sample and all(s.tensors is tensors for s in samplers):
            idx = torch.cat([s.sample_index(B) for s in samplers])  # one dataset: one gather of all minibatches
            batch = {k: v.index_select(0, idx).unflatten(0, (self.size, B)) for k, v in tensors.items()}
        else:
            batch = stack_batches([m.sample(s, step) for m, s in zip(self.members, samplers)])
        metrics = self.update(batch)
        self.stacked.num_updates += 1
        return metrics

    # ------------------------------------------------------------------ members
    @torch.no_grad()
    def write_back(self) -> list[Algorithm]:
        """Copy each member's slice of the stacked parameters and buffers into ``members[k]``; return the members."""
        params, buffers = self._params, self._buffers_
        for k, m in enumerate(self.members):
            m._updates = self.stacked._updates
            for n, p in m.named_parameters():
                p.copy_(params[n][k])
            for n, b in m.named_buffers():
                b.copy_(buffers[n][k])
        return self.members

    def member(self, k: int) -> Algorithm:
        """Member ``k`` with the population's current weights written back."""
        if not 0 <= k < self.size:
            raise IndexError(f"member index {k} out of range for a population of {self.size}")
        return self.write_back()[k]
