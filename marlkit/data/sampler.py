"""Minibatch sampling on the training device.

The whole dataset is copied to the device once; each :meth:`DeviceSampler.sample` draws indices with a
device-side generator and gathers rows there, so no host→device copy happens per step.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from marlkit.data.dataset import MultiAgentDataset

__all__ = ["DeviceSampler", "Batch"]

Batch = dict[str, torch.Tensor]
"""A minibatch: the dataset's field names mapped to tensors with a leading batch dimension ``B``."""


class DeviceSampler:
    """Uniform minibatches from a :class:`MultiAgentDataset` kept on ``device``.

    Args:
        dataset: the transitions.
        device: training device.
        seed: seed of the sampler's own generator (independent of the global torch RNG).

    Batches are dicts with the dataset's fields (``observations [B, N, obs_dim]``, ``actions [B, N]`` or
    ``[B, N, act_dim]``, ``rewards [B]``, ``terminals [B]`` as float, ...). ``obs_mask`` is not batched.
    """

    PER_AGENT_FIELDS = ("observations", "next_observations", "actions", "avail_actions", "next_avail_actions")

    def __init__(self, dataset: MultiAgentDataset, device: torch.device | str = "cpu", seed: int = 0):
        self.dataset = dataset
        self.device = torch.device(device)
        self.size = dataset.size
        self.tensors: dict[str, torch.Tensor] = {}
        for name, arr in dataset.fields().items():
            if name == "obs_mask":
                continue
            t = torch.from_numpy(np.ascontiguousarray(arr))
            if name in ("terminals", "timeouts", "episode_starts"):
                t = t.float()
            self.tensors[name] = t.to(self.device)
        self.initial_index = torch.from_numpy(np.flatnonzero(dataset.episode_starts)).to(self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))

    def share(self, seed: int) -> "DeviceSampler":
        """A sampler over the *same* on-device tensors (no copy) with its own generator seeded with ``seed``."""
        other = copy.copy(self)
        other.generator = torch.Generator(device=self.device)
        other.generator.manual_seed(int(seed))
        return other

    def sample_index(self, batch_size: int) -> torch.Tensor:
        """Uniform row indices, shape ``[batch_size]``."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        return torch.randint(self.size, (batch_size,), device=self.device, generator=self.generator)

    def sample(self, batch_size: int) -> Batch:
        """A uniform minibatch of ``batch_size`` transitions (with replacement)."""
        idx = self.sample_index(batch_size)
        return {k: v.index_select(0, idx) for k, v in self.tensors.items()}

    def sample_initial(self, batch_size: int) -> Batch:
        """A minibatch of initial transitions (``episode_starts`` True), for DICE's (1-γ)E[ν(s₀)] term."""
        pick = torch.randint(self.initial_index.numel(), (batch_size,), device=self.device, generator=self.generator)
        idx = self.initial_index.index_select(0, pick)
        return {k: v.index_select(0, idx) for k, v in self.tensors.items()}

    def sample_decentralized(self, batch_size: int) -> Batch:
        """Per-agent independent minibatches: agent i's row is drawn on its own (B_i of the decentralized setting).

        Returns the same keys as :meth:`sample`, but *every* field gains an agent axis where it had none
        (``states [B, N, state_dim]``, ``rewards [B, N]``, ``terminals [B, N]``): agent i's entries come from
        its own sampled transition, so no agent sees a teammate's action from the same transition.
        """
        n = self.dataset.n_agents
        idx = torch.randint(self.size, (batch_size, n), device=self.device, generator=self.generator)
        out = {}
        agent = torch.arange(n, device=self.device).expand(batch_size, n)
        for k, v in self.tensors.items():
            if k in self.PER_AGENT_FIELDS:
                out[k] = v[idx, agent]  # [B, N, ...]: agent i's own slice of its own row
            else:
                out[k] = v[idx]  # shared fields (state, reward, flags) of agent i's row: [B, N, ...]
        return out

    def state_dict(self) -> dict:
        """The sampler's RNG state (for exact resume)."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
